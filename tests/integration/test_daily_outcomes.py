"""What happens to each daily push, and what /daily says: outcomes, retries, logs and replies.

DailyService on SQLite with a fake clock, as in test_daily.py; the notifier here answers per chat, so
several pushes in one tick can each end differently.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import fsrs
import pytest

from bot.core.commands import Commands
from bot.core.competition import CompetitionService
from bot.core.daily import DailyService
from bot.core.model import Caller, Chat, Identity
from bot.core.ports import Delivery, SendResult
from bot.core.study import StudyService
from bot.core.views import Paragraph, Reply, Span
from bot.ops import health
from bot.storage.sqlite import SqliteStore  # on SQLite only: the health check reads the file
from tests.conftest import small_bank
from tests.fakes import FakeClock, FakeNotifier
from tests.integration.test_daily import World, at, person, subscribe, tick_at

USAGE = (
    "Usage: /daily HH:MM [time zone], for example /daily 08:00 Europe/Berlin, /daily 7:30 Berlin or "
    "/daily 21:00 UTC+5:30. /daily off stops it; /daily alone shows the current setting."
)


class ByChat(FakeNotifier):
    """A notifier whose outcome depends on the chat: `outcomes[chat_id]` is used up one per send."""

    def __init__(self, platform: str = "telegram") -> None:
        super().__init__(platform)
        self.outcomes: dict[str, list[SendResult]] = {}

    async def send(self, chat_id: str, reply: Reply) -> SendResult:
        queued = self.outcomes.get(chat_id)
        if queued:
            result = queued.pop(0)
            if result.delivery is not Delivery.SENT:
                return result
        return await super().send(chat_id, reply)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    clock = FakeClock(at("2026-01-10T00:00:00"))
    async with SqliteStore(tmp_path / "bot.db") as store:
        study = StudyService(store, small_bank(), clock, scheduler=fsrs.Scheduler(enable_fuzzing=False))
        competition = CompetitionService(store, study.bank, clock, study)
        notifier = ByChat()
        daily = DailyService(
            store,
            study,
            {"telegram": notifier},
            group_content=competition.daily_poll,
            poll_sent=competition.attach_message,
            max_attempts=2,
        )
        yield World(store, clock, notifier, study, daily, tmp_path / "bot.db")


def group(n: int, *, admin: bool = True) -> Caller:
    return Caller(Identity("telegram", str(n)), f"G{n}", Chat("telegram", f"-{n}", is_group=True), is_chat_admin=admin)


def paragraphs(reply: Reply) -> list[tuple[str, str]]:
    """Each paragraph as (its text, the style of its first part)."""
    found = []
    for block in reply.blocks:
        assert isinstance(block, Paragraph)
        first = block.parts[0]
        found.append(
            (
                "".join(p.text if isinstance(p, Span) else p for p in block.parts),
                first.style if isinstance(first, Span) else "plain",
            )
        )
    return found


async def test_a_tick_reports_how_many_pushes_were_sent_unreachable_rejected_retried_and_given_up(
    world: World,
) -> None:
    notifier = world.notifier
    assert isinstance(notifier, ByChat)
    unreachable = SendResult(Delivery.UNREACHABLE, detail="Forbidden: bot was blocked by the user")
    rejected = SendResult(Delivery.REJECTED, detail="Bad Request: message is too long")
    failed = SendResult(Delivery.FAILED, detail="502 Bad Gateway")
    notifier.outcomes = {"3": [unreachable], "4": [unreachable], "5": [rejected], "6": [rejected]}
    notifier.outcomes |= {"7": [failed, failed], "8": [failed, failed]}
    for n in range(1, 9):
        await subscribe(world, person(n), "08:00 UTC")
    await subscribe(world, person(9), "08:02 UTC")  # due when the two failures are retried
    world.clock.set(at("2026-01-10T08:00:00"))
    first = await world.daily.tick()
    assert (first.claimed, first.sent, first.unreachable, first.rejected, first.retrying, first.gave_up) == (
        8,
        2,
        2,
        2,
        2,
        0,
    )
    world.clock.set(at("2026-01-10T08:02:00"))
    second = await world.daily.tick()  # the retries fail again (the last of two attempts), the 08:02 one goes out
    assert (second.claimed, second.sent, second.retrying, second.gave_up) == (3, 1, 0, 2)
    assert sorted(second.outcomes.values()) == ["gave_up", "gave_up", "sent"]
    assert sorted(chat for chat, _ in notifier.sent) == ["1", "2", "9"]


async def test_a_push_that_keeps_failing_waits_twice_as_long_before_each_retry(world: World) -> None:
    daily = DailyService(world.store, world.study, {"telegram": world.notifier})  # five attempts
    assert isinstance(world.notifier, ByChat)
    world.notifier.outcomes = {"1": [SendResult(Delivery.FAILED, detail="429 Too Many Requests")] * 2}
    await subscribe(world, person(1), "08:00 UTC")
    assert await tick_at(world, "2026-01-10T08:00:00", daily) == []  # fails; next try in 2 min
    assert await tick_at(world, "2026-01-10T08:01:00", daily) == []
    assert await tick_at(world, "2026-01-10T08:02:00", daily) == []  # fails again; next try in 4 min
    assert await tick_at(world, "2026-01-10T08:05:00", daily) == []
    assert await tick_at(world, "2026-01-10T08:06:00", daily) == ["1"]


async def test_a_push_whose_content_cannot_be_built_is_logged_with_its_chat_and_retried(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    daily = DailyService(world.store, world.study, {"telegram": world.notifier})  # no group content
    await subscribe(world, group(100), "09:00 UTC")
    with caplog.at_level(logging.ERROR, logger="studybot.daily"):
        assert await tick_at(world, "2026-01-10T09:00:00", daily) == []
    (record,) = caplog.records
    assert record.getMessage() == "could not build the daily push for telegram:-100"
    assert record.exc_info is not None and str(record.exc_info[1]) == "no group content configured"
    assert await tick_at(world, "2026-01-10T09:02:00") == ["-100"]  # retried, now with content


async def test_a_push_for_a_platform_that_is_not_running_waits_until_it_runs(world: World) -> None:
    ann = Caller(Identity("discord", "1"), "Ann", Chat("discord", "55"))
    await world.daily.command(ann, "08:00 UTC")
    assert await tick_at(world, "2026-01-10T08:00:00") == []  # only Telegram runs in this process
    discord = FakeNotifier("discord")
    with_discord = DailyService(world.store, world.study, {"telegram": world.notifier, "discord": discord})
    world.clock.set(at("2026-01-10T08:01:00"))
    await with_discord.tick()
    assert discord.sent == []  # waits for its retry time
    world.clock.set(at("2026-01-10T08:02:00"))
    await with_discord.tick()
    assert [chat for chat, _ in discord.sent] == ["55"]


async def test_a_rejected_push_is_logged_with_the_reason_and_not_sent_again_after_a_restart(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    assert isinstance(world.notifier, ByChat)
    world.notifier.outcomes = {"1": [SendResult(Delivery.REJECTED, detail="Bad Request: can't parse entities")]}
    await subscribe(world, person(1), "08:00 UTC")
    with caplog.at_level(logging.ERROR, logger="studybot.daily"):
        assert await tick_at(world, "2026-01-10T08:00:00") == []
    assert [r.getMessage() for r in caplog.records] == [
        "the platform rejected the daily push for telegram:1: Bad Request: can't parse entities"
    ]
    assert await tick_at(world, "2026-01-10T08:05:00", world.restart()) == []
    assert await tick_at(world, "2026-01-10T12:00:00", world.restart()) == []
    assert await tick_at(world, "2026-01-11T08:00:00") == ["1"]


async def test_a_learner_back_from_being_unreachable_gets_no_leftover_push_after_a_restart(world: World) -> None:
    ann = person(1)
    assert isinstance(world.notifier, ByChat)
    world.notifier.outcomes = {"1": [SendResult(Delivery.UNREACHABLE, detail="Forbidden: bot was blocked")]}
    await subscribe(world, ann, "08:00 UTC")
    assert await tick_at(world, "2026-01-10T08:00:00") == []
    await world.store.mark_unreachable(ann.chat.key, world.clock.now(), "blocked")
    world.clock.set(at("2026-01-10T10:00:00"))
    assert await world.daily.welcome_back(ann) is None  # still unreachable: no welcome yet
    await world.store.mark_reachable(ann.chat.key)
    assert await world.daily.welcome_back(ann) is not None
    assert await tick_at(world, "2026-01-10T10:01:00", world.restart()) == []
    assert await tick_at(world, "2026-01-11T08:00:00") == ["1"]


async def test_the_group_daily_poll_remembers_the_message_it_was_sent_in(world: World) -> None:
    await subscribe(world, group(100), "09:00 UTC")
    assert await tick_at(world, "2026-01-10T09:00:00") == ["-100"]
    poll = world.notifier.sent[-1][1].poll
    assert poll is not None and poll.round_id is not None
    round_ = await world.store.get_round(poll.round_id)
    assert round_ is not None and (round_.poll_id, round_.message_id) == ("poll-1", "1")


async def test_a_tick_keeps_the_health_check_green(world: World) -> None:
    await tick_at(world, "2026-01-10T08:00:00")
    healthy, line = health(world.path, now=at("2026-01-10T08:01:00").timestamp())
    assert healthy, line


async def test_the_daily_reply_names_the_setting_in_bold_and_the_next_push_in_local_time(world: World) -> None:
    world.clock.set(at("2026-01-10T06:00:00"))
    reply = await world.daily.command(person(1), "08:00 Europe/Berlin")
    assert paragraphs(reply) == [
        ("✅ Daily question on: 08:00 (Europe/Berlin).", "bold"),
        ("Next one: Sat 10 Jan at 08:00, in 1 h.", "plain"),
        ("Skipped on days you've already answered a card; /daily 08:00 always sends it every day.", "plain"),
        ("Stop it with /daily off.", "plain"),
    ]
    assert paragraphs(await world.daily.command(person(1), "")) == [
        ("Daily question at 08:00 (Europe/Berlin).", "bold"),
        ("Next one: Sat 10 Jan at 08:00, in 1 h.", "plain"),
        ("Skipped on days you've already answered a card; /daily 08:00 always sends it every day.", "plain"),
        ("Change it with /daily HH:MM [zone]; stop it with /daily off.", "plain"),
    ]


async def test_a_new_time_alone_keeps_the_zone_the_learner_chose_before(world: World) -> None:
    ann = person(1)
    await subscribe(world, ann, "08:00 new york")
    assert "(America/New_York)" in await subscribe(world, ann, "09:00")  # the subscription's zone
    await subscribe(world, ann, "off")
    assert "(America/New_York)" in await subscribe(world, ann, "10:00")  # the learner's zone


async def test_a_group_daily_without_a_zone_runs_in_the_default_zone(world: World) -> None:
    assert "Daily question on: 09:00 (UTC)." in await subscribe(world, group(100), "09:00")


async def test_an_admin_who_erases_their_data_does_not_stop_the_groups_daily_question(world: World) -> None:
    admin = group(100)
    await subscribe(world, admin, "09:00 UTC")
    await subscribe(world, admin, "")  # the admin is a learner now too
    learner = await world.store.find_learner(admin.identity)
    assert learner is not None
    await world.store.forget_learner(learner.id)
    assert await world.store.subscription("telegram:-100") is not None
    assert await tick_at(world, "2026-01-10T09:00:00") == ["-100"]


@pytest.mark.parametrize("word", ["off", "stop", "cancel", "none", "OFF"])
async def test_each_word_for_off_stops_the_daily_question(world: World, word: str) -> None:
    await subscribe(world, person(1), "08:00 UTC")
    assert await subscribe(world, person(1), word) == "Daily question stopped. Start again any time with /daily HH:MM."
    assert await tick_at(world, "2026-01-10T08:00:00") == []


async def test_daily_off_without_a_daily_question_says_so(world: World) -> None:
    assert await subscribe(world, person(1), "off") == "There is no daily question here to stop. " + USAGE


async def test_daily_alone_without_a_subscription_speaks_to_the_learner_or_the_group(world: World) -> None:
    assert await subscribe(world, person(1), "") == f"No daily question for you yet. {USAGE}"
    assert await subscribe(world, group(100), "") == f"No daily question for this group yet. {USAGE}"


async def test_only_a_group_admin_changes_the_groups_daily_question(world: World) -> None:
    reply = await subscribe(world, group(100, admin=False), "09:00 UTC")
    assert reply == "Only an admin of this group can change its daily question."


async def test_a_paused_daily_question_says_why_and_how_to_resume(world: World) -> None:
    ann = person(1)
    assert isinstance(world.notifier, ByChat)
    world.notifier.outcomes = {"1": [SendResult(Delivery.UNREACHABLE, detail="Forbidden")]}
    await subscribe(world, ann, "08:00 UTC")
    await tick_at(world, "2026-01-10T08:00:00")
    assert await subscribe(world, ann, "") == (
        "Your daily question (08:00, UTC) is paused because I couldn't reach this chat. "
        "Send /daily HH:MM to turn it back on."
    )


async def test_in_the_terminal_daily_is_asked_when_the_chat_starts_after_its_time_until_answered(
    world: World,
) -> None:
    console = Caller(Identity("console", "me"), "Me", Chat("console", "local", typed_keys=True))
    saved = await subscribe(world, console, "08:00 Asia/Tokyo")
    assert saved.startswith("✅ Daily question on: 08:00 (Asia/Tokyo).\n\nNothing is pushed to a terminal: ")
    assert "start the chat after 08:00 on a day you haven't practised yet" in saved
    assert (await world.study.learner(console)).timezone == "Asia/Tokyo"  # the learner's day follows it
    assert "Daily question at 08:00 (Asia/Tokyo)." in await subscribe(world, console, "")

    assert await tick_at(world, "2026-01-10T23:00:00") == []  # 08:00 in Tokyo: the tick never claims it
    sub = await world.store.subscription(console.chat.key)
    assert sub is not None and not await world.store.day_claimed(sub.id, "2026-01-11")

    world.clock.set(at("2026-01-10T22:59:00"))  # 07:59 in Tokyo: not yet
    assert await world.daily.opening(console) is None
    world.clock.set(at("2026-01-10T23:01:00"))  # 08:01 in Tokyo, nothing answered today
    opening = await world.daily.opening(console)
    assert opening is not None and opening.plain_text().startswith("☀️ Your daily question · start a streak today!")
    learner = await world.store.find_learner(console.identity)
    assert learner is not None
    attempt = await world.store.active_attempt(learner.id, console.chat.key)
    assert attempt is not None
    commands = Commands(world.study)
    revealed = await commands.press(console, f"sa:{attempt.id}")
    await commands.press(console, [b.action for row in revealed.buttons for b in row][2])  # rated: answered today
    assert await world.daily.opening(console) is None
    world.clock.set(at("2026-01-11T14:59:00"))  # 23:59 in Tokyo, the same local day: still answered
    assert await world.daily.opening(console) is None
    world.clock.set(at("2026-01-11T23:30:00"))  # 08:30 the next day in Tokyo: asked again
    again = await world.daily.opening(console)
    assert again is not None and again.plain_text().startswith("☀️ Your daily question · 🔥 1-day streak")

    assert (await subscribe(world, console, "off")).startswith("Daily question stopped.")
    assert await world.daily.opening(console) is None


async def test_the_first_daily_push_invites_a_streak(world: World) -> None:
    await subscribe(world, person(1), "08:00 UTC")
    await tick_at(world, "2026-01-10T08:00:00")
    assert world.notifier.sent[-1][1].plain_text().startswith("☀️ Your daily question · start a streak today!\n")


async def test_a_push_given_up_for_the_day_is_not_tried_again_after_a_restart(world: World) -> None:
    assert isinstance(world.notifier, ByChat)
    world.notifier.outcomes = {"1": [SendResult(Delivery.FAILED, detail="502 Bad Gateway")] * 2}
    await subscribe(world, person(1), "08:00 UTC")
    assert await tick_at(world, "2026-01-10T08:00:00") == []
    assert await tick_at(world, "2026-01-10T08:02:00") == []  # the second and last attempt fails: given up
    assert await tick_at(world, "2026-01-10T08:03:00", world.restart()) == []
    assert await tick_at(world, "2026-01-11T08:00:00") == ["1"]


async def test_a_learners_export_says_when_they_set_up_the_daily_question(world: World) -> None:
    ann = person(1)
    world.clock.set(at("2026-01-10T06:30:00"))
    await subscribe(world, ann, "08:00 UTC")
    learner = await world.store.find_learner(ann.identity)
    assert learner is not None
    (subscription,) = (await world.store.export_learner(learner.id))["subscriptions"]
    assert subscription["created_at"] == "2026-01-10T06:30:00+00:00"
