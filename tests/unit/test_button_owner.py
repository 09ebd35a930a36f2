"""A second learner with a record of their own cannot press the first learner's buttons.

The unknown-user path (a caller with no learner at all) is covered elsewhere; these tests give the
second caller their own learner, their own question and their own review history first, so that
only the owner comparison stands between them and the first learner's attempt.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bot.core.actions import Action, Verb, parse_action
from bot.core.model import Attempt, AttemptStatus, Caller
from bot.core.study import NOT_YOURS, StudyService
from bot.core.views import Reply
from tests.conftest import caller
from tests.fakes import MemoryStore

ANN = caller("1", "Ann")
BOB = caller("2", "Bob")


def actions(reply: Reply) -> dict[str, Action]:
    found = {}
    for row in reply.buttons:
        for b in row:
            action = parse_action(b.action)
            assert action is not None
            found[b.label.split(" · ")[0]] = action
    return found


def snapshot(store: MemoryStore) -> dict[str, Any]:
    return copy.deepcopy(
        {"attempts": store.attempts, "states": store.states, "reviews": store.reviews, "learners": store.learners}
    )


async def press(study: StudyService, who: Caller, action: Action) -> Reply:
    return await study.act(who, action)


async def a_real_second_learner(study: StudyService, store: MemoryStore) -> Attempt:
    """Bob asks his own question and answers it, so he is a learner with history; returns his open attempt."""
    first = await study.next_question(BOB)
    revealed = await press(study, BOB, actions(first)["Show answer"])
    await press(study, BOB, actions(revealed)["Good"])
    mine = await study.next_question(BOB)
    bob = await store.find_learner(BOB.identity)
    assert bob is not None and len(store.reviews) == 1
    attempt = await store.get_attempt(actions(mine)["Show answer"].target)
    assert attempt is not None and attempt.learner_id == bob.id
    return attempt


async def anns_buttons_at(study: StudyService, stage: str) -> Reply:
    """Ann's message as it stands at `stage`: the question, its revealed answer, its options, or done."""
    question = await study.next_question(ANN)
    if stage == "question":
        return question
    if stage == "revealed":
        return await press(study, ANN, actions(question)["Show answer"])
    choice = await press(study, ANN, actions(question)["Multiple choice"])
    if stage == "choice":
        return choice
    return await press(study, ANN, actions(choice)["A"])  # "answered": Next question / Full answer


@pytest.mark.parametrize("stage", ["question", "revealed", "choice", "answered"])
async def test_a_second_learner_pressing_any_of_the_first_learners_buttons_is_refused_and_changes_nothing(
    study: StudyService, store: MemoryStore, stage: str
) -> None:
    bobs_attempt = await a_real_second_learner(study, store)
    anns = await anns_buttons_at(study, stage)
    assert anns.buttons
    before = snapshot(store)
    for label, action in actions(anns).items():
        reply = await press(study, BOB, action)
        assert reply.notice == NOT_YOURS and reply.is_notice_only, label
        assert snapshot(store) == before, label
    assert store.attempts[bobs_attempt.id].status is AttemptStatus.OPEN  # Bob's own question is untouched


async def test_a_second_learners_forged_rating_on_the_first_learners_attempt_is_refused(
    study: StudyService, store: MemoryStore
) -> None:
    await a_real_second_learner(study, store)
    revealed = await anns_buttons_at(study, "revealed")
    target = actions(revealed)["Easy"].target
    before = snapshot(store)
    for rating in (1, 2, 3, 4):
        reply = await press(study, BOB, Action(Verb.RATE, target, rating))
        assert reply.notice == NOT_YOURS
    assert snapshot(store) == before
    ann = await store.find_learner(ANN.identity)
    assert ann is not None and await store.seen_card_ids(ann.id) == set()


async def test_the_owner_can_still_use_buttons_the_second_learner_was_refused(
    study: StudyService, store: MemoryStore
) -> None:
    await a_real_second_learner(study, store)
    question = await anns_buttons_at(study, "question")
    assert (await press(study, BOB, actions(question)["Show answer"])).notice == NOT_YOURS
    revealed = await press(study, ANN, actions(question)["Show answer"])
    done = await press(study, ANN, actions(revealed)["Easy"])
    assert "Rated Easy" in done.plain_text()
    ann = await store.find_learner(ANN.identity)
    bob = await store.find_learner(BOB.identity)
    assert ann is not None and bob is not None
    assert [r.learner_id for r in store.reviews] == [bob.id, ann.id]
