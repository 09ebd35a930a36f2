"""Users' own deck files (CSV, Anki .apkg, YAML in the bank's schema) parsed into validated cards.

Pure parsing: nothing is stored here and nothing is read but the bytes given. Every file is untrusted: its size
is checked first; an .apkg is checked as a zip (sizes, compression ratios, names) before any member is read, its
members are read into memory with a cap (never extracted), and its SQLite collection is opened read-only from a
private temporary copy. Every problem names the file, the row/note/card and the field.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import sqlite3
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from bot.core.bank import (
    EXPLANATION_MAX,
    EXPLANATION_MAX_LINE_BREAKS,
    OPTION_MAX,
    QUESTION_MAX,
    CardModel,
    DeckHeader,
    _describe,
)
from bot.core.decks import MAX_CARDS, MAX_FILE_BYTES, DeckFileError, ImportedCard, ParsedDeck, slug_of

MAX_UNCOMPRESSED = 64 * 1024 * 1024  # total uncompressed size allowed inside an .apkg
ANSWER_MAX = 3000
KEY_POINT_MAX = 100
KEY_POINTS_MAX = 6
FOLLOW_UPS_MAX = 3
TOPIC_MAX = 48  # the topic's slug
TOPIC_NAME_MAX = 100  # the topic as written
ID_MAX = 100  # a CSV `id`
TITLE_MAX = 100  # a deck title longer than this is cut

MAX_ENTRIES = 10_000  # files in an .apkg
BOMB_RATIO = 200  # an .apkg member over BOMB_MIN_SIZE compressed more than this is refused
BOMB_MIN_SIZE = 1024 * 1024
QUERY_SECONDS = 10.0  # reading an Anki collection is interrupted after this
SQLITE_MAGIC = b"SQLite format 3\x00"
YAML_NODES_PER_CARD = 100  # a YAML deck may hold this many values per allowed card (a shipped card has about 40)

CSV_COLUMNS = ("id", "question", "answer", "topic", "key_points", "correct", "distractors", "explanation", "difficulty")
CSV_REQUIRED = ("question", "answer")
CSV_LIST_SEPARATOR = ";"  # between key points, and between distractors


def parse_deck_file(
    filename: str,
    data: bytes,
    *,
    skip_invalid: bool = False,
    max_bytes: int = MAX_FILE_BYTES,
    max_cards: int = MAX_CARDS,
) -> ParsedDeck:
    """Parse a deck file of the kind its extension names (.csv, .apkg, .yaml/.yml; any case) into checked cards.

    Raises DeckFileError when the file is refused. Without `skip_invalid` any invalid row/note/card refuses the
    whole file (the error lists the first problems); with it, invalid ones are left out and listed in
    `skipped`, but a file without a single valid card is still refused."""
    base = _one_line(re.split(r"[\\/]", filename)[-1])  # the name without folders
    name = _display_name(base)
    kind = _kind_of(base, name)
    if len(data) > max_bytes:
        raise DeckFileError([f"{name} is {_size(len(data), round_up=True)}; the limit is {_size(max_bytes)}"])
    title: str | None = None
    media_skipped = 0
    if kind == "csv":
        entries = _csv_entries(name, data, max_cards)
    elif kind == "apkg":
        entries, title, media_skipped = _apkg_entries(name, data, max_cards)
    else:
        entries, title = _yaml_entries(name, data, max_cards)
    if not entries:
        raise DeckFileError([f"{name}: no cards found"])
    _check_count(name, len(entries), max_cards)
    cards, skipped, problems = _collect(name, entries)
    if problems and not skip_invalid:
        raise DeckFileError(problems)
    if not cards:
        raise DeckFileError([f"{name}: no valid card (all {len(entries)} refused)", *problems])
    return ParsedDeck(kind, title, tuple(cards), tuple(skipped), media_skipped)


def plain_text(html: str) -> str:
    """An Anki field's HTML as plain text: <script> and <style> dropped with their content, line breaks and
    blocks (div, p, li, ...) as new lines, list items as "- " lines, other tags removed, entities decoded,
    [sound:...] removed, whitespace collapsed on each line."""
    parser = _TextParser()
    # "<![" would reach _markupbase's marked-section parser, which raises on malformed input: keep it as text.
    parser.feed(html.replace("<![", "&lt;!["))
    # What feed() left unparsed is an unterminated tag or comment, or an unclosed <script>/<style>: a browser
    # shows none of it, and close() would re-scan it once per "<" (quadratic in Python 3.11's parser).
    if parser.rawdata.startswith("<") or parser.cdata_elem is not None:
        parser.rawdata = ""
    parser.close()
    return parser.text()


# --- text --------------------------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # control characters but \t and \n (\r is handled first)
_BLANK_LINES = re.compile(r"\n{4,}")  # more than 2 blank lines in a row
_SCRIPT_TAG = re.compile(r"<\s*/?\s*script", re.IGNORECASE)
_SOUND = re.compile(r"\[sound:[^\]]*\]")
_CLOZE = re.compile(r"\{\{c\d+::")


def _clean(text: str) -> str:
    """Control characters removed (but \\n and \\t), line ends normalised and trailing spaces cut, at most 2
    blank lines in a row, trimmed."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n\n", text).strip()


def _one_line(text: str) -> str:
    return " ".join(_clean(text).split())


def _same_text(text: str) -> str:
    """How questions and options are compared: case-folded, whitespace collapsed."""
    return " ".join(text.casefold().split())


def _short(text: str, limit: int = 40) -> str:
    """A user's value quoted in a message: one line, cut."""
    text = _one_line(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _TextParser(HTMLParser):
    _SKIPPED = frozenset({"script", "style"})
    _BLOCKS = frozenset(
        {"p", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "blockquote", "pre"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # entities decoded with html.unescape
        self._parts: list[str] = []
        self._skipping = 0  # inside <script>/<style>
        self._line_start = True  # nothing but spaces written since the last line break

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIPPED:
            self._skipping += 1
        elif self._skipping:
            return
        elif tag in ("br", "hr"):
            self._break(always=True)
        elif tag in self._BLOCKS:
            self._break()
            if tag == "li":
                self._write("- ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # a browser ignores the "/" of <script/>: what follows up to </script> is still script
        self.handle_starttag(tag, attrs)
        if tag not in self._SKIPPED:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif not self._skipping and tag in self._BLOCKS:
            self._break()

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self._write(" ".join(data.split("\n")))  # a line break in HTML source is a space

    def _write(self, text: str) -> None:
        self._parts.append(text)
        if text.strip():
            self._line_start = False

    def _break(self, *, always: bool = False) -> None:
        """A new line: always for <br>; for a block, only if the current line holds text ("a<div>b</div>")."""
        if always or not self._line_start:
            self._parts.append("\n")
            self._line_start = True

    def text(self) -> str:
        raw = _SOUND.sub("", "".join(self._parts))
        return _clean("\n".join(" ".join(line.split()) for line in raw.split("\n")))


# --- the checks every kind shares -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    """One row, note or card as read, before the checks shared by every kind."""

    ref: str
    question: str = ""
    answer: str = ""
    local_id: str | None = None
    topic_name: str | None = None
    topic: str | None = None  # a slug given as such (YAML); otherwise made from topic_name
    key_points: Sequence[str] = ()
    correct: str | None = None
    distractors: Sequence[str] = ()
    explanation: str | None = None
    quiz_prompt: str | None = None
    difficulty: int = 2
    follow_ups: Sequence[str] = ()
    quiz_field: str = ""  # the quiz fields' prefix in messages: "quiz." in YAML, where they are nested
    problems: list[str] = field(default_factory=list)  # "field 'x': ..." found while reading
    readable: bool = True  # False: reading failed, there is nothing to check


class _Checks:
    """One entry's field checks; problems are appended to the entry's list as "field 'x': message"."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def add(self, name: str, message: str) -> None:
        self.problems.append(f"field '{name}': {message}")

    def text(self, name: str, value: str | None, maximum: int, *, required: bool = True, one_line: bool = False) -> str:
        text = _one_line(value or "") if one_line else _clean(value or "")
        if not text:
            if required:
                self.add(name, "empty")
        elif len(text) > maximum:
            self.add(name, f"longer than {maximum} characters ({len(text)})")
        elif _SCRIPT_TAG.search(text):
            self.add(name, "holds a <script> tag")
        return text

    def items(
        self, name: str, values: Sequence[str], maximum: int, most: int | None, noun: str, *, one_line: bool = True
    ) -> tuple[str, ...]:
        texts: list[str] = []
        for number, value in enumerate(values, 1):
            text = _one_line(value) if one_line else _clean(value)
            if not text:
                self.add(name, f"{noun} {number} is empty")
            elif len(text) > maximum:
                self.add(name, f"{noun} {number} is longer than {maximum} characters ({len(text)})")
            elif _SCRIPT_TAG.search(text):
                self.add(name, f"{noun} {number} holds a <script> tag")
            texts.append(text)
        if most is not None and len(texts) > most:
            self.add(name, f"at most {most} (found {len(texts)})")
        return tuple(texts)

    def topic(self, entry: _Entry) -> tuple[str | None, str | None]:
        topic_name = _one_line(entry.topic_name or "") or None
        if topic_name is None:
            return None, None
        slug = entry.topic if entry.topic is not None else slug_of(topic_name)
        if not slug:
            self.add("topic", f"{_short(topic_name)!r} has no latin letter or digit to make a topic slug from")
        elif len(slug) > TOPIC_MAX:
            self.add("topic", f"longer than {TOPIC_MAX} characters as a slug ({len(slug)})")
        elif len(topic_name) > TOPIC_NAME_MAX:
            self.add("topic", f"longer than {TOPIC_NAME_MAX} characters ({len(topic_name)})")
        return slug, topic_name

    def quiz(self, entry: _Entry, correct: str | None, distractors: Sequence[str], explanation: str | None) -> None:
        prefix = entry.quiz_field
        if correct is None:
            if distractors:
                self.add(f"{prefix}distractors", "given without 'correct' (the right option of the quiz)")
            if explanation:
                self.add(f"{prefix}explanation", "given without 'correct' (it explains the quiz's answer)")
            return
        if len(distractors) != 3:
            self.add(f"{prefix}distractors", f"a quiz needs exactly 3 wrong options (found {len(distractors)})")
        seen = {_same_text(correct)}
        for option in distractors:
            if _same_text(option) in seen:
                problem = "repeats the correct option" if _same_text(option) == _same_text(correct) else "appears twice"
                self.add(f"{prefix}distractors", f"{_short(option)!r} {problem}")
            seen.add(_same_text(option))
        breaks = explanation.count("\n") if explanation else 0
        if breaks > EXPLANATION_MAX_LINE_BREAKS:
            self.add(f"{prefix}explanation", f"at most {EXPLANATION_MAX_LINE_BREAKS} line breaks ({breaks})")


def _card_of(entry: _Entry) -> ImportedCard | None:
    """The entry as a card, or None when it has problems (appended to entry.problems)."""
    if not entry.readable:
        return None
    check = _Checks(entry.problems)
    quiz = entry.quiz_field
    question = check.text("question", entry.question, QUESTION_MAX)
    answer = check.text("answer", entry.answer, ANSWER_MAX)
    local_id = check.text("id", entry.local_id, ID_MAX, required=False, one_line=True) or None
    topic, topic_name = check.topic(entry)
    key_points = check.items("key_points", entry.key_points, KEY_POINT_MAX, KEY_POINTS_MAX, "point")
    correct = check.text(f"{quiz}correct", entry.correct, OPTION_MAX, required=False, one_line=True) or None
    distractors = check.items(f"{quiz}distractors", entry.distractors, OPTION_MAX, None, "option")
    explanation = check.text(f"{quiz}explanation", entry.explanation, EXPLANATION_MAX, required=False) or None
    quiz_prompt = check.text(f"{quiz}prompt", entry.quiz_prompt, QUESTION_MAX, required=False) or None
    check.quiz(entry, correct, distractors, explanation)
    follow_ups = check.items("follow_ups", entry.follow_ups, QUESTION_MAX, FOLLOW_UPS_MAX, "question", one_line=False)
    if entry.problems:
        return None
    return ImportedCard(
        ref=entry.ref,
        local_id=local_id,
        question=question,
        answer=answer,
        topic=topic,
        topic_name=topic_name,
        key_points=key_points,
        correct=correct,
        distractors=distractors,
        explanation=explanation,
        difficulty=entry.difficulty,
        follow_ups=follow_ups,
        quiz_prompt=quiz_prompt,
    )


def _located(name: str, ref: str, problems: Sequence[str]) -> str:
    separator = ", " if problems[0].startswith("field '") else ": "
    return f"{name}: {ref}{separator}" + "; ".join(problems)


def _collect(name: str, entries: Sequence[_Entry]) -> tuple[list[ImportedCard], list[str], list[str]]:
    """The valid cards, one line per invalid entry, and every problem on its own line. A repeated id or question
    is a problem of the later entry."""
    cards: list[ImportedCard] = []
    skipped: list[str] = []
    problems: list[str] = []
    ids: dict[str, str] = {}  # id -> ref
    questions: dict[str, str] = {}  # question as compared -> ref
    for entry in entries:
        card = _card_of(entry)
        entry.problems[:] = dict.fromkeys(entry.problems)
        if card is not None:
            if card.local_id is not None and card.local_id in ids:
                entry.problems.append(f"field 'id': {_short(card.local_id)!r} is also the id of {ids[card.local_id]}")
            if _same_text(card.question) in questions:
                entry.problems.append(f"field 'question': the same question as {questions[_same_text(card.question)]}")
        if card is None or entry.problems:
            skipped.append(_located(name, entry.ref, entry.problems))
            problems.extend(_located(name, entry.ref, [problem]) for problem in entry.problems)
            continue
        if card.local_id is not None:
            ids[card.local_id] = entry.ref
        questions[_same_text(card.question)] = entry.ref
        cards.append(card)
    return cards, skipped, problems


# --- the file as a whole ---------------------------------------------------------------------------------------


def _display_name(base: str) -> str:
    """The file's name as quoted in messages: a long one cut in the middle, keeping its extension."""
    if not base:
        return "the file"
    return base if len(base) <= 80 else f"{base[:60]}...{base[-17:]}"


def _kind_of(base: str, name: str) -> Literal["csv", "apkg", "yaml"]:
    suffix = PurePosixPath(base).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".apkg":
        return "apkg"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    hint = " (a .colpkg is a whole Anki collection: export the deck as .apkg)" if suffix == ".colpkg" else ""
    raise DeckFileError([f"{name}: not a deck file; send a .csv, an Anki .apkg or a .yaml deck{hint}"])


def _size(size: int, *, round_up: bool = False) -> str:
    """3.1 MB / 420 KB / 900 bytes, rounded up for a file and down for a limit, so that a refused file never
    looks within the limit."""
    rounding = math.ceil if round_up else math.floor
    if size >= 100 * 1024:
        return f"{rounding(size * 10 / (1024 * 1024)) / 10:g} MB"
    if size >= 1024:
        return f"{rounding(size / 1024)} KB"
    return f"{size} bytes"


def _check_count(name: str, count: int, max_cards: int) -> None:
    if count > max_cards:
        raise DeckFileError([f"{name} has {count} cards; the limit is {max_cards}"])


def _decode(name: str, data: bytes, hint: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DeckFileError([f"{name}: not UTF-8 text (byte {exc.start}); {hint}"]) from None


# --- CSV -------------------------------------------------------------------------------------------------------


def _csv_entries(name: str, data: bytes, max_cards: int) -> list[_Entry]:
    """Rows after the header, numbered as a spreadsheet shows them (the header is row 1); blank rows ignored."""
    text = _decode(name, data, "save it as 'CSV UTF-8'")
    records = _csv_records(name, text)
    rows = [(number, cells) for number, cells in enumerate(records, 1) if any(cell.strip() for cell in cells)]
    if not rows:
        return []
    columns = _csv_columns(name, rows[0][1])
    body = rows[1:]
    _check_count(name, len(body), max_cards)
    return [_csv_entry(number, cells, columns) for number, cells in body]


def _csv_records(name: str, text: str) -> list[list[str]]:
    first_line = text.split("\n", 1)[0]
    # a comma, unless the header has none but ";" or tabs (a spreadsheet set to a comma-decimal language)
    delimiter = "," if "," in first_line else max((",", ";", "\t"), key=first_line.count)
    records: list[list[str]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for cells in reader:
            records.append(cells)
    except csv.Error as exc:
        where = f"{name}: row {len(records) + 1}"
        if "field larger than field limit" in str(exc):
            raise DeckFileError([f"{where}: a value is longer than {csv.field_size_limit()} characters"]) from None
        raise DeckFileError([f"{where}: not readable as CSV ({exc})"]) from None
    return records


def _csv_columns(name: str, header: Sequence[str]) -> dict[int, str]:
    """Column index -> known column name; unnamed columns are left out (their cells must stay blank)."""
    columns: dict[int, str] = {}
    unknown: list[str] = []
    for index, cell in enumerate(header):
        column = re.sub(r"[\s-]+", "_", cell.strip().lower())
        if not column:
            continue
        if column not in CSV_COLUMNS:
            unknown.append(_short(cell))
        elif column in columns.values():
            raise DeckFileError([f"{name}: column '{column}' appears twice in the first row"])
        columns[index] = column
    if unknown:
        listed = ", ".join(f"'{column}'" for column in unknown)
        raise DeckFileError([f"{name}: unknown column(s) {listed}; the columns are: {', '.join(CSV_COLUMNS)}"])
    missing = [column for column in CSV_REQUIRED if column not in columns.values()]
    if missing:
        listed = " and ".join(f"'{column}'" for column in missing)
        raise DeckFileError(
            [f"{name}: no {listed} column; the first row names the columns (question and answer are required)"]
        )
    return columns


def _csv_entry(number: int, cells: Sequence[str], columns: dict[int, str]) -> _Entry:
    entry = _Entry(ref=f"row {number}")
    values: dict[str, str] = {}
    for index, cell in enumerate(cells):
        if index in columns:
            values[columns[index]] = cell
        elif cell.strip():
            entry.problems.append(f"a value in column {index + 1}, which has no name in the first row")
            break
    entry.question = values.get("question", "")
    entry.answer = values.get("answer", "")
    entry.local_id = values.get("id")
    entry.topic_name = values.get("topic")
    entry.key_points = _csv_list(values.get("key_points", ""))
    entry.correct = values.get("correct")
    entry.distractors = _csv_list(values.get("distractors", ""))
    entry.explanation = values.get("explanation")
    difficulty = values.get("difficulty", "").strip()
    if difficulty in ("1", "2", "3"):
        entry.difficulty = int(difficulty)
    elif difficulty:
        entry.problems.append(f"field 'difficulty': 1, 2 or 3 (not {_short(difficulty)!r})")
    return entry


def _csv_list(cell: str) -> list[str]:
    return [item for item in cell.split(CSV_LIST_SEPARATOR) if item.strip()]


# --- YAML ------------------------------------------------------------------------------------------------------


# libyaml's (twice as fast, and it limits nesting) when PyYAML was built with it
_SAFE_LOADER: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_yaml(name: str, text: str, nodes_max: int) -> Any:
    """yaml.safe_load, with the document's size checked between parsing and building the data: an alias (*name)
    counts its anchor's nodes again, so nested aliases (the "billion laughs") or merge keys (<<) that would
    multiply into millions of values are refused, and so is an alias inside its own anchor."""
    loader = _SAFE_LOADER(text)
    try:
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            problem = _expansion_problem(node, nodes_max)
            if problem is not None:
                raise DeckFileError([f"{name}: {problem}"])
            return loader.construct_document(node)
        except (yaml.YAMLError, RecursionError) as exc:
            detail = " ".join(str(exc).split()) if isinstance(exc, yaml.YAMLError) else "nested too deeply"
            raise DeckFileError([f"{name}: not valid YAML: {detail}"]) from None
    finally:
        loader.dispose()


def _expansion_problem(root: yaml.Node, nodes_max: int) -> str | None:
    """Why a composed YAML document is refused (None: it is not): more than `nodes_max` nodes once every alias
    is expanded, or a cycle. Each node is visited once; its expanded size is remembered."""
    sizes: dict[int, int] = {}  # id(node) -> expanded size, capped at nodes_max + 1
    on_path: set[int] = set()  # the nodes being expanded: meeting one again is a cycle
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        children = _yaml_children(node)
        if expanded:
            on_path.discard(id(node))
            sizes[id(node)] = min(nodes_max + 1, 1 + sum(sizes[id(child)] for child in children))
        elif id(node) in on_path:
            return "an alias (*name) inside its own anchor (&name)"
        elif id(node) not in sizes:
            on_path.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children)
    if sizes[id(root)] > nodes_max:
        return f"more than {nodes_max} values once its aliases (*name) are expanded"
    return None


def _yaml_children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _yaml_entries(name: str, data: bytes, max_cards: int) -> tuple[list[_Entry], str | None]:
    """The cards of a deck in the shipped schema (content/README.md), each checked with the bank's CardModel."""
    text = _decode(name, data, "save it as UTF-8")
    raw = _load_yaml(name, text, YAML_NODES_PER_CARD * max_cards)
    if not isinstance(raw, dict):
        shape = "empty" if raw is None else f"a {type(raw).__name__}"
        raise DeckFileError([f"{name}: a deck is a mapping with deck, title, topics and cards (this one is {shape})"])
    cards = raw.get("cards")
    if isinstance(cards, list):
        if not cards:
            return [], None
        _check_count(name, len(cards), max_cards)
    try:
        header = DeckHeader.model_validate(raw)
    except ValidationError as exc:
        raise DeckFileError(
            [f"{name}: deck field '{field}': {message}" for field, message in map(_describe, exc.errors())]
        ) from None
    topics = {slug: _one_line(topic) for slug, topic in header.topics.items()}
    entries = [_yaml_entry(index, item, topics) for index, item in enumerate(header.cards, 1)]
    return entries, _one_line(header.title)[:TITLE_MAX] or None


def _yaml_entry(index: int, item: Any, topics: dict[str, str]) -> _Entry:
    card_id = item.get("id") if isinstance(item, dict) else None
    ref = f"card '{_short(card_id)}'" if isinstance(card_id, str) and card_id.strip() else f"card #{index}"
    entry = _Entry(ref=ref, quiz_field="quiz.")
    if not isinstance(item, dict):
        entry.problems.append("a card is a mapping of fields")
        entry.readable = False
        return entry
    try:
        card = CardModel.model_validate(item)
    except ValidationError as exc:
        found = (f"field '{field}': {message}" for field, message in map(_describe, exc.errors()))
        entry.problems.extend(dict.fromkeys(found))
        entry.readable = False
        return entry
    if card.topic not in topics:
        entry.problems.append(f"field 'topic': unknown topic '{card.topic}' (declared: {', '.join(sorted(topics))})")
        entry.readable = False
        return entry
    entry.local_id = card.id
    entry.question = card.question
    entry.answer = card.answer
    entry.topic = card.topic
    entry.topic_name = topics[card.topic]
    entry.key_points = [point if isinstance(point, str) else point.point for point in card.key_points]
    entry.difficulty = card.difficulty
    entry.follow_ups = card.follow_ups
    if card.quiz is not None:
        entry.quiz_prompt = card.quiz.prompt
        entry.correct = card.quiz.correct
        entry.distractors = card.quiz.distractors
        entry.explanation = card.quiz.explanation
    return entry


# --- Anki .apkg ------------------------------------------------------------------------------------------------

_COLLECTION = "collection.anki21"  # Anki 2.1's; preferred
_OLD_COLLECTION = "collection.anki2"  # Anki 2.0's (and genanki's); a placeholder note when beside the one below
_NEWER_COLLECTION = "collection.anki21b"  # zstd-compressed, Anki 2.1.50+ without "Support older Anki versions"
_ANKI_MARKER_TAGS = frozenset({"leech", "marked"})  # tags Anki sets itself
_STUDYBOT_TOPIC_TAG = "studybot::topic::"  # how bot.anki exports a card's topic


def _apkg_entries(name: str, data: bytes, max_cards: int) -> tuple[list[_Entry], str | None, int]:
    """The notes of an Anki package, its main deck's name and its number of media files."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError):
        raise DeckFileError([f"{name}: not an Anki package (an .apkg file is a zip archive)"]) from None
    with archive:
        members = _check_archive(name, archive)
        if _COLLECTION in members:
            collection = members[_COLLECTION]
        elif _NEWER_COLLECTION in members:
            raise DeckFileError(
                [f"{name}: this .apkg uses the newer Anki format; export with 'Support older Anki versions' ticked"]
            )
        elif _OLD_COLLECTION in members:
            collection = members[_OLD_COLLECTION]
        else:
            raise DeckFileError([f"{name}: no Anki collection in it (collection.anki2); is it an Anki deck?"])
        content = _read_member(name, archive, collection)
        media_skipped = _media_count(name, archive, members)
    entries, title = _read_collection(name, content, max_cards)
    return entries, title, media_skipped


def _check_archive(name: str, archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The archive's directory checked before anything is read: count, total and per-member sizes, names."""
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        raise DeckFileError([f"{name}: the archive holds {len(infos)} files; the limit is {MAX_ENTRIES}"])
    total = sum(info.file_size for info in infos)
    if total > MAX_UNCOMPRESSED:
        raise DeckFileError(
            [f"{name}: the archive unpacks to {_size(total, round_up=True)}; the limit is {_size(MAX_UNCOMPRESSED)}"]
        )
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        if _unsafe_member_name(info.filename) or _unsafe_member_name(info.orig_filename):
            raise DeckFileError([f"{name}: unsafe file name in the archive: {_short(info.orig_filename)!r}"])
        if info.filename in members:
            raise DeckFileError([f"{name}: the archive holds {_short(info.filename)!r} twice"])
        if info.file_size > BOMB_MIN_SIZE and info.file_size > BOMB_RATIO * info.compress_size:
            ratio = info.file_size // max(info.compress_size, 1)
            raise DeckFileError(
                [f"{name}: {_short(info.filename)!r} is compressed {ratio} times (a zip bomb?); refused"]
            )
        members[info.filename] = info
    return members


def _unsafe_member_name(member: str) -> bool:
    """Absolute, drive-lettered, backslashed or climbing ("..") names: an archive that plays such tricks is refused,
    though nothing is ever extracted."""
    return (
        member.startswith("/")
        or "\\" in member
        or "\x00" in member
        or re.match(r"[A-Za-z]:", member) is not None
        or ".." in member.split("/")
    )


def _read_member(name: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes, reading at most one byte more than its declared size (more is refused)."""
    try:
        with archive.open(info) as member:
            content = member.read(info.file_size + 1)
    except Exception as exc:  # any failure to unpack (bad CRC, encryption, unknown method, ...) refuses the file
        reason = _short(str(exc), 80) or type(exc).__name__
        raise DeckFileError([f"{name}: cannot unpack {_short(info.filename)!r} ({reason})"]) from None
    if len(content) > info.file_size:
        raise DeckFileError([f"{name}: {_short(info.filename)!r} unpacks to more than its declared size"])
    return content


def _media_count(name: str, archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo]) -> int:
    """The media files (images, sounds) of the package: the `media` map's entries, else the other members."""
    others = len(members.keys() - {"media", "meta", _COLLECTION, _OLD_COLLECTION, _NEWER_COLLECTION})
    if "media" not in members:
        return others
    try:
        mapping = json.loads(_read_member(name, archive, members["media"]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return others
    return len(mapping) if isinstance(mapping, dict) else others


def _read_collection(name: str, content: bytes, max_cards: int) -> tuple[list[_Entry], str | None]:
    """The notes and main deck name of an Anki collection, opened read-only from a private temporary copy."""
    if not content.startswith(SQLITE_MAGIC):
        raise DeckFileError([f"{name}: the Anki collection in it is not an SQLite database"])
    with tempfile.TemporaryDirectory(prefix="studybot-deck-") as folder:
        handle, path = tempfile.mkstemp(suffix=".anki2", dir=folder)
        with os.fdopen(handle, "wb") as file:
            file.write(content)
        # immutable: no locks, no journal or WAL files beside it
        uri = Path(path).as_uri() + "?mode=ro&immutable=1"
        try:
            connection = sqlite3.connect(uri, uri=True)
        except sqlite3.Error as exc:
            raise DeckFileError([f"{name}: cannot open the Anki collection ({exc})"]) from None
        try:
            _harden(connection)
            return _read_notes(name, connection, max_cards)
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            # SQLite's message about a damaged file may quote bytes that are not UTF-8
            reason = "damaged" if isinstance(exc, UnicodeDecodeError) else _short(str(exc), 80)
            raise DeckFileError([f"{name}: cannot read the Anki collection ({reason})"]) from None
        finally:
            connection.close()


def _harden(connection: sqlite3.Connection) -> None:
    """No extensions, no functions run from the file's schema, cell sizes checked, and a deadline for queries
    (a crafted file can make one slow)."""
    if hasattr(connection, "enable_load_extension"):
        connection.enable_load_extension(False)
    connection.execute("PRAGMA trusted_schema = OFF")
    connection.execute("PRAGMA cell_size_check = ON")
    connection.text_factory = lambda raw: raw.decode("utf-8", "replace")
    deadline = time.monotonic() + QUERY_SECONDS
    connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)


def _read_notes(name: str, connection: sqlite3.Connection, max_cards: int) -> tuple[list[_Entry], str | None]:
    tables = dict(
        connection.execute("SELECT name, type FROM sqlite_master WHERE name IN ('notes', 'col', 'cards')").fetchall()
    )
    if tables.get("notes") != "table" or tables.get("col") != "table":
        raise DeckFileError([f"{name}: the collection has no notes table; is it an Anki deck?"])
    (count,) = connection.execute("SELECT COUNT(*) FROM notes").fetchone()
    _check_count(name, count, max_cards)
    rows = connection.execute("SELECT id, flds, tags FROM notes ORDER BY id").fetchall()
    entries = [_note_entry(note_id, fields, tags) for note_id, fields, tags in rows]
    title = _deck_title(connection) if tables.get("cards") == "table" else None
    return entries, title


def _note_entry(note_id: object, fields: object, tags: object) -> _Entry:
    """First field the question, second the answer (HTML made plain text); the first usable tag the topic."""
    entry = _Entry(ref=f"note {note_id}", local_id=str(note_id))
    if not isinstance(fields, str):
        entry.problems.append("field 'question': the note's fields are not text")
        entry.readable = False
        return entry
    parts = fields.split("\x1f")
    if len(parts) < 2:
        entry.problems.append("field 'answer': the note has only one field")
        entry.readable = False
        return entry
    entry.question = plain_text(parts[0])
    entry.answer = plain_text(parts[1])
    if _CLOZE.search(entry.question):
        entry.problems.append("field 'question': a cloze deletion ({{c1::...}}); only question-answer notes are read")
    entry.topic_name = _topic_of_tags(tags if isinstance(tags, str) else "")
    return entry


def _topic_of_tags(tags: str) -> str | None:
    """The topic a note's tags give: a StudyBot export's topic tag, else the first tag that makes a topic slug
    (Anki's own "leech" and "marked" aside); "::" shown as " / " and "_" as a space."""
    names = tags.split()
    ours = [tag[len(_STUDYBOT_TOPIC_TAG) :] for tag in names if tag.casefold().startswith(_STUDYBOT_TOPIC_TAG)]
    for tag in [*ours, *(tag for tag in names if tag.casefold() not in _ANKI_MARKER_TAGS)]:
        shown = _one_line(tag.replace("::", " / ").replace("_", " "))
        if 0 < len(slug_of(shown)) <= TOPIC_MAX and len(shown) <= TOPIC_NAME_MAX:
            return shown
    return None


def _deck_title(connection: sqlite3.Connection) -> str | None:
    """The name of the deck holding most of the notes, from col.decks (a JSON map of deck id -> {name}); None
    when it cannot be told."""
    try:
        row = connection.execute("SELECT decks FROM col LIMIT 1").fetchone()
        decks = json.loads(row[0]) if row is not None and isinstance(row[0], str) else None
        ranked = connection.execute(
            "SELECT did FROM cards WHERE nid IN (SELECT id FROM notes)"
            " GROUP BY did ORDER BY COUNT(DISTINCT nid) DESC, did LIMIT 1"
        ).fetchone()
    except (sqlite3.Error, ValueError, RecursionError):
        return None
    if not isinstance(decks, dict) or ranked is None:
        return None
    deck = decks.get(str(ranked[0]))
    deck_name = deck.get("name") if isinstance(deck, dict) else None
    if not isinstance(deck_name, str):
        return None
    return _one_line(deck_name)[:TITLE_MAX] or None
