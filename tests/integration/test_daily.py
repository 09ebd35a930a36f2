"""DailyService on SQLite with a fake clock: local times, DST, exactly once per day, platform errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fsrs
import pytest

from bot.core.competition import CompetitionService
from bot.core.daily import DailyService
from bot.core.model import Caller, Chat, Identity
from bot.core.ports import Delivery, SendResult
from bot.core.study import StudyService
from bot.storage.store import Store
from tests.conftest import small_bank
from tests.fakes import FakeClock, FakeNotifier


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def person(n: int) -> Caller:
    return Caller(Identity("telegram", str(n)), f"P{n}", Chat("telegram", str(n)))


@dataclass
class World:
    store: Store
    clock: FakeClock
    notifier: FakeNotifier
    study: StudyService
    daily: DailyService
    path: Path

    def restart(self) -> DailyService:
        """A new service (a new process) on the same database."""
        return DailyService(self.store, self.study, {"telegram": self.notifier}, group_content=self.daily.group_content)


@pytest.fixture
async def world(store_location: str, tmp_path: Path) -> AsyncIterator[World]:
    clock = FakeClock(at("2026-01-10T00:00:00"))
    async with Store(store_location) as store:
        study = StudyService(store, small_bank(), clock, scheduler=fsrs.Scheduler(enable_fuzzing=False))
        competition = CompetitionService(store, study.bank, clock, study)
        notifier = FakeNotifier()
        daily = DailyService(
            store,
            study,
            {"telegram": notifier},
            group_content=competition.daily_poll,
            poll_sent=competition.attach_message,
        )
        yield World(store, clock, notifier, study, daily, tmp_path / "bot.db")


async def subscribe(world: World, who: Caller, args: str) -> str:
    return (await world.daily.command(who, args)).plain_text()


async def tick_at(world: World, moment: str, daily: DailyService | None = None) -> list[str]:
    world.clock.set(at(moment))
    before = len(world.notifier.sent)
    await (daily or world.daily).tick()
    # pushes due at the same instant go out concurrently: which one is sent first is not a promise
    return sorted(chat for chat, _ in world.notifier.sent[before:])


async def test_subscriptions_in_several_zones_fire_at_the_right_utc_instants(world: World) -> None:
    zones = {
        1: "08:00 Europe/Berlin",
        2: "08:00 America/New_York",
        3: "08:00 Kolkata",
        4: "08:00 UTC+5:30",
        5: "7:30am Tokyo",
    }
    for n, args in zones.items():
        assert "Daily question on" in await subscribe(world, person(n), args)
    assert await tick_at(world, "2026-01-10T01:59:00") == []
    assert await tick_at(world, "2026-01-10T02:30:00") == ["3", "4"]  # 08:00 in India
    assert await tick_at(world, "2026-01-10T06:59:00") == []
    assert await tick_at(world, "2026-01-10T07:00:00") == ["1"]  # 08:00 CET
    assert await tick_at(world, "2026-01-10T13:00:00") == ["2"]  # 08:00 EST
    assert await tick_at(world, "2026-01-10T22:30:00") == ["5"]  # 07:30 on the 11th in Tokyo
    assert await tick_at(world, "2026-01-11T02:30:00") == ["3", "4"]  # and again the next day


@pytest.mark.parametrize(
    ("zone", "local_time", "gap_day_utc", "expected_utc"),
    [
        # spring forward: 02:30 does not exist that day, the push comes at the next valid minute
        ("Europe/Berlin", "02:30", "2026-03-29", "2026-03-29T01:00:00"),
        ("America/New_York", "02:30", "2026-03-08", "2026-03-08T07:00:00"),
    ],
)
async def test_a_local_time_lost_to_dst_pushes_at_the_next_valid_minute(
    world: World, zone: str, local_time: str, gap_day_utc: str, expected_utc: str
) -> None:
    world.clock.set(at(f"{gap_day_utc}T00:00:00") - timedelta(days=1))
    await subscribe(world, person(1), f"{local_time} {zone}")
    await tick_at(world, f"{gap_day_utc}T00:00:00")
    before = len(world.notifier.sent)
    assert await tick_at(world, (at(expected_utc) - timedelta(minutes=1)).isoformat()[:19]) == []
    assert await tick_at(world, expected_utc) == ["1"]
    assert len(world.notifier.sent) == before + 1


@pytest.mark.parametrize(
    ("zone", "local_time", "first_utc", "second_utc"),
    [
        # fall back: 02:30 happens twice in Berlin, 01:30 twice in New York; push once, at the first
        ("Europe/Berlin", "02:30", "2026-10-25T00:30:00", "2026-10-25T01:30:00"),
        ("America/New_York", "01:30", "2026-11-01T05:30:00", "2026-11-01T06:30:00"),
    ],
)
async def test_an_ambiguous_local_time_pushes_once(
    world: World, zone: str, local_time: str, first_utc: str, second_utc: str
) -> None:
    world.clock.set(at(first_utc) - timedelta(hours=12))
    await subscribe(world, person(1), f"{local_time} {zone}")
    assert await tick_at(world, first_utc) == ["1"]
    assert await tick_at(world, second_utc) == []
    assert await tick_at(world, (at(first_utc) + timedelta(hours=23)).isoformat()[:19]) == []
    assert await tick_at(world, (at(first_utc) + timedelta(days=1, hours=1)).isoformat()[:19]) == ["1"]


async def test_a_restart_neither_skips_nor_repeats(world: World) -> None:
    await subscribe(world, person(1), "08:00 UTC")
    assert await tick_at(world, "2026-01-10T08:00:00") == ["1"]
    fresh = world.restart()
    assert await tick_at(world, "2026-01-10T08:00:30", fresh) == []
    assert await tick_at(world, "2026-01-10T23:00:00", fresh) == []
    # down over the next push time: the push goes out once on restart, not twice
    assert await tick_at(world, "2026-01-11T09:40:00", world.restart()) == ["1"]
    assert await tick_at(world, "2026-01-11T09:41:00", world.restart()) == []


async def test_a_crash_between_claim_and_send_leads_to_a_send_after_restart(world: World) -> None:
    await subscribe(world, person(1), "08:00 UTC")
    world.clock.set(at("2026-01-10T08:00:00"))
    claims = await world.store.claim_due(world.clock.now(), "crashed-process", 100, world.daily._advance)
    assert len(claims) == 1  # claimed, then the process died before sending
    assert world.notifier.sent == []
    assert await tick_at(world, "2026-01-10T08:01:00", world.restart()) == ["1"]
    assert await tick_at(world, "2026-01-10T08:02:00", world.restart()) == []


async def test_a_transient_failure_is_retried_on_a_later_tick(world: World) -> None:
    await subscribe(world, person(1), "08:00 UTC")
    world.notifier.script = [SendResult(Delivery.FAILED, detail="429 Too Many Requests")]
    assert await tick_at(world, "2026-01-10T08:00:00") == []
    assert await tick_at(world, "2026-01-10T08:01:00") == []  # waits for its retry time
    assert await tick_at(world, "2026-01-10T08:03:00") == ["1"]
    assert await tick_at(world, "2026-01-10T08:10:00") == []


async def test_repeated_failures_give_up_for_the_day_and_push_the_next_day(world: World) -> None:
    await subscribe(world, person(1), "08:00 UTC")
    world.notifier.script = [SendResult(Delivery.FAILED)] * 5
    for minute in range(0, 300, 10):
        await tick_at(world, f"2026-01-10T{8 + minute // 60:02d}:{minute % 60:02d}:00")
    assert world.notifier.sent == []
    assert await tick_at(world, "2026-01-11T08:00:00") == ["1"]


async def test_a_403_pauses_the_subscription_and_it_resumes_when_the_user_returns(world: World) -> None:
    ann = person(1)
    await subscribe(world, ann, "08:00 UTC")
    world.notifier.script = [SendResult(Delivery.UNREACHABLE, detail="Forbidden: bot was blocked by the user")]
    await world.store.mark_unreachable(ann.chat.key, world.clock.now(), "blocked")
    assert await tick_at(world, "2026-01-10T08:00:00") == []
    assert await tick_at(world, "2026-01-11T08:00:00") == []  # paused: not retried forever
    assert "paused" in await subscribe(world, ann, "")
    await world.store.mark_reachable(ann.chat.key)  # the user writes to the bot again
    note = await world.daily.welcome_back(ann)
    assert note is not None and "Welcome back" in note
    assert await world.daily.welcome_back(ann) is None  # said once
    assert await tick_at(world, "2026-01-12T08:00:00") == ["1"]


@pytest.mark.parametrize(
    "args",
    [
        "25:00",
        "8:61",
        "noon",
        "08:00 Mars/Olympus",
        "08:00 Springfield",
        "08:00 UTC+15",
        "off now",
        "08:00 " + "x" * 60,
    ],
)
async def test_bad_daily_arguments_change_nothing(world: World, args: str) -> None:
    ann = person(1)
    await subscribe(world, ann, "08:00 Europe/Berlin")
    before = await world.store.subscription(ann.chat.key)
    reply = await subscribe(world, ann, args)
    assert "Usage: /daily HH:MM" in reply
    assert await world.store.subscription(ann.chat.key) == before


def test_zones_are_accepted_as_names_cities_and_offsets() -> None:
    from bot.core.zones import ZoneError, parse_zone

    assert parse_zone("europe/berlin") == "Europe/Berlin"
    assert parse_zone("Berlin") == "Europe/Berlin"
    assert parse_zone("new york") == "America/New_York"
    assert parse_zone("Buenos Aires") == "America/Argentina/Buenos_Aires"  # not its old alias
    assert parse_zone("UTC+5:30") == "UTC+05:30"
    assert parse_zone("gmt-3") == "UTC-03:00"
    assert parse_zone("+0") == "UTC"
    for bad in ("UTC+5:20", "UTC+15", "Atlantis", ""):
        with pytest.raises(ZoneError):
            parse_zone(bad)


async def test_daily_off_and_show(world: World) -> None:
    ann = person(1)
    assert "No daily question" in await subscribe(world, ann, "")
    await subscribe(world, ann, "21:15 UTC+5:30")
    assert "21:15 (UTC+05:30)" in await subscribe(world, ann, "")
    assert "stopped" in await subscribe(world, ann, "off")
    assert await tick_at(world, "2026-01-10T15:45:00") == []


async def test_in_a_group_only_admins_subscribe_and_the_group_gets_a_quiz_poll(world: World) -> None:
    member = Caller(Identity("telegram", "7"), "Mo", Chat("telegram", "-100", is_group=True))
    admin = Caller(Identity("telegram", "8"), "Ada", Chat("telegram", "-100", is_group=True), is_chat_admin=True)
    assert "Only an admin" in await subscribe(world, member, "09:00 UTC")
    assert await world.store.subscription("telegram:-100") is None
    assert "Daily question on" in await subscribe(world, admin, "09:00 UTC")
    assert await tick_at(world, "2026-01-10T09:00:00") == ["-100"]
    (_, reply) = world.notifier.sent[-1]
    poll = reply.poll
    assert poll is not None and poll.round_id is not None
    round_ = await world.store.round_by_poll("poll-1")
    assert round_ is not None and round_.id == poll.round_id


async def test_a_learner_push_is_their_most_useful_card_with_their_streak(world: World) -> None:
    ann = person(1)
    await subscribe(world, ann, "08:00 UTC")
    await tick_at(world, "2026-01-10T08:00:00")
    (_, first) = world.notifier.sent[-1]
    text = first.plain_text()
    assert "Your daily question" in text and "start a streak today" in text
    assert [b.label for row in first.buttons for b in row][:2] == ["Show answer", "Multiple choice"]
    learner = await world.store.find_learner(ann.identity)
    assert learner is not None
    attempt = await world.store.active_attempt(learner.id, ann.chat.key)
    assert attempt is not None
    from bot.core.commands import Commands

    commands = Commands(world.study)
    revealed = await commands.press(ann, f"sa:{attempt.id}")
    await commands.press(ann, [b.action for row in revealed.buttons for b in row][2])
    await tick_at(world, "2026-01-11T08:00:00")
    assert "🔥 1-day streak" in world.notifier.sent[-1][1].plain_text()


async def test_with_streaks_hidden_the_daily_push_does_not_mention_them(world: World) -> None:
    ann = person(1)
    await subscribe(world, ann, "08:00 UTC")
    learner = await world.study.learner(ann)
    await world.store.set_show_streak(learner.id, False)
    await tick_at(world, "2026-01-10T08:00:00")
    text = world.notifier.sent[-1][1].plain_text()
    assert text.startswith("☀️ Your daily question\n") and "streak" not in text
