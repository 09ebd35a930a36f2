"""Running it for real: configuration errors, health, backup, data rights and the container files."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bot.core.commands import Commands
from bot.core.competition import CompetitionService
from bot.core.daily import DailyService
from bot.core.model import Caller, Chat, Identity
from bot.core.privacy import PrivacyService
from bot.core.study import StudyService
from bot.logs import REDACTED, RedactingFilter, redact
from bot.ops import backup, health
from bot.storage.sqlite import SqliteStore
from tests.conftest import ROOT, small_bank
from tests.fakes import FakeClock, FakeNotifier


def studybot(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DISCORD_", "STUDYBOT_"))}
    clean.update({"STUDYBOT_DB": str(tmp_path / "bot.db"), **env})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=clean,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"TELEGRAM_TOKEN": "not-a-token"}, "TELEGRAM_TOKEN"),
        ({"DISCORD_TOKEN": "short"}, "DISCORD_TOKEN"),
        ({"STUDYBOT_TIMEZONE": "Mars/Olympus_Mons"}, "STUDYBOT_TIMEZONE"),
        ({"STUDYBOT_DB": "/proc/no/such/dir/bot.db"}, "STUDYBOT_DB"),
        ({"STUDYBOT_CONTENT": "/no/such/folder"}, "STUDYBOT_CONTENT"),
        ({"STUDYBOT_NEW_PER_DAY": "lots"}, "STUDYBOT_NEW_PER_DAY"),
    ],
)
def test_a_configuration_mistake_stops_startup_with_one_line_and_exit_2(
    tmp_path: Path, env: dict[str, str], setting: str
) -> None:
    result = studybot(tmp_path, "run", **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and setting in lines[0] and "Traceback" not in result.stderr


def test_an_invalid_deck_stops_startup(tmp_path: Path) -> None:
    deck = tmp_path / "deck.yaml"
    deck.write_text("deck: x\ntitle: X\ntopics: {a: A}\ncards: []\n", encoding="utf-8")
    result = studybot(tmp_path, "run", STUDYBOT_CONTENT=str(deck))
    assert result.returncode == 2 and "STUDYBOT_CONTENT: invalid deck" in result.stderr


async def test_health_is_ok_only_when_the_scheduler_ticked_recently(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    ok, line = health(db)
    assert not ok and "no database" in line
    async with SqliteStore(db) as store:
        ok, line = health(db)
        assert not ok and "has not ticked yet" in line
        from datetime import UTC, datetime

        await store.beat("daily-tick", datetime.now(UTC))
    ok, line = health(db)
    assert ok and line.startswith("healthy")
    ok, line = health(db, now=time.time() + 600)
    assert not ok and "last ticked" in line
    result = studybot(tmp_path, "health")
    assert result.returncode == 0 and "healthy" in result.stdout
    db.write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    result = studybot(tmp_path, "health")
    assert result.returncode == 1 and "cannot be read" in result.stderr


async def test_backup_makes_a_consistent_copy_while_the_bot_writes(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    async with SqliteStore(db) as store:
        study = StudyService(store, small_bank(), FakeClock())
        for n in range(30):
            await study.learner(Caller(Identity("t", str(n)), f"L{n}", Chat("t", str(n))))
        (tmp_path / "backups").mkdir()
        line = backup(db, tmp_path / "backups")  # a folder: a dated file inside; the store is still open (WAL)
        await study.learner(Caller(Identity("t", "late"), "Late", Chat("t", "late")))
    assert "backed up 30 learner(s)" in line
    (copy,) = (tmp_path / "backups").iterdir()
    con = sqlite3.connect(copy)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT COUNT(*) FROM learners").fetchone()[0] == 30
    con.close()
    result = studybot(tmp_path, "backup", str(tmp_path / "copy.db"))
    assert result.returncode == 0 and "backed up 31 learner(s)" in result.stdout


async def test_backup_onto_the_live_database_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    async with SqliteStore(db) as store:
        await StudyService(store, small_bank(), FakeClock()).learner(Caller(Identity("t", "1"), "L", Chat("t", "1")))
    before = db.read_bytes()
    result = studybot(tmp_path, "backup", str(db))
    assert result.returncode == 1 and "is the live database itself" in result.stderr
    assert db.read_bytes() == before
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM learners").fetchone()[0] == 1
    con.close()


async def test_export_holds_everything_and_forget_leaves_nothing(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    clock = FakeClock()
    async with SqliteStore(db) as store:
        study = StudyService(store, small_bank(), clock)
        commands = Commands(study)
        competition = CompetitionService(store, study.bank, clock, study)
        daily = DailyService(store, study, {"telegram": FakeNotifier()}, group_content=competition.daily_poll)
        commands.attach_daily(daily)
        commands.attach_competition(competition)
        commands.attach_privacy(PrivacyService(store, clock))
        ann = Caller(Identity("telegram", "4242"), "Ann", Chat("telegram", "4242"))
        bob = Caller(Identity("telegram", "5353"), "Bob", Chat("telegram", "5353"))
        for who in (ann, bob):
            question = await commands.run(who, "question")
            revealed = await commands.press(who, question.buttons[0][0].action)
            await commands.press(who, revealed.buttons[1][0].action)
            await commands.run(who, "daily", "08:00 Berlin")
        await store.mark_unreachable(ann.chat.key, clock.now(), "blocked")
        await commands.run(ann, "quiz", "1")
        match = await store.running_match(ann.chat.key)
        assert match is not None
        opened = await competition.open_round(match.id)
        assert opened is not None
        await competition.answer(ann, opened.round.id, opened.round.correct_index)

        exported = await commands.run(ann, "export")
        assert exported.attachment is not None
        document = json.loads(exported.attachment[1])
        assert document["learner"]["display_name"] == "Ann"
        assert [i["external_id"] for i in document["identities"]] == ["4242"]
        assert len(document["reviews"]) == 1 and document["reviews"][0]["rating"] == 3
        assert document["subscriptions"][0]["timezone"] == "Europe/Berlin"
        assert len(document["round_answers"]) == 1 and len(document["card_states"]) == 1
        assert "Bob" not in exported.attachment[1].decode()

        ask = await commands.run(ann, "forget")
        assert [b.label for b in ask.buttons[0]] == ["Delete everything", "Cancel"]
        refused = await commands.press(bob, ask.buttons[0][0].action)
        assert refused.is_notice_only and await store.find_learner(ann.identity) is not None
        done = await commands.press(ann, ask.buttons[0][0].action)
        assert "all your data is deleted" in done.plain_text()
    con = sqlite3.connect(db)
    tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        for row in con.execute(f"SELECT * FROM {table}"):
            flat = " ".join(str(v) for v in row)
            assert "4242" not in flat and "Ann" not in flat, (table, row)
    assert con.execute("SELECT COUNT(*) FROM learners").fetchone()[0] == 1  # Bob is still here
    assert con.execute("SELECT COUNT(*) FROM reviews").fetchone()[0] == 1
    con.close()


def test_the_token_is_redacted_from_log_lines() -> None:
    import logging

    token = "123456789:AAH-fake-token-for-studybot-tests"
    record = logging.LogRecord(
        "httpx", logging.INFO, __file__, 1, "POST https://api.telegram.org/bot%s/getMe", (token,), None
    )
    RedactingFilter([token]).filter(record)
    assert token not in record.getMessage() and REDACTED in record.getMessage()
    discord_like = "MTA5ODc2NTQzMjEwOTg3NjU0.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"
    assert discord_like not in redact(f"Authorization: Bot {discord_like}")


def test_docker_compose_names_a_dockerfile_and_healthcheck_that_exist() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    bot = compose["services"]["bot"]
    dockerfile = ROOT / bot["build"]["context"] / bot["build"]["dockerfile"]
    assert dockerfile.is_file()
    assert bot["restart"] == "unless-stopped" and bot["env_file"] == ".env"
    assert any(v.endswith(":/data") for v in bot["volumes"])
    test = bot["healthcheck"]["test"]
    assert test[:2] == ["CMD", "studybot"] and test[2] == "health"
    from bot.__main__ import build_parser

    assert build_parser().parse_args(["health"]).command == "health"
    text = dockerfile.read_text(encoding="utf-8")
    assert "USER studybot" in text and "/data" in text and "pip install ." in text
    env_example = (ROOT / ".env.example").read_text(encoding="utf-8")
    from bot.config import Settings

    for field in Settings.model_fields.values():
        assert field.alias and field.alias in env_example, field.alias
