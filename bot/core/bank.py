"""QuestionBank: the decks of content/, loaded and validated against the card schema."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from bot.core.grading import Glossary, GlossaryError
from bot.core.model import Card, KeyPoint, Kind, QuizItem, Topic

# Telegram's quiz-poll limits, which every quiz item must fit.
QUESTION_MAX = 300
OPTION_MAX = 100
EXPLANATION_MAX = 200
EXPLANATION_MAX_LINE_BREAKS = 2
SOURCE_QUESTIONS = 30  # numbered questions in the source article

SLUG = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
Slug = Annotated[str, StringConstraints(pattern=SLUG, max_length=48)]
NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


# Words the commands read in the place of a topic (/question weak, /interview coach mixed, /plan off, ...):
# a topic alias may not be one of them.
COMMAND_WORDS = frozenset({"weak", "mixed", "coach", "real", "history", "off", "all", "week"})
ALIAS_MAX = 40


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def topic_key(text: str) -> str:
    """How a typed topic is compared with slugs, names and aliases: case-folded, spaces and underscores
    as hyphens ("Large language models" -> "large-language-models")."""
    return re.sub(r"[\s_]+", "-", text.strip().casefold())


class QuizModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=QUESTION_MAX)]
    correct: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=OPTION_MAX)]
    distractors: list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=OPTION_MAX)]] = (
        Field(min_length=3, max_length=3)
    )
    explanation: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=EXPLANATION_MAX)]

    @model_validator(mode="after")
    def _options_differ(self) -> QuizModel:
        if self.explanation.count("\n") > EXPLANATION_MAX_LINE_BREAKS:
            raise ValueError(f"explanation: at most {EXPLANATION_MAX_LINE_BREAKS} line breaks")
        seen = {_norm(self.correct)}
        for option in self.distractors:
            if _norm(option) in seen:
                if _norm(option) == _norm(self.correct):
                    raise ValueError(f"distractors: repeats the correct option {option!r}")
                raise ValueError(f"distractors: {option!r} appears twice")
            seen.add(_norm(option))
        return self


Phrase = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
GLOSSARY_FILE = "glossary.yaml"  # reserved in a content folder: the grader's shared synonyms, not a deck


class KeyPointModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    point: Phrase
    accept: list[Phrase] = Field(default_factory=list, max_length=8)

    @model_validator(mode="after")
    def _distinct(self) -> KeyPointModel:
        seen = {_norm(self.point)}
        for phrase in self.accept:
            if _norm(phrase) in seen:
                raise ValueError(f"accept: {phrase!r} repeats the point or another accepted phrase")
            seen.add(_norm(phrase))
        return self


class CardModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Slug
    topic: Slug
    kind: Literal["technical", "behavioral"]
    difficulty: int = Field(ge=1, le=3)
    seed: int | None = Field(default=None, ge=1, le=SOURCE_QUESTIONS)
    question: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=QUESTION_MAX)]
    answer: NonBlank
    key_points: list[Phrase | KeyPointModel] = Field(min_length=3, max_length=6)
    quiz: QuizModel | None = None
    follow_ups: list[
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=QUESTION_MAX)]
    ] = Field(default_factory=list, max_length=3)

    @model_validator(mode="after")
    def _technical_cards_are_complete(self) -> CardModel:
        if self.kind == "technical":
            if self.quiz is None:
                raise ValueError("quiz: a technical card needs a multiple-choice item")
            if len(self.follow_ups) < 2:
                raise ValueError("follow_ups: a technical card needs 2-3 follow-up questions")
        return self


class DeckHeader(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deck: Slug
    title: NonBlank
    description: str = ""
    order: int = 100  # decks (and so topics) are listed by this, then by file name
    topics: dict[Slug, NonBlank] = Field(min_length=1)
    # other names a topic answers to (/question ethics): topic slug -> aliases, checked in QuestionBank.load
    aliases: dict[Slug, list[str]] = Field(default_factory=dict)
    cards: list[Any] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class DeckInfo:
    slug: str
    title: str
    path: str
    cards: int


class DeckError(Exception):
    """A deck (or several) failed validation; `problems` lists every one, each naming file, card and field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the question bank:\n" + "\n".join(problems))
        self.problems = problems


def _describe(error: Mapping[str, Any]) -> tuple[str, str]:
    loc = ".".join(str(part) for part in error.get("loc", ()))
    message = str(error.get("msg", "invalid"))
    message = message.removeprefix("Value error, ")
    head, sep, rest = message.partition(": ")
    if sep and re.fullmatch(r"[a-z_]+", head):
        loc, message = (f"{loc}.{head}" if loc else head), rest
    return loc or "card", message


class QuestionBank:
    """All loaded cards; lookup by id, topic and source-article question number."""

    def __init__(
        self,
        cards: Iterable[Card],
        topics: Iterable[Topic],
        decks: Iterable[DeckInfo] = (),
        glossary: Glossary | None = None,
        aliases: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self._cards: tuple[Card, ...] = tuple(cards)
        self._by_id = {card.id: card for card in self._cards}
        self._topics: tuple[Topic, ...] = tuple(topics)
        self._topic_by_slug = {topic.slug: topic for topic in self._topics}
        self._aliases: dict[str, tuple[str, ...]] = {
            slug: tuple(names) for slug, names in (aliases or {}).items() if slug in self._topic_by_slug
        }
        self._topic_by_alias = {
            topic_key(alias): self._topic_by_slug[slug] for slug, names in self._aliases.items() for alias in names
        }
        self._by_topic: dict[str, tuple[Card, ...]] = {
            topic.slug: tuple(c for c in self._cards if c.topic == topic.slug) for topic in self._topics
        }
        self.decks: tuple[DeckInfo, ...] = tuple(decks)
        self.glossary = glossary or Glossary()
        self.chosen = False  # a pool of the decks a chat chose (/deck use), not the shipped bank

    # --- loading -----------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> QuestionBank:
        """Load every `*.yaml`/`*.yml` deck in a folder (or one deck file); raise DeckError listing every problem."""
        if path.is_dir():
            files = sorted(f for f in [*path.glob("*.yaml"), *path.glob("*.yml")] if f.name != GLOSSARY_FILE)
            if not files:
                raise DeckError([f"{path}: no deck files (*.yaml) in this folder"])
        elif path.is_file():
            files = [path]
        else:
            raise DeckError([f"{path}: no such file or folder"])
        problems: list[str] = []
        glossary = _load_glossary(path / GLOSSARY_FILE if path.is_dir() else path.parent / GLOSSARY_FILE, problems)
        cards: list[Card] = []
        topics: dict[str, Topic] = {}
        topic_origin: dict[str, str] = {}
        decks: list[DeckInfo] = []
        card_origin: dict[str, str] = {}
        seed_origin: dict[int, str] = {}
        deck_origin: dict[str, str] = {}
        deck_order: dict[str, int] = {}
        declared_aliases: list[tuple[str, str, str]] = []  # (file, topic slug, alias), checked once all are read
        for file in files:
            name = file.name
            try:
                raw = yaml.safe_load(file.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
                problems.append(f"{name}: cannot read the deck: {exc}".replace("\n", " "))
                continue
            if not isinstance(raw, dict):
                problems.append(f"{name}: a deck is a mapping with deck, title, topics and cards")
                continue
            try:
                header = DeckHeader.model_validate(raw)
            except ValidationError as exc:
                for err in exc.errors():
                    field, message = _describe(err)
                    problems.append(f"{name}: deck field '{field}': {message}")
                continue
            if header.deck in deck_origin:
                problems.append(f"{name}: deck '{header.deck}' is also declared in {deck_origin[header.deck]}")
            deck_origin[header.deck] = name
            for slug, topic_name in header.topics.items():
                if slug in topics and topics[slug].name != topic_name:
                    problems.append(
                        f"{name}: topic '{slug}' is named {topic_name!r} here but "
                        f"{topics[slug].name!r} in {topic_origin[slug]}"
                    )
                    continue
                topics.setdefault(slug, Topic(slug=slug, name=topic_name))
                topic_origin.setdefault(slug, name)
            problems.extend(_alias_shape_problems(name, header, declared_aliases))
            count = 0
            for index, item in enumerate(header.cards):
                card_id = item.get("id") if isinstance(item, dict) else None
                label = f"card '{card_id}'" if isinstance(card_id, str) else f"card #{index + 1}"
                if not isinstance(item, dict):
                    problems.append(f"{name}: {label}: a card is a mapping of fields")
                    continue
                card_problems: list[str] = []
                model: CardModel | None = None
                try:
                    model = CardModel.model_validate(item)
                except ValidationError as exc:
                    for err in exc.errors():
                        field, message = _describe(err)
                        card_problems.append(f"field '{field}': {message}")
                topic = item.get("topic")
                if isinstance(topic, str) and topic not in header.topics:
                    declared = ", ".join(sorted(header.topics))
                    card_problems.append(f"field 'topic': unknown topic '{topic}' (declared: {declared})")
                if model is None and item.get("kind") == "technical":
                    if not item.get("quiz"):
                        card_problems.append("field 'quiz': a technical card needs a multiple-choice item")
                    follow_ups = item.get("follow_ups")
                    if not isinstance(follow_ups, list) or len(follow_ups) < 2:
                        card_problems.append("field 'follow_ups': a technical card needs 2-3 follow-up questions")
                if isinstance(card_id, str):
                    if card_id in card_origin:
                        card_problems.append(f"field 'id': duplicate id, also in {card_origin[card_id]}")
                    else:
                        card_origin[card_id] = name
                seed = item.get("seed")
                if isinstance(seed, int) and not isinstance(seed, bool):
                    if seed in seed_origin:
                        card_problems.append(
                            f"field 'seed': article question {seed} is already card '{seed_origin[seed]}'"
                        )
                    else:
                        seed_origin[seed] = str(card_id)
                if card_problems or model is None:
                    problems.extend(f"{name}: {label} {problem}" for problem in dict.fromkeys(card_problems))
                    continue
                cards.append(_to_card(model, header.deck))
                count += 1
            decks.append(DeckInfo(slug=header.deck, title=header.title, path=str(file), cards=count))
            deck_order[header.deck] = header.order
        aliases = _resolve_aliases(declared_aliases, topics, problems)
        if problems:
            raise DeckError(problems)
        decks.sort(key=lambda deck: (deck_order[deck.slug], deck.path))
        rank = {deck.slug: n for n, deck in enumerate(decks)}
        cards.sort(key=lambda card: rank[card.deck])
        ordered_topics: list[Topic] = []
        for card in cards:
            if topics[card.topic] not in ordered_topics:
                ordered_topics.append(topics[card.topic])
        return cls(cards, ordered_topics, decks, glossary, aliases)

    # --- lookup --------------------------------------------------------------------------------

    async def pool_for(self, chat_key: str) -> QuestionBank:
        """The cards a chat draws from: the whole bank here; a Library (bot.core.decks) knows chats' decks."""
        return self

    @property
    def cards(self) -> tuple[Card, ...]:
        return self._cards

    @property
    def topics(self) -> tuple[Topic, ...]:
        return self._topics

    def __len__(self) -> int:
        return len(self._cards)

    def card(self, card_id: str) -> Card | None:
        return self._by_id.get(card_id)

    def cards_in(self, topic: str) -> tuple[Card, ...]:
        return self._by_topic.get(topic, ())

    def seeds(self) -> dict[int, Card]:
        """Cards that are questions of the source article, by question number."""
        return {card.seed: card for card in self._cards if card.seed is not None}

    def aliases(self, topic: str) -> tuple[str, ...]:
        """The other names a topic answers to, as its deck declares them ("ethics", "fairness", ...)."""
        return self._aliases.get(topic, ())

    def find_topic(self, text: str) -> Topic | None:
        """A topic by slug, name or alias, case-insensitive ("LLMs" -> llm, "ethics" -> interpretability-ethics);
        else a unique prefix of a slug or name ("opt" -> optimization)."""
        wanted = topic_key(text)
        if not wanted:
            return None
        for topic in self._topics:
            if wanted in (topic.slug, topic_key(topic.name)):
                return topic
        aliased = self._topic_by_alias.get(wanted)
        if aliased is not None:
            return aliased
        matches = [
            t
            for t in self._topics
            if t.slug.startswith(wanted) or t.name.casefold().startswith(text.strip().casefold())
        ]
        return matches[0] if len(matches) == 1 else None

    def summary(self) -> str:
        """A human summary: decks, cards per topic and kind, coverage of the source article."""
        lines = [f"{len(self.decks)} deck(s), {len(self._cards)} cards, {len(self._topics)} topics"]
        accepted = sum(1 for card in self._cards for point in card.key_points if point.accept)
        points = sum(len(card.key_points) for card in self._cards)
        lines.append(f"key points: {points}, {accepted} with accepted phrasings; glossary: {len(self.glossary)} groups")
        for deck in self.decks:
            lines.append(f"  deck {deck.slug}: {deck.cards} cards ({Path(deck.path).name})")
        kinds = Counter(card.kind.value for card in self._cards)
        lines.append("by kind: " + ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())))
        difficulties = Counter(card.difficulty for card in self._cards)
        lines.append("by difficulty: " + ", ".join(f"{d}: {difficulties[d]}" for d in (1, 2, 3)))
        lines.append("by topic:")
        for topic in self._topics:
            in_topic = self.cards_in(topic.slug)
            levels = Counter(card.difficulty for card in in_topic)
            lines.append(
                f"  {topic.slug:<24} {len(in_topic):>3}  (difficulty 1/2/3: {levels[1]}/{levels[2]}/{levels[3]})"
            )
            if self.aliases(topic.slug):
                lines.append(f"  {'':<24} also: {', '.join(self.aliases(topic.slug))}")
        seeds = self.seeds()
        missing = [n for n in range(1, SOURCE_QUESTIONS + 1) if n not in seeds]
        lines.append(f"source article questions covered: {len(seeds)}/{SOURCE_QUESTIONS}")
        if missing:
            lines.append("  missing: " + ", ".join(str(n) for n in missing))
        return "\n".join(lines)


def _alias_shape_problems(file: str, header: DeckHeader, declared: list[tuple[str, str, str]]) -> list[str]:
    """Check one deck's `aliases:` on their own (declared topic, shape, command words, repeats) and queue
    the good ones in `declared` for the clash check across every deck."""
    problems: list[str] = []
    for slug, names in header.aliases.items():
        field = f"{file}: deck field 'aliases.{slug}'"
        if slug not in header.topics:
            declared_topics = ", ".join(sorted(header.topics))
            problems.append(f"{field}: unknown topic '{slug}' (declared: {declared_topics})")
            continue
        seen: set[str] = set()
        for alias in names:
            key = topic_key(alias)
            if not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", key) or not re.search(r"[a-z]", key):
                problems.append(
                    f"{field}: alias {alias!r}: use letters, digits, spaces and hyphens, with at least one letter"
                )
            elif len(alias.strip()) > ALIAS_MAX:
                problems.append(f"{field}: alias {alias!r}: at most {ALIAS_MAX} characters")
            elif key in COMMAND_WORDS:
                problems.append(f"{field}: alias {alias!r} is a word the commands read (/question {key} ...)")
            elif key in (slug, topic_key(header.topics[slug])):
                problems.append(f"{field}: alias {alias!r} repeats the topic's own slug or name")
            elif key in seen:
                problems.append(f"{field}: alias {alias!r} appears twice")
            else:
                seen.add(key)
                declared.append((file, slug, alias.strip()))
    return problems


def _resolve_aliases(
    declared: list[tuple[str, str, str]], topics: Mapping[str, Topic], problems: list[str]
) -> dict[str, tuple[str, ...]]:
    """Aliases per topic; an alias that is another topic's slug, name or alias is a problem, since
    `find_topic` could not tell which topic was meant."""
    owner: dict[str, tuple[str, str]] = {}  # key -> (topic slug, what it is of that topic)
    for topic in topics.values():
        owner.setdefault(topic.slug, (topic.slug, "slug"))
        owner.setdefault(topic_key(topic.name), (topic.slug, "name"))
    found: dict[str, list[str]] = {}
    for file, slug, alias in declared:
        key = topic_key(alias)
        claimed = owner.get(key)
        if claimed is not None and claimed[0] != slug:
            other, what = claimed
            problems.append(
                f"{file}: deck field 'aliases.{slug}': alias {alias!r} is already the {what} of topic '{other}'"
            )
            continue
        owner[key] = (slug, "alias")
        if key not in (topic_key(name) for name in found.get(slug, [])):
            found.setdefault(slug, []).append(alias)
    return {slug: tuple(names) for slug, names in found.items()}


def _load_glossary(file: Path, problems: list[str]) -> Glossary:
    """The grader's shared synonyms beside the decks; a missing file is an empty glossary."""
    if not file.is_file():
        return Glossary()
    try:
        return Glossary.from_data(yaml.safe_load(file.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, GlossaryError) as exc:
        problems.append(f"{file.name}: {exc}".replace("\n", " "))
        return Glossary()


def _to_card(model: CardModel, deck: str) -> Card:
    quiz = None
    if model.quiz is not None:
        quiz = QuizItem(
            prompt=model.quiz.prompt,
            correct=model.quiz.correct,
            distractors=tuple(model.quiz.distractors),
            explanation=model.quiz.explanation,
        )
    return Card(
        id=model.id,
        deck=deck,
        topic=model.topic,
        kind=Kind(model.kind),
        difficulty=model.difficulty,
        question=model.question,
        answer=model.answer.strip(),
        key_points=tuple(
            KeyPoint(point) if isinstance(point, str) else KeyPoint(point.point, tuple(point.accept))
            for point in model.key_points
        ),
        follow_ups=tuple(model.follow_ups),
        quiz=quiz,
        seed=model.seed,
    )
