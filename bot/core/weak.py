"""Weakest topics: a topic's share of good answers over a window, from per-card evidence, weakest first.

A learner's evidence is their review log (reviews of cards they had seen before, not rated Again);
a chat's is its quiz answers (correct ones). A topic counts only with MIN_ANSWERS answers or more, so
one unlucky answer never makes a topic "the weakest".
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from fractions import Fraction

from bot.core.bank import QuestionBank
from bot.core.model import CardEvidence, TopicScore

MIN_ANSWERS = 5  # answers a topic needs in the window before it counts
LEARNER_WINDOW = timedelta(days=30)  # the same window as the retention in /stats
CHAT_WINDOW = timedelta(days=90)  # groups quiz less often than a learner reviews


def rank_topics(evidence: Iterable[CardEvidence], bank: QuestionBank, minimum: int = MIN_ANSWERS) -> list[TopicScore]:
    """Topics with at least `minimum` answers, weakest first: the lowest share of good answers; on a tie
    the topic with fewer answers (the less practised), then by slug. Cards no longer in the bank are left out."""
    answers: dict[str, int] = {}
    passed: dict[str, int] = {}
    for item in evidence:
        card = bank.card(item.card_id)
        if card is None:
            continue
        answers[card.topic] = answers.get(card.topic, 0) + item.answers
        passed[card.topic] = passed.get(card.topic, 0) + item.passed
    scores = [
        TopicScore(topic, answers[topic.slug], passed[topic.slug])
        for topic in bank.topics
        if answers.get(topic.slug, 0) >= minimum
    ]
    # Fractions compare exactly: 3/5 and 6/10 tie, and the tie-break decides
    return sorted(scores, key=lambda s: (Fraction(s.passed, s.answers), s.answers, s.topic.slug))
