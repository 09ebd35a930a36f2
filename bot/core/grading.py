"""Free-text answers: which of a card's key points a learner's own words cover.

Lexical on purpose (no model to download, explainable to the learner): case, punctuation,
plurals, British/American spellings and word order do not matter.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_STOPWORDS = frozenset(
    """a an the of to in on for and or but with by from as at is are be been being was were it its this that these
    those than then into onto over under via per each every any all some no not can could may might will would
    should must do does did done has have had very more most less least much many such so also just only which
    who whom whose what when where why how your you we our they their them he she his her i me my one two""".split()
)

_BRITISH = re.compile(r"is(ation|ations|e|ed|es|ing|er|ers)$")
_TOKEN = re.compile(r"[a-z0-9]+")

# The share of a key point's content words that must appear in the answer.
COVERAGE_THRESHOLD = 2 / 3


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def stem(word: str) -> str:
    """A deliberately small stemmer: plural and a few derivational endings."""
    word = _BRITISH.sub(r"iz\1", word)
    if len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif re.search(r"(s|x|z|ch|sh)es$", word):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is", "as")):
        word = word[:-1]
    for suffix in ("ations", "ation", "ings", "ing", "ed", "er"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
            break
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    return word


def content_terms(text: str) -> list[str]:
    """Stemmed content words of a text, in order."""
    return [stem(token) for token in _TOKEN.findall(_fold(text)) if token not in _STOPWORDS]


@dataclass(frozen=True, slots=True)
class Coverage:
    covered: tuple[str, ...]
    missed: tuple[str, ...]

    @property
    def score(self) -> float:
        total = len(self.covered) + len(self.missed)
        return len(self.covered) / total if total else 0.0


def grade(answer: str, key_points: tuple[str, ...]) -> Coverage:
    """Split key points into those the answer covers and those it misses."""
    present = set(content_terms(answer))
    covered: list[str] = []
    missed: list[str] = []
    for point in key_points:
        terms = set(content_terms(point))
        if not terms:
            continue
        hit = len(terms & present) / len(terms)
        (covered if hit >= COVERAGE_THRESHOLD - 1e-9 else missed).append(point)
    return Coverage(covered=tuple(covered), missed=tuple(missed))
