"""Every deck shipped in content/ validates, and the bank is what issue #3 promises."""

from __future__ import annotations

import difflib
import itertools
import re

import pytest

from bot.core.bank import EXPLANATION_MAX, OPTION_MAX, QUESTION_MAX, QuestionBank
from bot.core.model import Kind
from tests.conftest import CONTENT


@pytest.fixture(scope="module")
def bank() -> QuestionBank:
    return QuestionBank.load(CONTENT)


def test_the_shipped_content_validates(bank: QuestionBank) -> None:
    assert len(bank) > 0


def test_every_article_question_is_a_card_exactly_once(bank: QuestionBank) -> None:
    seeds = [card.seed for card in bank.cards if card.seed is not None]
    assert sorted(seeds) == list(range(1, 31))


def test_the_bank_is_deep_and_broad(bank: QuestionBank) -> None:
    assert len(bank) >= 150
    assert len(bank.topics) >= 12
    assert sum(1 for card in bank.cards if card.kind is Kind.BEHAVIORAL) >= 10


def test_each_topic_has_warm_ups_and_deep_dives(bank: QuestionBank) -> None:
    for topic in bank.topics:
        levels = {card.difficulty for card in bank.cards_in(topic.slug)}
        assert {1, 3} <= levels or topic.slug == "behavioral", topic.slug


def test_every_quiz_item_fits_telegram_quiz_poll_limits(bank: QuestionBank) -> None:
    for card in bank.cards:
        if card.quiz is None:
            assert card.kind is Kind.BEHAVIORAL, card.id
            continue
        assert len(card.quiz.prompt) <= QUESTION_MAX, card.id
        assert all(1 <= len(option) <= OPTION_MAX for option in card.quiz.options), card.id
        assert len(card.quiz.explanation) <= EXPLANATION_MAX, card.id
        assert card.quiz.explanation.count("\n") <= 2, card.id
        assert len({o.casefold() for o in card.quiz.options}) == 4, card.id


def test_technical_cards_are_complete(bank: QuestionBank) -> None:
    for card in bank.cards:
        assert 3 <= len(card.key_points) <= 6, card.id
        if card.kind is Kind.TECHNICAL:
            assert 2 <= len(card.follow_ups) <= 3, card.id
            words = len(card.answer.split())
            assert 80 <= words <= 250, f"{card.id}: {words} words"


def test_no_quiz_uses_give_away_options(bank: QuestionBank) -> None:
    banned = re.compile(r"\b(all|none) of the above\b", re.I)
    for card in bank.cards:
        if card.quiz:
            assert not any(banned.search(option) for option in card.quiz.options), card.id


def _normal(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.casefold()))


def test_no_two_questions_are_near_duplicates(bank: QuestionBank) -> None:
    questions = [(card.id, _normal(card.question)) for card in bank.cards]
    close = [
        (a, b, round(ratio, 2))
        for (a, qa), (b, qb) in itertools.combinations(questions, 2)
        if (ratio := difflib.SequenceMatcher(None, qa, qb).ratio()) > 0.8
    ]
    assert close == []


def test_card_ids_are_short_enough_for_every_platform(bank: QuestionBank) -> None:
    assert all(len(card.id) <= 48 for card in bank.cards)
