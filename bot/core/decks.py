"""Your own decks: the Library of cards a chat draws from, and /deck (import, choose, remove).

The shipped bank (content/, loaded at start) is one deck called `bank`; its parts (the YAML decks, such
as `llm-systems`) can be chosen on their own. Decks imported from a CSV, Anki or YAML file live in the
database: a chat's own decks (imported there), and decks the operator imported with `studybot deck
import`, which every chat may use. Each chat chooses which decks /question, /quiz and /daily draw from
(`/deck use`); a chat that never chose draws from the shipped bank.

The Library is a QuestionBank: `card(id)` finds any card, shipped or imported (retired ones included, so
history and open questions still read), while its other lookups are the shipped bank's (progress
pictures, plans and interviews stay on it). Drawing goes through `pool_for(chat_key)`, a QuestionBank of
the chat's chosen decks.
"""

from __future__ import annotations

import asyncio
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PurePath
from typing import Literal, Protocol

from bot.core.actions import Action, Verb, parse_action
from bot.core.bank import COMMAND_WORDS, QuestionBank, topic_key
from bot.core.model import Caller, Card, Identity, KeyPoint, Kind, QuizItem, Topic, Upload, UploadFailed
from bot.core.ports import Clock
from bot.core.views import Bullets, Button, Paragraph, Reply, Span, Title, notice, plural

SHIPPED = "bank"  # the shipped question bank, as a deck name
NAME_MAX = 32
CHOSEN_MAX = 10  # decks one chat may draw from at once
CONFIRM, KEEP = 1, 0
CONFIRM_FOR = timedelta(minutes=10)  # how long /deck remove's buttons stay valid
RESERVED = frozenset({SHIPPED, "list", "use", "remove", "import", "help", *COMMAND_WORDS})
SKIP_INVALID = "--skip-invalid"

USAGE = (
    "/deck: the decks this chat practises from. /deck use NAME[,NAME]: choose them; "
    "/deck import [NAME]: import a deck file (CSV, Anki .apkg or YAML); /deck remove NAME: delete one of this "
    "chat's own decks."
)


# --- what a deck file holds (bot.deckfile reads CSV, Anki and YAML files into these) ------------------

MAX_FILE_BYTES = 2 * 1024 * 1024  # from chat (STUDYBOT_IMPORT_MAX_MB); the CLI passes its own limit
MAX_CARDS = 2000  # cards in one deck
MAX_PROBLEMS = 10  # listed in a DeckFileError


class DeckFileError(Exception):
    """The file as a whole is refused (nothing imported): `problems` lists the first ones (at most 10), each
    naming file, row/note and field, e.g. "cards.csv: row 4, field 'answer': empty"; `total` counts them all."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: list[str] = list(problems[:MAX_PROBLEMS])
        self.total = len(problems)
        more = self.total - len(self.problems)
        super().__init__("\n".join(self.problems) + (f"\n(and {more} more)" if more else ""))


@dataclass(frozen=True, slots=True)
class ImportedCard:
    ref: str  # where it came from, for messages: "row 4" / "note 1699999999999" / "card 'my-id'"
    local_id: str | None  # the CSV `id` column, the Anki note id (str), or the YAML card id; None when absent
    question: str
    answer: str
    topic: str | None  # a slug ([a-z0-9-], <= 48) made from the `topic` text, or None
    topic_name: str | None  # the topic as written (trimmed), or None
    key_points: tuple[str, ...] = ()
    correct: str | None = None
    distractors: tuple[str, ...] = ()  # exactly 3 when `correct` is set (the bank's quiz shape: 4 options)
    explanation: str | None = None
    difficulty: int = 2  # 1-3
    follow_ups: tuple[str, ...] = ()  # YAML only (up to 3)
    quiz_prompt: str | None = None  # YAML only: the quiz's own prompt; elsewhere the quiz asks `question`


@dataclass(frozen=True, slots=True)
class ParsedDeck:
    kind: Literal["csv", "apkg", "yaml"]
    title: str | None  # YAML deck title, or the Anki deck name of most notes, else None
    cards: tuple[ImportedCard, ...]
    skipped: tuple[str, ...]  # with skip_invalid: one line per skipped row/note and why
    media_skipped: int  # .apkg media files (images, sounds) not imported


class DeckParser(Protocol):
    """Reads a deck file (bot.deckfile.parse_deck_file): checked cards, or DeckFileError."""

    def __call__(
        self, filename: str, data: bytes, *, skip_invalid: bool = ..., max_bytes: int = ..., max_cards: int = ...
    ) -> ParsedDeck: ...


def slug_of(text: str) -> str:
    """A topic slug: "Large Language Models!" -> "large-language-models", accents dropped ("" when nothing left)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


@dataclass(frozen=True, slots=True)
class DeckRecord:
    """An imported deck as stored: its cards in file order, the retired ones apart."""

    id: int
    owner: str  # the chat key it was imported in; "" for the operator's decks, which every chat may use
    name: str
    title: str
    source: str  # csv | apkg | yaml
    imported_by: str
    created_at: datetime
    updated_at: datetime
    cards: tuple[Card, ...]
    retired: tuple[Card, ...] = ()
    topics: tuple[Topic, ...] = ()

    @property
    def quiz_cards(self) -> int:
        return sum(1 for card in self.cards if card.quiz is not None)


@dataclass(frozen=True, slots=True)
class NewCard:
    """One card of an import, before the store gives it an id: how it is matched to a stored card, and its body."""

    match_key: str
    body: str


@dataclass(frozen=True, slots=True)
class SaveCounts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    restored: int = 0  # retired before, in the file again
    retired: int = 0
    created: bool = False  # a new deck (not an update of one with the same name)


class DeckStore(Protocol):
    async def load_decks(self) -> list[DeckRecord]:
        """Every imported deck with its cards (active and retired)."""
        ...

    async def save_deck(
        self, owner: str, name: str, title: str, source: str, imported_by: str, now: datetime, cards: list[NewCard]
    ) -> tuple[DeckRecord, SaveCounts]:
        """Create the deck, or update the one of that owner and name in place, in one transaction: a card
        whose match key is stored keeps its id; new ones are added; stored ones not in `cards` are retired."""
        ...

    async def delete_deck(self, deck_id: int) -> int:
        """Delete the deck, its cards, every review, card state and open question of them, and drop it from
        every chat's choice; returns how many reviews went with it."""
        ...

    async def deck_version(self) -> tuple[int, int]:
        """(number of decks, latest update time): changes whenever a deck is imported, updated or removed."""
        ...

    async def chat_decks(self, chat_key: str) -> list[str] | None:
        """The deck names a chat chose, or None when it never chose (the shipped bank)."""
        ...

    async def set_chat_decks(self, chat_key: str, names: list[str] | None, now: datetime) -> None:
        """Remember a chat's choice (None: back to the shipped bank)."""
        ...


# --- cards as stored ---------------------------------------------------------------------------------


def card_body(card: ImportedCard, topic: Topic) -> str:
    """An imported card as the JSON the store keeps (everything but its id and deck)."""
    body: dict[str, object] = {
        "question": card.question,
        "answer": card.answer,
        "topic": topic.slug,
        "topic_name": topic.name,
        "difficulty": card.difficulty,
        "key_points": list(card.key_points),
        "follow_ups": list(card.follow_ups),
    }
    if card.correct is not None:
        body["quiz"] = {
            "prompt": card.quiz_prompt or card.question,
            "correct": card.correct,
            "distractors": list(card.distractors),
            "explanation": card.explanation or "",
        }
    return json.dumps(body, ensure_ascii=False, sort_keys=True)


def card_from_body(card_id: str, deck: str, body: str) -> tuple[Card, Topic]:
    """The Card (and its topic) a stored body describes."""
    data = json.loads(body)
    quiz = data.get("quiz")
    card = Card(
        id=card_id,
        deck=deck,
        topic=data["topic"],
        kind=Kind.TECHNICAL,
        difficulty=int(data["difficulty"]),
        question=data["question"],
        answer=data["answer"],
        key_points=tuple(KeyPoint(text) for text in data["key_points"]),
        follow_ups=tuple(data.get("follow_ups", ())),
        quiz=None
        if quiz is None
        else QuizItem(
            prompt=quiz.get("prompt", data["question"]),
            correct=quiz["correct"],
            distractors=tuple(quiz["distractors"]),
            explanation=quiz["explanation"],
        ),
    )
    return card, Topic(slug=data["topic"], name=data["topic_name"])


def match_key(card: ImportedCard) -> str:
    """How a re-import finds a stored card: the file's own id, else the question text (case and spaces aside)."""
    if card.local_id:
        return "id:" + card.local_id.strip()
    return "q:" + " ".join(card.question.casefold().split())


# --- the library -------------------------------------------------------------------------------------


class Library(QuestionBank):
    """The shipped bank plus the imported decks; `pool_for` is what one chat draws from."""

    def __init__(self, shipped: QuestionBank, store: DeckStore | None = None) -> None:
        super().__init__(
            shipped.cards,
            shipped.topics,
            shipped.decks,
            shipped.glossary,
            {topic.slug: shipped.aliases(topic.slug) for topic in shipped.topics},
        )
        self.shipped = shipped
        self.store = store
        self._decks: dict[int, DeckRecord] = {}
        self._imported: dict[str, Card] = {}
        self._choices: dict[str, tuple[str, ...] | None] = {}
        self._pools: dict[tuple[str, ...], QuestionBank] = {}
        self._loaded = store is None
        self._version: tuple[int, int] = (0, 0)
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        """Read the imported decks from the store (once; `build_app` calls it at start)."""
        if not self._loaded:
            await self.reload()

    async def reload(self) -> None:
        """Read the imported decks and choices again (after /forget deleted a learner's own decks)."""
        if self.store is None:
            return
        version = await self.store.deck_version()
        decks = await self.store.load_decks()
        async with self._lock:
            self._version = version
            self._decks.clear()
            self._imported.clear()
            self._choices.clear()
            for deck in decks:
                self._put(deck)
            self._loaded = True

    async def refresh(self) -> None:
        """Once a minute (the daily tick): see what other processes changed (`studybot deck import` while the
        bot runs, another replica's /deck), reading the decks again only when they changed."""
        if self.store is None or not self._loaded:
            return
        version = await self.store.deck_version()
        if version != self._version:
            await self.reload()
        else:
            self._choices.clear()  # a choice made through another process is read again when next needed

    async def note_version(self) -> None:
        """After this process changed a deck: the version it now has (so `refresh` does not read it again)."""
        if self.store is not None:
            self._version = await self.store.deck_version()

    def _put(self, deck: DeckRecord) -> None:
        old = self._decks.get(deck.id)
        if old is not None:
            for card in (*old.cards, *old.retired):
                self._imported.pop(card.id, None)
        self._decks[deck.id] = deck
        for card in (*deck.cards, *deck.retired):
            self._imported[card.id] = card
        self._pools.clear()

    def _drop(self, deck_id: int) -> None:
        old = self._decks.pop(deck_id, None)
        if old is not None:
            for card in (*old.cards, *old.retired):
                self._imported.pop(card.id, None)
        self._pools.clear()
        self._choices.clear()

    def card(self, card_id: str) -> Card | None:
        return super().card(card_id) or self._imported.get(card_id)

    def find_topic(self, text: str) -> Topic | None:
        """A shipped topic as QuestionBank finds it, else an imported deck's topic by its exact slug."""
        found = super().find_topic(text)
        if found is not None:
            return found
        wanted = topic_key(text)
        return next((t for deck in self._decks.values() for t in deck.topics if t.slug == wanted), None)

    @property
    def parts(self) -> tuple[str, ...]:
        """The shipped bank's parts (its YAML decks), which can be chosen on their own."""
        return tuple(deck.slug for deck in self.shipped.decks)

    def all_decks(self) -> list[DeckRecord]:
        """Every imported deck, the operator's first, then by chat and name."""
        return sorted(self._decks.values(), key=lambda d: (d.owner, d.name))

    def deck(self, deck_id: int) -> DeckRecord | None:
        return self._decks.get(deck_id)

    def decks_for(self, chat_key: str) -> list[DeckRecord]:
        """The imported decks a chat may use: its own, then the operator's."""
        found = [d for d in self._decks.values() if d.owner in (chat_key, "")]
        return sorted(found, key=lambda d: (d.owner == "", d.name))

    def deck_named(self, chat_key: str, name: str) -> DeckRecord | None:
        """The chat's own deck of that name, else the operator's."""
        own = [d for d in self._decks.values() if d.name == name and d.owner == chat_key]
        shared = [d for d in self._decks.values() if d.name == name and d.owner == ""]
        return own[0] if own else shared[0] if shared else None

    def shared_deck(self, name: str) -> DeckRecord | None:
        return next((d for d in self._decks.values() if d.name == name and d.owner == ""), None)

    async def choice(self, chat_key: str) -> tuple[str, ...] | None:
        """The deck names a chat chose (None: never chose, the shipped bank)."""
        await self.open()
        if chat_key not in self._choices:
            names = None if self.store is None else await self.store.chat_decks(chat_key)
            self._choices[chat_key] = None if names is None else tuple(names)
        return self._choices[chat_key]

    async def set_choice(self, chat_key: str, names: tuple[str, ...] | None, now: datetime) -> None:
        if self.store is not None:
            await self.store.set_chat_decks(chat_key, None if names is None else list(names), now)
        self._choices[chat_key] = names

    async def pool_for(self, chat_key: str) -> QuestionBank:
        """The cards /question, /quiz and /daily draw from in this chat."""
        names = await self.choice(chat_key)
        if not names or names == (SHIPPED,):
            return self.shipped
        return self.pool_of(chat_key, names)

    def pool_of(self, chat_key: str, names: tuple[str, ...]) -> QuestionBank:
        """A QuestionBank of these decks (as `chat_key` sees them); the shipped bank when none is left."""
        resolved: list[tuple[str, int | str]] = []
        for name in names:
            if name == SHIPPED or name in self.parts:
                resolved.append((name, name))
            elif (deck := self.deck_named(chat_key, name)) is not None:
                resolved.append((name, deck.id))
        key = tuple(f"{name}={target}" for name, target in resolved)
        if not key:
            return self.shipped
        found = self._pools.get(key)
        if found is not None:
            return found
        cards: dict[str, Card] = {}
        topics: dict[str, Topic] = {}
        for _name, target in resolved:
            if isinstance(target, int):
                deck = self._decks[target]
                part = deck.cards
                named = {topic.slug: topic for topic in deck.topics}
            else:
                part = (
                    self.shipped.cards
                    if target == SHIPPED
                    else tuple(c for c in self.shipped.cards if c.deck == target)
                )
                named = {topic.slug: topic for topic in self.shipped.topics}
            for card in part:
                cards.setdefault(card.id, card)
                topics.setdefault(card.topic, named.get(card.topic) or Topic(card.topic, card.topic))
        pool = QuestionBank(
            cards.values(),
            topics.values(),
            glossary=self.shipped.glossary,
            aliases={slug: self.shipped.aliases(slug) for slug in topics},
        )
        pool.chosen = True
        self._pools[key] = pool
        return pool


# --- /deck -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    deck: DeckRecord
    counts: SaveCounts
    parsed: ParsedDeck
    filename: str


class DeckService:
    """/deck: list, choose, import and remove decks; `import_file` is also the CLI's way in."""

    def __init__(
        self,
        library: Library,
        store: DeckStore,
        clock: Clock,
        *,
        max_bytes: int = MAX_FILE_BYTES,
        max_cards: int = MAX_CARDS,
        parse: DeckParser,
    ) -> None:
        self.library = library
        self.store = store
        self.clock = clock
        self.max_bytes = max_bytes
        self.max_cards = max_cards
        self.parse = parse
        self._pending: dict[int, tuple[Identity, str, datetime]] = {}  # deck id -> who asked, where, when

    # --- routing ------------------------------------------------------------------------------------

    async def command(self, caller: Caller, args: str, upload: Upload | None = None) -> Reply:
        await self.library.open()
        action, _, rest = args.strip().partition(" ")
        action = action.casefold()
        rest = rest.strip()
        if action in ("", "list"):
            if upload is not None:
                return await self.import_upload(caller, rest, upload)
            return await self.listing(caller)
        if action == "use":
            return await self.use(caller, rest)
        if action == "remove":
            return await self.remove(caller, rest)
        if action == "import":
            return await self.import_upload(caller, rest, upload)
        return _say(f"I don't know “/deck {action[:20]}”. {USAGE}")

    def _refuse_non_admin(self, caller: Caller, what: str) -> Reply | None:
        if caller.chat.is_group and not caller.is_chat_admin:
            return _say(f"Only an admin of this chat can {what}.")
        return None

    # --- listing and choosing --------------------------------------------------------------------------

    async def listing(self, caller: Caller) -> Reply:
        key = caller.chat.key
        chosen = await self.library.choice(key) or (SHIPPED,)
        pool = await self.library.pool_for(key)

        def mark(name: str) -> str:
            return "✓ " if name in chosen else ""

        shipped = self.library.shipped
        items: list[tuple[str | Span, ...]] = [
            (
                mark(SHIPPED),
                Span(SHIPPED, "code"),
                f" — the StudyBot question bank: {plural(len(shipped), 'card')} in "
                f"{plural(len(shipped.topics), 'topic')}",
            )
        ]
        parts = [deck for deck in shipped.decks if deck.slug in chosen]
        for part in parts:
            items.append(
                (mark(part.slug), Span(part.slug, "code"), f" — part of the bank: {part.title} ({part.cards})")
            )
        for deck in self.library.decks_for(key):
            whose = "shared by the bot's operator" if deck.owner == "" else f"imported by {deck.imported_by}"
            quiz = f", {deck.quiz_cards} with a quiz" if deck.quiz_cards else ", none with a quiz"
            items.append(
                (
                    mark(deck.name),
                    Span(deck.name, "code"),
                    f" — {deck.title}: {plural(len(deck.cards), 'card')}{quiz}; {whose}, {deck.updated_at:%-d %b %Y}",
                )
            )
        in_use = ", ".join(chosen)
        blocks: list[Title | Bullets | Paragraph] = [
            Title("Decks"),
            Bullets(tuple(items)),
            Paragraph.of(f"This chat practises from: {in_use} ({plural(len(pool), 'card')}).")
            if not self.library.parts
            else Paragraph.of(
                f"This chat practises from: {in_use} ({plural(len(pool), 'card')}). "
                "The bank's parts can be chosen on their own: ",
                Span(", ".join(self.library.parts), "code"),
                ".",
            ),
            Paragraph.of(USAGE),
        ]
        return Reply(blocks=tuple(blocks))

    async def use(self, caller: Caller, text: str) -> Reply:
        if (refusal := self._refuse_non_admin(caller, "choose this chat's decks")) is not None:
            return refusal
        names = [n for n in re.split(r"[\s,]+", text.strip().casefold()) if n]
        if not names:
            return _say("Which decks? For example: /deck use bank,my-notes (send /deck to see them).")
        names = list(dict.fromkeys(names))
        if len(names) > CHOSEN_MAX:
            return _say(f"At most {CHOSEN_MAX} decks at once.")
        key = caller.chat.key
        unknown = [
            n for n in names if n != SHIPPED and n not in self.library.parts and self.library.deck_named(key, n) is None
        ]
        if unknown:
            known = [SHIPPED, *self.library.parts, *(d.name for d in self.library.decks_for(key))]
            return _say(f"I don't know the deck “{unknown[0][:40]}”. Decks here: {', '.join(dict.fromkeys(known))}.")
        empty = [
            n
            for n in names
            if (d := self.library.deck_named(key, n)) is not None
            and not d.cards
            and n not in self.library.parts
            and n != SHIPPED
        ]
        if empty:
            return _say(f"The deck {empty[0]} has no cards left to ask (all of them are retired).")
        chosen = tuple(names)
        await self.library.set_choice(key, None if chosen == (SHIPPED,) else chosen, self.clock.now())
        pool = self.library.pool_of(key, chosen)
        quiz = sum(1 for card in pool.cards if card.quiz is not None)
        lines = [
            Paragraph.of(
                f"This chat now practises from {', '.join(chosen)}: {plural(len(pool), 'card')}, "
                f"{quiz} of them with a quiz question. /question, /quiz and /daily draw from them."
            )
        ]
        if not quiz:
            lines.append(Paragraph.of("None of these cards has a quiz item, so /quiz has nothing to ask here."))
        return Reply(blocks=tuple(lines))

    # --- importing --------------------------------------------------------------------------------------

    async def import_upload(self, caller: Caller, text: str, upload: Upload | None) -> Reply:
        if (refusal := self._refuse_non_admin(caller, "import a deck into it")) is not None:
            return refusal
        words = text.split()
        skip_invalid = SKIP_INVALID in words or "skip-invalid" in words
        words = [w for w in words if w not in (SKIP_INVALID, "skip-invalid")]
        if upload is None:
            return _say(self._how_to_send(caller.chat.platform))
        name_text = words[0] if words else PurePath(upload.filename).stem
        name, problem = self.check_name(name_text, caller.chat.key)
        if problem:
            return _say(problem)
        if upload.size is not None and upload.size > self.max_bytes:
            return _say(f"{upload.filename} is {_size(upload.size)}; the limit is {_size(self.max_bytes)}.")
        try:
            data = await upload.read()
        except UploadFailed as failed:  # the platform's own words (too big for it, try again, ...)
            return _say(failed.message)
        try:
            outcome = await self.import_file(
                owner=caller.chat.key,
                name=name,
                filename=upload.filename,
                data=data,
                imported_by=caller.display_name.strip()[:64] or "someone",
                skip_invalid=skip_invalid,
            )
        except DeckFileError as exc:
            return Reply(blocks=_refusal_blocks(upload.filename, exc.problems, skip_invalid))
        if outcome.counts.created:
            chosen = await self.library.choice(caller.chat.key) or (SHIPPED,)
            if name not in chosen and len(chosen) < CHOSEN_MAX:
                await self.library.set_choice(caller.chat.key, (*chosen, name), self.clock.now())
        return Reply(blocks=summary_blocks(outcome, added_to_chat=outcome.counts.created))

    def _how_to_send(self, platform: str) -> str:
        if platform == "telegram":
            how = "send the file to me with the caption /deck import NAME (or reply to it with /deck import NAME)"
        elif platform == "discord":
            how = "use /deck with action import and attach the file in its file option"
        else:
            how = "type /deck import PATH"
        return (
            f"To import a deck, {how}. A CSV needs a header row with question and answer (optional: topic, "
            "key_points, correct, distractors, explanation, difficulty); an Anki .apkg or a YAML deck works too."
        )

    def check_name(self, text: str, owner: str) -> tuple[str, str | None]:
        """A deck name from what was typed (or the file name): (slug, None), or ("", why not)."""
        name = slug_of(text)[:NAME_MAX].strip("-")
        if not name:
            return "", "Give the deck a name with letters or digits, e.g. /deck import my-notes."
        if name in RESERVED or name in self.library.parts:
            return "", f"“{name}” is a name the bot uses already; choose another, e.g. my-{name}."
        if owner and self.library.shared_deck(name) is not None and self.library.deck_named(owner, name) is None:
            return "", f"“{name}” is a deck shared by the bot's operator; choose another name."
        return name, None

    async def import_file(
        self,
        *,
        owner: str,
        name: str,
        filename: str,
        data: bytes,
        imported_by: str,
        skip_invalid: bool = False,
        max_bytes: int | None = None,
    ) -> ImportOutcome:
        """Parse the file (off the event loop) and save it as the deck `name` of `owner`; raises DeckFileError."""
        parsed = await asyncio.to_thread(
            self.parse,
            filename,
            data,
            skip_invalid=skip_invalid,
            max_bytes=self.max_bytes if max_bytes is None else max_bytes,
            max_cards=self.max_cards,
        )
        title = (parsed.title or name).strip()[:100] or name
        default_topic = Topic(slug=name, name=title)
        cards = [
            NewCard(
                match_key=match_key(card),
                body=card_body(card, Topic(card.topic, card.topic_name or card.topic) if card.topic else default_topic),
            )
            for card in parsed.cards
        ]
        deck, counts = await self.store.save_deck(owner, name, title, parsed.kind, imported_by, self.clock.now(), cards)
        self.library._put(deck)
        await self.library.note_version()
        return ImportOutcome(deck=deck, counts=counts, parsed=parsed, filename=filename)

    # --- removing ---------------------------------------------------------------------------------------

    async def remove(self, caller: Caller, text: str) -> Reply:
        if (refusal := self._refuse_non_admin(caller, "remove its decks")) is not None:
            return refusal
        name = text.strip().casefold()
        if not name:
            return _say("Which deck? For example: /deck remove my-notes (send /deck to see them).")
        if name == SHIPPED or name in self.library.parts:
            return _say("The shipped bank cannot be removed; /deck use chooses what this chat draws from.")
        deck = self.library.deck_named(caller.chat.key, name)
        if deck is None:
            return _say(f"This chat has no deck called “{name[:40]}”. Send /deck to see them.")
        if deck.owner != caller.chat.key:
            return _say(f"{deck.name} is shared by the bot's operator; only they can remove it (studybot deck remove).")
        self._pending[deck.id] = (caller.identity, caller.chat.key, self.clock.now())
        return Reply(
            blocks=(
                Paragraph.of(Span(f"Remove the deck {deck.name}?", "bold")),
                Paragraph.of(
                    f"Its {plural(len(deck.cards) + len(deck.retired), 'card')} and everyone's reviews of them are "
                    "deleted. Quiz points already won stay. It cannot be undone."
                ),
            ),
            buttons=(
                (
                    Button("Remove it", Action(Verb.DECK_REMOVE, deck.id, CONFIRM).encode()),
                    Button("Keep it", Action(Verb.DECK_REMOVE, deck.id, KEEP).encode()),
                ),
            ),
        )

    async def press(self, caller: Caller, data: str) -> Reply:
        """/deck remove's buttons: only the admin who asked, in the chat where they asked, within 10 minutes."""
        action = parse_action(data)
        if action is None or action.verb is not Verb.DECK_REMOVE or action.arg not in (CONFIRM, KEEP):
            return notice("That button is not valid any more.")
        pending = self._pending.get(action.target)
        if pending is None or self.clock.now() - pending[2] > CONFIRM_FOR:
            self._pending.pop(action.target, None)
            return notice("That button has expired; send /deck remove NAME again.")
        asker, chat_key, _ = pending
        if caller.identity != asker or caller.chat.key != chat_key:
            return notice("Only the person who asked can confirm this.")
        del self._pending[action.target]
        deck = self.library.deck(action.target)
        if action.arg == KEEP or deck is None:
            return Reply(blocks=(Paragraph.of("Kept: nothing was removed."),), edit=True)
        reviews = await self.store.delete_deck(deck.id)
        self.library._drop(deck.id)
        await self.library.note_version()
        return Reply(
            blocks=(
                Paragraph.of(
                    f"Removed the deck {deck.name} and {plural(reviews, 'review')} of its cards. "
                    "Send /deck to see what this chat practises from now."
                ),
            ),
            edit=True,
        )


def _say(text: str) -> Reply:
    return Reply(blocks=(Paragraph.of(text),))


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{max(1, round(n / 1024))} KB"


def _refusal_blocks(filename: str, problems: list[str], skipped_invalid: bool) -> tuple[Paragraph | Bullets, ...]:
    shown = problems[:10]
    blocks: tuple[Paragraph | Bullets, ...] = (
        Paragraph.of(f"Nothing was imported from {filename}:"),
        Bullets(tuple((problem,) for problem in shown)),
    )
    if len(problems) > len(shown):
        blocks += (Paragraph.of(f"…and {len(problems) - len(shown)} more."),)
    if not skipped_invalid and any(("row " in p or "note " in p or "card " in p) for p in shown):
        blocks += (Paragraph.of("Fix these and send it again, or add --skip-invalid to import the valid part."),)
    return blocks


def summary_blocks(outcome: ImportOutcome, *, added_to_chat: bool = False) -> tuple[Paragraph | Bullets, ...]:
    """What an import did: cards in, skipped (and why), retired, media left out; how to use the deck."""
    deck, counts, parsed = outcome.deck, outcome.counts, outcome.parsed
    verb = "Imported" if counts.created else "Updated"
    changes = []
    if not counts.created:
        changes = [
            f"{counts.added} new",
            f"{counts.updated} changed",
            f"{counts.unchanged} unchanged",
        ]
        if counts.restored:
            changes.append(f"{counts.restored} back from retirement")
        changes.append(f"{counts.retired} retired (kept for history, never asked)")
    head = f"{verb} the deck {deck.name} from {outcome.filename}: {plural(len(parsed.cards), 'card')}"
    head += f" ({', '.join(changes)})." if changes else "."
    blocks: list[Paragraph | Bullets] = [Paragraph.of(head)]
    topics = Counter(card.topic for card in deck.cards)
    blocks.append(
        Paragraph.of(
            f"{deck.quiz_cards} of its cards have a quiz question (for /quiz); "
            f"{sum(1 for c in deck.cards if c.key_points)} have key points to check typed answers against. "
            f"Topics: {', '.join(f'{slug} ({n})' for slug, n in topics.most_common(8))}."
        )
    )
    if parsed.skipped:
        blocks.append(Paragraph.of(f"Skipped {plural(len(parsed.skipped), 'row')}:"))
        blocks.append(Bullets(tuple((line,) for line in parsed.skipped[:10])))
        if len(parsed.skipped) > 10:
            blocks.append(Paragraph.of(f"…and {len(parsed.skipped) - 10} more."))
    if parsed.media_skipped:
        blocks.append(Paragraph.of(f"{plural(parsed.media_skipped, 'media file')} (images, sounds) left out."))
    if added_to_chat:
        blocks.append(
            Paragraph.of(
                f"It is now in use in this chat next to what was chosen before; /deck use {deck.name} practises "
                "it alone, /deck use bank goes back to the shipped bank."
            )
        )
    return tuple(blocks)
