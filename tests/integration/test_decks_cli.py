"""`studybot deck import|list|remove|export` (issue 19): the operator's decks, shared by every chat."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.core.model import Caller, Chat, Identity
from bot.deckfile import parse_deck_file
from bot.storage.store import Store
from tests.adapters.stack import app_for
from tests.integration.test_anki_export import in_folder  # noqa: F401 (a fixture)

CSV = (
    "id,question,answer,topic\n"
    "a1,What is an embedding?,A learned dense vector that stands for a discrete item.,Basics\n"
    "a2,What is a logit?,The raw score before the softmax turns scores into probabilities.,Basics\n"
)
ANN = Caller(Identity("telegram", "7"), "Ann", Chat("telegram", "7"))


def chat_sees(db: Path, command: str, args: str = "") -> str:
    async def run() -> str:
        async with Store(db) as store:
            app = app_for(store)
            await app.library.open()
            return (await app.commands.run(ANN, command, args)).plain_text()

    return asyncio.run(run())


def test_import_list_export_and_remove_an_operators_deck(
    in_folder: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    (in_folder / "basics.csv").write_text(CSV, encoding="utf-8")
    assert main(["deck", "import", "basics.csv", "--name", "Team Basics"]) == 0
    out = capsys.readouterr().out
    assert "Imported the deck team-basics from basics.csv: 2 cards." in out
    assert "Every chat can now choose it with /deck use team-basics." in out
    db = in_folder.parent / "bot.db"
    assert "team-basics — team-basics: 2 cards, none with a quiz; shared by the bot's operator" in chat_sees(db, "deck")
    assert "now practises from team-basics: 2 cards" in chat_sees(db, "deck", "use team-basics")

    assert main(["deck", "list"]) == 0
    assert "team-basics: team-basics, 2 cards (0 retired, 0 with a quiz); every chat" in capsys.readouterr().out

    assert main(["deck", "export", "team-basics", "--anki", "back.apkg"]) == 0
    back = parse_deck_file("back.apkg", (in_folder / "back.apkg").read_bytes())
    assert [card.question for card in back.cards] == ["What is an embedding?", "What is a logit?"]

    assert main(["deck", "remove", "team-basics"]) == 1  # asks for --yes first
    assert "add --yes" in capsys.readouterr().err
    assert main(["deck", "remove", "team-basics", "--yes"]) == 0
    assert "removed team-basics" in capsys.readouterr().out
    assert "This chat practises from: bank" in chat_sees(db, "deck")


def test_an_invalid_file_imports_nothing_and_says_where(
    in_folder: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    (in_folder / "bad.csv").write_text("question,answer\nOnly a question,\n", encoding="utf-8")
    assert main(["deck", "import", "bad.csv"]) == 1
    err = capsys.readouterr().err
    assert "nothing was imported from bad.csv" in err and "row 2" in err and "answer" in err
    assert main(["deck", "import", "nowhere.csv"]) == 2
    assert "no such file" in capsys.readouterr().err
    (in_folder / "big.csv").write_bytes(b"question,answer\n" + b"x" * (1024 * 1024 + 10))
    assert main(["deck", "import", "big.csv", "--max-mb", "1"]) == 1
    assert "the limit is 1 MB" in capsys.readouterr().err
    assert main(["deck", "import", "bad.csv", "--name", "bank"]) == 2
    assert "a name the bot uses already" in capsys.readouterr().err
