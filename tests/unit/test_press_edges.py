"""Button presses at their edges, through Commands on the in-memory store and a fake clock (Mon 2 March
2026, 09:00 UTC): who a next question names in a group, the full answer after multiple choice, presses
that are refused (stale, invalid, a card gone from the bank), and which local day a card is new on."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.adapters.discord import render, render_block
from bot.core.actions import Action, Verb, parse_action
from bot.core.bank import QuestionBank
from bot.core.commands import Commands
from bot.core.model import Caller
from bot.core.study import INVALID, STALE, Streak, StudyService, streak
from bot.core.views import Reply
from tests.conftest import caller, small_bank
from tests.fakes import FakeClock, MemoryStore

ANN = caller("1", "Ann")
IN_GROUP = caller("1", "Ann", chat="-100", group=True)


def press(reply: Reply, label: str) -> str:
    return next(b.action for row in reply.buttons for b in row if b.label.startswith(label))


def attempt_of(reply: Reply) -> int:
    action = parse_action(reply.buttons[0][0].action)
    assert action is not None
    return action.target


async def answer(commands: Commands, who: Caller, rating: str = "Good") -> Reply:
    """Ask, show the answer and rate; the rated reply."""
    question = await commands.run(who, "question", "")
    revealed = await commands.press(who, press(question, "Show answer"))
    return await commands.press(who, press(revealed, rating))


async def stats_lines(commands: Commands) -> list[str]:
    reply = await commands.run(ANN, "stats", "")
    return "\n\n".join(render_block(block) for block in reply.blocks).splitlines()


# --- the next question --------------------------------------------------------------------------------------


async def test_next_question_in_a_group_names_who_asked_for_it(commands: Commands) -> None:
    following = await commands.press(IN_GROUP, press(await answer(commands, IN_GROUP), "Next question"))
    assert render_block(following.blocks[0]) == "Question for **Ann**:"


async def test_next_question_in_a_private_chat_names_nobody(commands: Commands) -> None:
    following = await commands.press(ANN, press(await answer(commands, ANN), "Next question"))
    assert "Question for" not in following.plain_text()
    assert render_block(following.blocks[0]) == "**Optimisation · warm-up · new**"


# --- the full answer and refused presses -------------------------------------------------------------------


async def test_the_full_answer_after_multiple_choice_replaces_the_message(commands: Commands) -> None:
    question = await commands.run(ANN, "question", "")
    choice = await commands.press(ANN, press(question, "Multiple choice"))
    picked = await commands.press(ANN, press(choice, "A"))
    full = await commands.press(ANN, press(picked, "Full answer"))
    assert full.edit is True
    assert [render_block(block) for block in full.blocks[:3]] == [
        "**Question basics-0?**",
        "**Model answer**",
        "The answer to basics-0.",
    ]
    assert [[b.label for b in row] for row in full.buttons] == [["Next question ▶"]]


async def test_the_full_answer_of_a_question_still_open_is_stale(commands: Commands) -> None:
    question = await commands.run(ANN, "question", "")
    refused = await commands.press(ANN, Action(Verb.FULL_ANSWER, attempt_of(question)).encode())
    assert refused.notice == STALE and not refused.blocks


async def test_a_quiz_round_press_on_a_study_question_is_invalid(commands: Commands) -> None:
    question = await commands.run(ANN, "question", "")
    refused = await commands.press(ANN, Action(Verb.QUIZ_OPTION, attempt_of(question), 0).encode())
    assert refused.notice == INVALID and not refused.blocks


async def test_a_rating_outside_the_four_is_invalid(commands: Commands) -> None:
    question = await commands.run(ANN, "question", "")
    await commands.press(ANN, press(question, "Show answer"))
    refused = await commands.press(ANN, Action(Verb.RATE, attempt_of(question), 9).encode())
    assert refused.notice == INVALID and not refused.blocks


async def test_a_press_on_a_card_since_removed_from_the_bank_is_invalid(store: MemoryStore, clock: FakeClock) -> None:
    bank = small_bank()
    question = await Commands(StudyService(store, bank, clock)).run(ANN, "question", "")
    assert "Question basics-0?" in question.plain_text()
    without = QuestionBank([card for card in bank.cards if card.id != "basics-0"], bank.topics)
    refused = await Commands(StudyService(store, without, clock)).press(ANN, press(question, "Show answer"))
    assert refused.notice == INVALID and not refused.blocks


# --- the local day a card is new on -------------------------------------------------------------------------


async def test_reviewing_a_card_met_on_an_earlier_day_adds_no_new_card_today(
    commands: Commands, clock: FakeClock
) -> None:
    await answer(commands, ANN)
    clock.advance(days=1)  # the card is due again
    rated = await answer(commands, ANN)
    assert rated.notice == "Saved: Good" and "Question basics-0?" in rated.plain_text()
    assert "• New today: 0 of 10" in await stats_lines(commands)


async def test_a_card_met_today_and_rated_again_today_stays_todays_new_card(
    commands: Commands, clock: FakeClock
) -> None:
    await answer(commands, ANN, "Again")
    clock.advance(minutes=2)  # its learning step is due: today's own work
    rated = await answer(commands, ANN)
    assert "Question basics-0?" in rated.plain_text()
    lines = await stats_lines(commands)
    assert "• New today: 1 of 10" in lines and "• Reviews today: 0 of 100 (/reviews)" in lines


async def test_a_new_card_rated_after_midnight_is_new_on_the_day_it_was_rated(
    commands: Commands, clock: FakeClock
) -> None:
    clock.set(datetime(2026, 3, 2, 23, 59, 50, tzinfo=UTC))
    question = await commands.run(ANN, "question", "")
    revealed = await commands.press(ANN, press(question, "Show answer"))
    clock.set(datetime(2026, 3, 3, 0, 0, 10, tzinfo=UTC))  # Tuesday now
    await commands.press(ANN, press(revealed, "Good"))
    assert "• New today: 1 of 10" in await stats_lines(commands)


def test_no_answered_day_is_no_streak_and_no_freeze() -> None:
    assert streak([], "2026-03-05") == Streak(0, 0, ())


# --- the question as Discord shows it -------------------------------------------------------------------------


async def test_on_discord_a_question_offers_type_answer_right_after_show_answer(commands: Commands) -> None:
    question = await commands.run(ANN, "question", "")
    (part,) = render(question)
    assert [[b.label for b in row] for row in part.buttons] == [
        ["Show answer", "✍️ Type answer", "Multiple choice"],
        ["Skip"],
    ]
    assert "press ✍️ Type answer" in (part.description or "")
