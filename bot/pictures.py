"""The progress picture of /stats, drawn with matplotlib (Agg) off the event loop: the core's Picturer port.

One PNG, 1080 px wide and about twice as tall, laid out for a phone held upright: one column, large
type, three charts stacked: mastery per topic (bars), a 12-week heatmap of reviews per local day, and
the reviews due in each of the next 14 days. Colours are colour-blind safe (Okabe-Ito blue and orange;
viridis steps for the heatmap, which differ in lightness as well as hue), and every number a chart
shows is also written as text. The PNG is stored with a palette (the picture has fewer than 256
colours), a third of the bytes of full colour.

Drawing cost is mostly text (matplotlib lays out and rasterises every glyph), so the picture uses
plain texts and a few collections rather than axis ticks and one artist per cell. Pictures are drawn
in a worker process (see ProgressPicturer), which imports matplotlib; the bot's own process never
does, so starting the bot does not pay for it.
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from bot.core.progress import DUE_DAYS, MASTERY_THRESHOLD, Progress

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from PIL.Image import Image as PILImage

DPI = 100
WIDTH = 1080  # px
MARGIN = 40

BLUE = "#0072B2"  # Okabe-Ito blue
ORANGE = "#E69F00"  # Okabe-Ito orange
TRACK = "#E4E4E4"
INK = "#1A1A1A"
MUTED = "#555555"
NO_REVIEWS = "#E8E8E8"
# Reviews per day: none | 1-4 | 5-9 | 10-19 | 20-39 | 40+ (viridis, light to dark: more reads darker)
ACTIVITY_BINS = (1, 5, 10, 20, 40)
ACTIVITY_COLOURS = ("#FDE725", "#7AD151", "#22A884", "#2A788E", "#414487")
ACTIVITY_LABELS = ("1-4", "5-9", "10-19", "20-39", "40+")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
FAMILY = "DejaVu Sans"  # bundled with matplotlib: the same picture on every machine

# Vertical layout, in pixels.
HEADER = 140
SECTION_HEAD = 92  # a section's title and subtitle
GAP = 56
ROW = 42  # one topic's bar, when there is room
ROW_MIN = 30  # ... and the least it shrinks to, so a bank with many topics keeps the picture within
MAX_HEIGHT = 2560  # Telegram keeps photos up to 2560 px on the longest side (larger ones are scaled down)
CELL = 52  # one heatmap row
DUE_BARS = 250
BOTTOM = 36


def render_progress(progress: Progress) -> bytes:
    """The progress picture as PNG bytes (blocking: call it off the event loop)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    heat_h = SECTION_HEAD + 7 * CELL + 100
    due_h = SECTION_HEAD + 10 + DUE_BARS + 70
    rest = HEADER + SECTION_HEAD + GAP + heat_h + GAP + due_h + BOTTOM
    topics = max(len(progress.mastery), 1)
    row = max(ROW_MIN, min(ROW, (MAX_HEIGHT - rest) // topics))  # shrink the bars before growing the page
    mastery_h = SECTION_HEAD + row * topics
    height = rest - SECTION_HEAD + mastery_h
    figure = Figure(figsize=(WIDTH / DPI, height / DPI), dpi=DPI, facecolor="white")
    canvas = FigureCanvasAgg(figure)
    page = _Page(figure, height)
    _header(page, progress)
    top = HEADER
    _mastery(page, progress, top, row)
    top += mastery_h + GAP
    _heatmap(page, progress, top)
    top += heat_h + GAP
    _due(page, progress, top)
    agg: Any = canvas  # matplotlib's annotations leave draw() and buffer_rgba() untyped
    agg.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), agg.buffer_rgba(), "raw", "RGBA", 0, 1)
    return _paletted_png(image.convert("RGB"))


def _paletted_png(image: PILImage) -> bytes:
    """The image as a PNG with a palette: a third of the bytes of full colour, and as fast to write.

    Flat charts and anti-aliased text on white use fewer than 256 colours: those become the palette,
    and each pixel its entry (Pillow's lookup lands within a few levels of it). Should a picture ever
    use more, an octree picks the 256.
    """
    from PIL import Image

    counted = image.getcolors(256)
    if counted is None:
        paletted = image.quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    else:
        palette = Image.new("P", (1, 1))
        palette.putpalette([channel for _, colour in counted if isinstance(colour, tuple) for channel in colour])
        paletted = image.quantize(palette=palette, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    paletted.save(buffer, format="PNG")
    return buffer.getvalue()


class ProgressPicturer:
    """The core's Picturer: draws in a process of its own, started with the first picture.

    matplotlib holds the GIL for long stretches while it draws: in a thread of the bot's process the
    event loop stalled for up to several hundred milliseconds on a busy machine (`python -m bench
    picture` measured both). In another process the loop only pickles the numbers and reads back the
    PNG. One worker, so pictures are drawn one at a time; a worker that dies is replaced.
    """

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    async def draw(self, progress: Progress) -> bytes:
        loop = asyncio.get_running_loop()
        for attempt in range(2):
            pool = self._pool or self._start()
            try:
                return await loop.run_in_executor(pool, render_progress, progress)
            except BrokenProcessPool:  # the worker died (killed, out of memory): start another, once
                self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def _start(self) -> ProcessPoolExecutor:
        # spawn, not fork: the bot's process has threads (aiosqlite, HTTP clients) a fork would copy mid-step
        self._pool = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_started
        )
        return self._pool

    def close(self) -> None:
        """Stop the drawing process (it also ends by itself when the bot's process does)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _worker_started() -> None:
    """In the drawing process: Ctrl-C in a terminal is for the bot's own process, which ends this one
    on its way out; and matplotlib is imported before the first picture waits for it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import matplotlib.backends.backend_agg  # noqa: F401


# --- the parts ---------------------------------------------------------------------------------------


class _Page:
    """Places axes and texts by pixels from the top-left corner."""

    def __init__(self, figure: Figure, height: int) -> None:
        self.figure = figure
        self.height = height

    def axes(self, left: float, top: float, width: float, height: float) -> Axes:
        """Bare axes (no frame, no ticks) over a pixel rectangle; data coordinates are pixels too,
        measured from the rectangle's top-left corner."""
        ax = self.figure.add_axes((left / WIDTH, 1 - (top + height) / self.height, width / WIDTH, height / self.height))
        ax.set_axis_off()
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)
        return ax

    def text(self, x: float, y: float, text: str, size: float, **style: Any) -> None:
        """Text whose top edge is at pixel y (and, by default, whose left edge is at x)."""
        style.setdefault("va", "top")
        style.setdefault("color", INK)
        self.figure.text(x / WIDTH, 1 - y / self.height, text, fontsize=size, family=FAMILY, **style)


def _header(page: _Page, progress: Progress) -> None:
    page.text(MARGIN, 30, f"Progress of {_short(progress.learner, 28)}", 31, weight="bold")
    when = f"{progress.today:%a} {progress.today.day} {progress.today:%b %Y}"
    page.text(MARGIN, 88, f"{when} · {progress.mastered} of {progress.cards} cards mastered", 20, color=MUTED)


def _section(page: _Page, top: float, title: str, subtitle: str) -> None:
    page.text(MARGIN, top, title, 25, weight="bold")
    page.text(MARGIN, top + 44, subtitle, 17, color=MUTED)


def _rectangles(ax: Axes, boxes: list[tuple[float, float, float, float]], colours: list[str]) -> None:
    """Filled rectangles (x, y, width, height) as one collection: one artist however many there are."""
    from matplotlib.collections import PolyCollection

    polygons = [((x, y), (x + w, y), (x + w, y + h), (x, y + h)) for x, y, w, h in boxes]
    ax.add_collection(PolyCollection(polygons, facecolors=colours, linewidths=0, antialiased=False))


def _mastery(page: _Page, progress: Progress, top: float, row: int) -> None:
    _section(
        page,
        top,
        "Mastery by topic",
        f"Cards you'd recall now with ≥ {MASTERY_THRESHOLD:.0%} chance (FSRS); unseen = not mastered",
    )
    rows = progress.mastery
    names_right, bar_left, bar_width = 560, 575, 320
    ax = page.axes(bar_left, top + SECTION_HEAD, bar_width, row * max(len(rows), 1))
    bar_h = row * 0.62
    size = 18 if row >= ROW else 16
    tracks = [(0.0, n * row + (row - bar_h) / 2, float(bar_width), bar_h) for n in range(len(rows))]
    shares = [(0.0, y, bar_width * m.share, h) for (_, y, _, h), m in zip(tracks, rows, strict=True)]
    _rectangles(ax, tracks + shares, [TRACK] * len(rows) + [BLUE] * len(rows))
    for n, mastery in enumerate(rows):
        middle = top + SECTION_HEAD + n * row + row / 2
        page.text(names_right, middle, _short(mastery.topic.name, 38), size, ha="right", va="center_baseline")
        page.text(
            bar_left + bar_width + 16,
            middle,
            f"{mastery.share:.0%}  {mastery.mastered}/{mastery.total}",
            size,
            va="center_baseline",
        )


def _activity_colour(count: int) -> str:
    colour = NO_REVIEWS
    for bound, step in zip(ACTIVITY_BINS, ACTIVITY_COLOURS, strict=True):
        if count >= bound:
            colour = step
    return colour


def _heatmap(page: _Page, progress: Progress, top: float) -> None:
    total = sum(progress.activity)
    days = sum(1 for count in progress.activity if count)
    _section(
        page,
        top,
        "Reviews per day, last 12 weeks",
        f"{total:,} reviews on {days} days · your local days ({_short(progress.timezone, 30)})",
    )
    weeks = (len(progress.activity) + 6) // 7
    left = 110
    cell_w = (WIDTH - left - MARGIN) / weeks
    grid_top = top + SECTION_HEAD
    ax = page.axes(left, grid_top, cell_w * weeks, 7 * CELL)
    boxes: list[tuple[float, float, float, float]] = []
    colours: list[str] = []
    for index, count in enumerate(progress.activity):
        week, weekday = divmod(index, 7)
        boxes.append((week * cell_w + 4, weekday * CELL + 4, cell_w - 8, CELL - 8))
        colours.append(_activity_colour(count))
    _rectangles(ax, boxes, colours)
    today = len(progress.activity) - 1
    week, weekday = divmod(today, 7)
    ax.add_patch(_outline(week * cell_w + 1.5, weekday * CELL + 1.5, cell_w - 3, CELL - 3))
    for n, name in enumerate(WEEKDAYS):
        page.text(MARGIN, grid_top + n * CELL + CELL / 2, name, 17, va="center_baseline")
    for week in range(0, weeks, 2):
        monday = progress.activity_start + timedelta(weeks=week)
        page.text(left + week * cell_w + 4, grid_top + 7 * CELL + 8, _day_label(monday), 16)
    legend_top = grid_top + 7 * CELL + 56
    x = float(left)
    for label, colour in (("none", NO_REVIEWS), *zip(ACTIVITY_LABELS, ACTIVITY_COLOURS, strict=True)):
        page.figure.add_artist(_swatch(page, x, legend_top, colour))
        page.text(x + 34, legend_top + 1, label, 17)
        x += 34 + 12 * len(label) + 26
    page.text(x, legend_top + 1, "a day", 17, color=MUTED)


def _outline(x: float, y: float, width: float, height: float) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), width, height, facecolor="none", edgecolor=INK, linewidth=3)


def _swatch(page: _Page, x: float, y: float, colour: str) -> Any:
    from matplotlib.patches import Rectangle

    size = 26
    return Rectangle(
        (x / WIDTH, 1 - (y + size) / page.height),
        size / WIDTH,
        size / page.height,
        transform=page.figure.transFigure,
        facecolor=colour,
        linewidth=0,
    )


def _due(page: _Page, progress: Progress, top: float) -> None:
    total = sum(progress.due)
    _section(
        page,
        top,
        f"Reviews due, next {DUE_DAYS} days",
        f"{total} in all · today's bar includes anything overdue",
    )
    days = len(progress.due)
    slot = (WIDTH - 2 * MARGIN) / days
    bars_top = top + SECTION_HEAD + 10
    ax = page.axes(MARGIN, bars_top, WIDTH - 2 * MARGIN, DUE_BARS)
    peak = max(max(progress.due, default=0), 1)
    scale = (DUE_BARS - 36) / peak  # room above the tallest bar for its number
    boxes = [
        (n * slot + slot * 0.15, DUE_BARS - count * scale, slot * 0.7, count * scale)
        for n, count in enumerate(progress.due)
    ]
    _rectangles(ax, boxes, [ORANGE] + [BLUE] * (days - 1))
    ax.plot([0, WIDTH - 2 * MARGIN], [DUE_BARS - 0.5, DUE_BARS - 0.5], color="#999999", linewidth=1.5)
    for n, count in enumerate(progress.due):
        centre = MARGIN + n * slot + slot / 2
        page.text(centre, bars_top + DUE_BARS - count * scale - 6, str(count), 17, ha="center", va="bottom")
        day = progress.today + timedelta(days=n)
        page.text(centre, bars_top + DUE_BARS + 10, _due_label(day, n), 15, ha="center", linespacing=1.25)


# --- words ---------------------------------------------------------------------------------------------


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _day_label(day: date) -> str:
    return f"{day.day} {day:%b}"


def _due_label(day: date, offset: int) -> str:
    return f"today\n{day.day}" if offset == 0 else f"{day:%a}\n{day.day}"
