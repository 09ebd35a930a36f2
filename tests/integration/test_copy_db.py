"""`studybot copy-db` and `studybot migrate` for real: SQLite -> PostgreSQL -> SQLite, row for row.

Also `health` and `backup` with a PostgreSQL STUDYBOT_DB.
"""

from __future__ import annotations

import io
import random
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsrs
import pytest

from bot.__main__ import main
from bot.core.commands import Commands
from bot.core.competition import CompetitionService
from bot.core.daily import DailyService
from bot.core.decks import DeckService, Library
from bot.core.interview import InterviewService
from bot.core.linking import LinkService
from bot.core.model import Caller, Chat, Identity, MatchStatus
from bot.core.plan import PlanService
from bot.core.study import StudyService
from bot.deckfile import parse_deck_file
from bot.storage.copy import (
    CopyError,
    DestinationNotEmpty,
    ProgressBar,
    SchemaTooNew,
    copy_database,
    latest_version,
    mask_password,
    redact,
)
from bot.storage.store import Store
from tests.conftest import small_bank
from tests.fakes import FakeClock, FakeNotifier
from tests.pg import free_port

GROUP = Chat("telegram", "-100", is_group=True)
PASSWORD = "s3cret-Pw"
Dump = dict[str, list[tuple[Any, ...]]]


def person(n: int, name: str) -> Caller:
    return Caller(Identity("telegram", str(n)), name, Chat("telegram", str(n)))


def player(n: int) -> Caller:
    return Caller(Identity("telegram", str(n)), f"P{n}", GROUP)


def with_password(dsn: str, password: str = PASSWORD) -> str:
    """postgresql://user@host... -> postgresql://user:password@host... (the test cluster trusts any password)."""
    scheme, rest = dsn.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{password}@{host}"


async def populate(location: str | Path) -> None:
    """A database made by the services: reviews, open/expired attempts, a daily push delivered, an
    unreachable chat, a finished group match with rounds and answers, and a heartbeat."""
    clock = FakeClock(datetime(2026, 4, 1, 7, 0, tzinfo=UTC))
    async with Store(location) as store:
        study = StudyService(
            store, small_bank(), clock, scheduler=fsrs.Scheduler(enable_fuzzing=False), rng=random.Random(3)
        )
        commands = Commands(study)
        competition = CompetitionService(store, study.bank, clock, study, rng=random.Random(4))
        notifier = FakeNotifier()
        daily = DailyService(
            store,
            study,
            {"telegram": notifier},
            group_content=competition.daily_poll,
            poll_sent=competition.attach_message,
        )
        commands.attach_daily(daily)
        commands.attach_competition(competition)
        ann, bob, cid = person(1, "Ann"), person(2, "Bob"), person(3, "Cid")
        for who in (ann, bob, cid):
            question = await commands.run(who, "question")
            revealed = await commands.press(who, question.buttons[0][0].action)
            await commands.press(who, revealed.buttons[1][0].action)  # a rating: a review and a card state
            clock.advance(seconds=30)
        await commands.run(ann, "question")  # this one expires ...
        clock.advance(seconds=5)
        await commands.run(ann, "question")  # ... when this one is asked: one expired, one open
        # `always`: both practised today, and a practised day's push is otherwise skipped
        assert "Daily question on" in (await commands.run(ann, "daily", "08:00 UTC always")).plain_text()
        assert "Daily question on" in (await commands.run(bob, "daily", "08:00 UTC always")).plain_text()
        commands.attach_plan(PlanService(store, study))
        assert "Plan set" in (await commands.run(bob, "plan", "2026-05-04 optim")).plain_text()
        commands.attach_interview(InterviewService(store, study, clock, rng=random.Random(5)))
        await commands.run(cid, "interview", "basics 3")  # a mock interview with answers and a follow-up
        clock.advance(seconds=40)
        await commands.text(cid, "The chain rule gives the gradient of the loss.")
        clock.advance(seconds=40)
        followed = await commands.text(cid, "Vanishing gradients shrink the signal.")
        assert followed is not None and "Question 2 of 3" in followed.plain_text()
        await store.mark_unreachable(cid.chat.key, clock.now(), "blocked")
        clock.set(datetime(2026, 4, 1, 8, 0, tzinfo=UTC))
        report = await daily.tick()  # a heartbeat, and a delivery per subscription
        assert report.sent == 2
        # a webhook's update handled (several processes, issue 16) and the fleet's next free send slot
        await store.db.execute(
            "INSERT INTO telegram_updates (update_id, received_at, replica) VALUES (?, ?, ?)", 91, 1, "a"
        )
        await store.db.execute(
            "INSERT INTO send_slots (platform, next_at) VALUES (?, ?) ON CONFLICT DO NOTHING", "x", 5
        )

        await competition.start(player(1), "2 20")
        match = await store.running_match(GROUP.key)
        assert match is not None
        for _ in range(2):
            opened = await competition.open_round(match.id)
            assert opened is not None
            for n in (1, 2, 4):
                wrong = (opened.round.correct_index + n) % len(opened.round.options)
                await competition.answer(player(n), opened.round.id, opened.round.correct_index if n < 4 else wrong)
                clock.advance(seconds=2)
            clock.advance(seconds=20)
            await competition.close_round(opened.round.id)
        finished = await store.get_match(match.id)
        assert finished is not None and finished.status is MatchStatus.FINISHED

        # linked accounts: a code asked for, a wrong code given, a message waiting for the code's issuer
        links = LinkService(store, study, {})
        code = await links.link(bob, "")
        await links.link(cid, "ABCD-EFGH")
        found = re.search(r"[A-Z0-9]{4}-[A-Z0-9]{4}", code.plain_text())
        assert found is not None
        assert (
            "Linked"
            in (
                await links.link(Caller(Identity("discord", "9"), "Bob", Chat("discord", "user:9")), found.group())
            ).plain_text()
        )

        # an imported deck (one card retired by a second import) in use in Ann's chat
        library = Library(study.bank, store)
        decks = DeckService(library, store, clock, parse=parse_deck_file)
        csv = "id,question,answer\nx1,What is a token?,A unit of text.\nx2,What is a vocab?,The token set.\n"
        await decks.import_file(owner=ann.chat.key, name="mine", filename="m.csv", data=csv.encode(), imported_by="Ann")
        await decks.import_file(
            owner=ann.chat.key, name="mine", filename="m.csv", data=csv.encode()[: csv.index("x2")], imported_by="Ann"
        )
        await decks.command(ann, "use bank,mine")

        # rows from before migration 005 (or made by hand): two active attempts of one learner in one
        # chat. Copying them in id order with the trigger on would expire the first.
        bob_learner = await study.learner(bob)
        first = await store.create_attempt(bob_learner.id, "basics-1", "telegram:legacy", clock.now(), None)
        await store.create_attempt(bob_learner.id, "basics-2", "telegram:legacy", clock.now(), None)
        await store.db.execute("UPDATE attempts SET status = 'choice', closed_at = NULL WHERE id = ?", first.id)


async def dump(location: str | Path) -> Dump:
    """Every table's rows (but schema_migrations), sorted, read without the code under test."""
    async with Store(location) as store:
        tables = [t for t in await store.db.tables() if t != "schema_migrations" and not t.startswith("sqlite_")]
        return {
            table: sorted((tuple(row) for row in await store.db.fetch(f"SELECT * FROM {table}")), key=repr)
            for table in tables
        }


def statuses(rows: Dump) -> list[tuple[int, str, str]]:
    """(id, chat, status) of every attempt; the columns are id, learner_id, card_id, chat_key, topic, status."""
    return sorted((row[0], row[3], row[5]) for row in rows["attempts"])


async def test_sqlite_to_postgresql_to_sqlite_keeps_every_row(tmp_path: Path, pg_dsn: str) -> None:
    source, back = tmp_path / "source.db", tmp_path / "back.db"
    await populate(source)
    original = await dump(source)
    assert set(original) >= {
        "learners", "identities", "card_states", "reviews", "attempts", "chats", "subscriptions",
        "deliveries", "heartbeats", "matches", "rounds", "round_answers", "plans",
        "interviews", "interview_answers", "decks", "deck_cards", "chat_decks", "telegram_updates", "send_slots",
    }  # fmt: skip
    assert len(original["plans"]) == 1
    assert all(original.values()), [table for table, rows in original.items() if not rows]  # every table has rows
    kinds = [status for _id, _chat, status in statuses(original)]
    assert {"expired", "open", "choice"} <= set(kinds)

    there = await copy_database(source, pg_dsn, batch=2)  # small batches: many keyset pages per table
    assert not there.mismatches and there.schema_version == latest_version("postgresql")
    assert [t.name for t in there.tables][:3] == ["learners", "identities", "card_states"]
    assert {t.name: t.destination_rows for t in there.tables} == {name: len(rows) for name, rows in original.items()}
    assert there.sequences["learners.id"] == max(row[0] for row in original["learners"]) + 1
    on_postgres = await dump(pg_dsn)
    assert on_postgres == original
    assert statuses(on_postgres) == statuses(original)

    returned = await copy_database(pg_dsn, back, batch=3)
    assert not returned.mismatches and not returned.sequences
    assert await dump(back) == original

    # the copied ids are taken: new rows on PostgreSQL get fresh ones (identity sequences were reset)
    async with Store(pg_dsn) as store:
        study = StudyService(store, small_bank(), FakeClock())
        newcomer = await study.learner(person(99, "Newcomer"))
        assert newcomer.id > max(row[0] for row in original["learners"])
        attempt = await store.create_attempt(newcomer.id, "basics-1", "telegram:99", study.clock.now(), None)
        assert attempt.id > max(row[0] for row in original["attempts"])
        # and the trigger is back in force after the copy
        again = await store.create_attempt(newcomer.id, "basics-2", "telegram:99", study.clock.now(), None)
        row = await store.db.fetchrow("SELECT status FROM attempts WHERE id = ?", attempt.id)
        assert again.id > attempt.id and row is not None and row[0] == "expired"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_a_non_empty_destination_is_refused_and_unchanged_and_force_replaces_it(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    destination = str(request.getfixturevalue("pg_dsn")) if kind == "postgresql" else str(tmp_path / "dst.db")
    source = tmp_path / "source.db"
    await populate(source)
    async with Store(destination) as store:
        await StudyService(store, small_bank(), FakeClock()).learner(person(7, "Someone else"))
    before = await dump(destination)

    with pytest.raises(DestinationNotEmpty, match=r"not empty: learners \(1 rows\), identities \(1 rows\)"):
        await copy_database(source, destination)
    assert await dump(destination) == before

    report = await copy_database(source, destination, force=True)
    assert report.emptied and not report.mismatches
    assert await dump(destination) == await dump(source)
    assert "emptied first" in report.summary()


async def test_a_source_newer_than_this_code_and_a_copy_onto_itself_are_refused(tmp_path: Path) -> None:
    source = tmp_path / "source.db"
    await populate(source)
    with pytest.raises(CopyError, match="same database"):
        await copy_database(source, tmp_path / "." / "source.db")
    with pytest.raises(CopyError, match="no database at"):
        await copy_database(tmp_path / "missing.db", tmp_path / "dst.db")
    assert not (tmp_path / "missing.db").exists()
    con = sqlite3.connect(source)
    con.execute("PRAGMA user_version = 99")
    con.close()
    with pytest.raises(SchemaTooNew, match="schema version 99, newer"):
        await copy_database(source, tmp_path / "dst.db")
    assert not (tmp_path / "dst.db").exists()


def test_passwords_are_masked_in_locations_and_messages() -> None:
    url = f"postgresql://bot:{PASSWORD}@db.example:5432/studybot"
    assert mask_password(url) == "postgresql://bot:***@db.example:5432/studybot"
    assert mask_password("data/studybot.db") == "data/studybot.db"
    message = redact(f"failed for {url}: password {PASSWORD} rejected", url)
    assert PASSWORD not in message and "bot:***@db.example" in message


def test_the_progress_bar_redraws_on_a_terminal_and_writes_lines_otherwise() -> None:
    terminal, log = io.StringIO(), io.StringIO()
    for stream, tty in ((terminal, True), (log, False)):
        bar = ProgressBar(stream, tty=tty, width=10)
        bar.update("learners", 0, 4)
        bar.update("learners", 2, 4)
        bar.finish("learners", 4, 4)
        bar.finish("heartbeats", 0, 0)
    assert "\rlearners       [#####.....] 2/4 rows" in terminal.getvalue()
    assert terminal.getvalue().endswith("\rheartbeats     [##########] 0/0 rows\n")
    assert log.getvalue().splitlines() == [
        "learners       [##########] 4/4 rows",
        "heartbeats     [##########] 0/0 rows",
    ]


def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db: str) -> None:
    monkeypatch.chdir(tmp_path)  # no .env from the working tree
    for name in ("TELEGRAM_TOKEN", "DISCORD_TOKEN", "STUDYBOT_LLM_URL", "STUDYBOT_LLM_MODEL", "STUDYBOT_DB_PGBOUNCER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STUDYBOT_DB", db)


async def test_the_copy_db_command_end_to_end(
    tmp_path: Path, pg_dsn: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _clean_environment(monkeypatch, tmp_path, str(tmp_path / "unused.db"))
    source, back = tmp_path / "source.db", tmp_path / "back.db"
    await populate(source)
    original = await dump(source)
    url = with_password(pg_dsn)

    assert await _run(["copy-db", str(source), url, "--batch", "2"]) == 0
    out, err = capsys.readouterr()
    assert PASSWORD not in out + err
    assert f"copied {source} -> {mask_password(url)} (schema version {latest_version('sqlite')})" in out
    assert ":***@" in out and ":***@" in err
    for table, rows in original.items():
        assert any(line.split()[:2] == [table, str(len(rows))] and line.endswith(" ok") for line in out.splitlines())
        assert f"{table:<14} [########################] {len(rows)}/{len(rows)} rows" in err.splitlines()
    assert f"{len(original)} tables, {sum(map(len, original.values()))} rows" in out
    assert await dump(pg_dsn) == original

    assert await _run(["copy-db", str(source), url]) == 1
    out, err = capsys.readouterr()
    assert "is not empty" in err and "--force" in err and PASSWORD not in out + err and ":***@" in err
    assert await _run(["copy-db", str(source), url, "--force"]) == 0
    out, err = capsys.readouterr()
    assert "emptied first" in out and PASSWORD not in out + err

    assert await _run(["copy-db", url, str(back)]) == 0
    out, err = capsys.readouterr()
    assert f"-> {back}" in out and PASSWORD not in out + err
    assert await dump(back) == original

    unreachable = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{free_port()}/nowhere"
    assert await _run(["copy-db", str(source), unreachable, "--force"]) == 1
    out, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 2 and "cannot connect" in err and PASSWORD not in out + err
    with pytest.raises(SystemExit):
        main(["copy-db", str(source), str(back), "--batch", "0"])


async def _run(argv: list[str]) -> int:
    """main() runs its own event loop (asyncio.run), so from an async test it runs in a worker thread."""
    import asyncio

    return await asyncio.to_thread(main, argv)


async def test_the_migrate_command_on_both_engines(
    store_location: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    postgres = store_location.startswith("postgresql://")
    location = with_password(store_location) if postgres else store_location
    _clean_environment(monkeypatch, tmp_path, location)
    latest = latest_version("postgresql" if postgres else "sqlite")

    assert await _run(["migrate"]) == 0
    out, err = capsys.readouterr()
    shown = mask_password(location)
    assert out.splitlines() == [
        f"engine: {'postgresql' if postgres else 'sqlite'}",
        f"database: {shown}",
        f"schema version {latest} (applied {latest})",
    ]
    assert PASSWORD not in out + err and (":***@" in out) == postgres
    async with Store(store_location) as store:
        assert await store.schema_version() == latest
    assert await _run(["migrate"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"schema version {latest} (applied 0)"

    if postgres:
        monkeypatch.setenv("STUDYBOT_DB", f"postgresql://postgres:{PASSWORD}@127.0.0.1:{free_port()}/nowhere")
    else:
        monkeypatch.setenv("STUDYBOT_DB", "/proc/no/such/dir/bot.db")
    assert await _run(["migrate"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "cannot open the database" in err
    assert PASSWORD not in err and "Traceback" not in err


async def test_migrate_refuses_a_database_newer_than_this_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "bot.db"
    _clean_environment(monkeypatch, tmp_path, str(db))
    con = sqlite3.connect(db)
    con.execute("PRAGMA user_version = 99")
    con.close()
    assert await _run(["migrate"]) == 1
    assert "schema version 99, newer than this StudyBot" in capsys.readouterr().err


async def test_health_and_backup_with_a_postgresql_database(
    tmp_path: Path, pg_dsn: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = with_password(pg_dsn)
    _clean_environment(monkeypatch, tmp_path, url)
    assert await _run(["health"]) == 1
    assert "unhealthy: no StudyBot tables" in capsys.readouterr().err
    async with Store(pg_dsn) as store:
        assert await _run(["health"]) == 1
        assert "unhealthy: the scheduler has not ticked yet" in capsys.readouterr().err
        await store.beat("daily-tick", datetime(2020, 1, 1, tzinfo=UTC))
        assert await _run(["health"]) == 1
        assert "unhealthy: the scheduler last ticked" in capsys.readouterr().err
        await store.beat("daily-tick", datetime.now(UTC))
    assert await _run(["health"]) == 0
    assert capsys.readouterr().out.startswith("healthy: database opens, scheduler ticked")

    assert await _run(["backup", str(tmp_path / "copy.db")]) == 2
    out, err = capsys.readouterr()
    assert "pg_dump" in err and ":***@" in err and PASSWORD not in out + err
    assert not (tmp_path / "copy.db").exists()

    monkeypatch.setenv("STUDYBOT_DB", f"postgresql://postgres:{PASSWORD}@127.0.0.1:{free_port()}/nowhere")
    assert await _run(["health"]) == 1
    err = capsys.readouterr().err
    assert "unhealthy: the database cannot be read" in err and PASSWORD not in err
