"""What both chat adapters share: the retry policy for platform calls and packing text into messages."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import pytest

from bot.adapters import discord as on_discord
from bot.adapters import telegram as on_telegram
from bot.adapters.common import SORRY, Failure, RetryingSender, pack
from bot.core.model import Chat
from bot.core.ports import Delivery
from tests.fakes import FakeClock, MemoryStore

ANN = Chat("telegram", "1001")


class Transient(Exception):
    pass


class Blocked(Exception):
    pass


class Refused(Exception):
    pass


def classify(exc: Exception) -> Failure | None:
    if isinstance(exc, Transient):
        return Failure(Delivery.FAILED, "502 Bad Gateway", retry=True)
    if isinstance(exc, Blocked):
        return Failure(Delivery.UNREACHABLE, "403: bot was blocked by the user", reason="403")
    if isinstance(exc, Refused):
        return Failure(Delivery.REJECTED, "400: message is too long")
    return None


def sender(store: MemoryStore, retries: int = 2) -> RetryingSender:
    return RetryingSender(store, FakeClock(), classify, logging.getLogger("test"), retries=retries, backoff=0.001)


def failing(*errors: Exception, result: str = "sent") -> tuple[list[int], Callable[[], Awaitable[str]]]:
    """A call that raises `errors` one per attempt, then returns `result`; and its attempt counter."""
    attempts: list[int] = []

    async def make() -> str:
        attempts.append(1)
        if len(attempts) <= len(errors):
            raise errors[len(attempts) - 1]
        return result

    return attempts, make


async def test_transient_failures_are_retried_until_the_call_goes_through() -> None:
    store = MemoryStore()
    attempts, make = failing(Transient(), Transient())
    assert await sender(store).call(ANN, make) == (Delivery.SENT, "sent", "")
    assert len(attempts) == 3 and not store.unreachable


async def test_transient_failures_are_given_up_after_the_retries() -> None:
    attempts, make = failing(Transient(), Transient(), Transient(), Transient())
    delivery, result, detail = await sender(MemoryStore(), retries=2).call(ANN, make)
    assert (delivery, result, detail) == (Delivery.FAILED, None, "502 Bad Gateway") and len(attempts) == 3


async def test_a_chat_that_refuses_the_bot_is_marked_unreachable_by_its_key_and_not_retried() -> None:
    store = MemoryStore()
    attempts, make = failing(Blocked())
    delivery, _, detail = await sender(store).call(ANN, make)
    assert delivery is Delivery.UNREACHABLE and detail == "403: bot was blocked by the user"
    assert store.unreachable == {"telegram:1001": "403"} and len(attempts) == 1


async def test_a_refusal_on_a_call_about_no_chat_marks_no_chat() -> None:
    store = MemoryStore()
    _, make = failing(Blocked())
    delivery, _, _ = await sender(store).call(None, make)
    assert delivery is Delivery.UNREACHABLE and not store.unreachable


async def test_refused_content_is_reported_at_once_and_foreign_errors_propagate() -> None:
    attempts, make = failing(Refused())
    assert (await sender(MemoryStore()).call(ANN, make))[0] is Delivery.REJECTED
    assert len(attempts) == 1
    _, broken = failing(KeyError("a bug"))
    with pytest.raises(KeyError):
        await sender(MemoryStore()).call(ANN, broken)


def test_pieces_are_packed_into_as_few_messages_as_fit_the_limit() -> None:
    assert pack(["aaaa", "", "bbbb", "cccc"], limit=10) == ["aaaa\n\nbbbb", "cccc"]
    assert pack(["x" * 10, "y"], limit=10) == ["x" * 10, "y"]
    assert pack([], limit=10) == []


def test_both_adapters_apologise_with_the_same_line() -> None:
    assert on_telegram.SORRY == on_discord.SORRY == SORRY
