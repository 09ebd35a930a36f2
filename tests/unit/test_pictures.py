"""The progress picture as a file: a PNG a phone can show (at least 1000 px wide, under 200 KB), drawn
in a process of its own while the event loop keeps running."""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import os
import random
from datetime import date
from pathlib import Path

from PIL import Image

from bot.core.bank import QuestionBank
from bot.core.model import Topic
from bot.core.progress import DUE_DAYS, Progress, TopicMastery, activity_start
from bot.pictures import ProgressPicturer, render_progress
from tests.conftest import CONTENT

TODAY = date(2026, 3, 4)  # a Wednesday: the last week of the heatmap is part-drawn
MAX_BYTES = 200 * 1024


def progress(*, topics: list[tuple[Topic, int, int]] | None = None, busy: bool = True, seed: int = 3) -> Progress:
    rng = random.Random(seed)
    if topics is None:
        bank = QuestionBank.load(CONTENT)
        topics = [(t, rng.randint(0, len(bank.cards_in(t.slug))), len(bank.cards_in(t.slug))) for t in bank.topics]
    start = activity_start(TODAY)
    days = (TODAY - start).days + 1
    return Progress(
        learner="Ann Example-Longname",
        timezone="America/Argentina/Buenos_Aires",
        today=TODAY,
        mastery=tuple(TopicMastery(topic, mastered, total) for topic, mastered, total in topics),
        activity_start=start,
        activity=tuple(rng.choice((0, 2, 7, 15, 30, 80)) if busy else 0 for _ in range(days)),
        due=tuple(rng.randint(0, 400) if busy else 0 for _ in range(DUE_DAYS)),
    )


def opened(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def test_the_picture_is_a_png_wide_enough_for_a_phone_and_small_enough_to_send() -> None:
    png = render_progress(progress())
    image = opened(png)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and image.format == "PNG"
    assert image.width >= 1000
    assert image.height <= 2560  # Telegram keeps photos up to 2560 px on the longest side
    assert len(png) < MAX_BYTES


def test_a_learner_with_nothing_due_and_no_activity_still_gets_a_picture() -> None:
    image = opened(render_progress(progress(busy=False)))
    assert image.width >= 1000


def test_many_topics_with_long_names_stay_under_the_size_limit() -> None:
    topics = [
        (Topic(f"t{n}", "A very long topic name that goes on and on, past any label " * 2), n % 7, 9) for n in range(30)
    ]
    png = render_progress(progress(topics=topics, seed=9))
    image = opened(png)
    assert image.width >= 1000 and image.height <= 2560 * 2
    assert len(png) < MAX_BYTES


def test_the_picture_is_mostly_white_with_a_few_colours_so_it_reads_on_any_screen() -> None:
    image = opened(render_progress(progress())).convert("RGB")
    colours = image.getcolors(1024)
    assert colours is not None  # a palette's worth of colours, not a photograph
    count, most = max(colours)
    assert min(most) >= 250 and count > image.width * image.height / 2  # the background


async def test_pictures_are_drawn_in_another_process_while_the_event_loop_keeps_running() -> None:
    picturer = ProgressPicturer()
    try:
        drawing = asyncio.ensure_future(picturer.draw(progress()))
        turns, workers = 0, set()
        while not drawing.done():
            workers |= {child.pid for child in multiprocessing.active_children()}
            await asyncio.sleep(0.01)  # the loop keeps serving while the picture is drawn
            turns += 1
        first = drawing.result()
        second = await picturer.draw(progress(seed=4))
    finally:
        picturer.close()
    assert opened(first).width >= 1000 and opened(second).width >= 1000 and first != second
    assert turns > 0
    assert workers and os.getpid() not in workers


async def test_a_drawing_process_that_died_is_replaced() -> None:
    picturer = ProgressPicturer()
    try:
        await picturer.draw(progress())
        for child in multiprocessing.active_children():
            child.kill()
            child.join()
        png = await picturer.draw(progress(seed=5))
    finally:
        picturer.close()
    assert opened(png).width >= 1000


def test_the_committed_screenshot_is_a_picture_of_the_same_kind() -> None:
    screenshot = Path(__file__).resolve().parents[2] / "docs" / "stats.png"
    png = screenshot.read_bytes()
    image = opened(png)
    assert image.width >= 1000 and len(png) < MAX_BYTES
