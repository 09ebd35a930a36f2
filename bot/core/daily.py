"""DailyService: one question a day at each subscriber's local time, exactly once per local day."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Protocol

from bot.core.actions import Action, Verb, parse_action
from bot.core.model import Caller, Claim, Learner, Subscription
from bot.core.ports import ChatStore, DailyStore, Delivery, Notifier, StudyStore
from bot.core.study import StudyService, interval_label, streaks
from bot.core.views import Button, Paragraph, Reply, Span, notice
from bot.core.zones import (
    ZoneError,
    local_datetime,
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
OFF_WORDS = ("off", "stop", "cancel", "none")
ALWAYS = "always"  # /daily HH:MM always: push even on a day already practised
QUIET = "quiet"
QUIET_USAGE = (
    "Usage: /daily quiet HH:MM-HH:MM, for example /daily quiet 22:00-07:00: nothing is sent to you between "
    "those times. /daily quiet off removes them; /daily quiet alone shows them."
)
# After this many pushes in a row without an answer the learner is asked whether to keep them (instead of a
# card), and the pushes pause until they choose.
UNANSWERED_TO_ASK = 7
PAUSED_NO_REPLY = "no reply"
KEEP, MOVE, STOP = 0, 1, 2  # the check-in's buttons (Verb.DAILY_CHECK_IN's arg)
MOVE_TO = 100  # arg MOVE_TO + h: move the push to h:00
OFFERED_HOURS = (7, 12, 18, 21)  # the times "Another time" offers (the current one and quiet ones left out)
STALE = "That button is not valid any more."
PACED_BATCH_SECONDS = 5  # with a pace, a claim takes the pushes of this many seconds of sending


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
    skipped: int = 0  # the learner had already answered a card that day: nothing sent
    deferred: int = 0  # held until the learner's quiet hours end
    asked: int = 0  # the keep / move / stop question went instead of a card
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
        rates: Mapping[str, float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        claimer: str | None = None,
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
        # messages a second per platform for every process together: each claimed push gets a send slot
        # from the database, so replicas share the pace; None: sent as fast as the adapter allows
        self.pace = {platform: timedelta(seconds=1 / rate) for platform, rate in (rates or {}).items() if rate > 0}
        if rates:  # claim what one pace can send in a few seconds, so the replicas share a minute's pushes
            self.batch = min(batch, max(10, int(PACED_BATCH_SECONDS * max(rates.values()))))
        self.sleep = sleep
        self.last_tick: datetime | None = None
        # this process (unique per start; a name that says which replica helps operators); claims of a dead
        # process are recovered
        self.claimer = f"{claimer}-{uuid.uuid4().hex[:8]}" if claimer else uuid.uuid4().hex

    # --- the /daily command ----------------------------------------------------------------------

    async def command(self, caller: Caller, args: str) -> Reply:
        """/daily, /daily off, /daily HH:MM [zone] [always], /daily quiet ...: show, stop, set, or set quiet
        hours; bad input changes nothing."""
        words = args.split()
        pushed = caller.chat.platform in PUSH_PLATFORMS
        if words and words[0].lower() == QUIET:
            return await self._quiet_command(caller, words[1:])
        current = await self.store.subscription(caller.chat.key)
        if not words:
            return await self._describe(current, caller)
        if caller.chat.is_group and not caller.is_chat_admin:
            return _say("Only an admin of this group can change its daily question.")
        if words[0].lower() in OFF_WORDS:
            if len(words) > 1:
                return _say(USAGE)
            removed = await self.store.delete_subscription(caller.chat.key)
            return _say(
                "Daily question stopped. Start again any time with /daily HH:MM."
                if removed
                else "There is no daily question here to stop. " + USAGE
            )
        if words[0].lower() == ALWAYS:
            return _say(f"Put the time first, for example /daily {current.local_time if current else '08:00'} always.")
        always = any(word.lower() == ALWAYS for word in words[1:])
        words = [word for word in words if word.lower() != ALWAYS]
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
        subscription = Subscription(
            id=current.id if current else 0,
            chat_key=caller.chat.key,
            platform=caller.chat.platform,
            chat_id=caller.chat.chat_id,
            is_group=caller.chat.is_group,
            learner_id=None if caller.chat.is_group else learner.id,
            local_time=at.strftime("%H:%M"),
            timezone=zone,
            next_push_at=await self._next_push_at(current, at, zone),
            paused_reason=None if pushed else ASKED_ON_START,
            created_at=now,
            always=always and not caller.chat.is_group,  # a group's quiz goes out every day anyway
            count_from=now,  # setting it again is a fresh start for the unanswered count
        )
        saved = await self.store.save_subscription(subscription)
        if not caller.chat.is_group:
            await self.store.set_timezone(learner.id, zone)  # streaks count in the learner's local days
            learner = replace(learner, timezone=zone)
        verb = "changed" if current else "on"
        head = Paragraph.of(Span(f"✅ Daily question {verb}: {saved.local_time} ({saved.timezone}).", "bold"))
        if not pushed:
            return Reply(blocks=(head, Paragraph.of(_on_start_line(saved)), Paragraph.of("Stop it with /daily off.")))
        return Reply(
            blocks=(
                head,
                Paragraph.of(self._next_line(saved, None if saved.is_group else learner)),
                *self._habit_lines(saved, None if saved.is_group else learner),
                Paragraph.of("Stop it with /daily off."),
            )
        )

    async def _next_push_at(self, current: Subscription | None, at: time, zone: str) -> datetime:
        """The next push at `at` local time; the day after when that day's push went out already."""
        next_at = next_occurrence(at, zone, self.clock.now())
        if current is not None and await self.store.day_claimed(current.id, local_day_of(next_at, zone)):
            next_at = next_occurrence(at, zone, next_at)
        return next_at

    def _next_line(self, sub: Subscription, learner: Learner | None) -> str:
        now = self.clock.now()
        due = sub.next_push_at
        held = quiet_until(learner.quiet_hours, learner.timezone, due) if learner is not None else None
        when = held or due
        local = when.astimezone(zone_info(sub.timezone))
        after = " (when your quiet hours end)" if held is not None else ""
        return f"Next one: {local:%a %d %b at %H:%M}{after}, in {interval_label(when - now)}."

    def _habit_lines(self, sub: Subscription, learner: Learner | None) -> tuple[Paragraph, ...]:
        """For a learner's pushes: whether a day already practised is skipped, and their quiet hours."""
        if sub.is_group or learner is None:
            return ()
        if sub.always:
            mode = f"Sent every day, even after you've practised; /daily {sub.local_time} skips those days again."
        else:
            mode = f"Skipped on days you've already answered a card; /daily {sub.local_time} always sends it every day."
        lines = [Paragraph.of(mode)]
        if learner.quiet_hours:
            lines.append(Paragraph.of(f"Quiet hours: {learner.quiet_hours} (see /daily quiet)."))
        return tuple(lines)

    async def _describe(self, sub: Subscription | None, caller: Caller) -> Reply:
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
        if sub.paused_reason == PAUSED_NO_REPLY:
            return _say(
                f"Your daily question ({sub.local_time}, {sub.timezone}) is paused: the last {UNANSWERED_TO_ASK} "
                f"went unanswered, so I asked before sending more. /daily {sub.local_time} turns it back on; "
                "/daily off stops it."
            )
        if sub.paused_reason:
            return _say(
                f"Your daily question ({sub.local_time}, {sub.timezone}) is paused because I couldn't reach this "
                "chat. Send /daily HH:MM to turn it back on."
            )
        learner = await self.store.get_learner(sub.learner_id) if sub.learner_id is not None else None
        return Reply(
            blocks=(
                Paragraph.of(Span(f"Daily question at {sub.local_time} ({sub.timezone}).", "bold")),
                Paragraph.of(self._next_line(sub, learner)),
                *self._habit_lines(sub, learner),
                Paragraph.of("Change it with /daily HH:MM [zone]; stop it with /daily off."),
            )
        )

    # --- quiet hours ---------------------------------------------------------------------------

    async def _quiet_command(self, caller: Caller, words: list[str]) -> Reply:
        """/daily quiet [HH:MM-HH:MM | off]: a learner's hours with no pushes (in their zone)."""
        if caller.chat.is_group:
            return _say("Quiet hours are personal: set them in a private chat with me, e.g. /daily quiet 22:00-07:00.")
        learner = await self.study.learner(caller)
        if not words:
            if learner.quiet_hours is None:
                return _say(f"You have no quiet hours. {QUIET_USAGE}")
            return await self._quiet_reply(caller, learner)
        if len(words) == 1 and words[0].lower() in OFF_WORDS:
            if learner.quiet_hours is None:
                return _say(f"You have no quiet hours to remove. {QUIET_USAGE}")
            await self.store.set_quiet_hours(learner.id, None)
            return _say("Quiet hours removed: your daily question comes at its time again.")
        try:
            quiet = parse_quiet_hours(" ".join(words))
        except ValueError as exc:
            return _say(f"{exc}. {QUIET_USAGE}")
        await self.store.set_quiet_hours(learner.id, quiet)
        return await self._quiet_reply(caller, replace(learner, quiet_hours=quiet))

    async def _quiet_reply(self, caller: Caller, learner: Learner) -> Reply:
        quiet = learner.quiet_hours
        assert quiet is not None
        blocks = [
            Paragraph.of(Span(f"🌙 Quiet hours: {quiet} ({learner.timezone}).", "bold")),
            Paragraph.of(
                "Nothing is pushed to you then (daily question, quiz notices): what falls due waits until they end. "
                "They follow your time zone, which /daily HH:MM Area/City sets."
            ),
        ]
        sub = await self.store.subscription(caller.chat.key)
        if sub is not None and sub.paused_reason is None:
            held = quiet_until(quiet, learner.timezone, sub.next_push_at)
            if held is not None:
                blocks.append(
                    Paragraph.of(
                        f"Your daily question at {sub.local_time} falls in them, so it will come at "
                        f"{held.astimezone(zone_info(sub.timezone)):%H:%M} instead."
                    )
                )
        blocks.append(Paragraph.of("Change them with /daily quiet HH:MM-HH:MM; remove them with /daily quiet off."))
        return Reply(blocks=tuple(blocks))

    # --- a returning chat, and the terminal's opening -----------------------------------------------

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
        self.last_tick = now  # this process's own tick (the heartbeat row is shared by every replica)
        semaphore = asyncio.Semaphore(self.concurrency)

        async def deliver(claim: Claim) -> None:
            if claim.send_at is not None:  # wait for its send slot
                wait = (claim.send_at - self.clock.now()).total_seconds()
                if wait > 0:
                    await self.sleep(wait)
            async with semaphore:
                status = await self._deliver(claim)
            report.outcomes[claim.delivery_id] = status

        pace = self.pace or None
        claims = await self.store.open_claims(now, self.claimer, self.batch, pace)
        while True:
            report.claimed += len(claims)
            await asyncio.gather(*(deliver(claim) for claim in claims))
            claims = await self.store.claim_due(self.clock.now(), self.claimer, self.batch, self._advance, pace)
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
            elif status == "skipped":
                report.skipped += 1
            elif status == "deferred":
                report.deferred += 1
            elif status == "asked":
                report.asked += 1
        return report

    async def _deliver(self, claim: Claim) -> str:
        sub = claim.subscription
        notifier = self.notifiers.get(sub.platform)
        now = self.clock.now()
        if notifier is None:  # that platform is not running now: keep it for later
            return await self._retry(claim, f"no {sub.platform} adapter running")
        asking = False
        try:
            if sub.is_group or sub.learner_id is None:
                reply = await self.content(sub)
            else:
                learner = await self.store.get_learner(sub.learner_id)
                if learner is None:
                    raise RuntimeError(f"learner {sub.learner_id} is gone")
                last_answer, unanswered = await self.store.unanswered_pushes(sub)
                if not sub.always and last_answer is not None and last_answer >= _day_start(claim.local_day, sub):
                    # practised that day already: nothing is sent, and the day is done
                    await self.store.finish_delivery(claim.delivery_id, "skipped", now, detail="practised that day")
                    return "skipped"
                held_until = quiet_until(learner.quiet_hours, learner.timezone, now)
                if held_until is not None:
                    await self.store.defer_delivery(claim.delivery_id, held_until, "quiet hours")
                    return "deferred"
                asking = unanswered >= UNANSWERED_TO_ASK
                reply = self._check_in(sub) if asking else await self.content(sub, learner)
        except Exception as exc:  # a bug must not stop the other pushes
            log.exception("could not build the daily push for %s", sub.chat_key)
            return await self._retry(claim, f"content failed: {exc!r}")
        result = await notifier.send(sub.chat_id, reply)
        if result.delivery is Delivery.SENT:
            if reply.poll is not None and reply.poll.round_id is not None and self.poll_sent is not None:
                await self.poll_sent(reply.poll.round_id, result.poll_id, result.message_id)
            if asking:  # no more pushes until the learner answers the question
                await self.store.finish_delivery(claim.delivery_id, "asked", now, message_id=result.message_id)
                await self.store.pause_subscription(sub.chat_key, PAUSED_NO_REPLY)
                return "asked"
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

    async def content(self, sub: Subscription, learner: Learner | None = None) -> Reply:
        """What a subscription receives: a learner's most useful card, or a group's quiz poll."""
        if sub.is_group or sub.learner_id is None:
            if self.group_content is None:
                raise RuntimeError("no group content configured")
            return await self.group_content(sub, self.clock.now())
        if learner is None:
            learner = await self.store.get_learner(sub.learner_id)
        if learner is None:
            raise RuntimeError(f"learner {sub.learner_id} is gone")
        streak = ""
        if learner.show_streak:  # /streak off: no streak anywhere
            today = local_day_of(self.clock.now(), sub.timezone)
            current, _best = streaks(await self.store.review_days(learner.id), today)
            streak = f" · 🔥 {current}-day streak" if current else " · start a streak today!"
        return await self.study.ask(
            learner, sub.chat_key, None, header=f"☀️ Your daily question{streak}", plan_line=True
        )

    # --- the check-in after unanswered pushes -----------------------------------------------------

    def _check_in(self, sub: Subscription) -> Reply:
        """The one question sent instead of a card after UNANSWERED_TO_ASK unanswered pushes."""

        def button(label: str, choice: int) -> Button:
            return Button(label, Action(Verb.DAILY_CHECK_IN, sub.id, choice).encode())

        return Reply(
            blocks=(
                Paragraph.of(Span("Keep the daily questions coming?", "bold")),
                Paragraph.of(
                    f"The last {UNANSWERED_TO_ASK} went unanswered, so I'll hold them until you choose. "
                    "Your cards and progress stay as they are."
                ),
            ),
            buttons=((button("Keep them", KEEP), button("Another time", MOVE), button("Stop them", STOP)),),
        )

    async def press(self, caller: Caller, data: str) -> Reply:
        """The check-in's buttons: keep the pushes, move them (a few times offered), or stop them. Only the
        subscription's learner, in its chat, can press them."""
        action = parse_action(data)
        if action is None or action.verb is not Verb.DAILY_CHECK_IN or action.arg is None:
            return notice(STALE)
        sub = await self.store.subscription(caller.chat.key)
        if sub is None or sub.id != action.target or sub.learner_id is None:
            return notice(STALE)
        learner = await self.store.find_learner(caller.identity)
        if learner is None or learner.id != sub.learner_id:
            return notice(STALE)
        now = self.clock.now()
        if action.arg == KEEP:
            next_at = await self._next_push_at(sub, parse_local_time(sub.local_time), sub.timezone)
            await self.store.resume_subscription(sub.chat_key, next_at, count_from=now)
            kept = replace(sub, next_push_at=next_at, paused_reason=None)
            return Reply(
                blocks=(
                    Paragraph.of(Span(f"✅ Daily question kept: {sub.local_time} ({sub.timezone}).", "bold")),
                    Paragraph.of(self._next_line(kept, learner)),
                ),
                edit=True,
            )
        if action.arg == MOVE:
            return self._move_offer(sub, learner)
        if action.arg == STOP:
            await self.store.delete_subscription(sub.chat_key)
            return Reply(
                blocks=(Paragraph.of("Daily question stopped. Start again any time with /daily HH:MM."),), edit=True
            )
        if MOVE_TO <= action.arg < MOVE_TO + 24:
            at = time(action.arg - MOVE_TO)
            moved = await self.store.save_subscription(
                replace(
                    sub,
                    local_time=at.strftime("%H:%M"),
                    next_push_at=await self._next_push_at(sub, at, sub.timezone),
                    paused_reason=None,
                    count_from=now,
                )
            )
            return Reply(
                blocks=(
                    Paragraph.of(Span(f"✅ Daily question moved to {moved.local_time} ({moved.timezone}).", "bold")),
                    Paragraph.of(self._next_line(moved, learner)),
                    Paragraph.of("Stop it with /daily off."),
                ),
                edit=True,
            )
        return notice(STALE)

    def _move_offer(self, sub: Subscription, learner: Learner) -> Reply:
        """A few times to move the push to (not its current one, none in the learner's quiet hours)."""
        zone = zone_info(sub.timezone)
        today = self.clock.now().astimezone(zone).date()
        hours = [
            hour
            for hour in OFFERED_HOURS
            if f"{hour:02d}:00" != sub.local_time
            and quiet_until(learner.quiet_hours, learner.timezone, local_datetime(today, time(hour), zone)) is None
        ]
        return Reply(
            blocks=(
                Paragraph.of(
                    f"When would suit you better? Pick a time ({sub.timezone}), or send /daily HH:MM for any other."
                ),
            ),
            buttons=(
                tuple(
                    Button(f"{hour:02d}:00", Action(Verb.DAILY_CHECK_IN, sub.id, MOVE_TO + hour).encode())
                    for hour in hours
                ),
            )
            if hours
            else (),
            edit=True,
        )


def parse_quiet_hours(text: str) -> str:
    """'22:00-07:00', '22-7', '10pm to 7am', '22:00 07:00' -> '22:00-07:00'; ValueError saying what is wrong."""
    parts = re.split(r"\s*(?:-|–|—|\bto\b)\s*", text.strip(), flags=re.I)
    if len(parts) == 1:
        parts = parts[0].split()
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"“{text.strip()[:30]}” is not a start and an end, like 22:00-07:00")
    start, end = (parse_local_time(part) for part in parts)
    if start == end:
        raise ValueError("Quiet hours need a start and an end that differ")
    return f"{start:%H:%M}-{end:%H:%M}"


def quiet_until(quiet: str | None, zone: str, moment: datetime) -> datetime | None:
    """When the quiet hours `moment` falls in end (UTC), or None when it falls in none. The hours are wall-clock
    times in `zone`; across midnight when the start is later than the end; DST-safe: an end lost to a
    clock change is the first valid minute after it, and a night made longer by one ends at the first
    time the clock shows the end."""
    if not quiet:
        return None
    start_text, end_text = quiet.split("-")
    start, end = parse_local_time(start_text), parse_local_time(end_text)
    tz = zone_info(zone)
    local = moment.astimezone(tz)
    now, today = local.time(), local.date()
    if start < end:
        ends = local_datetime(today, end, tz) if start <= now < end else None
    elif now >= start:
        ends = local_datetime(today + timedelta(days=1), end, tz)
    elif now < end:
        ends = local_datetime(today, end, tz)
    else:
        ends = None
    return ends if ends is not None and ends > moment else None


def _day_start(local_day: str, sub: Subscription) -> datetime:
    """The first instant of a local day in the subscription's zone."""
    return local_datetime(date.fromisoformat(local_day), time(0, 0), zone_info(sub.timezone))


def _on_start_line(sub: Subscription) -> str:
    return (
        f"Nothing is pushed to a terminal: start the chat after {sub.local_time} on a day you haven't practised yet, "
        "and I'll open with your daily question. Your day, new-card limit and streak follow this time zone."
    )


def _say(text: str) -> Reply:
    return Reply(blocks=(Paragraph.of(text),))
