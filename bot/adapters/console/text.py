"""Replies as terminal text: wrapped to the terminal's width with hanging indents, bold and colour on a TTY.

Piped output (scripts, tests) gets the same words with no wrapping and no escape codes, so every
logical line stays one line; `NO_COLOR` (https://no-color.org) turns styling off on a TTY too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from wcwidth import wcswidth

from bot.core.views import Block, Bullets, Button, Code, Inline, Paragraph, Reply, Span, Title

SGR = {"bold": "\x1b[1m", "italic": "\x1b[3m", "code": "\x1b[36m", "title": "\x1b[1;36m", "dim": "\x1b[2m"}
RESET = "\x1b[0m"
BULLET = "  • "
HANG = "    "
MAX_WIDTH = 100  # wider lines are hard to read, whatever the window


def visible_width(text: str) -> int:
    """Columns a string takes on screen (wide characters such as emoji take two)."""
    width = wcswidth(text)
    return width if width >= 0 else len(text)


@dataclass(frozen=True, slots=True)
class Look:
    """How text comes out: `width` None means no wrapping (piped output); `colour` adds escape codes."""

    width: int | None = None
    colour: bool = False

    def paint(self, text: str, style: str) -> str:
        if not self.colour or style == "plain" or not text:
            return text
        return f"{SGR[style]}{text}{RESET}"


Fragment = tuple[str, str]  # (text, style)


def _words(parts: Iterable[Inline]) -> list[list[Fragment] | None]:
    """Inline parts as words (each a list of styled fragments, since a word can change style midway);
    None marks a forced line break (a newline in the text)."""
    words: list[list[Fragment] | None] = []
    current: list[Fragment] = []
    for part in parts:
        text, style = (part, "plain") if isinstance(part, str) else (part.text, part.style)
        for piece in re.split(r"(\s+)", text):
            if not piece:
                continue
            if piece.isspace():
                if current:
                    words.append(current)
                    current = []
                words.extend([None] * piece.count("\n"))
            else:
                current.append((piece, style))
    if current:
        words.append(current)
    return words


def wrap(parts: Sequence[Inline], look: Look, first: str = "", rest: str = "") -> list[str]:
    """Lay inline parts out in lines no wider than `look.width`, words never split (a word wider than the
    line gets a line of its own); `first` prefixes the first line and `rest` the others."""
    lines: list[str] = []
    line: list[str] = [first]
    used = visible_width(first)
    empty = True
    for word in _words(parts):
        if word is None:
            lines.append("".join(line))
            line, used, empty = [rest], visible_width(rest), True
            continue
        size = sum(visible_width(text) for text, _ in word)
        if not empty and look.width is not None and used + 1 + size > look.width:
            lines.append("".join(line))
            line, used, empty = [rest], visible_width(rest), True
        if not empty:
            line.append(" ")
            used += 1
        line.extend(look.paint(text, style) for text, style in word)
        used += size
        empty = False
    lines.append("".join(line))
    return [text.rstrip() for text in lines]


def block_lines(block: Block, look: Look) -> list[str]:
    if isinstance(block, Title):
        lines = wrap((block.text,), look)
        rule = "─" * min(max(visible_width(line) for line in lines), look.width or 60, 60)
        return [*(look.paint(line, "title") for line in lines), look.paint(rule, "dim")]
    if isinstance(block, Paragraph):
        return wrap(block.parts, look)
    if isinstance(block, Bullets):
        return [line for item in block.items for line in wrap(item, look, BULLET, HANG)]
    assert isinstance(block, Code)
    return [look.paint(f"{HANG}{line}", "code") for line in block.text.splitlines()]


def render_blocks(blocks: Sequence[Block], look: Look) -> str:
    return "\n\n".join("\n".join(block_lines(block, look)) for block in blocks)


def keys_for(buttons: Sequence[Button]) -> list[str]:
    """The key that presses each button: its letter when the label is one (quiz and multiple-choice options),
    else a number, counting only the buttons that have no letter."""
    keys: list[str] = []
    number = 0
    for button in buttons:
        if len(button.label) == 1 and button.label.isalpha():
            keys.append(button.label.upper())
        else:
            number += 1
            keys.append(str(number))
    return keys


def render_buttons(buttons: Sequence[Button], look: Look) -> str:
    """Buttons as `[key] label`, two spaces apart; a row too wide for the terminal breaks between buttons."""
    lines: list[str] = []
    line: list[str] = []
    used = 0
    for key, button in zip(keys_for(buttons), buttons, strict=True):
        label = "" if key == button.label.upper() else f" {button.label}"
        size = visible_width(f"[{key}]{label}")
        if line and look.width is not None and used + 2 + size > look.width:
            lines.append("".join(line))
            line, used = [], 0
        if line:
            line.append("  ")
            used += 2
        line.append(look.paint(f"[{key}]", "bold") + label)
        used += size
    lines.append("".join(line))
    return "\n".join(lines)


def render(reply: Reply, look: Look | None = None, *, skip: frozenset[Block] = frozenset()) -> str:
    """A reply as terminal text, its buttons listed with their keys; blocks in `skip` (already on screen)
    are left out."""
    look = look or Look()
    parts: list[str] = []
    blocks = tuple(block for block in reply.blocks if block not in skip)
    if blocks:
        parts.append(render_blocks(blocks, look))
    if reply.poll is not None and not reply.blocks:
        poll = reply.poll
        options = Bullets(tuple((Span(f"{chr(65 + i)}) ", "bold"), o) for i, o in enumerate(poll.options)))
        parts.append(render_blocks((Paragraph.of(Span(poll.question, "bold")), options), look))
    if reply.notice and not reply.blocks:
        parts.append(f"({reply.notice})")
    buttons = [b for row in reply.buttons for b in row]
    if buttons:
        parts.append(render_buttons(buttons, look))
    for more in reply.extra:
        parts.append(render(more, look))
    return "\n\n".join(part for part in parts if part)
