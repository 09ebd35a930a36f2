"""DailyService: one question a day at each subscriber's local time, exactly once per local day."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from bot.core.model import Caller, Claim, Subscription
from bot.core.ports import ChatStore, DailyStore, Delivery, Notifier, StudyStore
from bot.core.study import StudyService, interval_label, streaks
from bot.core.views import Paragraph, Reply, Span
from bot.core.zones import (
    ZoneError,
    local_day_of,
    next_occurrence,
    parse_local_time,
    parse_zone,
    zone_info,
)

log = logging.getLogger("studybot.daily")

USAGE = (
    "Usage: /daily HH:MM [time zone], for example /daily 08:00 Europe/Berlin, /daily 7:30 Berlin or "
    "/daily 21:00 UTC+5:30. /daily off stops it; /daily alone shows the current setting."
)
PAUSED_UNREACHABLE = "unreachable"
# A subscription where nothing can be pushed (the terminal) is held out of the tick with this reason: its
# question is asked when the chat starts after the daily time, on a day with no answer yet (`opening`).
ASKED_ON_START = "asked on start"
PUSH_PLATFORMS = frozenset({"telegram", "discord"})


class DailyPorts(DailyStore, StudyStore, ChatStore, Protocol):
    """The store DailyService works on: subscriptions plus the learners they belong to."""


GroupContent = Callable[[Subscription, datetime], Awaitable[Reply]]


@dataclass
class TickReport:
    claimed: int = 0
    sent: int = 0
    unreachable: int = 0
    retrying: int = 0
    gave_up: int = 0
    rejected: int = 0
    outcomes: dict[int, str] = field(default_factory=dict)  # delivery id -> final status


class DailyService:
    """Subscriptions, the minute tick, and what each push contains."""

    def __init__(
        self,
        store: DailyPorts,
        study: StudyService,
        notifiers: Mapping[str, Notifier],
        *,
        group_content: GroupContent | None = None,
        poll_sent: Callable[[int, str | None, str | None], Awaitable[None]] | None = None,
        concurrency: int = 32,
        batch: int = 500,
        max_attempts: int = 5,
        retry_delay: timedelta = timedelta(minutes=2),
    ) -> None:
        self.store = store
        self.study = study
        self.clock = study.clock
        self.notifiers = notifiers
        self.group_content = group_content
        self.poll_sent = poll_sent
        self.concurrency = concurrency
        self.batch = batch
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.claimer = uuid.uuid4().hex  # this process; claims of a dead process are recovered

    # --- the /daily command ----------------------------------------------------------------------

    async def command(self, caller: Caller, args: str) -> Reply:
        """/daily, /daily off, /daily HH:MM [zone]: show, stop or set; bad input changes nothing."""
        words = args.split()
        pushed = caller.chat.platform in PUSH_PLATFORMS
        current = await self.store.subscription(caller.chat.key)
        if not words:
            return self._describe(current, caller)
        if caller.chat.is_group and not caller.is_chat_admin:
            return _say("Only an admin of this group can change its daily question.")
        if words[0].lower() in ("off", "stop", "cancel", "none"):
            if len(words) > 1:
                return _say(USAGE)
            removed = await self.store.delete_subscription(caller.chat.key)
            return _say(
                "Daily question stopped. Start again any time with /daily HH:MM."
                if removed
                else "There is no daily question here to stop. " + USAGE
            )
        try:
            at = parse_local_time(words[0])
        except ValueError as exc:
            return _say(f"{exc}. {USAGE}")
        learner = await self.study.learner(caller)
        try:
            if len(words) > 1:
                zone = parse_zone(" ".join(words[1:]))
            elif current is not None:
                zone = current.timezone
            elif not caller.chat.is_group:
                zone = learner.timezone
            else:
                zone = self.study.default_timezone
        except ZoneError as exc:
            return _say(f"{exc}. {USAGE}")
        now = self.clock.now()
        next_at = next_occurrence(at, zone, now)
        if current is not None and await self.store.day_claimed(current.id, local_day_of(next_at, zone)):
            next_at = next_occurrence(at, zone, next_at)  # that day's push went out already: the next day
        subscription = Subscription(
            id=current.id if current else 0,
            chat_key=caller.chat.key,
            platform=caller.chat.platform,
            chat_id=caller.chat.chat_id,
            is_group=caller.chat.is_group,
            learner_id=None if caller.chat.is_group else learner.id,
            local_time=at.strftime("%H:%M"),
            timezone=zone,
            next_push_at=next_at,
            paused_reason=None if pushed else ASKED_ON_START,
            created_at=now,
        )
        saved = await self.store.save_subscription(subscription)
        if not caller.chat.is_group:
            await self.store.set_timezone(learner.id, zone)  # streaks count in the learner's local days
        verb = "changed" if current else "on"
        return Reply(
            blocks=(
                Paragraph.of(Span(f"✅ Daily question {verb}: {saved.local_time} ({saved.timezone}).", "bold")),
                Paragraph.of(self._next_line(saved) if pushed else _on_start_line(saved)),
                Paragraph.of("Stop it with /daily off."),
            )
        )

    def _next_line(self, sub: Subscription) -> str:
        now = self.clock.now()
        local = sub.next_push_at.astimezone(zone_info(sub.timezone))
        return f"Next one: {local:%a %d %b at %H:%M}, in {interval_label(sub.next_push_at - now)}."

    def _describe(self, sub: Subscription | None, caller: Caller) -> Reply:
        if sub is None:
            who = "this group" if caller.chat.is_group else "you"
            return _say(f"No daily question for {who} yet. {USAGE}")
        if sub.paused_reason == ASKED_ON_START:
            return Reply(
                blocks=(
                    Paragraph.of(Span(f"Daily question at {sub.local_time} ({sub.timezone}).", "bold")),
                    Paragraph.of(_on_start_line(sub)),
                    Paragraph.of("Change it with /daily HH:MM [zone]; stop it with /daily off."),
                )
            )
        if sub.paused_reason:
            return _say(
                f"Your daily question ({sub.local_time}, {sub.timezone}) is paused because I couldn't reach this "
                "chat. Send /daily HH:MM to turn it back on."
            )
        return Reply(
            blocks=(
                Paragraph.of(Span(f"Daily question at {sub.local_time} ({sub.timezone}).", "bold")),
                Paragraph.of(self._next_line(sub)),
                Paragraph.of("Change it with /daily HH:MM [zone]; stop it with /daily off."),
            )
        )

    async def welcome_back(self, caller: Caller) -> str | None:
        """Notice provider: a subscription paused because the chat was unreachable resumes once the
        chat reaches us again (the adapter marks it reachable), and we say so once."""
        if await self.store.paused_reason(caller.chat.key) != PAUSED_UNREACHABLE:  # no read: kept in memory
            return None
        sub = await self.store.subscription(caller.chat.key)
        if sub is None or sub.paused_reason != PAUSED_UNREACHABLE:
            return None
        if not await self.store.is_reachable(caller.chat.key):
            return None
        next_at = next_occurrence(parse_local_time(sub.local_time), sub.timezone, self.clock.now())
        await self.store.resume_subscription(sub.chat_key, next_at)
        return (
            f"Welcome back! I paused your daily question while I couldn't reach this chat. It's on again: "
            f"{sub.local_time} ({sub.timezone})."
        )

    async def opening(self, caller: Caller) -> Reply | None:
        """The daily question to open a chat with where nothing is pushed (the terminal): once the local
        daily time has passed on a day the learner has not answered anything yet; else None."""
        sub = await self.store.subscription(caller.chat.key)
        if sub is None or sub.paused_reason != ASKED_ON_START or sub.learner_id is None:
            return None
        now = self.clock.now()
        if now.astimezone(zone_info(sub.timezone)).time() < parse_local_time(sub.local_time):
            return None
        if local_day_of(now, sub.timezone) in await self.store.review_days(sub.learner_id):
            return None
        return await self.content(sub)

    # --- the tick ------------------------------------------------------------------------------

    def _advance(self, sub: Subscription, now: datetime) -> tuple[str, datetime]:
        at = parse_local_time(sub.local_time)
        day = local_day_of(sub.next_push_at, sub.timezone)
        return day, next_occurrence(at, sub.timezone, max(now, sub.next_push_at))

    async def tick(self) -> TickReport:
        """Claim every due push (and unfinished ones) and deliver them; called once a minute."""
        report = TickReport()
        now = self.clock.now()
        await self.store.beat("daily-tick", now)
        semaphore = asyncio.Semaphore(self.concurrency)

        async def deliver(claim: Claim) -> None:
            async with semaphore:
                status = await self._deliver(claim)
            report.outcomes[claim.delivery_id] = status

        claims = await self.store.open_claims(now, self.claimer, self.batch)
        while True:
            report.claimed += len(claims)
            await asyncio.gather(*(deliver(claim) for claim in claims))
            claims = await self.store.claim_due(self.clock.now(), self.claimer, self.batch, self._advance)
            if not claims:
                break
        for status in report.outcomes.values():
            if status == "sent":
                report.sent += 1
            elif status == "unreachable":
                report.unreachable += 1
            elif status == "retry":
                report.retrying += 1
            elif status == "gave_up":
                report.gave_up += 1
            elif status == "rejected":
                report.rejected += 1
        return report

    async def _deliver(self, claim: Claim) -> str:
        sub = claim.subscription
        notifier = self.notifiers.get(sub.platform)
        now = self.clock.now()
        if notifier is None:  # that platform is not running now: keep it for later
            return await self._retry(claim, f"no {sub.platform} adapter running")
        try:
            reply = await self.content(sub)
        except Exception as exc:  # a bug must not stop the other pushes
            log.exception("could not build the daily push for %s", sub.chat_key)
            return await self._retry(claim, f"content failed: {exc!r}")
        result = await notifier.send(sub.chat_id, reply)
        if result.delivery is Delivery.SENT:
            if reply.poll is not None and reply.poll.round_id is not None and self.poll_sent is not None:
                await self.poll_sent(reply.poll.round_id, result.poll_id, result.message_id)
            await self.store.finish_delivery(claim.delivery_id, "sent", now, message_id=result.message_id)
            return "sent"
        if result.delivery is Delivery.UNREACHABLE:
            await self.store.finish_delivery(claim.delivery_id, "unreachable", now, detail=result.detail)
            await self.store.pause_subscription(sub.chat_key, PAUSED_UNREACHABLE)
            return "unreachable"
        if result.delivery is Delivery.REJECTED:
            log.error("the platform rejected the daily push for %s: %s", sub.chat_key, result.detail)
            await self.store.finish_delivery(claim.delivery_id, "rejected", now, detail=result.detail)
            return "rejected"
        return await self._retry(claim, result.detail)

    async def _retry(self, claim: Claim, detail: str) -> str:
        now = self.clock.now()
        if claim.attempts + 1 >= self.max_attempts:
            await self.store.finish_delivery(claim.delivery_id, "gave_up", now, detail=detail)
            return "gave_up"
        retry_at = now + self.retry_delay * (2**claim.attempts)
        await self.store.finish_delivery(claim.delivery_id, "retry", now, detail=detail, retry_at=retry_at)
        return "retry"

    async def content(self, sub: Subscription) -> Reply:
        """What a subscription receives: a learner's most useful card, or a group's quiz poll."""
        if sub.is_group or sub.learner_id is None:
            if self.group_content is None:
                raise RuntimeError("no group content configured")
            return await self.group_content(sub, self.clock.now())
        learner = await self.store.get_learner(sub.learner_id)
        if learner is None:
            raise RuntimeError(f"learner {sub.learner_id} is gone")
        current, _best = streaks(await self.store.review_days(learner.id), local_day_of(self.clock.now(), sub.timezone))
        streak = f" · 🔥 {current}-day streak" if current else " · start a streak today!"
        return await self.study.ask(
            learner, sub.chat_key, None, header=f"☀️ Your daily question{streak}", plan_line=True
        )


def _on_start_line(sub: Subscription) -> str:
    return (
        f"Nothing is pushed to a terminal: start the chat after {sub.local_time} on a day you haven't practised yet, "
        "and I'll open with your daily question. Your day, new-card limit and streak follow this time zone."
    )


def _say(text: str) -> Reply:
    return Reply(blocks=(Paragraph.of(text),))
