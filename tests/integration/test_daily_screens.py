"""/daily as people see it: every screen of the command word for word (rendered with the Discord renderer,
**bold**), in the order a learner meets them: nothing set, a time set, quiet hours added, every day, quiet
hours removed; a group's question; the terminal's; wrong input. Then the keep / move / stop check-in and the
paused screens. A word lost, a style dropped or a wrong time shows up here."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import fsrs
import pytest

from bot.adapters.discord import render_block
from bot.core.commands import Commands
from bot.core.daily import PAUSED_NO_REPLY, PAUSED_UNREACHABLE, DailyService
from bot.core.model import Caller, Chat, Identity
from bot.core.study import StudyService
from bot.core.views import Reply
from bot.storage.sqlite import SqliteStore
from tests.conftest import small_bank
from tests.fakes import FakeClock, FakeNotifier

CALLERS = {
    "ann": Caller(Identity("telegram", "1"), "Ann", Chat("telegram", "1")),
    "group": Caller(Identity("telegram", "2"), "Bo", Chat("telegram", "-5", is_group=True), is_chat_admin=True),
    "terminal": Caller(Identity("terminal", "me"), "me", Chat("terminal", "me")),
}


def screen(*paragraphs: str) -> str:
    return "\n\n".join(paragraphs)


# (who, /daily's arguments, the screen), in order: each step builds on the ones before it
SCREENS = [
    (
        "ann",
        "",
        screen(
            "No daily question for you yet. Usage: /daily HH:MM [time zone], for example /daily 08:00 "
            "Europe/Berlin, /daily 7:30 Berlin or /daily 21:00 UTC+5:30. /daily off stops it; /daily alone "
            "shows the current setting.",
        ),
    ),
    (
        "ann",
        "always",
        screen(
            "Put the time first, for example /daily 08:00 always.",
        ),
    ),
    (
        "ann",
        "08:00 Europe/Berlin",
        screen(
            "**✅ Daily question on: 08:00 (Europe/Berlin).**",
            "Next one: Thu 15 Jan at 08:00, in 22 h.",
            "Skipped on days you've already answered a card; /daily 08:00 always sends it every day.",
            "Stop it with /daily off.",
        ),
    ),
    (
        "ann",
        "",
        screen(
            "**Daily question at 08:00 (Europe/Berlin).**",
            "Next one: Thu 15 Jan at 08:00, in 22 h.",
            "Skipped on days you've already answered a card; /daily 08:00 always sends it every day.",
            "Change it with /daily HH:MM [zone]; stop it with /daily off.",
        ),
    ),
    (
        "ann",
        "quiet 06:00-08:30",
        screen(
            "**🌙 Quiet hours: 06:00-08:30 (Europe/Berlin).**",
            "Nothing is pushed to you then (daily question, quiz notices): what falls due waits until they "
            "end. They follow your time zone, which /daily HH:MM Area/City sets.",
            "Your daily question at 08:00 falls in them, so it will come at 08:30 instead.",
            "Change them with /daily quiet HH:MM-HH:MM; remove them with /daily quiet off.",
        ),
    ),
    (
        "ann",
        "",
        screen(
            "**Daily question at 08:00 (Europe/Berlin).**",
            "Next one: Thu 15 Jan at 08:30 (when your quiet hours end), in 22 h.",
            "Skipped on days you've already answered a card; /daily 08:00 always sends it every day.",
            "Quiet hours: 06:00-08:30 (see /daily quiet).",
            "Change it with /daily HH:MM [zone]; stop it with /daily off.",
        ),
    ),
    (
        "ann",
        "quiet",
        screen(
            "**🌙 Quiet hours: 06:00-08:30 (Europe/Berlin).**",
            "Nothing is pushed to you then (daily question, quiz notices): what falls due waits until they "
            "end. They follow your time zone, which /daily HH:MM Area/City sets.",
            "Your daily question at 08:00 falls in them, so it will come at 08:30 instead.",
            "Change them with /daily quiet HH:MM-HH:MM; remove them with /daily quiet off.",
        ),
    ),
    (
        "ann",
        "08:00 always",
        screen(
            "**✅ Daily question changed: 08:00 (Europe/Berlin).**",
            "Next one: Thu 15 Jan at 08:30 (when your quiet hours end), in 22 h.",
            "Sent every day, even after you've practised; /daily 08:00 skips those days again.",
            "Quiet hours: 06:00-08:30 (see /daily quiet).",
            "Stop it with /daily off.",
        ),
    ),
    (
        "ann",
        "",
        screen(
            "**Daily question at 08:00 (Europe/Berlin).**",
            "Next one: Thu 15 Jan at 08:30 (when your quiet hours end), in 22 h.",
            "Sent every day, even after you've practised; /daily 08:00 skips those days again.",
            "Quiet hours: 06:00-08:30 (see /daily quiet).",
            "Change it with /daily HH:MM [zone]; stop it with /daily off.",
        ),
    ),
    (
        "ann",
        "quiet off",
        screen(
            "Quiet hours removed: your daily question comes at its time again.",
        ),
    ),
    (
        "ann",
        "quiet off",
        screen(
            "You have no quiet hours to remove. Usage: /daily quiet HH:MM-HH:MM, for example /daily quiet "
            "22:00-07:00: nothing is sent to you between those times. /daily quiet off removes them; /daily "
            "quiet alone shows them.",
        ),
    ),
    (
        "ann",
        "quiet",
        screen(
            "You have no quiet hours. Usage: /daily quiet HH:MM-HH:MM, for example /daily quiet 22:00-07:00: "
            "nothing is sent to you between those times. /daily quiet off removes them; /daily quiet alone "
            "shows them.",
        ),
    ),
    (
        "group",
        "quiet 22-7",
        screen(
            "Quiet hours are personal: set them in a private chat with me, e.g. /daily quiet 22:00-07:00.",
        ),
    ),
    (
        "group",
        "07:30",
        screen(
            "**✅ Daily question on: 07:30 (UTC).**",
            "Next one: Thu 15 Jan at 07:30, in 22 h.",
            "Stop it with /daily off.",
        ),
    ),
    (
        "group",
        "",
        screen(
            "**Daily question at 07:30 (UTC).**",
            "Next one: Thu 15 Jan at 07:30, in 22 h.",
            "Change it with /daily HH:MM [zone]; stop it with /daily off.",
        ),
    ),
    (
        "terminal",
        "21:00",
        screen(
            "**✅ Daily question on: 21:00 (UTC).**",
            "Nothing is pushed to a terminal: start the chat after 21:00 on a day you haven't practised yet, "
            "and I'll open with your daily question. Your day, new-card limit and streak follow this time "
            "zone.",
            "Stop it with /daily off.",
        ),
    ),
    (
        "terminal",
        "",
        screen(
            "**Daily question at 21:00 (UTC).**",
            "Nothing is pushed to a terminal: start the chat after 21:00 on a day you haven't practised yet, "
            "and I'll open with your daily question. Your day, new-card limit and streak follow this time "
            "zone.",
            "Change it with /daily HH:MM [zone]; stop it with /daily off.",
        ),
    ),
    (
        "ann",
        "quiet nonsense",
        screen(
            "“nonsense” is not a start and an end, like 22:00-07:00. Usage: /daily quiet HH:MM-HH:MM, for "
            "example /daily quiet 22:00-07:00: nothing is sent to you between those times. /daily quiet off "
            "removes them; /daily quiet alone shows them.",
        ),
    ),
    (
        "ann",
        "25:00",
        screen(
            "“25:00” is not a time. Usage: /daily HH:MM [time zone], for example /daily 08:00 Europe/Berlin, "
            "/daily 7:30 Berlin or /daily 21:00 UTC+5:30. /daily off stops it; /daily alone shows the "
            "current setting.",
        ),
    ),
]


def seen(reply: Reply) -> str:
    return "\n\n".join(render_block(block) for block in reply.blocks)


@pytest.fixture
async def daily(tmp_path: Path) -> AsyncIterator[DailyService]:
    clock = FakeClock(datetime(2026, 1, 14, 9, 30, tzinfo=UTC))  # a Wednesday, 10:30 in Berlin
    async with SqliteStore(tmp_path / "bot.db") as store:
        study = StudyService(
            store, small_bank(), clock, scheduler=fsrs.Scheduler(enable_fuzzing=False), rng=random.Random(1)
        )
        yield DailyService(store, study, {"telegram": FakeNotifier()})


async def test_every_daily_screen_word_for_word(daily: DailyService) -> None:
    for who, args, screen in SCREENS:
        assert seen(await daily.command(CALLERS[who], args)) == screen, f"/daily {args} ({who})"


async def test_the_check_in_after_unanswered_pushes_and_the_paused_screens(daily: DailyService) -> None:
    ann = CALLERS["ann"]
    await daily.command(ann, "08:00 Europe/Berlin")
    sub = await daily.store.subscription(ann.chat.key)
    assert sub is not None
    clock = daily.clock
    assert isinstance(clock, FakeClock)
    # seven pushes go unanswered; the eighth asks instead of sending a card
    notifier = daily.notifiers["telegram"]
    assert isinstance(notifier, FakeNotifier)
    for day in range(15, 23):
        clock.set(datetime(2026, 1, day, 7, 0, tzinfo=UTC))
        assert (await daily.tick()).claimed == 1
    assert len(notifier.sent) == 8
    check_in = notifier.sent[-1][1]
    assert seen(check_in) == (
        "**Keep the daily questions coming?**\n\n"
        "The last 7 went unanswered, so I'll hold them until you choose. Your cards and progress stay as they are."
    )
    assert [button.label for row in check_in.buttons for button in row] == ["Keep them", "Another time", "Stop them"]
    paused = await daily.store.subscription(ann.chat.key)
    assert paused is not None and paused.paused_reason == PAUSED_NO_REPLY
    assert seen(await daily.command(ann, "")) == (
        "Your daily question (08:00, Europe/Berlin) is paused: the last 7 went unanswered, so I asked before "
        "sending more. /daily 08:00 turns it back on; /daily off stops it."
    )
    await daily.store.save_subscription(replace(sub, paused_reason=PAUSED_UNREACHABLE))
    assert seen(await daily.command(ann, "")) == (
        "Your daily question (08:00, Europe/Berlin) is paused because I couldn't reach this chat. "
        "Send /daily HH:MM to turn it back on."
    )


async def test_the_check_in_buttons_keep_move_and_stop_the_pushes(daily: DailyService) -> None:
    ann = CALLERS["ann"]
    await daily.command(ann, "08:00 Europe/Berlin")
    await daily.command(ann, "quiet 20:00-22:00")  # 21:00 is not offered: it falls in them
    clock = daily.clock
    assert isinstance(clock, FakeClock)
    notifier = daily.notifiers["telegram"]
    assert isinstance(notifier, FakeNotifier)
    for day in range(15, 23):
        clock.set(datetime(2026, 1, day, 7, 0, tzinfo=UTC))
        await daily.tick()
    keep, move, stop = (button.action for row in notifier.sent[-1][1].buttons for button in row)
    clock.set(datetime(2026, 1, 22, 9, 0, tzinfo=UTC))  # 10:00 in Berlin

    kept = await daily.press(ann, keep)
    assert kept.edit and seen(kept) == (
        "**✅ Daily question kept: 08:00 (Europe/Berlin).**\n\nNext one: Fri 23 Jan at 08:00, in 22 h."
    )
    resumed = await daily.store.subscription(ann.chat.key)
    assert resumed is not None and resumed.paused_reason is None

    offer = await daily.press(ann, move)
    assert seen(offer) == (
        "When would suit you better? Pick a time (Europe/Berlin), or send /daily HH:MM for any other."
    )
    hours = {button.label: button.action for row in offer.buttons for button in row}
    assert list(hours) == ["07:00", "12:00", "18:00"]
    moved = await daily.press(ann, hours["12:00"])
    assert moved.edit and seen(moved) == (
        "**✅ Daily question moved to 12:00 (Europe/Berlin).**\n\n"
        "Next one: Fri 23 Jan at 12:00, in 1 d.\n\n"  # today had its push (the check-in): tomorrow
        "Stop it with /daily off."
    )
    stopped = await daily.press(ann, stop)
    assert stopped.edit and seen(stopped) == "Daily question stopped. Start again any time with /daily HH:MM."
    assert await daily.store.subscription(ann.chat.key) is None
    assert (await daily.press(ann, keep)).notice == "That button is not valid any more."  # nothing left to keep


async def test_a_ticks_report_counts_every_outcome(daily: DailyService) -> None:
    """Two learners of each kind on the eighth day: asked (seven pushes unanswered), skipped (practised that
    day) and held (in quiet hours)."""
    clock = daily.clock
    assert isinstance(clock, FakeClock)
    learners = [Caller(Identity("telegram", str(n)), f"L{n}", Chat("telegram", str(n))) for n in range(10, 16)]
    for who in learners:
        await daily.command(who, "08:00 UTC")
    for day in range(15, 22):
        clock.set(datetime(2026, 1, day, 8, 0, tzinfo=UTC))
        assert (await daily.tick()).sent == 6
    clock.set(datetime(2026, 1, 22, 6, 0, tzinfo=UTC))
    for who in learners[4:]:  # these two want no pushes this morning
        await daily.command(who, "quiet 07:30-09:00")
    commands = Commands(daily.study)
    for who in learners[2:4]:  # they practise on the eighth day, before the push
        question = await commands.run(who, "question")
        revealed = await commands.press(who, question.buttons[0][0].action)
        await commands.press(who, next(b.action for row in revealed.buttons for b in row if b.action.startswith("rt:")))
    clock.set(datetime(2026, 1, 22, 8, 0, tzinfo=UTC))
    report = await daily.tick()
    assert (report.claimed, report.asked, report.skipped, report.deferred, report.sent) == (6, 2, 2, 2, 0)
