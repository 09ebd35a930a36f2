"""Multiple choice in detail: the verdict names the right letter, the buttons that follow, the state saved
for a card seen before, and option presses on a question not showing its options."""

from __future__ import annotations

from datetime import timedelta

import fsrs

from bot.core.actions import Action, Verb
from bot.core.commands import Commands
from bot.core.model import Rating
from bot.core.study import OPTION_LETTERS, STALE
from bot.core.views import Reply
from tests.conftest import caller
from tests.fakes import FakeClock, MemoryStore
from tests.integration.test_committed_state import expected_after, fields
from tests.unit.test_study import attempt_id, button, labels

ANN = caller("1", "Ann")


async def show_options(commands: Commands, store: MemoryStore) -> tuple[int, str, str]:
    """Ask and open the options: (attempt id, letter of the right option, a wrong letter)."""
    question = await commands.run(ANN, "question")
    aid = attempt_id(question)
    await commands.press(ANN, button(question, "Multiple choice"))
    order = store.attempts[aid].options
    right = OPTION_LETTERS[order.index(0)]
    wrong = next(OPTION_LETTERS[n] for n, option in enumerate(order) if option != 0)
    return aid, right, wrong


async def pick(commands: Commands, aid: int, letter: str) -> Reply:
    return await commands.press(ANN, Action(Verb.OPTION, aid, OPTION_LETTERS.index(letter)).encode())


async def test_a_right_pick_says_correct_with_the_right_letter_and_offers_the_full_answer(
    commands: Commands, store: MemoryStore
) -> None:
    aid, right, _ = await show_options(commands, store)
    reply = await pick(commands, aid, right)
    assert reply.notice == "Correct!"
    assert f"✅ Correct! {right}) Right" in reply.plain_text()
    assert labels(reply) == ["Full answer", "Next question ▶"]


async def test_a_wrong_pick_names_the_chosen_and_the_right_letter(commands: Commands, store: MemoryStore) -> None:
    aid, right, wrong = await show_options(commands, store)
    reply = await pick(commands, aid, wrong)
    assert reply.notice == "Not quite"
    assert f"❌ Not quite. You chose {wrong}; the answer is {right}) Right" in reply.plain_text()
    assert labels(reply) == ["Full answer", "Next question ▶"]


async def test_an_option_pressed_before_the_options_are_shown_is_stale(commands: Commands, store: MemoryStore) -> None:
    question = await commands.run(ANN, "question")
    reply = await pick(commands, attempt_id(question), "A")
    assert reply.notice == STALE and store.reviews == []


async def test_a_right_pick_on_a_card_seen_before_is_a_good_review_of_its_saved_state(
    commands: Commands, store: MemoryStore, clock: FakeClock
) -> None:
    question = await commands.run(ANN, "question")
    card_id = store.attempts[attempt_id(question)].card_id
    await commands.press(ANN, button(await commands.press(ANN, button(question, "Show answer")), "Easy"))
    before = store.states[(1, card_id)]
    clock.set(before.due + timedelta(hours=1))
    aid, right, _ = await show_options(commands, store)
    assert store.attempts[aid].card_id == card_id
    await pick(commands, aid, right)
    saved = store.states[(1, card_id)]
    assert fields(saved) == expected_after(before, Rating.GOOD, clock.now())
    assert saved.reps == 2 and saved.state == int(fsrs.State.Review)
