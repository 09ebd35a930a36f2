"""/stats in the terminal: the text, then the progress picture saved as a PNG in the data folder and its
path printed; nothing saved for a learner who has not answered yet."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import fsrs
import pytest
from PIL import Image

from bot.adapters.console import ConsoleChat
from bot.core.commands import Commands
from bot.core.progress import NO_PICTURE_YET, ProgressService
from bot.core.study import StudyService
from bot.pictures import ProgressPicturer
from tests.conftest import small_bank
from tests.fakes import FakeClock, MemoryStore


@pytest.fixture(scope="module")
def pictures() -> Iterator[ProgressPicturer]:
    """One drawing process for the whole module (starting one takes a second or two)."""
    picturer = ProgressPicturer()
    yield picturer
    picturer.close()


def terminal(data_dir: Path, pictures: ProgressPicturer) -> tuple[ConsoleChat, io.StringIO]:
    store = MemoryStore()
    study = StudyService(store, small_bank(), FakeClock(), scheduler=fsrs.Scheduler(enable_fuzzing=False))
    commands = Commands(study)
    commands.attach_progress(ProgressService(store, study, pictures))
    out = io.StringIO()
    chat = ConsoleChat(commands, stdin=io.StringIO(), stdout=out, user="ann", interactive=False, data_dir=data_dir)
    return chat, out


async def practise(chat: ConsoleChat, answers: int = 2) -> None:
    for _ in range(answers):
        for line in ("/question", "1", "good"):  # show the answer, rate it Good
            await chat.handle_line(line)


async def test_stats_saves_the_picture_in_the_data_folder_and_prints_its_path(
    tmp_path: Path, pictures: ProgressPicturer
) -> None:
    chat, out = terminal(tmp_path / "data", pictures)
    await practise(chat)

    await chat.handle_line("/stats")

    picture = (tmp_path / "data" / "stats.png").resolve()
    printed = out.getvalue()
    assert "Cards seen: 2 of 14" in printed
    assert f"Picture saved to {picture}" in printed
    assert "90%" in printed.split("Picture saved")[0].rsplit("Cards seen", 1)[1]  # the caption, before the path
    with Image.open(picture) as image:
        assert image.format == "PNG" and image.width >= 1000


async def test_a_learner_with_no_answers_gets_the_friendly_text_and_no_file(
    tmp_path: Path, pictures: ProgressPicturer
) -> None:
    chat, out = terminal(tmp_path / "data", pictures)

    await chat.handle_line("/stats")

    assert NO_PICTURE_YET in out.getvalue()
    assert "Picture saved" not in out.getvalue()
    assert not (tmp_path / "data").exists()


async def test_a_picture_that_cannot_be_saved_is_explained_and_the_text_stays(
    tmp_path: Path, pictures: ProgressPicturer
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the data folder should be")
    chat, out = terminal(blocked, pictures)
    await practise(chat, answers=1)

    await chat.handle_line("/stats")

    printed = out.getvalue()
    assert "Cards seen: 1 of 14" in printed
    assert "I couldn't save your progress picture" in printed


@pytest.mark.slow
def test_studybot_chat_saves_the_picture_next_to_its_database(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_TOKEN", "DISCORD_TOKEN")}
    env["STUDYBOT_DB"] = str(tmp_path / "store" / "studybot.db")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "chat"],
        input="/question\n1\n3\n/stats\n",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    picture = tmp_path / "store" / "stats.png"
    assert f"Picture saved to {picture}" in result.stdout
    with Image.open(picture) as image:
        assert image.format == "PNG" and image.width >= 1000
