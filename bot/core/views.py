"""Platform-neutral replies: blocks of text in a tiny vocabulary, plus buttons carrying actions.

Adapters render these: Telegram as HTML, Discord as embeds/markdown, the terminal as plain text.
Every string in a view is plain text; renderers escape it for their platform.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Style = Literal["plain", "bold", "italic", "code"]


@dataclass(frozen=True, slots=True)
class Span:
    text: str
    style: Style = "plain"


Inline = str | Span


@dataclass(frozen=True, slots=True)
class Title:
    text: str


@dataclass(frozen=True, slots=True)
class Paragraph:
    parts: tuple[Inline, ...]
    # What the paragraph says instead where the reply's answer box is shown (a chat whose plain messages
    # do not reach the bot): how to answer differs there. See `how_to_answer`.
    with_box: tuple[Inline, ...] | None = None

    @classmethod
    def of(cls, *parts: Inline) -> Paragraph:
        return cls(tuple(parts))


@dataclass(frozen=True, slots=True)
class Bullets:
    items: tuple[tuple[Inline, ...], ...]

    @classmethod
    def of(cls, *items: str) -> Bullets:
        return cls(tuple((item,) for item in items))


@dataclass(frozen=True, slots=True)
class Code:
    text: str


Block = Title | Paragraph | Bullets | Code


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    action: str  # encoded Action; <= 64 bytes so it fits Telegram's callback_data


@dataclass(frozen=True, slots=True)
class QuizPoll:
    """A multiple-choice question to show as a native poll where the platform has one."""

    question: str
    options: tuple[str, ...]
    correct_index: int
    explanation: str
    open_seconds: int | None = None
    round_id: int | None = None  # the competition round this poll is, so its poll id can be recorded


@dataclass(frozen=True, slots=True)
class Picture:
    """An image shown in the chat (a photo, an embed's image), unlike an attachment, which is a file to keep."""

    name: str  # file name, e.g. "stats.png"
    content: bytes  # PNG
    caption: str  # plain text saying what the picture shows; short (Telegram allows 1024 characters)


@dataclass(frozen=True, slots=True)
class Reply:
    """What the bot says back.

    `edit` asks the adapter to replace the message the pressed button belongs to; `notice` is a
    short line for a callback answer or an ephemeral message; a reply with only a notice changes
    nothing visible in the chat.
    """

    blocks: tuple[Block, ...] = ()
    buttons: tuple[tuple[Button, ...], ...] = ()
    edit: bool = False
    notice: str | None = None
    poll: QuizPoll | None = None
    private: bool = False  # for the asker only where the platform can (Discord ephemeral)
    attachment: tuple[str, bytes] | None = None  # (file name, content)
    picture: Picture | None = None  # shown after the text; a platform that refuses it still gets the text
    extra: tuple[Reply, ...] = field(default=())  # further messages to send after this one
    # The learner answers this message in their own words. Where a chat's plain messages do not reach the
    # bot (Discord), the adapter offers a box to type into, opened by a button labelled ANSWER_BOX_LABEL at
    # index `answer_box_at` of the first row of buttons, and shows the `with_box` form of paragraphs.
    answer_box: bool = False
    answer_box_at: int = 0
    # Continue in a private chat with the bot: the adapter adds a button that opens one with this start
    # parameter (Telegram deep link t.me/<bot>?start=<value>).
    private_start: str | None = None

    @property
    def is_notice_only(self) -> bool:
        return not self.blocks and self.poll is None and self.attachment is None and self.picture is None

    def plain_text(self) -> str:
        """The reply as plain text (the terminal, logs and tests)."""
        return render_plain(self.blocks)


ANSWER_BOX_LABEL = "✍️ Type answer"  # the button that opens the answer box, where one is shown


def how_to_answer(sentence: str, typed: str) -> Paragraph:
    """An italic line saying how to answer in words: `sentence` with "{how}" filled by `typed` (e.g. "just
    type it") where a plain message reaches the bot, and by "press ✍️ Type answer" where the box is shown."""
    return Paragraph(
        (Span(sentence.format(how=typed), "italic"),),
        with_box=(Span(sentence.format(how=f"press {ANSWER_BOX_LABEL}"), "italic"),),
    )


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """ "1 card", "2 cards", "0 cards" (pass the plural when it is not noun + s)."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"


def notice(text: str) -> Reply:
    return Reply(notice=text)


def message(*blocks: Block, buttons: tuple[tuple[Button, ...], ...] = (), edit: bool = False) -> Reply:
    return Reply(blocks=blocks, buttons=buttons, edit=edit)


def text_blocks(text: str) -> tuple[Block, ...]:
    """Deck prose to blocks: blank lines separate paragraphs, lines starting with "- " are bullets."""
    blocks: list[Block] = []
    for chunk in re.split(r"\n\s*\n", text.strip()):
        lines = [line.rstrip() for line in chunk.splitlines() if line.strip()]
        paragraph: list[str] = []
        bullets: list[str] = []
        for line in lines:
            stripped = line.strip()
            if stripped.startswith(("- ", "• ")):
                if paragraph:
                    blocks.append(Paragraph.of(" ".join(paragraph)))
                    paragraph = []
                bullets.append(stripped[2:].strip())
            else:
                if bullets:
                    blocks.append(Bullets.of(*bullets))
                    bullets = []
                paragraph.append(stripped)
        if paragraph:
            blocks.append(Paragraph.of(" ".join(paragraph)))
        if bullets:
            blocks.append(Bullets.of(*bullets))
    return tuple(blocks)


def inline_text(parts: tuple[Inline, ...]) -> str:
    return "".join(part if isinstance(part, str) else part.text for part in parts)


def render_plain(blocks: tuple[Block, ...]) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Title):
            out.append(f"{block.text}\n{'─' * min(len(block.text), 60)}")
        elif isinstance(block, Paragraph):
            out.append(inline_text(block.parts))
        elif isinstance(block, Bullets):
            out.append("\n".join(f"  • {inline_text(item)}" for item in block.items))
        else:
            out.append("\n".join(f"    {line}" for line in block.text.splitlines()))
    return "\n\n".join(out)


def split_plain(text: str, limit: int) -> list[str]:
    """Split over-long plain text at line breaks, then spaces, then anywhere (for message limits)."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        if cut <= 0:
            cut = text.rfind(" ", 0, limit)
        if cut <= 0:
            cut = limit
        pieces.append(text[:cut])
        text = text[cut:].lstrip()
    if text:
        pieces.append(text)
    return pieces
