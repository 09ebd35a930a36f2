"""What every chat adapter needs the same way: the apology line, the retry policy for platform calls,
packing rendered text into messages within a platform's limit, and the "handled" log line."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from bot.core.model import Chat
from bot.core.ports import ChatStore, Clock, Delivery
from bot.core.views import Block, render_plain, split_plain

T = TypeVar("T")

SORRY = "Sorry, something went wrong on my side. Please try again in a moment."


# --- sending with retries ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Failure:
    """What a failed platform call means for delivery, as a platform's classifier tells it."""

    delivery: Delivery
    detail: str  # what the platform said, for the caller and the log
    retry: bool = False  # transient (a timeout, a 5xx): worth another try after a backoff
    reason: str = ""  # for an unreachable chat: the short reason stored with it (default: `detail`)
    warning: str | None = None  # logged as a warning when the call is given up because of this


Classify = Callable[[Exception], Failure | None]  # None: not a platform failure, let it propagate


class RetryingSender:
    """Runs one platform call at a time under one policy, and never raises a platform error.

    Transient failures are retried with exponential backoff (`backoff`, 2x, 4x, ...) up to `retries`
    times; a chat that refuses the bot (blocked, kicked, DMs closed) is marked unreachable, so nothing
    more is sent there until it talks to the bot again; anything else is reported as it is.
    """

    def __init__(
        self,
        chats: ChatStore,
        clock: Clock,
        classify: Classify,
        log: logging.Logger,
        *,
        retries: int = 3,
        backoff: float = 0.5,
        timeout: float | None = None,
    ) -> None:
        self.chats = chats
        self.clock = clock
        self.classify = classify
        self.log = log
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout  # for libraries whose calls can hang; None: the library times out itself

    async def call(self, chat: Chat | None, make: Callable[[], Awaitable[T]]) -> tuple[Delivery, T | None, str]:
        """Run `make()` about `chat` (None: a call about no chat) -> (delivery, its result, detail)."""
        chat_id = chat.chat_id if chat is not None else None
        for attempt in range(self.retries + 1):
            try:
                pending = make()
                result = await (asyncio.wait_for(pending, self.timeout) if self.timeout is not None else pending)
                return Delivery.SENT, result, ""
            except Exception as exc:
                failure = self.classify(exc)
                if failure is None:
                    raise
            if failure.delivery is Delivery.UNREACHABLE:
                reason = failure.reason or failure.detail
                if chat is not None:
                    await self.chats.mark_unreachable(chat.key, self.clock.now(), reason)
                self.log.info("chat %s is unreachable: %s", chat_id, reason)
                return Delivery.UNREACHABLE, None, failure.detail
            if not failure.retry:
                if failure.warning:
                    self.log.warning("%s (chat %s)", failure.warning, chat_id)
                return failure.delivery, None, failure.detail
            if attempt == self.retries:
                self.log.warning("giving up on chat %s after %d attempts: %s", chat_id, attempt + 1, failure.detail)
                return Delivery.FAILED, None, failure.detail
            await asyncio.sleep(self.backoff * 2**attempt)
        return Delivery.FAILED, None, "retries exhausted"


# --- messages within a platform's limit -----------------------------------------------------------------


def pack(texts: Iterable[str], limit: int) -> list[str]:
    """Join rendered pieces with blank lines into as few chunks of at most `limit` characters as possible."""
    chunks: list[str] = []
    current = ""
    for text in texts:
        if not text:
            continue
        candidate = f"{current}\n\n{text}" if current else text
        if len(candidate) <= limit:
            current = candidate
        else:
            if current:
                chunks.append(current)
            current = text
    if current:
        chunks.append(current)
    return chunks


def rendered_pieces(
    blocks: Iterable[Block],
    render_block: Callable[[Block], str],
    escape: Callable[[str], str],
    *,
    limit: int,
    piece_limit: int,
) -> list[str]:
    """Each block rendered for the platform; one too long for a message becomes escaped plain pieces of at
    most `piece_limit` characters (before escaping), split at line breaks, then spaces."""
    pieces: list[str] = []
    for block in blocks:
        text = render_block(block)
        if len(text) <= limit:
            pieces.append(text)
        else:
            pieces += [escape(piece) for piece in split_plain(render_plain((block,)), piece_limit)]
    return pieces


# --- logging ------------------------------------------------------------------------------------------


def log_handled(log: logging.Logger, what: str, started: float, **fields: Any) -> None:
    """One INFO line per handled update, with its ids and how long it took (structured for JSON logs)."""
    extra = {**fields, "duration_ms": round((time.perf_counter() - started) * 1000, 1)}
    log.info("handled %s", what, extra=extra)
