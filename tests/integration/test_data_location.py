"""Where the data lives: the user's data directory (platformdirs) unless STUDYBOT_DB says otherwise, so
starting the bot from another folder finds the same progress."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import Settings
from tests.conftest import ROOT

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="redirects the data directory with XDG_DATA_HOME")


def clean_env(xdg: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DISCORD_", "STUDYBOT_", "XDG_"))}
    env.update({"XDG_DATA_HOME": str(xdg), "NO_COLOR": "1", **settings})
    return env


@pytest.fixture
def no_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No StudyBot variable set, the current folder empty (so no .env), the data directory under tmp."""
    for name in list(os.environ):
        if name.startswith(("STUDYBOT_", "TELEGRAM_", "DISCORD_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@linux_only
def test_the_default_database_is_in_the_users_data_directory(no_settings: Path) -> None:
    settings = Settings()
    assert settings.db_is_default and not settings.db_is_postgres
    assert settings.db_path == no_settings / "xdg" / "studybot" / "studybot.db"
    assert settings.data_dir == no_settings / "xdg" / "studybot"
    assert not (no_settings / "xdg").exists()  # settings create nothing; the store makes the folder on first run


def test_studybot_db_wins_and_is_resolved_from_the_current_folder(
    no_settings: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUDYBOT_DB", "data/bot.db")
    settings = Settings()
    assert not settings.db_is_default
    assert settings.db_path == no_settings / "data" / "bot.db" and settings.db_path.is_absolute()
    assert settings.data_dir == no_settings / "data"
    monkeypatch.setenv("STUDYBOT_DB", "~/notes/bot.db")  # as a .env file would hold it: no shell to expand ~
    assert Settings().db_path == Path.home() / "notes" / "bot.db"


@linux_only
def test_with_postgresql_files_still_go_to_the_users_data_directory(
    no_settings: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUDYBOT_DB", "postgresql://bot@localhost/studybot")
    assert Settings().data_dir == no_settings / "xdg" / "studybot"


@linux_only
def test_starting_from_two_folders_uses_the_same_database(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    first_folder, second_folder = tmp_path / "one", tmp_path / "two"
    first_folder.mkdir()
    second_folder.mkdir()

    def chat(folder: Path, lines: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot", "chat"],
            input=lines,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=folder,
            env=clean_env(xdg, PYTHONPATH=str(ROOT)),
            check=False,
        )

    first = chat(first_folder, "/question\n1\n3\n")  # ask, show the answer, rate Good
    assert first.returncode == 0, first.stderr
    assert "Rated Good" in first.stdout
    second = chat(second_folder, "/stats\n")
    assert second.returncode == 0, second.stderr
    assert "Cards seen: 1 of" in second.stdout

    db = xdg / "studybot" / "studybot.db"
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*), MIN(rating) FROM reviews").fetchone() == (1, 3)
    con.close()
    assert list(first_folder.iterdir()) == [] and list(second_folder.iterdir()) == []  # no ./data anywhere


@pytest.mark.skipif(not (ROOT / ".git").exists() or shutil.which("git") is None, reason="needs a git checkout")
def test_a_data_folder_in_the_checkout_is_never_committed() -> None:
    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, check=False).returncode == 0

    for local in ("data/studybot.db", "data/studybot.db-wal", "data/exports/export.json", "data/stats.png"):
        assert ignored(local), local
    assert not ignored("tests/data/grading/set.yaml")  # the labelled answer set is committed
