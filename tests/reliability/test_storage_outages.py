"""The database goes away or a unit of work is cut short: nothing acknowledged is lost, nothing is
half-written, and the bot says a friendly line instead of going silent.

- PostgreSQL restarted while the bot runs (the real test cluster is stopped and started): an action
  during the outage gets the usual apology; once the server is back, the pool reconnects, the same
  press works, and every rating acknowledged before the outage is still there.
- A rating cancelled halfway (task cancellation, a timeout) after its first write inside the
  transaction: on both engines the attempt is still open to rating and no card state or review row
  was written.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import fsrs
import pytest

from bot.adapters.telegram import SORRY
from bot.core.commands import Commands
from bot.core.model import AttemptStatus
from bot.core.study import StudyService
from bot.storage import db as dbmodule
from bot.storage.store import Store
from tests.adapters import test_telegram as on_telegram
from tests.adapters.fake_telegram import FakeTelegram
from tests.adapters.stack import build_stack
from tests.conftest import caller, small_bank
from tests.fakes import FakeClock
from tests.pg import PgCluster

ANN = caller("1", "Ann")


async def count(store: Store, table: str) -> int:
    row = await store.db.fetchrow(f"SELECT COUNT(*) FROM {table}")
    return int(row[0]) if row else 0


async def test_a_postgresql_restart_costs_one_apology_and_no_acknowledged_answer(
    pg_cluster: PgCluster, pg_dsn: str
) -> None:
    async with FakeTelegram() as fake, Store(pg_dsn) as store:
        stack = build_stack(fake, store)
        await stack.telegram.start(polling=False)
        try:
            ann = fake.make_user(7001, "Ann")
            await on_telegram.say(fake, stack.telegram, "/question", ann)
            first = on_telegram.last_bot_message(fake, 7001)
            await on_telegram.press(fake, stack.telegram, first, "Show answer", ann)
            await on_telegram.press(fake, stack.telegram, fake.message(7001, first.message_id), "Good", ann)  # type: ignore[arg-type]
            assert await count(store, "reviews") == 1  # acknowledged: "Saved: Good"

            await on_telegram.say(fake, stack.telegram, "/question", ann)
            second = on_telegram.last_bot_message(fake, 7001)
            pg_cluster.stop()
            try:
                await on_telegram.press(fake, stack.telegram, second, "Show answer", ann)
                answers = [c.params.get("text") for c in fake.calls_to("answerCallbackQuery")]
                sent = [c.params.get("text") for c in fake.calls_to("sendMessage")]
                assert SORRY[:200] in answers or SORRY in sent  # the usual friendly line, not silence
            finally:
                pg_cluster.start()

            await on_telegram.press(fake, stack.telegram, fake.message(7001, second.message_id), "Show answer", ann)  # type: ignore[arg-type]
            revealed = fake.message(7001, second.message_id)
            assert revealed is not None and "Model answer" in (revealed.text or "")
            await on_telegram.press(fake, stack.telegram, revealed, "Hard", ann)
            assert await count(store, "reviews") == 2  # the one from before the outage, and this one
        finally:
            await stack.stop()


@pytest.fixture
async def commands_on(store_location: str) -> AsyncIterator[tuple[Store, Commands]]:
    async with Store(store_location) as store:
        study = StudyService(
            store, small_bank(), FakeClock(), scheduler=fsrs.Scheduler(enable_fuzzing=False), rng=random.Random(2)
        )
        yield store, Commands(study)


def button(reply: Any, label: str) -> str:
    return str(next(b.action for row in reply.buttons for b in row if b.label.startswith(label)))


@pytest.mark.parametrize("cut", ["cancel", "timeout"])
async def test_a_rating_cut_short_inside_its_transaction_writes_nothing(
    commands_on: tuple[Store, Commands], monkeypatch: pytest.MonkeyPatch, cut: str
) -> None:
    store, commands = commands_on
    asked = await commands.run(ANN, "question")
    revealed = await commands.press(ANN, button(asked, "Show answer"))
    attempt_id = int(button(revealed, "Good").split(":")[1])
    reached = asyncio.Event()
    tx_class = dbmodule._PgTx if store.engine == "postgresql" else dbmodule._SqliteTx
    original = tx_class.execute

    async def stall_on_the_card_state(self: Any, sql: str, *args: Any) -> None:
        if sql.startswith("INSERT INTO card_states"):  # the attempt's UPDATE has already run
            reached.set()
            await asyncio.sleep(3600)
        await original(self, sql, *args)

    monkeypatch.setattr(tx_class, "execute", stall_on_the_card_state)
    rating = asyncio.create_task(commands.press(ANN, button(revealed, "Good")))
    if cut == "cancel":
        await asyncio.wait_for(reached.wait(), 5)
        rating.cancel()
        with pytest.raises(asyncio.CancelledError):
            await rating
    else:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(rating, 0.5)
    monkeypatch.undo()

    attempt = await store.get_attempt(attempt_id)
    assert attempt is not None and attempt.status is AttemptStatus.REVEALED  # the UPDATE was rolled back
    assert await count(store, "reviews") == 0 and await count(store, "card_states") == 0
    again = await commands.press(ANN, button(revealed, "Good"))  # and the store works on
    assert (again.notice or "").startswith("Saved")
    assert await count(store, "reviews") == 1
