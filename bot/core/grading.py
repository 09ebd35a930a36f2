"""Free-text answers: which of a card's key points a learner's own words cover.

The offline grader is lexical on purpose (no model to download, explainable to the learner):
- words are folded (case, accents, British spellings) and stemmed with the Snowball stemmer;
- a shared glossary rewrites abbreviations and synonyms to one canonical term ("BN", "batchnorm"
  -> "batch normalization") in the answer and in the key points alike;
- a key point is covered when the answer holds (nearly) all the content words of the point or of
  one of its accepted phrasings, rare words weighing more than common ones;
- an answer that shares too little of the card's own vocabulary is off topic and earns nothing;
- non-answers (a greeting, "idk", a stray key or escape sequence, a word or two) are not graded.

It checks coverage, not correctness: "dropout is used at test time" has the words of a key point
while saying the opposite. The learner is told so, and to compare with the model answer.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import snowballstemmer

from bot.core.model import Card, KeyPoint, Rating

GraderName = Literal["lexical", "llm"]

_STOPWORDS = frozenset(
    """a an the of to in on for and or but with by from as at is are be been being was were it its this that these
    those than then into onto over under via per each every any all some can could may might will would
    should must do does did done has have had very more most less least much many such so also just only which vs versus
    who whom whose what when where why how your you we our they their them he she his her i me my one
    there here if about because while up out get gets got i'm it's thing things like well really basically
    actually e g eg ie etc""".split()
)
# Words that say nothing about any card in particular; they never make a key point or a topic.
_GENERIC = frozenset(
    """model models use used using make makes made way ways good bad better worse work works working lot lots
    need needs thing important different example also often usually""".split()
)
# Negations are one content word, "not", so "not symmetric" needs a negation in the answer.
NOT = "not"
_NEGATIONS = frozenset(
    """not no never without cannot isn aren doesn don didn wasn weren won wouldn shouldn couldn hasn haven nor
    neither none non nothing""".split()
)
_BRITISH = re.compile(r"is(ation|ations|e|ed|es|ing|er|ers)$")
_WORD = re.compile(r"[^\W_]+")
_COMPOUND = re.compile(r"[^\W_]+(?:-[^\W_]+)+")
# Two stems this long or longer that start alike are one word family ("symmetr", "symmetri").
PREFIX_MATCH = 5
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]|\^\[|\[\d*[ABCD~]$")
# A message made only of these words is a greeting, a pass or a shrug, not an answer.
_FILLER = frozenset(
    """hi hello hey hiya yo thanks thank you thx ty ok okay sure yes yeah yep no nope idk dunno pass skip next
    test testing lol hmm hm um uh huh what i don t know not idea clue good morning evening bye help please sorry
    question answer""".split()
)

# A key point counts as covered when at least this share of its (weighted) content words appear
# (measured on the labelled answer set: `python -m bench grading`).
COVERAGE_THRESHOLD = 0.5
# An answer is off topic when less than this share of its (weighted) content words belong to the card,
TOPIC_FLOOR = 0.1
# or when another card's vocabulary covers it this many times better.
TOPIC_RATIO = 0.5
# Fewer content words than this is not an answer (unless they are the card's own words).
MIN_CONTENT_WORDS = 3

_stemmer = snowballstemmer.stemmer("english")
_stem_cache: dict[str, str] = {}


def fold(text: str) -> str:
    """Lower case without accents."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words(text: str) -> list[str]:
    """Folded words of a text, in order (punctuation and symbols dropped)."""
    return _WORD.findall(fold(text))


def stem(word: str) -> str:
    """The Snowball (Porter 2) stem of a folded word, British -ise spellings first turned into -ize."""
    cached = _stem_cache.get(word)
    if cached is None:
        cached = _stemmer.stemWord(_BRITISH.sub(r"iz\1", word))
        if len(_stem_cache) < 200_000:
            _stem_cache[word] = cached
    return cached


# --- the glossary -------------------------------------------------------------------------------


class GlossaryError(ValueError):
    """The glossary file is malformed; the message names the group."""


@dataclass(frozen=True)
class Glossary:
    """Groups of terms that mean the same; each is rewritten to its group's first term."""

    groups: tuple[tuple[str, ...], ...] = ()
    _rules: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict, init=False, repr=False)
    _by_first: dict[str, tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]] = field(
        default_factory=dict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        owner: dict[tuple[str, ...], int] = {}
        for number, group in enumerate(self.groups, 1):
            if len(group) < 2:
                raise GlossaryError(f"group {number}: needs a canonical term and at least one other")
            canonical = tuple(words(group[0]))
            for term in group:
                key = tuple(stem(w) for w in words(term))  # matched on stems: plurals and -ise spellings too
                if not key:
                    raise GlossaryError(f"group {number}: {term!r} has no words")
                if len(key) > 5:
                    raise GlossaryError(f"group {number}: {term!r} is longer than 5 words")
                if key in owner and owner[key] != number:
                    raise GlossaryError(f"group {number}: {term!r} is already in group {owner[key]}")
                owner[key] = number
                # the canonical term too (to itself), so that a shorter synonym inside it cannot split it:
                # "guardrail metrics" stays itself instead of becoming "guardrail metrics metrics"
                self._rules[key] = canonical
        by_first: dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]] = {}
        for key, canonical in self._rules.items():
            by_first.setdefault(key[0], []).append((key, canonical))
        for first, rules in by_first.items():  # longest terms first
            self._by_first[first] = tuple(sorted(rules, key=lambda rule: -len(rule[0])))

    @classmethod
    def from_data(cls, data: object) -> Glossary:
        """From the parsed glossary file: {"groups": [[canonical, other, ...], ...]}."""
        if not isinstance(data, Mapping) or set(data) != {"groups"} or not isinstance(data["groups"], list):
            raise GlossaryError("the glossary is a mapping with one key, 'groups': a list of lists of terms")
        groups: list[tuple[str, ...]] = []
        for number, group in enumerate(data["groups"], 1):
            if not isinstance(group, list) or not all(isinstance(t, str) and t.strip() for t in group):
                raise GlossaryError(f"group {number}: a list of non-empty terms")
            groups.append(tuple(t.strip() for t in group))
        return cls(tuple(groups))

    def rewrite(self, tokens: Sequence[str]) -> list[str]:
        """Replace every glossary term (longest first) by its canonical words."""
        if not self._rules:
            return list(tokens)
        stems = [stem(t) for t in tokens]
        out: list[str] = []
        i = 0
        while i < len(tokens):
            for key, canonical in self._by_first.get(stems[i], ()):
                if tuple(stems[i : i + len(key)]) == key:
                    out.extend(canonical)
                    i += len(key)
                    break
            else:
                out.append(tokens[i])
                i += 1
        return out

    def __len__(self) -> int:
        return len(self.groups)


# --- judgements ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Judgement:
    """What a grader decided about one answer to one card."""

    card_id: str
    grader: GraderName
    key_points: tuple[KeyPoint, ...]
    covered: tuple[int, ...]  # indices into key_points, ascending
    off_topic: bool = False
    misconceptions: tuple[str, ...] = ()
    feedback: str | None = None
    follow_up: str | None = None
    evidence: tuple[tuple[int, str], ...] = ()  # (key point index, quote from the answer), model grading only

    @property
    def score(self) -> float:
        return len(self.covered) / len(self.key_points) if self.key_points else 0.0

    @property
    def passed(self) -> bool:
        """Would pass in an interview: at least half of the key points."""
        return self.score >= 0.5

    @property
    def missed(self) -> tuple[int, ...]:
        return tuple(i for i in range(len(self.key_points)) if i not in self.covered)

    @property
    def suggested_rating(self) -> Rating:
        """Every point: Easy; at least half: Good; some: Hard; none: Again."""
        if self.key_points and len(self.covered) == len(self.key_points):
            return Rating.EASY
        if self.passed:
            return Rating.GOOD
        return Rating.HARD if self.covered else Rating.AGAIN

    def as_dict(self) -> dict[str, object]:
        return {
            "card": self.card_id,
            "grader": self.grader,
            "score": round(self.score, 4),
            "covered": list(self.covered),
            "key_points": [{"text": p.text, "covered": i in self.covered} for i, p in enumerate(self.key_points)],
            "off_topic": self.off_topic,
            "misconceptions": list(self.misconceptions),
            "feedback": self.feedback,
            "follow_up": self.follow_up,
            "suggested_rating": self.suggested_rating.label,
        }


# --- the offline grader -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _CardIndex:
    phrasings: tuple[tuple[frozenset[str], ...], ...]  # per key point: the term set of each phrasing
    vocabulary: frozenset[str]
    follow_ups: tuple[frozenset[str], ...]


class LexicalGrader:
    """The offline grader: stems, glossary, accepted phrasings, an off-topic guard and non-answers."""

    name: GraderName = "lexical"

    def __init__(self, cards: Iterable[Card], glossary: Glossary | None = None) -> None:
        self.glossary = glossary or Glossary()
        self._cards = {card.id: card for card in cards}
        self._index: dict[str, _CardIndex] = {}
        documents = {card.id: self._card_terms(card) for card in self._cards.values()}
        frequency: Counter[str] = Counter(term for doc in documents.values() for term in doc)
        self._postings: dict[str, list[str]] = {}
        for card_id, doc in documents.items():
            for term in doc:
                self._postings.setdefault(term, []).append(card_id)
        total = max(1, len(documents))
        # Rare words say more: a term in every card weighs ~0.3, a term in one card ~1.
        self._idf = {term: math.log(1 + total / n) / math.log(1 + total) for term, n in frequency.items()}

    def terms(self, text: str) -> list[str]:
        """Stemmed content words after the glossary's rewrite, in order; every negation becomes "not"."""
        tokens = self.glossary.rewrite(words(text))
        return [
            NOT if t in _NEGATIONS else stem(t)
            for t in tokens
            if t not in _STOPWORDS and not (len(t) == 1 and t.isalpha())
        ]

    def present_terms(self, text: str, terms: Iterable[str] | None = None) -> set[str]:
        """The answer's terms, plus hyphenated words joined ("non-linear" is also "nonlinear")."""
        found = set(self.terms(text) if terms is None else terms)
        return found | {stem(w.replace("-", "")) for w in _COMPOUND.findall(fold(text))}

    def _phrasing_variants(self, phrase: str) -> list[frozenset[str]]:
        variants = [frozenset(self.terms(phrase))]
        if _COMPOUND.search(fold(phrase)):
            variants.append(frozenset(self.terms(_COMPOUND.sub(lambda m: m.group(0).replace("-", ""), fold(phrase)))))
        return [v - _GENERIC_STEMS or v for v in variants if v]

    def weight(self, term: str) -> float:
        if term in _GENERIC_STEMS:
            return 0.15
        return self._idf.get(term, 1.0)

    def _card_terms(self, card: Card) -> set[str]:
        texts = [card.question, card.answer, *card.follow_ups]
        texts += [phrase for point in card.key_points for phrase in point.phrasings]
        return {term for text in texts for term in self.terms(text)}

    def index(self, card: Card) -> _CardIndex:
        found = self._index.get(card.id)
        if found is None or card is not self._cards.get(card.id):
            found = _CardIndex(
                phrasings=tuple(
                    tuple(variant for phrase in point.phrasings for variant in self._phrasing_variants(phrase))
                    for point in card.key_points
                ),
                vocabulary=frozenset(self._card_terms(card)),
                follow_ups=tuple(frozenset(self.terms(question)) for question in card.follow_ups),
            )
            if card.id not in self._cards:
                for term in found.vocabulary:
                    self._postings.setdefault(term, []).append(card.id)
            self._cards[card.id] = card
            self._index[card.id] = found
        return found

    def _share(self, wanted: Iterable[str], present: set[str]) -> float:
        """The weighted share of `wanted` that is present, word families included."""
        total = hit = 0.0
        for term in wanted:
            w = self.weight(term)
            total += w
            if term in present or _in_family(term, present):
                hit += w
        return hit / total if total else 0.0

    def _covers(self, wanted: frozenset[str], present: set[str]) -> bool:
        """Enough of a phrasing's weight is present, its rarest word included (when it has several):
        "smaller learning rate" is not "higher learning rates"."""
        if self._share(wanted, present) < COVERAGE_THRESHOLD - 1e-9:
            return False
        if len(wanted) < 2:
            return True
        rarest = max(wanted, key=lambda term: (self.weight(term), term))
        return rarest in present or _in_family(rarest, present)

    def off_topic(self, card: Card, answer_terms: Sequence[str]) -> bool:
        """Too little of the answer is this card's, or another card's vocabulary fits it far better."""
        self.index(card)
        known = {term for term in answer_terms if term in self._idf}
        if not known:
            return False
        hits: dict[str, float] = {}
        total = 0.0
        for term in known:
            w = self.weight(term)
            total += w
            for card_id in self._postings.get(term, ()):
                hits[card_id] = hits.get(card_id, 0.0) + w
        own = hits.get(card.id, 0.0) / total
        best = max(hits.values(), default=0.0) / total
        return own < TOPIC_FLOOR or own < TOPIC_RATIO * best

    def non_answer(self, card: Card, text: str, options: int = 0) -> str | None:
        """Why `text` is not an answer at all (to leave the question open), or None when it is one."""
        stripped = text.strip()
        if not stripped or _CONTROL.search(stripped):
            return "it looks like a stray key or control sequence"
        if re.fullmatch(r"[\W\d_]*", stripped):
            return (
                "a number or symbols alone is not an answer"
                if re.search(r"\d", stripped)
                else ("punctuation alone is not an answer")
            )
        if all(w in _FILLER for w in words(stripped)):
            return "that reads as a greeting or a pass, not an answer"
        if len(stripped) <= 2 and stripped.isalpha():
            if options:
                letters = "ABCDEFGHIJ"[:options]
                return f"“{stripped}” is not one of the options ({', '.join(letters)})"
            return "a letter or two is not an answer"
        content = self.terms(stripped)
        if len(content) < MIN_CONTENT_WORDS:
            vocabulary = self.index(card).vocabulary
            if len(content) < 2 or not any(term in vocabulary for term in content):
                return "it is too short to grade"
        return None

    async def judge(self, card: Card, answer: str, learner_id: int | None = None) -> Judgement:
        """The Grader port: the same as `grade`, which needs no waiting."""
        return self.grade(card, answer)

    def grade(self, card: Card, answer: str) -> Judgement:
        """Which key points the answer covers; nothing when it is off topic."""
        index = self.index(card)
        answer_terms = self.terms(answer)
        present = self.present_terms(answer, answer_terms)
        off_topic = self.off_topic(card, answer_terms)
        covered: list[int] = []
        if not off_topic:
            for n, phrasings in enumerate(index.phrasings):
                if any(self._covers(terms, present) for terms in phrasings):
                    covered.append(n)
        return Judgement(
            card_id=card.id,
            grader="lexical",
            key_points=card.key_points,
            covered=tuple(covered),
            off_topic=off_topic,
            follow_up=self.follow_up_for(card, tuple(i for i in range(len(card.key_points)) if i not in covered)),
        )

    def follow_up_for(self, card: Card, missed: Sequence[int]) -> str | None:
        """The card's follow-up question closest to what the answer missed (else its first one)."""
        if not card.follow_ups:
            return None
        index = self.index(card)
        missing: set[str] = set()
        for n in missed:
            for terms in index.phrasings[n]:
                missing |= terms
        best = max(range(len(card.follow_ups)), key=lambda i: (len(index.follow_ups[i] & missing), -i))
        return card.follow_ups[best]


_GENERIC_STEMS = frozenset(stem(w) for w in _GENERIC)


def _in_family(term: str, present: set[str] | frozenset[str]) -> bool:
    """Whether a present stem of at least PREFIX_MATCH letters starts with `term`, or `term` starts with one."""
    if len(term) < PREFIX_MATCH:
        return False
    if any(term[:n] in present for n in range(PREFIX_MATCH, len(term))):
        return True
    return any(other.startswith(term) for other in present if len(other) > len(term))
