"""Taking the bank to Anki: `studybot deck export NAME --anki FILE` and `/export anki` in a private chat, both
giving an .apkg that opens with one note per card."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import genanki  # type: ignore[import-untyped]
import pytest

import bot.anki
from bot.__main__ import main
from bot.anki import build_apkg
from bot.bootstrap import App
from bot.core.bank import QuestionBank
from bot.core.model import Caller, Card, Chat, Identity
from bot.core.privacy import PrivacyService
from bot.storage.sqlite import SqliteStore
from tests.adapters.stack import app_for
from tests.conftest import CONTENT, small_bank
from tests.fakes import FakeClock
from tests.unit.test_anki import read_apkg

ANN = Caller(Identity("telegram", "4242"), "Ann", Chat("telegram", "4242"))
ANN_IN_A_GROUP = Caller(Identity("telegram", "4242"), "Ann", Chat("telegram", "-100", is_group=True))


# --- the command line ----------------------------------------------------------------------------------------


def studybot(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DISCORD_", "STUDYBOT_"))}
    clean["STUDYBOT_DB"] = str(tmp_path / "bot.db")
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=clean,
        stdin=subprocess.DEVNULL,
        check=False,
    )


TWO_DECKS = ("foundations.yaml", "behavioral-research.yaml", "glossary.yaml")


@pytest.fixture
def in_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`main()` run from an empty folder, on two shipped decks (loading all of them takes seconds)."""
    content = tmp_path / "content"
    content.mkdir()
    for name in TWO_DECKS:
        shutil.copy(CONTENT / name, content / name)
    for name in list(os.environ):
        if name.startswith(("TELEGRAM_", "DISCORD_", "STUDYBOT_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("STUDYBOT_CONTENT", str(content))
    monkeypatch.setenv("STUDYBOT_DB", str(tmp_path / "bot.db"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def test_deck_export_all_writes_the_whole_shipped_bank_as_an_apkg_with_one_note_per_card(tmp_path: Path) -> None:
    result = studybot(tmp_path, "deck", "export", "all", "--anki", "bank")

    assert result.returncode == 0, result.stderr
    bank = QuestionBank.load(CONTENT)
    assert f"wrote {len(bank)} cards to bank.apkg" in result.stdout
    apkg = read_apkg((tmp_path / "bank.apkg").read_bytes())
    assert len(apkg.notes) == len(bank)
    assert set(apkg.by_guid()) == {genanki.guid_for(card.id) for card in bank.cards}
    assert "StudyBot · deep-learning interview questions" in apkg.decks.values()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bank.apkg"]  # no database opened, no leftovers


def test_deck_export_name_holds_only_that_decks_cards(in_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deck", "export", "behavioral-research", "--anki", "stories.apkg"]) == 0

    bank = QuestionBank.load(in_folder.parent / "content")
    wanted = [card for card in bank.cards if card.deck == "behavioral-research"]
    assert 0 < len(wanted) < len(bank)
    assert f"wrote {len(wanted)} cards to stories.apkg" in capsys.readouterr().out  # ".apkg" not doubled
    apkg = read_apkg((in_folder / "stories.apkg").read_bytes())
    assert [note.guid for note in apkg.notes] == [genanki.guid_for(card.id) for card in wanted]
    assert "StudyBot · Behavioural: research and collaboration" in apkg.decks.values()


def test_an_unknown_deck_lists_the_valid_names_exits_2_and_writes_nothing(
    in_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["deck", "export", "transformerz", "--anki", "out"]) == 2

    error = capsys.readouterr().err
    assert "no deck 'transformerz'" in error and "all, foundations, behavioral-research" in error
    assert not (in_folder / "out.apkg").exists() and not (in_folder / "out").exists()


def test_an_existing_file_is_kept_unless_force(in_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (in_folder / "mine.apkg").write_bytes(b"my own deck")

    assert main(["deck", "export", "foundations", "--anki", "mine"]) == 1
    assert "mine.apkg already exists (add --force to replace it)" in capsys.readouterr().err
    assert (in_folder / "mine.apkg").read_bytes() == b"my own deck"

    assert main(["deck", "export", "foundations", "--anki", "mine", "--force"]) == 0
    assert "wrote 32 cards to mine.apkg" in capsys.readouterr().out
    assert len(read_apkg((in_folder / "mine.apkg").read_bytes()).notes) == 32


def test_a_file_that_appears_while_the_package_is_built_is_kept_too(
    in_folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def build_while_someone_saves(cards: Sequence[Card], title: str, topics: Mapping[str, str]) -> bytes:
        (in_folder / "late.apkg").write_bytes(b"saved meanwhile")
        return build_apkg(cards, title, topics)

    monkeypatch.setattr(bot.anki, "build_apkg", build_while_someone_saves)
    assert main(["deck", "export", "foundations", "--anki", "late"]) == 1
    assert "late.apkg already exists" in capsys.readouterr().err
    assert (in_folder / "late.apkg").read_bytes() == b"saved meanwhile"


def test_a_folder_as_file_gets_a_named_apkg_inside(in_folder: Path) -> None:
    (in_folder / "exports").mkdir()
    assert main(["deck", "export", "foundations", "--anki", "exports"]) == 0
    assert [p.name for p in (in_folder / "exports").iterdir()] == ["studybot-foundations.apkg"]


def test_deck_alone_prints_its_help(in_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deck"]) == 0
    out = capsys.readouterr().out
    assert "usage: studybot deck" in out and "export" in out


# --- /export anki ----------------------------------------------------------------------------------------------


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    """The program's services as bootstrap composes them, on a SQLite file."""
    async with SqliteStore(tmp_path / "bot.db") as store:
        app = app_for(store)
        try:
            yield app
        finally:
            assert app.pictures is not None
            app.pictures.close()


async def test_export_anki_sends_the_whole_shipped_bank_as_an_apkg_and_how_to_import_it(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "bot.db") as store:
        app = app_for(store, bank=QuestionBank.load(CONTENT))
        reply = await app.commands.run(ANN, "export", "anki")
        assert await store.find_learner(ANN.identity) is None  # the bank is no one's data: nothing stored

    assert reply.attachment is not None and reply.private
    name, content = reply.attachment
    assert name.endswith(".apkg")
    apkg = read_apkg(content)
    assert len(apkg.notes) == len(app.bank.cards)
    assert set(apkg.by_guid()) == {genanki.guid_for(card.id) for card in app.bank.cards}
    text = reply.plain_text()
    assert "File > Import" in text and f"({len(app.bank)} cards)" in text


async def test_export_alone_and_export_json_still_send_the_learners_data(app: App) -> None:
    await app.commands.run(ANN, "question")
    for args in ("", "json", " JSON "):
        reply = await app.commands.run(ANN, "export", args)
        assert reply.attachment is not None and reply.attachment[0].endswith(".json")
        assert json.loads(reply.attachment[1])["learner"]["display_name"] == "Ann"


async def test_export_with_another_word_explains_the_usage_and_changes_nothing(app: App) -> None:
    reply = await app.commands.run(ANN, "export", "pdf")

    assert reply.attachment is None
    text = reply.plain_text()
    assert "/export anki" in text and "Usage" in text
    assert await app.store.find_learner(ANN.identity) is None


async def test_export_anki_works_only_in_a_private_chat(app: App) -> None:
    reply = await app.commands.run(ANN_IN_A_GROUP, "export", "anki")
    assert reply.attachment is None
    text = reply.plain_text()
    assert "works in a private chat" in text


def test_the_export_command_offers_the_anki_format_as_an_option(app: App) -> None:
    (spec,) = [s for s in app.commands.specs if s.name == "export"]
    assert spec.usage == "/export [anki [DECK]]" and spec.private_only
    option, deck = spec.options
    assert (option.name, option.choices, option.required) == ("format", ("json", "anki"), False)
    assert (deck.name, deck.required) == ("deck", False)
    assert len(spec.description) <= 100


async def test_the_package_is_built_off_the_event_loop(tmp_path: Path) -> None:
    threads: list[threading.Thread] = []

    def recording(cards: Sequence[Card], title: str, topics: Mapping[str, str]) -> bytes:
        threads.append(threading.current_thread())
        return build_apkg(cards, title, topics)

    async with SqliteStore(tmp_path / "bot.db") as store:
        privacy = PrivacyService(store, FakeClock(), bank=small_bank(), anki=recording)
        reply = await privacy.export(ANN, "anki")

    assert reply.attachment is not None and len(read_apkg(reply.attachment[1]).notes) == len(small_bank())
    assert threads and threads[0] is not threading.current_thread()  # the loop stayed free for other chats


async def test_without_an_exporter_export_anki_says_it_is_unavailable(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "bot.db") as store:
        reply = await PrivacyService(store, FakeClock()).export(ANN, "anki")
    assert reply.attachment is None
    text = reply.plain_text()
    assert "not available" in text
