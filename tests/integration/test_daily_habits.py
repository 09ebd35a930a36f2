"""Daily pushes that respect what the learner did (issue 21, item 2), over weeks of a fake clock, on both
engines: a push is skipped on a local day already practised (unless `always`), seven unanswered pushes
bring one keep / move / stop question and a pause, and quiet hours hold pushes (and a resumed private
quiz) until they end, across midnight and DST."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import fsrs
import pytest

from bot.core.commands import Commands
from bot.core.competition import CompetitionService
from bot.core.daily import DailyService
from bot.core.model import Caller, Chat, Identity, MatchStatus
from bot.core.ports import Delivery, SendResult
from bot.core.study import StudyService
from bot.core.views import Reply
from bot.scheduler import MatchRunner
from bot.storage.store import Store
from tests.conftest import small_bank
from tests.fakes import FakeClock, FakeNotifier
from tests.integration.test_daily import World, at, person, tick_at

ANN, BOB = person(1), person(2)
CHECK_IN = "Keep the daily questions coming?"
PUSH = "Your daily question"
GUILT = ("already studied", "break your streak", "don't lose", "you missed", "miss you", "lazy", "forgot")


class TimedNotifier(FakeNotifier):
    """Also records when (by the fake clock) each message went out."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.times: list[datetime] = []

    async def send(self, chat_id: str, reply: Reply) -> SendResult:
        result = await super().send(chat_id, reply)
        self.times.append(self.clock.now())
        return result


@dataclass
class Habits:
    world: World
    commands: Commands
    competition: CompetitionService

    @property
    def notifier(self) -> TimedNotifier:
        assert isinstance(self.world.notifier, TimedNotifier)
        return self.world.notifier


@pytest.fixture
async def habits(store_location: str, tmp_path: Path) -> AsyncIterator[Habits]:
    clock = FakeClock(at("2026-01-10T00:00:00"))
    async with Store(store_location) as store:
        study = StudyService(store, small_bank(), clock, scheduler=fsrs.Scheduler(enable_fuzzing=False))
        competition = CompetitionService(store, study.bank, clock, study, rng=random.Random(2))
        notifier = TimedNotifier(clock)
        daily = DailyService(
            store,
            study,
            {"telegram": notifier},
            group_content=competition.daily_poll,
            poll_sent=competition.attach_message,
        )
        commands = Commands(study)
        commands.attach_daily(daily)
        commands.attach_competition(competition)
        yield Habits(World(store, clock, notifier, study, daily, tmp_path / "bot.db"), commands, competition)


def day(n: int, hhmm: str) -> str:
    """The UTC instant `hhmm` on the n-th day after 2026-01-10."""
    return (at("2026-01-10T00:00:00") + timedelta(days=n)).strftime(f"%Y-%m-%dT{hhmm}:00")


async def daily(h: Habits, who: Caller, args: str, moment: str | None = None) -> str:
    if moment is not None:
        h.world.clock.set(at(moment))
    return (await h.commands.run(who, "daily", args)).plain_text()


async def practise(h: Habits, who: Caller, moment: str) -> None:
    """Answer one card (reveal it and rate it) at `moment`."""
    h.world.clock.set(at(moment))
    question = await h.commands.run(who, "question")
    revealed = await h.commands.press(who, question.buttons[0][0].action)
    rating = next(b.action for row in revealed.buttons for b in row if b.action.startswith("rt:"))
    await h.commands.press(who, rating)


async def tick(h: Habits, moment: str) -> list[str]:
    return await tick_at(h.world, moment)


def last_sent(h: Habits) -> Reply:
    return h.notifier.sent[-1][1]


def labels(reply: Reply) -> list[str]:
    return [b.label for row in reply.buttons for b in row]


def button(reply: Reply, label: str) -> str:
    return next(b.action for row in reply.buttons for b in row if b.label == label)


async def learner_of(h: Habits, who: Caller) -> int:
    learner = await h.world.store.find_learner(who.identity)
    assert learner is not None
    return learner.id


# --- a day already practised -------------------------------------------------------------------------


async def test_over_two_weeks_a_push_goes_out_only_on_days_not_practised_yet(habits: Habits) -> None:
    h = habits
    await daily(h, ANN, "18:00 UTC")
    pushed = []
    for n in range(14):
        if n % 3 == 0:
            await practise(h, ANN, day(n, "09:00"))
        if await tick(h, day(n, "18:00")):
            pushed.append(n)
        # a skipped day is handled: nothing later that day, not even from a new process, which finds no
        # unfinished delivery to take over
        h.world.clock.set(at(day(n, "23:30")))
        report = await h.world.restart().tick()
        assert (report.claimed, report.sent) == (0, 0)
    assert pushed == [n for n in range(14) if n % 3]
    assert all(PUSH in text for text in h.notifier.texts())  # nothing at all on the skipped days
    sub = await h.world.store.subscription(ANN.chat.key)
    assert sub is not None and await h.world.store.day_claimed(sub.id, day(3, "18:00")[:10])


async def test_an_answer_after_the_days_push_time_does_not_undo_that_days_push(habits: Habits) -> None:
    h = habits
    await daily(h, ANN, "08:00 UTC")
    assert await tick(h, day(0, "08:00")) == ["1"]
    await practise(h, ANN, day(0, "12:00"))
    assert await tick(h, day(1, "08:00")) == ["1"]  # the next day is a new day


async def test_a_skip_is_by_the_local_day_of_the_subscriptions_zone(habits: Habits) -> None:
    h = habits
    await daily(h, ANN, "08:00 Asia/Tokyo")  # 23:00 UTC the day before
    await practise(h, ANN, day(0, "14:00"))  # 23:00 in Tokyo on the 10th: not the 11th
    assert await tick(h, day(0, "23:00")) == ["1"]  # 08:00 on the 11th in Tokyo
    await practise(h, ANN, day(1, "15:30"))  # 00:30 on the 12th in Tokyo
    assert await tick(h, day(1, "23:00")) == []


async def test_always_sends_the_push_on_practised_days_and_a_time_alone_turns_skipping_back_on(
    habits: Habits,
) -> None:
    h = habits
    saved = await daily(h, ANN, "18:00 always UTC")
    assert "Daily question on: 18:00 (UTC)." in saved
    assert "Sent every day, even after you've practised; /daily 18:00 skips those days again." in saved
    await practise(h, ANN, day(0, "09:00"))
    assert await tick(h, day(0, "18:00")) == ["1"]
    assert "Sent every day" in await daily(h, ANN, "")

    changed = await daily(h, ANN, "18:00")
    assert "Skipped on days you've already answered a card; /daily 18:00 always sends it every day." in changed
    await practise(h, ANN, day(1, "09:00"))
    assert await tick(h, day(1, "18:00")) == []
    assert "Skipped on days you've already answered a card" in await daily(h, ANN, "")
    assert "Sent every day" in await daily(h, ANN, "18:00 Europe/London always")  # after the zone too


async def test_a_groups_daily_quiz_goes_out_whatever_its_admin_practised(habits: Habits) -> None:
    h = habits
    admin = Caller(Identity("telegram", "1"), "Ada", Chat("telegram", "-100", is_group=True), is_chat_admin=True)
    assert "Skipped on days" not in await daily(h, admin, "09:00 UTC always")
    sub = await h.world.store.subscription("telegram:-100")
    assert sub is not None and not sub.always  # a group's quiz goes out every day anyway
    await practise(h, ANN, day(0, "08:00"))  # the same person, in private
    assert await tick(h, day(0, "09:00")) == ["-100"]


async def test_always_changes_nothing_in_the_terminal_where_the_question_is_asked_on_start(habits: Habits) -> None:
    h = habits
    console = Caller(Identity("console", "me"), "Me", Chat("console", "local", typed_keys=True))
    saved = await daily(h, console, "08:00 UTC always")
    assert "Nothing is pushed to a terminal" in saved and "always" not in saved.split("Nothing is pushed")[1]
    assert await tick(h, day(0, "08:00")) == []
    h.world.clock.set(at(day(0, "08:30")))
    assert await h.world.daily.opening(console) is not None


# --- unanswered pushes -------------------------------------------------------------------------------


async def seven_unanswered(h: Habits, first_day: int = 0, hhmm: str = "08:00") -> None:
    for n in range(first_day, first_day + 7):
        assert await tick(h, day(n, hhmm)) == ["1"], n
        assert PUSH in last_sent(h).plain_text()


async def test_after_seven_unanswered_pushes_one_question_asks_whether_to_keep_them_and_they_pause(
    habits: Habits,
) -> None:
    h = habits
    await daily(h, ANN, "08:00 UTC")
    await seven_unanswered(h)
    assert await tick(h, day(7, "08:00")) == ["1"]
    asked = last_sent(h)
    text = asked.plain_text()
    assert text.startswith(CHECK_IN) and PUSH not in text
    assert "The last 7 went unanswered, so I'll hold them until you choose." in text
    assert not any(phrase in text.lower() for phrase in GUILT)
    assert labels(asked) == ["Keep them", "Another time", "Stop them"]
    for n in range(8, 15):  # no reply: paused, not deleted
        assert await tick(h, day(n, "08:00")) == []
    sub = await h.world.store.subscription(ANN.chat.key)
    assert sub is not None and sub.paused_reason == "no reply"
    assert await daily(h, ANN, "") == (
        "Your daily question (08:00, UTC) is paused: the last 7 went unanswered, so I asked before sending more. "
        "/daily 08:00 turns it back on; /daily off stops it."
    )


async def test_an_answer_between_two_pushes_starts_the_count_again(habits: Habits) -> None:
    h = habits
    await daily(h, ANN, "08:00 UTC")
    for n in range(6):
        assert await tick(h, day(n, "08:00")) == ["1"]
    await practise(h, ANN, day(5, "20:00"))  # the sixth push is answered
    for n in range(6, 13):  # seven more, unanswered
        assert await tick(h, day(n, "08:00")) == ["1"]
        assert PUSH in last_sent(h).plain_text(), n
    assert await tick(h, day(13, "08:00")) == ["1"]
    assert last_sent(h).plain_text().startswith(CHECK_IN)


async def test_skipped_days_are_not_pushes_and_their_answers_count(habits: Habits) -> None:
    h = habits
    await daily(h, ANN, "08:00 UTC")
    for n in range(20):
        if n % 4 == 3:
            await practise(h, ANN, day(n, "07:00"))
        await tick(h, day(n, "08:00"))
    assert not any(CHECK_IN in text for text in h.notifier.texts())


async def test_keep_resumes_the_pushes_and_starts_the_count_again(habits: Habits) -> None:
    h = habits
    await daily(h, ANN, "08:00 UTC")
    await seven_unanswered(h)
    await tick(h, day(7, "08:00"))
    asked = last_sent(h)
    assert await tick(h, day(8, "08:00")) == []
    h.world.clock.set(at(day(8, "12:00")))
    kept = await h.commands.press(ANN, button(asked, "Keep them"))
    assert kept.edit and kept.plain_text().startswith("✅ Daily question kept: 08:00 (UTC).")
    assert "Next one: Mon 19 Jan at 08:00" in kept.plain_text()
    await seven_unanswered(h, first_day=9)  # seven pushes after keeping before asking again
    assert await tick(h, day(16, "08:00")) == ["1"]
    assert last_sent(h).plain_text().startswith(CHECK_IN)


async def test_another_time_offers_a_few_times_and_moving_resumes_the_pushes_there(habits: Habits) -> None:
    h = habits
    await daily(h, ANN, "12:00 UTC")
    await seven_unanswered(h, hhmm="12:00")
    await tick(h, day(7, "12:00"))
    asked = last_sent(h)
    h.world.clock.set(at(day(7, "13:00")))
    offer = await h.commands.press(ANN, button(asked, "Another time"))
    assert offer.edit and "send /daily HH:MM for any other" in offer.plain_text()
    assert labels(offer) == ["07:00", "18:00", "21:00"]  # not the current time
    assert await tick(h, day(8, "12:00")) == []  # still paused until a time is chosen
    moved = await h.commands.press(ANN, button(offer, "18:00"))
    assert moved.plain_text().startswith("✅ Daily question moved to 18:00 (UTC).")
    assert await tick(h, day(8, "18:00")) == ["1"]
    assert PUSH in last_sent(h).plain_text()
    assert await tick(h, day(9, "12:00")) == []
    assert await tick(h, day(9, "18:00")) == ["1"]


async def test_another_time_leaves_out_times_in_the_learners_quiet_hours(habits: Habits) -> None:
    h = habits
    await daily(h, ANN, "08:00 UTC")
    await daily(h, ANN, "quiet 20:00-07:30")
    await seven_unanswered(h)
    await tick(h, day(7, "08:00"))
    offer = await h.commands.press(ANN, button(last_sent(h), "Another time"))
    assert labels(offer) == ["12:00", "18:00"]


async def test_stop_ends_the_pushes_like_daily_off(habits: Habits) -> None:
    h = habits
    await daily(h, ANN, "08:00 UTC")
    await seven_unanswered(h)
    await tick(h, day(7, "08:00"))
    stopped = await h.commands.press(ANN, button(last_sent(h), "Stop them"))
    assert stopped.edit and stopped.plain_text() == "Daily question stopped. Start again any time with /daily HH:MM."
    assert await h.world.store.subscription(ANN.chat.key) is None
    assert await tick(h, day(8, "08:00")) == []
    assert (await daily(h, ANN, "")).startswith("No daily question for you yet.")


async def test_daily_with_a_time_resumes_paused_pushes_and_starts_the_count_again(habits: Habits) -> None:
    h = habits
    await daily(h, ANN, "08:00 UTC")
    await seven_unanswered(h)
    await tick(h, day(7, "08:00"))
    assert "Daily question changed: 08:00 (UTC)." in await daily(h, ANN, "08:00", day(9, "10:00"))
    await seven_unanswered(h, first_day=10)
    assert await tick(h, day(17, "08:00")) == ["1"]
    assert last_sent(h).plain_text().startswith(CHECK_IN)


async def test_only_the_learner_can_press_the_questions_buttons_and_forged_ones_change_nothing(
    habits: Habits,
) -> None:
    h = habits
    await daily(h, ANN, "08:00 UTC")
    await seven_unanswered(h)
    await tick(h, day(7, "08:00"))
    keep = button(last_sent(h), "Keep them")
    await daily(h, BOB, "09:00 UTC")
    sub = await h.world.store.subscription(ANN.chat.key)
    assert sub is not None
    impostor = Caller(BOB.identity, "Bob", ANN.chat)  # another learner, pressing in Ann's chat
    forged = [
        (BOB, keep),  # Ann's button, pressed in Bob's chat
        (impostor, keep),
        (ANN, f"dk:{sub.id + 1}:0"),  # another subscription
        (ANN, f"dk:{sub.id}:7"),  # no such choice
        (ANN, f"dk:{sub.id}:124"),  # no such hour
        (ANN, f"dk:{sub.id}"),
    ]
    for who, data in forged:
        reply = await h.commands.press(who, data)
        assert reply.is_notice_only and reply.notice == "That button is not valid any more.", data
    assert await h.world.store.subscription(ANN.chat.key) == sub


# --- quiet hours -------------------------------------------------------------------------------------


async def test_quiet_hours_across_midnight_hold_a_late_push_until_the_morning_once_a_day(habits: Habits) -> None:
    h = habits
    await daily(h, ANN, "23:00 Europe/Berlin")
    set_reply = await daily(h, ANN, "quiet 22:00-07:00")
    assert set_reply.startswith("🌙 Quiet hours: 22:00-07:00 (Europe/Berlin).")
    assert "Your daily question at 23:00 falls in them, so it will come at 07:00 instead." in set_reply
    assert "Next one: Sun 11 Jan at 07:00 (when your quiet hours end)" in await daily(h, ANN, "", day(0, "12:00"))
    h.world.clock.set(at(day(0, "22:00")))  # 23:00 in Berlin
    report = await h.world.daily.tick()
    assert (report.claimed, report.deferred, report.sent) == (1, 1, 0)
    assert await tick(h, day(1, "05:59")) == []
    assert await tick(h, day(1, "06:00")) == ["1"]  # 07:00 in Berlin
    assert await tick(h, day(1, "22:00")) == []
    assert await tick(h, day(2, "06:00")) == ["1"]
    assert await tick(h, day(2, "08:00")) == []
    assert len(h.notifier.sent) == 2


async def test_quiet_hours_leave_a_push_outside_them_alone_and_hold_one_inside_to_their_end(habits: Habits) -> None:
    h = habits
    await daily(h, ANN, "06:30 UTC")
    await daily(h, BOB, "12:00 UTC")
    await daily(h, ANN, "quiet 22:00-07:00")
    await daily(h, BOB, "quiet 22:00-07:00")
    assert await tick(h, day(0, "06:30")) == []
    assert await tick(h, day(0, "07:00")) == ["1"]
    assert await tick(h, day(0, "12:00")) == ["2"]


async def test_a_push_held_by_quiet_hours_is_skipped_if_the_learner_practised_meanwhile(habits: Habits) -> None:
    h = habits
    await daily(h, ANN, "23:00 UTC")
    await daily(h, ANN, "quiet 22:00-07:00")
    assert await tick(h, day(0, "23:00")) == []
    await practise(h, ANN, day(1, "06:00"))
    h.world.clock.set(at(day(1, "07:00")))
    report = await h.world.daily.tick()
    assert (report.skipped, report.sent) == (1, 0)
    assert h.notifier.sent == []


async def test_a_wait_for_quiet_hours_is_not_a_failed_attempt(habits: Habits) -> None:
    h = habits
    daily_service = DailyService(h.world.store, h.world.study, {"telegram": h.notifier}, max_attempts=2)
    await daily(h, ANN, "23:00 UTC")
    await daily(h, ANN, "quiet 22:00-07:00")
    h.world.clock.set(at(day(0, "23:00")))
    assert (await daily_service.tick()).deferred == 1
    h.notifier.script = [SendResult(Delivery.FAILED, detail="502 Bad Gateway")]
    h.world.clock.set(at(day(1, "07:00")))
    assert (await daily_service.tick()).retrying == 1  # the first of two attempts
    h.world.clock.set(at(day(1, "07:05")))
    assert (await daily_service.tick()).sent == 1


@pytest.mark.parametrize(
    ("zone", "local_time", "quiet", "start", "expected"),
    [
        # spring forward in Berlin (29 March): 07:00 is 06:00 UTC before, 05:00 UTC after
        ("Europe/Berlin", "06:00", "22:00-07:00", "2026-03-27T12:00", ["2026-03-28T06:00", "2026-03-29T05:00"]),
        ("Europe/Berlin", "23:30", "22:00-07:00", "2026-03-27T12:00", ["2026-03-28T06:00", "2026-03-29T05:00"]),
        # an end lost to the change (02:30 does not exist on the 29th): the first valid minute after it
        ("Europe/Berlin", "01:00", "23:00-02:30", "2026-03-27T12:00", ["2026-03-28T01:30", "2026-03-29T01:00"]),
        # fall back (25 October): 07:00 is 05:00 UTC before, 06:00 UTC after
        ("Europe/Berlin", "06:00", "22:00-07:00", "2026-10-23T12:00", ["2026-10-24T05:00", "2026-10-25T06:00"]),
        # New York springs forward on 8 March
        ("America/New_York", "21:00", "20:00-06:00", "2026-03-06T18:00", ["2026-03-07T11:00", "2026-03-08T10:00"]),
    ],
)
async def test_quiet_hours_follow_the_wall_clock_across_a_dst_change(
    habits: Habits, zone: str, local_time: str, quiet: str, start: str, expected: list[str]
) -> None:
    h = habits
    await daily(h, ANN, f"{local_time} {zone}", start + ":00")
    await daily(h, ANN, f"quiet {quiet}")
    moment, pushed = at(start + ":00"), []
    while moment <= at(start + ":00") + timedelta(days=2):
        if await tick(h, moment.isoformat()[:19]):
            pushed.append(moment.isoformat()[:16])
        moment += timedelta(minutes=15)
    assert pushed == expected


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("22:00-07:00", "22:00-07:00"),
        ("22-7", "22:00-07:00"),
        ("10pm to 7am", "22:00-07:00"),
        ("22:30 – 6:15", "22:30-06:15"),
        ("13:00 14:00", "13:00-14:00"),
    ],
)
async def test_quiet_hours_are_accepted_as_people_type_them(habits: Habits, typed: str, stored: str) -> None:
    h = habits
    reply = await daily(h, ANN, f"quiet {typed}")
    assert f"Quiet hours: {stored} (UTC)." in reply
    learner = await h.world.store.get_learner(await learner_of(h, ANN))
    assert learner is not None and learner.quiet_hours == stored
    assert f"Quiet hours: {stored}" in await daily(h, ANN, "quiet")


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("25:00-07:00", "“25:00” is not a time."),
        ("22:00-7:61", "“7:61” is not a time."),
        ("22:00", "“22:00” is not a start and an end, like 22:00-07:00."),
        ("22:00-", "“22:00-” is not a start and an end, like 22:00-07:00."),
        ("22:00-07:00-09:00", "is not a start and an end"),
        ("at night", "“at” is not a time."),
        ("22:00-22:00", "Quiet hours need a start and an end that differ."),
        ("off now", "“off” is not a time."),
    ],
)
async def test_bad_quiet_hours_say_what_is_wrong_and_change_nothing(habits: Habits, typed: str, says: str) -> None:
    h = habits
    await daily(h, ANN, "quiet 21:00-06:00")
    reply = await daily(h, ANN, f"quiet {typed}")
    assert says in reply
    assert reply.endswith("/daily quiet off removes them; /daily quiet alone shows them.")
    learner = await h.world.store.get_learner(await learner_of(h, ANN))
    assert learner is not None and learner.quiet_hours == "21:00-06:00"


async def test_quiet_hours_off_and_show_and_groups(habits: Habits) -> None:
    h = habits
    assert (await daily(h, ANN, "quiet")).startswith("You have no quiet hours. Usage: /daily quiet HH:MM-HH:MM")
    assert (await daily(h, ANN, "quiet off")).startswith("You have no quiet hours to remove.")
    await daily(h, ANN, "quiet 22:00-07:00")
    assert "Quiet hours: 22:00-07:00 (see /daily quiet)." in await daily(h, ANN, "07:00 UTC")
    assert await daily(h, ANN, "quiet off") == "Quiet hours removed: your daily question comes at its time again."
    learner = await h.world.store.get_learner(await learner_of(h, ANN))
    assert learner is not None and learner.quiet_hours is None
    group_admin = Caller(Identity("telegram", "1"), "Ada", Chat("telegram", "-100", is_group=True), is_chat_admin=True)
    assert (await daily(h, group_admin, "quiet 22:00-07:00")).startswith("Quiet hours are personal")
    learner = await h.world.store.get_learner(await learner_of(h, ANN))
    assert learner is not None and learner.quiet_hours is None


async def resume_at(h: Habits, moment: str) -> MatchRunner:
    """A runner started at `moment` (after a restart) resumes every running match and plays it to its end;
    its sleeps move the fake clock."""
    clock = h.world.clock

    async def fake_sleep(seconds: float) -> None:
        clock.advance(seconds=seconds)
        await asyncio.sleep(0)

    clock.set(at(moment))
    runner = MatchRunner(h.competition, {"telegram": h.notifier}, clock, sleep=fake_sleep, lead_in=1, pause=1)
    assert await runner.resume() == 1
    await asyncio.wait_for(asyncio.gather(*runner.tasks.values()), timeout=10)
    return runner


async def test_a_private_quiz_resumed_in_quiet_hours_sends_nothing_until_they_end(habits: Habits) -> None:
    h = habits
    await daily(h, ANN, "quiet 22:00-07:00")
    h.world.clock.set(at(day(0, "21:50")))
    assert "Solo quiz" in (await h.competition.start(ANN, "3 10")).plain_text()  # no runner: the process is down
    match = await h.world.store.running_match(ANN.chat.key)
    assert match is not None
    await resume_at(h, day(0, "23:00"))  # restarted during Ann's quiet hours
    assert h.notifier.sent and all(chat == "1" for chat, _ in h.notifier.sent)
    assert at(day(1, "07:00")) <= h.notifier.times[0] < at(day(1, "07:01"))  # held until they end, then on
    finished = await h.world.store.get_match(match.id)
    assert finished is not None and finished.status is MatchStatus.FINISHED


async def test_a_private_quiz_resumed_outside_quiet_hours_goes_on_at_once(habits: Habits) -> None:
    h = habits
    await daily(h, ANN, "quiet 22:00-07:00")
    h.world.clock.set(at(day(0, "20:50")))
    await h.competition.start(ANN, "1 10")
    await resume_at(h, day(0, "21:00"))
    assert h.notifier.times[0] < at(day(0, "21:01"))


async def test_a_group_quiz_resumed_in_its_starters_quiet_hours_goes_on_at_once(habits: Habits) -> None:
    h = habits
    gus = Caller(Identity("telegram", "5"), "Gus", Chat("telegram", "-100", is_group=True))
    await daily(h, person(5), "quiet 22:00-07:00")
    h.world.clock.set(at(day(0, "21:50")))
    assert "Quiz" in (await h.competition.start(gus, "1 10")).plain_text()
    await resume_at(h, day(0, "23:00"))
    assert h.notifier.sent[0][0] == "-100" and h.notifier.times[0] < at(day(0, "23:01"))


# --- edges: a day's first instant, exact times, old buttons, time zones --------------------------------


async def test_an_answer_at_the_stroke_of_local_midnight_counts_for_the_new_day_not_the_old_one(habits: Habits) -> None:
    h = habits
    await daily(h, ANN, "08:00 Europe/Berlin")  # 07:00 UTC in winter
    assert await tick(h, day(0, "07:00")) == ["1"]
    assert await tick(h, day(1, "07:00")) == ["1"]
    await practise(h, ANN, day(1, "23:00"))  # 00:00:00 on Monday 12 January in Berlin
    assert await tick(h, day(2, "07:00")) == []  # Monday: practised already
    await practise(h, ANN, "2026-01-12T22:59:59")  # 23:59:59 on Monday in Berlin
    assert await tick(h, day(3, "07:00")) == ["1"]  # Tuesday: not yet


async def test_the_terminal_opens_with_the_daily_question_from_the_exact_minute(habits: Habits) -> None:
    h = habits
    console = Caller(Identity("console", "me"), "Me", Chat("console", "local", typed_keys=True))
    await daily(h, console, "08:00 UTC")
    h.world.clock.set(at("2026-01-10T07:59:59"))
    assert await h.world.daily.opening(console) is None
    h.world.clock.set(at(day(0, "08:00")))
    opened = await h.world.daily.opening(console)
    assert opened is not None and PUSH in opened.plain_text()


async def test_always_before_the_time_suggests_the_current_time(habits: Habits) -> None:
    h = habits
    await daily(h, ANN, "09:30 UTC")
    assert await daily(h, ANN, "always") == "Put the time first, for example /daily 09:30 always."


async def test_a_new_zone_with_the_time_moves_the_quiet_hours_to_it_in_the_reply(habits: Habits) -> None:
    h = habits
    await daily(h, ANN, "quiet 22:00-07:00")  # in UTC, Ann's zone so far
    reply = await daily(h, ANN, "08:00 Asia/Tokyo")  # 09:00 on Saturday in Tokyo now
    assert "Next one: Sun 11 Jan at 08:00, in 23 h." in reply, reply  # 08:00 in Tokyo is not quiet there
    learner = await h.world.store.get_learner(await learner_of(h, ANN))
    assert learner is not None and learner.timezone == "Asia/Tokyo"


async def test_a_groups_daily_time_ignores_the_quiet_hours_of_the_admin_who_sets_it(habits: Habits) -> None:
    h = habits
    await daily(h, ANN, "quiet 22:00-07:00")
    admin = Caller(ANN.identity, "Ann", Chat("telegram", "-100", is_group=True), is_chat_admin=True)
    reply = await daily(h, admin, "06:00 UTC")
    assert "Next one: Sat 10 Jan at 06:00, in 6 h." in reply and "quiet" not in reply.lower(), reply


async def test_check_in_buttons_that_are_not_actions_are_stale(habits: Habits) -> None:
    h = habits
    await daily(h, ANN, "08:00 UTC")
    for data in ("nonsense", "", "dk:x:1"):
        reply = await h.world.daily.press(ANN, data)
        assert reply.is_notice_only and reply.notice == "That button is not valid any more.", data


async def test_keep_says_when_quiet_hours_set_since_the_question_hold_the_next_push(habits: Habits) -> None:
    h = habits
    await daily(h, ANN, "08:00 UTC")
    await seven_unanswered(h)
    await tick(h, day(7, "08:00"))
    asked = last_sent(h)
    await daily(h, ANN, "quiet 06:00-09:00", day(7, "10:00"))
    kept = await h.commands.press(ANN, button(asked, "Keep them"))
    assert "Next one: Sun 18 Jan at 09:00 (when your quiet hours end), in 23 h." in kept.plain_text(), kept
    assert await tick(h, day(8, "08:00")) == []
    assert await tick(h, day(8, "09:00")) == ["1"]


async def test_an_offered_time_pressed_after_it_became_quiet_says_when_the_push_really_comes(habits: Habits) -> None:
    h = habits
    await daily(h, ANN, "12:00 UTC")
    await seven_unanswered(h, hhmm="12:00")
    await tick(h, day(7, "12:00"))
    h.world.clock.set(at(day(7, "13:00")))
    offer = await h.commands.press(ANN, button(last_sent(h), "Another time"))
    await daily(h, ANN, "quiet 06:00-08:00")  # the 07:00 on offer is quiet now
    moved = await h.commands.press(ANN, button(offer, "07:00"))
    assert moved.plain_text().startswith("✅ Daily question moved to 07:00 (UTC).")
    assert "Next one: Sun 18 Jan at 08:00 (when your quiet hours end), in 19 h." in moved.plain_text(), moved
    assert await tick(h, day(8, "07:00")) == []
    assert await tick(h, day(8, "08:00")) == ["1"]


async def test_an_old_keep_pressed_after_todays_push_does_not_bring_a_second_push_that_day(habits: Habits) -> None:
    h = habits
    await daily(h, ANN, "08:00 UTC")
    await seven_unanswered(h)
    await tick(h, day(7, "08:00"))
    keep = button(last_sent(h), "Keep them")
    await daily(h, ANN, "08:00", day(8, "07:00"))  # back on by hand
    assert await tick(h, day(8, "08:00")) == ["1"]  # Sunday's push
    await daily(h, ANN, "20:00", day(8, "09:00"))  # moved later: the next one is Monday's
    h.world.clock.set(at(day(8, "10:00")))
    kept = await h.commands.press(ANN, keep)  # the week-old question's button
    assert "Next one: Mon 19 Jan at 20:00" in kept.plain_text(), kept
    assert await tick(h, day(8, "20:00")) == []
    assert await tick(h, day(9, "20:00")) == ["1"]


@pytest.mark.parametrize(("arg", "moved_to"), [(100, "00:00"), (123, "23:00")])
async def test_a_move_button_works_for_every_hour_of_the_day(habits: Habits, arg: int, moved_to: str) -> None:
    h = habits
    await daily(h, ANN, "08:00 UTC")
    await seven_unanswered(h)
    await tick(h, day(7, "08:00"))
    sub = await h.world.store.subscription(ANN.chat.key)
    assert sub is not None
    moved = await h.commands.press(ANN, f"dk:{sub.id}:{arg}")
    assert moved.plain_text().startswith(f"✅ Daily question moved to {moved_to} (UTC)."), moved


async def test_another_time_offers_no_buttons_when_every_offered_time_is_quiet(habits: Habits) -> None:
    h = habits
    await daily(h, ANN, "08:00 UTC")
    await seven_unanswered(h)
    await tick(h, day(7, "08:00"))
    await daily(h, ANN, "quiet 06:00-23:00", day(7, "09:00"))
    offer = await h.commands.press(ANN, button(last_sent(h), "Another time"))
    assert offer.buttons == ()
    assert offer.plain_text() == ("When would suit you better? Pick a time (UTC), or send /daily HH:MM for any other.")


async def test_a_restarted_bot_does_not_send_the_check_in_question_again(habits: Habits) -> None:
    h = habits
    await daily(h, ANN, "08:00 UTC")
    await seven_unanswered(h)
    await tick(h, day(7, "08:00"))
    assert last_sent(h).plain_text().startswith(CHECK_IN)
    h.world.clock.set(at(day(7, "09:00")))
    await h.commands.press(ANN, button(last_sent(h), "Keep them"))
    restarted = h.world.restart()  # a new process takes over what the old one left unfinished
    assert await tick_at(h.world, day(7, "09:01"), restarted) == []
    assert await tick_at(h.world, day(8, "08:00"), restarted) == ["1"]
    assert PUSH in last_sent(h).plain_text()
