"""A group quiz match across two `studybot run` processes on one PostgreSQL (webhook mode): the replica that
started the match plays it, poll answers reaching either replica are stored and scored, and when the owner
is killed (SIGKILL) between rounds, the other replica takes the match over within 30 s and finishes it with
the right standings."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.adapters.fake_telegram import FakeTelegram, StoredPoll
from tests.adapters.test_telegram_webhook_fleet import HOOK_URL, SECRET, wait_listening
from tests.pg import free_port
from tests.processes import bot_env, start_studybot, stop_studybot

pytestmark = pytest.mark.slow

GROUP = -100_777


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_a_match_whose_replica_is_killed_between_rounds_is_finished_by_the_other(
    fake: FakeTelegram, tmp_path: Path, pg_dsn: str
) -> None:
    ports = [free_port() for _ in range(2)]
    common = {
        "STUDYBOT_DB": pg_dsn,
        "TELEGRAM_TOKEN": fake.token,
        "TELEGRAM_API_URL": fake.api_url,
        "TELEGRAM_WEBHOOK_URL": HOOK_URL,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "LOG_LEVEL": "WARNING",
    }
    owner, other = [
        await start_studybot(tmp_path, bot_env(tmp_path / "unused.db", **common, STUDYBOT_LISTEN=f"127.0.0.1:{port}"))
        for port in ports
    ]
    owner_url, other_url = (f"http://127.0.0.1:{port}" for port in ports)
    alive = [owner, other]
    ann, bob = fake.make_user(801, "Ann"), fake.make_user(802, "Bob")

    def texts() -> list[str]:
        return fake.sent_texts(GROUP, rendered=True)

    def poll(number: int) -> StoredPoll | None:
        polls = [p for p in fake.polls.values() if p.chat_id == GROUP]
        return polls[number - 1] if len(polls) >= number else None

    async def vote(number: int, who: dict[str, Any], right: bool, target: str) -> None:
        current = poll(number)
        assert current is not None
        option = current.correct_option_ids[0] if right else (current.correct_option_ids[0] + 1) % len(current.options)
        delivered = await fake.deliver(fake.poll_answer_update(current.id, who, [option]), target=target)
        assert delivered.status == 200

    try:
        await fake.wait_for("setWebhook", count=2, predicate=lambda c: c.ok, timeout=45)
        await asyncio.gather(*(wait_listening(port) for port in ports))
        start = fake.message_update(GROUP, ann, "/quiz 2 10", chat_type="supergroup", chat_title="Study group")
        assert (await fake.deliver(start, target=owner_url)).status == 200

        await until(lambda: poll(1) is not None, 20, "round 1's poll")
        await vote(1, ann, True, other_url)  # answers reach the replica that does not play the match
        await vote(1, bob, False, owner_url)
        await until(lambda: any("Round 1/2" in t for t in texts()), 20, "round 1's results")
        owner.send_signal(signal.SIGKILL)  # between rounds: the owner dies in the pause before round 2
        await owner.wait()
        alive.remove(owner)
        killed_at = time.monotonic()

        await until(lambda: poll(2) is not None, 35, "round 2 from the other replica")
        assert time.monotonic() - killed_at < 30  # taken over within 30 s
        await vote(2, ann, True, other_url)
        await vote(2, bob, True, other_url)
        await until(lambda: any("Final results" in t for t in texts()), 30, "the final results")
    finally:
        for process in alive:
            code, log = await stop_studybot(process)
            assert code == 0, log[-3000:]

    shown = texts()
    assert [sum(f"Round {n}/2" in t for t in shown) for n in (1, 2)] == [1, 1]  # none lost, none twice
    assert len([p for p in fake.polls.values() if p.chat_id == GROUP]) == 2
    final = next(t for t in shown if "Final results" in t)
    ranking = [line for line in final.splitlines() if line.startswith("• ")]
    assert [line.split()[2] for line in ranking] == ["Ann", "Bob"], final  # Ann 2 right, Bob 1
    ann_points = int(final.split("Ann — ")[1].split(" pts")[0])
    bob_points = int(final.split("Bob — ")[1].split(" pts")[0])
    assert ann_points >= 200 and 100 <= bob_points < ann_points, final
