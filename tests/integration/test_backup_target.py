"""`studybot backup PATH` refuses the live database however PATH names it, and changes nothing."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.core.model import Caller, Chat, Identity
from bot.core.study import StudyService
from bot.storage.sqlite import SqliteStore
from tests.conftest import small_bank
from tests.fakes import FakeClock


@pytest.fixture
async def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A database with one learner at tmp/db/bot.db, configured as STUDYBOT_DB; the current folder is tmp."""
    db = tmp_path / "db" / "bot.db"
    async with SqliteStore(db) as store:
        await StudyService(store, small_bank(), FakeClock()).learner(Caller(Identity("t", "1"), "L", Chat("t", "1")))
    for name in list(os.environ):
        if name.startswith(("STUDYBOT_", "TELEGRAM_", "DISCORD_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("STUDYBOT_DB", str(db))
    monkeypatch.chdir(tmp_path)
    return db


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def same_path(db: Path) -> str:
    return str(db)


def relative(db: Path) -> str:
    return "db/bot.db"


def through_parent(db: Path) -> str:
    (db.parent / "sub").mkdir()
    return "db/sub/../bot.db"


def symlink(db: Path) -> str:
    (db.parent.parent / "link.db").symlink_to(db)
    return "link.db"


def symlinked_folder(db: Path) -> str:
    (db.parent.parent / "elsewhere").symlink_to(db.parent, target_is_directory=True)
    return "elsewhere/bot.db"


def hard_link(db: Path) -> str:
    os.link(db, db.parent.parent / "hard.db")
    return "hard.db"


def wal_file(db: Path) -> str:
    return "db/bot.db-wal"


@pytest.mark.parametrize(
    "name_it", [same_path, relative, through_parent, symlink, symlinked_folder, hard_link, wal_file]
)
def test_backup_onto_the_live_database_is_refused_and_changes_nothing(
    live: Path, name_it: Callable[[Path], str], capsys: pytest.CaptureFixture[str]
) -> None:
    target = name_it(live)
    before = snapshot(live.parent.parent)
    assert main(["backup", target]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"studybot backup: {target} is the live database itself ({live.resolve()}); nothing was written. "
        "Give another file name, or a folder for a dated copy"
    ]
    assert snapshot(live.parent.parent) == before
    con = sqlite3.connect(live)
    assert con.execute("SELECT COUNT(*) FROM learners").fetchone()[0] == 1
    con.close()


def test_a_relative_database_setting_is_compared_from_the_current_folder(
    live: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STUDYBOT_DB", "db/bot.db")
    assert main(["backup", str(live)]) == 1
    assert "is the live database itself" in capsys.readouterr().err
    assert main(["backup", "db/copy.db"]) == 0
    assert capsys.readouterr().out.strip() == "backed up 1 learner(s) to db/copy.db"
    assert (live.parent / "copy.db").is_file()
