"""Users' own deck files: CSV, Anki .apkg and YAML parsed into checked cards, and hostile files refused."""

from __future__ import annotations

import csv
import io
import random
import sqlite3
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

import genanki  # type: ignore[import-untyped]
import pytest
import yaml

from bot.core.decks import DeckFileError, ImportedCard, ParsedDeck
from bot.deckfile import parse_deck_file

MB = 1024 * 1024
KNOWN_COLUMNS = "id, question, answer, topic, key_points, correct, distractors, explanation, difficulty"


def refused(filename: str, data: bytes, **options: object) -> list[str]:
    with pytest.raises(DeckFileError) as info:
        parse_deck_file(filename, data, **options)  # type: ignore[arg-type]
    return info.value.problems


def csv_file(*rows: Sequence[str], header: Sequence[str] = ("question", "answer")) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


# --- CSV -----------------------------------------------------------------------------------------------------


def test_csv_with_every_column() -> None:
    header = " ID,Question,ANSWER ,topic,key-points,Correct,Distractors,explanation,difficulty".split(",")
    row = [
        "attn-1",
        "What does\x07 attention compute?",
        "A weighted sum of values.",
        "Large Language Models!",
        "query-key scores; softmax ;weighted sum;",
        "A weighted sum of values",
        "A sort of the keys; The max of the queries;A random projection",
        "Softmax weights mix the values.",
        "3",
    ]
    deck = parse_deck_file("cards.csv", csv_file(row, header=header))
    assert deck == ParsedDeck(
        kind="csv",
        title=None,
        cards=(
            ImportedCard(
                ref="row 2",
                local_id="attn-1",
                question="What does attention compute?",
                answer="A weighted sum of values.",
                topic="large-language-models",
                topic_name="Large Language Models!",
                key_points=("query-key scores", "softmax", "weighted sum"),
                correct="A weighted sum of values",
                distractors=("A sort of the keys", "The max of the queries", "A random projection"),
                explanation="Softmax weights mix the values.",
                difficulty=3,
            ),
        ),
        skipped=(),
        media_skipped=0,
    )


def test_a_minimal_csv_takes_defaults_and_ignores_blank_rows() -> None:
    data = b"question,answer\nWhat is a neuron?,A weighted sum and a non-linearity.\n,\n\nWhat is a bias?,An offset.\n"
    deck = parse_deck_file("Cards.CSV", data)
    assert [(card.ref, card.question, card.answer) for card in deck.cards] == [
        ("row 2", "What is a neuron?", "A weighted sum and a non-linearity."),
        ("row 5", "What is a bias?", "An offset."),
    ]
    first = deck.cards[0]
    assert (first.local_id, first.topic, first.topic_name, first.key_points, first.correct, first.difficulty) == (
        None,
        None,
        None,
        (),
        None,
        2,
    )


def test_a_utf8_bom_is_fine() -> None:
    deck = parse_deck_file("cards.csv", '\ufeffquestion,answer\nWhat is ReLU?,"max(0, x)"\n'.encode())
    assert [(card.question, card.answer) for card in deck.cards] == [("What is ReLU?", "max(0, x)")]


def test_a_csv_that_is_not_utf8_is_refused() -> None:
    problems = refused("cards.csv", "question,answer\nQu'est-ce qu'un réseau ?,Un graphe.\n".encode("latin-1"))
    assert problems == ["cards.csv: not UTF-8 text (byte 33); save it as 'CSV UTF-8'"]


def test_a_missing_required_column_is_refused() -> None:
    problems = refused("cards.csv", csv_file(["What?", "maths"], header=["question", "topic"]))
    assert problems == [
        "cards.csv: no 'answer' column; the first row names the columns (question and answer are required)"
    ]


def test_an_unknown_column_is_refused_naming_it_and_the_known_ones() -> None:
    problems = refused("cards.csv", csv_file(["What?", "This.", "x"], header=["question", "answer", "Hint"]))
    assert problems == [f"cards.csv: unknown column(s) 'Hint'; the columns are: {KNOWN_COLUMNS}"]


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (["What?", "This.", "", "", "hard"], "row 2, field 'difficulty': 1, 2 or 3 (not 'hard')"),
        (
            ["What?", "This.", "Right", "Wrong 1;Wrong 2", ""],
            "row 2, field 'distractors': a quiz needs exactly 3 wrong options (found 2)",
        ),
        (["What?", "This.", "Right", "Wrong 1;right;Wrong 3", ""], "row 2, field 'distractors': 'right' repeats"),
        (["What?", "This.", "", "Wrong 1;Wrong 2;Wrong 3", ""], "row 2, field 'distractors': given without 'correct'"),
        (["What?", "", "", "", ""], "row 2, field 'answer': empty"),
        (["<script>alert(1)</script>?", "This.", "", "", ""], "row 2, field 'question': holds a <script> tag"),
    ],
)
def test_an_invalid_row_refuses_the_file(row: list[str], problem: str) -> None:
    header = ["question", "answer", "correct", "distractors", "difficulty"]
    problems = refused("cards.csv", csv_file(["Fine?", "Fine."], row, header=header))
    assert len(problems) == 1
    assert problems[0].startswith("cards.csv: " + problem.replace("row 2", "row 3"))


def test_duplicate_ids_and_questions_are_row_problems() -> None:
    data = csv_file(
        ["a", "What is a neuron?", "One."],
        ["a", "What is a bias?", "Two."],
        ["b", "  what IS a   neuron? ", "Three."],
        header=["id", "question", "answer"],
    )
    assert refused("cards.csv", data) == [
        "cards.csv: row 3, field 'id': 'a' is also the id of row 2",
        "cards.csv: row 4, field 'question': the same question as row 2",
    ]


def test_a_quoted_multiline_answer_is_one_row() -> None:
    data = csv_file(["Why ReLU?", "Cheap.\r\nNo saturation for x > 0.\n\n\n\n\nSparse."], ["Why GELU?", "Smooth."])
    deck = parse_deck_file("cards.csv", data)
    assert [(card.ref, card.answer) for card in deck.cards] == [
        ("row 2", "Cheap.\nNo saturation for x > 0.\n\n\nSparse."),
        ("row 3", "Smooth."),
    ]


def test_a_too_long_question_names_the_row_and_field() -> None:
    problems = refused("cards.csv", csv_file(["Fine?", "Fine."], ["Fine too?", "Yes."], ["x" * 412, "Long."]))
    assert problems == ["cards.csv: row 4, field 'question': longer than 300 characters (412)"]


def test_skip_invalid_imports_the_valid_rows_and_lists_the_others() -> None:
    header = ["question", "answer", "difficulty"]
    data = csv_file(["One?", "1.", ""], ["Two?", "", ""], ["Three?", "3.", "1"], ["Four?", "4.", "9"], header=header)
    expected = [
        "cards.csv: row 3, field 'answer': empty",
        "cards.csv: row 5, field 'difficulty': 1, 2 or 3 (not '9')",
    ]
    assert refused("cards.csv", data) == expected
    deck = parse_deck_file("cards.csv", data, skip_invalid=True)
    assert [(card.ref, card.question, card.difficulty) for card in deck.cards] == [
        ("row 2", "One?", 2),
        ("row 4", "Three?", 1),
    ]
    assert deck.skipped == tuple(expected)


def test_a_file_without_one_valid_card_is_refused_even_when_skipping() -> None:
    problems = refused("cards.csv", csv_file(["", "No question."]), skip_invalid=True)
    assert problems == ["cards.csv: no valid card (all 1 refused)", "cards.csv: row 2, field 'question': empty"]
    assert refused("cards.csv", b"question,answer\n\n") == ["cards.csv: no cards found"]


def test_more_cards_than_allowed_are_refused() -> None:
    data = csv_file(*([f"Question {n}?", "Answer."] for n in range(4)))
    assert refused("cards.csv", data, max_cards=3) == ["cards.csv has 4 cards; the limit is 3"]
    assert len(parse_deck_file("cards.csv", data, max_cards=4).cards) == 4


def test_a_file_larger_than_allowed_is_refused() -> None:
    data = b"question,answer\n" + b"x" * int(3.05 * MB)
    assert refused("cards.csv", data) == ["cards.csv is 3.1 MB; the limit is 2 MB"]


@pytest.mark.parametrize(
    ("filename", "hint"),
    [
        ("deck.txt", ""),
        ("deck", ""),
        ("col.colpkg", " (a .colpkg is a whole Anki collection: export the deck as .apkg)"),
    ],
)
def test_other_kinds_of_file_are_refused(filename: str, hint: str) -> None:
    assert refused(filename, b"question,answer\nA?,B.\n") == [
        f"{filename}: not a deck file; send a .csv, an Anki .apkg or a .yaml deck{hint}"
    ]


# --- Anki .apkg ----------------------------------------------------------------------------------------------

BASIC = genanki.Model(
    1607392319,
    "Basic",
    fields=[{"name": "Front"}, {"name": "Back"}],
    templates=[{"name": "Card 1", "qfmt": "{{Front}}", "afmt": "{{Back}}"}],
)


def apkg(
    tmp: Path, notes: Sequence[genanki.Note], deck_name: str = "Deep learning::Attention", media: bool = False
) -> bytes:
    deck = genanki.Deck(2059400110, deck_name)
    for note in notes:
        deck.add_note(note)
    media_files = []
    if media:
        (tmp / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n")
        media_files.append(str(tmp / "x.png"))
    path = tmp / "deck.apkg"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "tempdir", str(tmp))  # genanki leaves its scratch collection in the temp folder
        genanki.Package(deck, media_files=media_files).write_to_file(str(path))
    return path.read_bytes()


@pytest.fixture(scope="module")
def good_apkg(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    notes = [
        genanki.Note(
            model=BASIC,
            fields=[
                "<b>Attention</b> &amp; transformers<script>alert(1)</script>",
                'Softmax of scores<br>over keys <img src="x.png">[sound:x.mp3]<div>then  a <i>weighted</i> sum</div>',
            ],
            tags=["Large_Language_Models"],
        ),
        genanki.Note(
            model=BASIC, fields=["What is <i>dropout</i>?", "<ul><li>random zeroing</li><li>training only</li></ul>"]
        ),
    ]
    return apkg(tmp_path_factory.mktemp("apkg"), notes, media=True)


def zip_of(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return out.getvalue()


def members_of(package: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_an_anki_package_gives_plain_text_cards(good_apkg: bytes) -> None:
    deck = parse_deck_file("deck.apkg", good_apkg)
    assert (deck.kind, deck.title, deck.media_skipped, deck.skipped) == ("apkg", "Deep learning::Attention", 1, ())
    assert [(card.question, card.answer, card.topic, card.topic_name) for card in deck.cards] == [
        ("Attention & transformers", "Softmax of scores\nover keys\nthen a weighted sum", "large-language-models",
         "Large Language Models"),
        ("What is dropout?", "- random zeroing\n- training only", None, None),
    ]  # fmt: skip
    for card in deck.cards:
        assert card.local_id is not None and card.local_id.isdigit()
        assert card.ref == f"note {card.local_id}"
        assert (card.key_points, card.correct, card.difficulty) == ((), None, 2)
    assert not any("script" in text or "alert" in text for card in deck.cards for text in (card.question, card.answer))


def test_invalid_notes_are_named_by_note_id(tmp_path: Path) -> None:
    one_field = genanki.Model(
        1607392320, "One", fields=[{"name": "Front"}], templates=[{"name": "c", "qfmt": "{{Front}}", "afmt": "x"}]
    )
    notes = [
        genanki.Note(model=BASIC, fields=["What is a neuron?", "A weighted sum."]),
        genanki.Note(model=one_field, fields=["Only a front"]),
        genanki.Note(model=BASIC, fields=["Why?", "&lt;script&gt;alert(1)&lt;/script&gt;"]),
    ]
    data = apkg(tmp_path, notes)
    deck = parse_deck_file("deck.apkg", data, skip_invalid=True)
    assert [card.question for card in deck.cards] == ["What is a neuron?"]
    assert [line.split(", ", 1)[1] for line in deck.skipped] == [
        "field 'answer': the note has only one field",
        "field 'answer': holds a <script> tag",
    ]
    assert all(line.startswith("deck.apkg: note 1") for line in deck.skipped)


def test_a_zip_bomb_is_refused_before_it_is_read() -> None:
    out = io.BytesIO()
    with (
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("collection.anki2", "w") as member,
    ):
        zeros = bytes(MB)
        for _ in range(100):  # streamed: 100 MB of zeros, about 0.5 MB compressed
            member.write(zeros)
    assert refused("deck.apkg", out.getvalue()) == ["deck.apkg: the archive unpacks to 100 MB; the limit is 64 MB"]


def test_an_absurdly_compressed_member_is_refused(good_apkg: bytes) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members_of(good_apkg).items():
            archive.writestr(name, content)
        archive.writestr("1", bytes(10 * MB))
    problems = refused("deck.apkg", out.getvalue())
    assert len(problems) == 1
    assert problems[0].startswith("deck.apkg: '1' is compressed ")
    assert problems[0].endswith(" times (a zip bomb?); refused")


def test_a_member_larger_than_its_declared_size_is_refused(good_apkg: bytes) -> None:
    data = bytearray(zip_of(members_of(good_apkg)))
    entry = data.index(b"PK\x01\x02")  # the collection's entry in the central directory
    assert data[entry + 46 : entry + 46 + 16] == b"collection.anki2"
    data[entry + 24 : entry + 28] = (1000).to_bytes(4, "little")  # uncompressed size: 1000 bytes, a lie
    problems = refused("deck.apkg", bytes(data))
    assert len(problems) == 1
    assert problems[0].startswith("deck.apkg: cannot unpack 'collection.anki2' (")


@pytest.mark.parametrize("member", ["../evil", "/abs", "media/../../evil", "C:/evil", "a\\..\\evil"])
def test_a_member_name_that_escapes_the_folder_is_refused(good_apkg: bytes, member: str) -> None:
    data = zip_of({**members_of(good_apkg), member: b"x"})
    assert refused("deck.apkg", data) == [f"deck.apkg: unsafe file name in the archive: {member!r}"]


@pytest.mark.parametrize(
    ("collection", "problem"),
    [
        (random.Random(7).randbytes(8192), "the Anki collection in it is not an SQLite database"),
        (b"SQLite format 3\x00" + random.Random(7).randbytes(8192), "cannot read the Anki collection ("),
    ],
)
def test_a_collection_that_is_not_a_database_is_refused(collection: bytes, problem: str) -> None:
    problems = refused("deck.apkg", zip_of({"collection.anki2": collection, "media": b"{}"}))
    assert len(problems) == 1
    assert problems[0].startswith(f"deck.apkg: {problem}")


def test_a_database_without_notes_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE col (id INTEGER PRIMARY KEY, decks TEXT)")
    connection.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT)")
    connection.commit()
    connection.close()
    data = zip_of({"collection.anki2": path.read_bytes(), "media": b"{}"})
    assert refused("deck.apkg", data) == ["deck.apkg: the collection has no notes table; is it an Anki deck?"]


def test_a_file_that_is_not_a_zip_is_refused() -> None:
    assert refused("deck.apkg", b"SQLite format 3\x00 but not zipped") == [
        "deck.apkg: not an Anki package (an .apkg file is a zip archive)"
    ]


def test_the_newer_anki_format_asks_for_an_export_for_older_versions(good_apkg: bytes) -> None:
    # Anki 2.1.50+ writes the zstd collection and, beside it, an old-format one holding only an "update Anki" note
    members = members_of(good_apkg)
    data = zip_of({"collection.anki21b": b"\x28\xb5\x2f\xfd" + bytes(64), **members})
    assert refused("deck.apkg", data) == [
        "deck.apkg: this .apkg uses the newer Anki format; export with 'Support older Anki versions' ticked"
    ]


def test_unterminated_html_is_read_in_linear_time(tmp_path: Path) -> None:
    notes = [genanki.Note(model=BASIC, fields=["Open comment?", "Its text<!--" + "<!--" * 20_000])]
    data = apkg(tmp_path, notes)
    start = time.perf_counter()
    deck = parse_deck_file("deck.apkg", data)
    assert time.perf_counter() - start < 1.0  # Python 3.11's HTMLParser.close() takes seconds on this
    assert deck.cards[0].answer == "Its text"


# --- YAML ----------------------------------------------------------------------------------------------------

DECK_YAML = """\
deck: my-deck
title: My interview deck
topics:
  fundamentals: Fundamentals
  stories: Stories
cards:
  - id: backpropagation
    topic: fundamentals
    kind: technical
    difficulty: 2
    question: Explain backpropagation in neural networks.
    answer: |
      The chain rule, applied from the loss backwards.

      - one pass
    key_points:
      - chain rule
      - point: gradient of the loss for every weight
        accept: [dL/dw for each parameter]
      - reuse of intermediate results
    quiz:
      prompt: What does backpropagation compute?
      correct: The gradient of the loss with respect to every parameter
      distractors:
        - The optimal learning rate for each layer
        - The Hessian of the loss at the current weights
        - A new random initialisation for dead neurons
      explanation: Backprop applies the chain rule from the loss backwards.
    follow_ups:
      - How does reverse-mode automatic differentiation differ from symbolic differentiation?
      - Why is backprop's cost about the same as a forward pass?
  - id: conflict
    topic: stories
    kind: behavioral
    difficulty: 1
    question: Tell me about a disagreement with a colleague.
    answer: Situation, task, action, result.
    key_points: [situation, action, result]
"""


def test_a_yaml_deck_in_the_shipped_schema() -> None:
    deck = parse_deck_file("deck.YML", DECK_YAML.encode())
    assert (deck.kind, deck.title, deck.skipped) == ("yaml", "My interview deck", ())
    assert deck.cards == (
        ImportedCard(
            ref="card 'backpropagation'",
            local_id="backpropagation",
            question="Explain backpropagation in neural networks.",
            answer="The chain rule, applied from the loss backwards.\n\n- one pass",
            topic="fundamentals",
            topic_name="Fundamentals",
            key_points=("chain rule", "gradient of the loss for every weight", "reuse of intermediate results"),
            correct="The gradient of the loss with respect to every parameter",
            distractors=(
                "The optimal learning rate for each layer",
                "The Hessian of the loss at the current weights",
                "A new random initialisation for dead neurons",
            ),
            explanation="Backprop applies the chain rule from the loss backwards.",
            difficulty=2,
            follow_ups=(
                "How does reverse-mode automatic differentiation differ from symbolic differentiation?",
                "Why is backprop's cost about the same as a forward pass?",
            ),
            quiz_prompt="What does backpropagation compute?",
        ),
        ImportedCard(
            ref="card 'conflict'",
            local_id="conflict",
            question="Tell me about a disagreement with a colleague.",
            answer="Situation, task, action, result.",
            topic="stories",
            topic_name="Stories",
            key_points=("situation", "action", "result"),
            difficulty=1,
        ),
    )


def test_a_yaml_card_without_an_answer_names_the_card_and_field() -> None:
    raw = yaml.safe_load(DECK_YAML)
    del raw["cards"][1]["answer"]
    raw["cards"].append({"topic": "stories", "question": "No id?"})
    problems = refused("deck.yaml", yaml.safe_dump(raw).encode())
    assert problems[0] == "deck.yaml: card 'conflict', field 'answer': Field required"
    assert "deck.yaml: card #3, field 'id': Field required" in problems


def test_a_yaml_list_is_refused() -> None:
    assert refused("deck.yaml", b"- question: What?\n  answer: This.\n") == [
        "deck.yaml: a deck is a mapping with deck, title, topics and cards (this one is a list)"
    ]


def test_malformed_yaml_is_refused() -> None:
    problems = refused("deck.yaml", b"deck: d\ncards: [\n")
    assert len(problems) == 1
    assert problems[0].startswith("deck.yaml: not valid YAML: ")


def test_a_yaml_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]" for n in range(1, 9)]
    assert refused("deck.yaml", "\n".join(lines).encode()) == [
        "deck.yaml: more than 200000 values once its aliases (*name) are expanded"
    ]
