"""The labelled answer set as a regression test: the offline grader stays at least this good.

The floors sit a little below what `python -m bench grading` measures (README, Performance), so a
change that makes grading worse fails here, while rewording one accept list does not.
"""

from __future__ import annotations

import pytest

from bench.grading import KINDS, evaluate, load_answer_set
from bot.core.bank import QuestionBank
from tests.conftest import CONTENT

F1_FLOOR = 0.79
OFFTOPIC_FALSE_CREDIT_CEILING = 0.02
PASS_ACCURACY_FLOOR = 0.80


@pytest.fixture(scope="module")
def bank() -> QuestionBank:
    return QuestionBank.load(CONTENT)


def test_the_answer_set_is_large_varied_and_labelled_within_range(bank: QuestionBank) -> None:
    answers = load_answer_set()
    cards = {a.card_id for a in answers}
    assert len(cards) >= 40 and len(answers) >= 200
    assert sum(1 for c in cards if (card := bank.card(c)) is not None and card.kind.value == "behavioral") >= 8
    for card_id in cards:
        assert sorted(a.kind for a in answers if a.card_id == card_id) == sorted(KINDS), card_id
    for item in answers:
        card = bank.card(item.card_id)
        assert card is not None and all(0 <= i < len(card.key_points) for i in item.covers), item


def test_the_offline_grader_meets_its_floors_on_the_labelled_set(bank: QuestionBank) -> None:
    result = evaluate(bank, load_answer_set())
    assert result.overall.f1 >= F1_FLOOR, (result.overall.precision, result.overall.recall)
    assert result.by_kind["offtopic"].false_credit <= OFFTOPIC_FALSE_CREDIT_CEILING
    assert result.pass_accuracy >= PASS_ACCURACY_FLOOR
    assert result.refused == [], "labelled answers were refused as non-answers"
