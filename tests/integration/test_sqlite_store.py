"""SqliteStore against a real file: migrations, the study flow, and concurrency."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path

import fsrs

from bot.core.commands import Commands
from bot.core.model import AttemptStatus
from bot.core.study import StudyService
from bot.storage.db import migrations
from bot.storage.sqlite import SqliteStore
from tests.conftest import caller, small_bank
from tests.fakes import FakeClock
from tests.unit.test_study import attempt_id, button


async def test_migrations_create_the_schema_on_an_empty_database_in_a_new_folder(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "folder" / "bot.db"
    async with SqliteStore(path) as store:
        assert await store.schema_version() == migrations("sqlite")[-1][0]
    con = sqlite3.connect(path)
    tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"learners", "identities", "card_states", "reviews", "attempts"} <= tables
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


async def test_migrating_an_already_migrated_database_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    async with SqliteStore(path) as store:
        version = await store.schema_version()
        study = StudyService(store, small_bank(), FakeClock())
        await study.learner(caller())
    async with SqliteStore(path) as store:
        assert await store.migrate() == version
        assert await store.find_learner(caller().identity) is not None


async def test_foreign_keys_are_enforced(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "bot.db") as store:
        row = await store.db.fetchrow("PRAGMA foreign_keys")
        assert row is not None and row[0] == 1


async def test_the_study_flow_persists_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    clock = FakeClock()
    bank = small_bank()
    async with SqliteStore(path) as store:
        commands = Commands(StudyService(store, bank, clock, scheduler=fsrs.Scheduler(enable_fuzzing=False)))
        question = await commands.run(caller(), "question")
        first_card = await store.get_attempt(attempt_id(question))
        revealed = await commands.press(caller(), button(question, "Show answer"))
        await commands.press(caller(), button(revealed, "Easy"))
    async with SqliteStore(path) as store:
        commands = Commands(StudyService(store, bank, clock))
        learner = await store.find_learner(caller().identity)
        assert learner is not None and first_card is not None
        state = await store.card_state(learner.id, first_card.card_id)
        assert state is not None and state.state == 2 and state.reps == 1
        again = await commands.run(caller(), "question")
        next_attempt = await store.get_attempt(attempt_id(again))
        assert next_attempt is not None and next_attempt.card_id != first_card.card_id
        assert "Reviews in the last 30 days: 1" in (await commands.run(caller(), "stats")).plain_text()


async def test_a_double_press_is_counted_once(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "bot.db") as store:
        commands = Commands(StudyService(store, small_bank(), FakeClock()))
        question = await commands.run(caller(), "question")
        revealed = await commands.press(caller(), button(question, "Show answer"))
        results = await asyncio.gather(*(commands.press(caller(), button(revealed, "Good")) for _ in range(5)))
        assert sum(1 for r in results if not r.is_notice_only) == 1
        row = await store.db.fetchrow("SELECT COUNT(*) FROM reviews")
        assert row is not None and row[0] == 1
        attempt = await store.get_attempt(attempt_id(question))
        assert attempt is not None and attempt.status is AttemptStatus.DONE


async def test_fifty_learners_acting_concurrently_lose_no_update(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    clock = FakeClock()
    rng = random.Random(1)
    async with SqliteStore(path) as store:
        commands = Commands(StudyService(store, small_bank(), clock, rng=rng))

        async def learner_session(n: int) -> int:
            who = caller(str(n), f"L{n}")
            answered = 0
            for _ in range(4):
                question = await commands.run(who, "question")
                if not question.buttons:
                    break
                revealed = await commands.press(who, button(question, "Show answer"))
                done = await commands.press(who, button(revealed, rng.choice(["Again", "Good", "Easy"])))
                assert not done.is_notice_only
                answered += 1
            return answered

        counts = await asyncio.gather(*(learner_session(n) for n in range(50)))
    assert sum(counts) == 200
    con = sqlite3.connect(path)
    assert con.execute("SELECT COUNT(*) FROM reviews").fetchone()[0] == 200
    assert con.execute("SELECT COUNT(*) FROM learners").fetchone()[0] == 50
    per_learner = con.execute("SELECT learner_id, SUM(reps) FROM card_states GROUP BY learner_id").fetchall()
    assert sorted(total for _, total in per_learner) == [4] * 50
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
