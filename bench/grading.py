"""`python -m bench grading`: the offline grader measured on the labelled answer set.

tests/data/grading/*.yaml holds answers written as candidates type them, five kinds per card
(strong, partial, misconception, offtopic, terse), each labelled with the key points it covers by
meaning. Figures: precision, recall and F1 of "key point covered" over strong, partial, terse and
off-topic answers (and per kind), answer-level accuracy of "would pass" (covers at least half),
false credit on off-topic and misconception answers, answers wrongly refused as non-answers, and
latency per answer (p50/p99) against a baseline of the old word-set matcher in the same run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.common import ROOT, Context, Result
from bot.core.bank import QuestionBank
from bot.core.grading import LexicalGrader

ANSWER_SET = ROOT / "tests" / "data" / "grading"
KINDS = ("strong", "partial", "misconception", "offtopic", "terse")
SCORED_KINDS = ("strong", "partial", "terse", "offtopic")  # the kinds the F1 target is over


@dataclass(frozen=True)
class Labelled:
    card_id: str
    kind: str
    text: str
    covers: frozenset[int]
    source: str = ""  # the file it came from


def load_answer_set(folder: Path = ANSWER_SET) -> list[Labelled]:
    answers: list[Labelled] = []
    for file in sorted(folder.glob("*.yaml")):
        for entry in yaml.safe_load(file.read_text(encoding="utf-8")):
            for item in entry["answers"]:
                answers.append(
                    Labelled(entry["card"], item["kind"], item["text"], frozenset(item["covers"]), file.stem)
                )
    return answers


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, predicted: bool, actual: bool) -> None:
        if predicted and actual:
            self.tp += 1
        elif predicted:
            self.fp += 1
        elif actual:
            self.fn += 1
        else:
            self.tn += 1

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def false_credit(self) -> float:
        """Unearned points credited, as a share of the points not earned."""
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0


@dataclass
class Evaluation:
    overall: Counts
    by_kind: dict[str, Counts]
    pass_correct: int
    answers: int
    refused: list[Labelled]  # answers the grader would not take as answers at all
    answers_with_false_credit: dict[str, int]
    per_kind_answers: dict[str, int]
    latencies: list[float]

    @property
    def pass_accuracy(self) -> float:
        return self.pass_correct / self.answers if self.answers else 0.0


def evaluate(bank: QuestionBank, answers: Iterable[Labelled], grader: LexicalGrader | None = None) -> Evaluation:
    """Run the offline grader over the labelled answers; a refused answer counts as covering nothing."""
    grader = grader or LexicalGrader(bank.cards, bank.glossary)
    overall = Counts()
    by_kind = {kind: Counts() for kind in KINDS}
    refused: list[Labelled] = []
    false_credit = dict.fromkeys(KINDS, 0)
    per_kind = dict.fromkeys(KINDS, 0)
    pass_correct = total = 0
    latencies: list[float] = []
    for item in answers:
        card = bank.card(item.card_id)
        if card is None:
            raise KeyError(f"the answer set names an unknown card {item.card_id!r}")
        started = time.perf_counter()
        reason = grader.non_answer(card, item.text)
        covered = set() if reason else set(grader.grade(card, item.text).covered)
        latencies.append(time.perf_counter() - started)
        if reason:
            refused.append(item)
        n = len(card.key_points)
        for index in range(n):
            actual, predicted = index in item.covers, index in covered
            by_kind[item.kind].add(predicted, actual)
            if item.kind in SCORED_KINDS:
                overall.add(predicted, actual)
        if covered - item.covers:
            false_credit[item.kind] += 1
        per_kind[item.kind] += 1
        total += 1
        pass_correct += (len(covered) / n >= 0.5) == (len(item.covers) / n >= 0.5)
    return Evaluation(overall, by_kind, pass_correct, total, refused, false_credit, per_kind, latencies)


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _old_matcher_latency(bank: QuestionBank, answers: Sequence[Labelled]) -> list[float]:
    """The baseline: the first round's matcher (a set of crude stems, one threshold), timed the same way."""
    import re

    def terms(text: str) -> set[str]:
        return {w[:-1] if w.endswith("s") else w for w in re.findall(r"[a-z0-9]+", text.lower())}

    out = []
    for item in answers:
        card = bank.card(item.card_id)
        assert card is not None
        started = time.perf_counter()
        present = terms(item.text)
        for point in card.key_points:
            wanted = terms(point.text)
            _ = len(wanted & present) / max(1, len(wanted)) >= 2 / 3
        out.append(time.perf_counter() - started)
    return out


async def run(ctx: Context) -> list[Result]:
    bank = QuestionBank.load(ROOT / "content")
    answers = load_answer_set()
    grader = LexicalGrader(bank.cards, bank.glossary)
    for item in answers[:20]:  # warm the stem cache as a running bot would be
        card = bank.card(item.card_id)
        if card is not None:
            grader.grade(card, item.text)
    ev = evaluate(bank, answers, grader)
    cards = len({a.card_id for a in answers})
    ctx.log(f"{len(answers)} labelled answers over {cards} cards")
    baseline = _old_matcher_latency(bank, answers)
    lines: list[Result] = [
        {
            "name": "grading:key-points",
            "precision": round(ev.overall.precision, 3),
            "recall": round(ev.overall.recall, 3),
            "f1": round(ev.overall.f1, 3),
            "target_f1": 0.80,
            "over": "strong, partial, terse and off-topic answers",
            "answers": sum(ev.per_kind_answers[k] for k in SCORED_KINDS),
        }
    ]
    for source in sorted({a.source for a in answers}):
        part = evaluate(bank, [a for a in answers if a.source == source], grader)
        lines.append(
            {
                "name": f"grading:key-points:{source}",
                "precision": round(part.overall.precision, 3),
                "recall": round(part.overall.recall, 3),
                "f1": round(part.overall.f1, 3),
                "answers": part.answers,
            }
        )
    for kind in KINDS:
        c = ev.by_kind[kind]
        lines.append(
            {
                "name": f"grading:kind:{kind}",
                "precision": round(c.precision, 3),
                "recall": round(c.recall, 3),
                "f1": round(c.f1, 3),
                "false_credit_points": round(c.false_credit, 3),
                "answers_with_false_credit": ev.answers_with_false_credit[kind],
                "answers": ev.per_kind_answers[kind],
            }
        )
    lines.append({"name": "grading:would-pass", "accuracy": round(ev.pass_accuracy, 3), "answers": ev.answers})
    lines.append(
        {
            "name": "grading:false-credit:offtopic",
            "value": round(ev.by_kind["offtopic"].false_credit, 3),
            "unit": "unearned points / points not earned",
            "target": 0.02,
        }
    )
    lines.append(
        {
            "name": "grading:false-credit:misconception",
            "value": round(ev.by_kind["misconception"].false_credit, 3),
            "unit": "unearned points / points not earned",
            "note": "word coverage cannot tell a true statement from a false one in the same words",
        }
    )
    lines.append(
        {
            "name": "grading:refused-as-non-answer",
            "value": len(ev.refused),
            "unit": "labelled answers not taken as answers",
            "answers": ev.answers,
        }
    )
    p50, p99 = _percentile(ev.latencies, 0.5) * 1e3, _percentile(ev.latencies, 0.99) * 1e3
    base50 = statistics.median(baseline) * 1e3
    lines.append(
        {
            "name": "grading:latency",
            "p50_ms": round(p50, 3),
            "p99_ms": round(p99, 3),
            "target_p99_ms": 2.0,
            "baseline": "first-round word-set matcher, p50",
            "baseline_p50_ms": round(base50, 3),
            "ratio_p50": round(p50 / base50, 1) if base50 else None,
        }
    )
    return lines
