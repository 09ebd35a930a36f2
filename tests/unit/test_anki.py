"""The bank as an Anki package: a zip with the collection database, one note per card, every field escaped, and
ids that stay the same from one export to the next so Anki updates instead of duplicating."""

from __future__ import annotations

import ast
import dataclasses
import io
import json
import re
import sqlite3
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import genanki  # type: ignore[import-untyped]
import pytest

from bot.anki import build_apkg, stable_id, text_to_html
from bot.core.bank import QuestionBank
from bot.core.model import KeyPoint
from tests.conftest import CONTENT, ROOT, make_card, small_bank

FIELDS = ["Question", "Answer", "Key points", "Follow-ups", "Topic", "Difficulty"]
OUR_TAGS = {"p", "br", "ul", "li"}  # the only markup an exported field may hold


@dataclass
class Note:
    guid: str
    fields: dict[str, str]
    tags: list[str]
    deck_id: int


@dataclass
class Apkg:
    """What Anki would read from a package: the archive's names, the notes (fields by name), the note types
    and the decks."""

    names: list[str]
    notes: list[Note]
    models: dict[int, dict[str, object]]
    decks: dict[int, str]

    def by_guid(self) -> dict[str, Note]:
        return {note.guid: note for note in self.notes}


def read_apkg(content: bytes) -> Apkg:
    """Open an .apkg the way Anki does: a zip holding collection.anki2, a SQLite database."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        names = archive.namelist()
        collection = archive.read("collection.anki2")
    assert collection.startswith(b"SQLite format 3\x00")
    db = sqlite3.connect(":memory:")
    try:
        db.deserialize(collection)
        models = {int(k): v for k, v in json.loads(db.execute("SELECT models FROM col").fetchone()[0]).items()}
        decks = {int(k): v["name"] for k, v in json.loads(db.execute("SELECT decks FROM col").fetchone()[0]).items()}
        notes = []
        for guid, mid, flds, tags, did in db.execute(
            "SELECT n.guid, n.mid, n.flds, n.tags, c.did FROM notes n JOIN cards c ON c.nid = n.id ORDER BY c.due"
        ):
            names_of = [f["name"] for f in models[mid]["flds"]]  # type: ignore[attr-defined]
            notes.append(Note(guid, dict(zip(names_of, flds.split("\x1f"), strict=True)), tags.split(), did))
        (cards,) = db.execute("SELECT COUNT(*) FROM cards").fetchone()
        assert cards == len(notes)  # one card per note
    finally:
        db.close()
    return Apkg(names, notes, models, decks)


def tags_in(html: str) -> set[str]:
    return {m.lower() for m in re.findall(r"</?([a-zA-Z][a-zA-Z0-9]*)", html)}


# --- the package ---------------------------------------------------------------------------------------------


def test_the_package_is_a_zip_with_a_collection_holding_one_note_per_card_in_one_deck() -> None:
    bank = small_bank()
    apkg = read_apkg(build_apkg(bank.cards, "Test deck", {"basics": "Basics"}))

    assert "collection.anki2" in apkg.names
    assert len(apkg.notes) == len(bank.cards)
    (model,) = apkg.models.values()
    assert [f["name"] for f in model["flds"]] == FIELDS  # type: ignore[index]
    deck_id = stable_id("deck", "Test deck")
    assert apkg.decks[deck_id] == "Test deck" and {note.deck_id for note in apkg.notes} == {deck_id}
    first = apkg.notes[0]  # in the bank's order
    card = bank.cards[0]
    assert first.guid == genanki.guid_for(card.id)
    assert first.fields["Question"] == card.question
    assert (
        first.fields["Answer"] == f"<p>The answer to {card.id}.</p><ul><li>first detail</li><li>second detail</li></ul>"
    )
    assert first.fields["Key points"] == (
        "<ul><li>chain rule</li><li>gradient of the loss</li><li>vanishing gradients</li></ul>"
    )
    assert first.fields["Follow-ups"] == "<ul><li>A follow-up?</li><li>Another?</li></ul>"
    assert first.fields["Topic"] == "Basics" and first.fields["Difficulty"] == str(card.difficulty)
    assert "studybot::topic::basics" in first.tags and "studybot::deck::test" in first.tags
    assert apkg.notes[-1].fields["Topic"] == "stories"  # no name given: the slug


def test_the_template_shows_the_question_on_the_front_and_answer_key_points_and_follow_ups_on_the_back() -> None:
    (model,) = read_apkg(build_apkg(small_bank().cards, "Test deck")).models.values()
    (template,) = model["tmpls"]  # type: ignore[misc]
    front, back = template["qfmt"], template["afmt"]
    assert "{{Question}}" in front and "{{Answer}}" not in front and "{{Key points}}" not in front
    assert back.startswith("{{FrontSide}}")
    assert back.index("{{Answer}}") < back.index("{{Key points}}") < back.index("{{Follow-ups}}")


def test_every_field_is_escaped_so_markup_in_a_card_arrives_as_text() -> None:
    hostile = dataclasses.replace(
        make_card("hostile"),
        question='What does <script>alert("x")</script> print & why?',
        answer="Use <b>bold</b> & <img src=x onerror=alert(1)>\n\n- a <li> item\n- [sound:boom.mp3]",
        key_points=(KeyPoint("<i>italic</i>"), KeyPoint("a & b"), KeyPoint("x < y > z")),
        follow_ups=("<a href='javascript:alert(1)'>click</a>?",),
    )
    note = read_apkg(build_apkg([hostile], "Hostile")).notes[0]

    assert note.fields["Question"] == "What does &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; print &amp; why?"
    assert "&lt;img src=x onerror=alert(1)&gt;" in note.fields["Answer"]
    assert "<li>a &lt;li&gt; item</li>" in note.fields["Answer"]
    assert "[sound:" not in note.fields["Answer"]  # Anki would read it as a media reference
    assert "<li>&lt;i&gt;italic&lt;/i&gt;</li>" in note.fields["Key points"]
    assert "&lt;a href=&#x27;javascript:alert(1)&#x27;&gt;" in note.fields["Follow-ups"]
    for name, value in note.fields.items():
        assert tags_in(value) <= OUR_TAGS, name


def test_paragraphs_line_breaks_and_dash_bullets_become_html() -> None:
    text = "First line\nsecond line\n\nIntro:\n- one\n- two\nafter the list\n\n\n  - indented item  "
    assert text_to_html(text) == (
        "<p>First line<br>second line</p><p>Intro:</p><ul><li>one</li><li>two</li></ul>"
        "<p>after the list</p><ul><li>indented item</li></ul>"
    )
    assert text_to_html("-5 is not a bullet; - this is not either") == (
        "<p>-5 is not a bullet; - this is not either</p>"
    )


def test_every_shipped_card_exports_without_a_markup_warning() -> None:
    bank = QuestionBank.load(CONTENT)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # genanki warns about fields holding unescaped tags
        apkg = read_apkg(build_apkg(bank.cards, "All", {t.slug: t.name for t in bank.topics}))
    assert len(apkg.notes) == len(bank.cards)
    assert set(apkg.by_guid()) == {genanki.guid_for(card.id) for card in bank.cards}
    for note in apkg.notes:
        for value in note.fields.values():
            assert tags_in(value) <= OUR_TAGS


# --- ids that stay -------------------------------------------------------------------------------------------


def test_a_second_export_keeps_every_id_even_when_a_cards_text_changed() -> None:
    cards = small_bank().cards
    edited = (dataclasses.replace(cards[0], answer="A rewritten answer.", question="A reworded question?"), *cards[1:])
    first, second = read_apkg(build_apkg(cards, "Deck")), read_apkg(build_apkg(edited, "Deck"))

    assert [n.guid for n in first.notes] == [n.guid for n in second.notes]  # Anki updates these notes
    assert len(set(first.by_guid())) == len(cards)
    assert first.models.keys() == second.models.keys() and first.decks == second.decks
    assert second.notes[0].fields["Answer"] == "<p>A rewritten answer.</p>"


def test_each_deck_name_has_its_own_id_and_every_deck_shares_the_note_type() -> None:
    cards = small_bank().cards
    one, other = read_apkg(build_apkg(cards, "One")), read_apkg(build_apkg(cards, "Other"))
    assert stable_id("deck", "One") in one.decks and stable_id("deck", "Other") in other.decks
    assert stable_id("deck", "One") != stable_id("deck", "Other")
    assert one.models.keys() == other.models.keys()
    assert all(1 << 30 <= id_ < 1 << 31 for id_ in (*one.models, stable_id("deck", "One")))


# --- nothing left behind, nothing in the core --------------------------------------------------------------


def test_building_a_package_leaves_no_file_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where any temporary file would go
    content = build_apkg(small_bank().cards, "Deck")
    assert read_apkg(content).notes
    assert list(tmp_path.iterdir()) == []


def test_the_core_never_imports_genanki_or_the_writer() -> None:
    for path in sorted((ROOT / "bot" / "core").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            assert not any(m.split(".")[0] == "genanki" or m == "bot.anki" for m in modules), path.name
