"""One learner everywhere: /link joins a Telegram, Discord or terminal identity to another's learner, and
/unlink takes one away again.

`/link` gives a one-time code (8 characters from an alphabet without look-alikes, valid 10 minutes, used
once, stored only as a hash) and lists the identities linked now; `/link CODE` on another account joins
that account's learner to the code's. Merging two histories is the normal case (the store does it in one
transaction: card states by latest review, every review kept, quiz points added up, the issuer's
settings); both sides are told. Wrong codes are limited per identity; a used, expired or unknown code
changes nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from bot.core.model import Caller, Chat, Identity
from bot.core.ports import Delivery, Notifier, StudyStore
from bot.core.study import StudyService
from bot.core.views import Bullets, Paragraph, Reply, Span

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: nothing to misread from a phone screen
CODE_LENGTH = 8
CODE_LIFETIME = timedelta(minutes=10)
MAX_FAILURES = 5  # wrong codes per identity ...
FAILURE_WINDOW = timedelta(hours=1)  # ... in this long
NOTICE_BATCH = 100  # waiting messages for issuers delivered per tick

# How each platform is named to people, and the words /unlink takes for it.
PLATFORM_NAMES = {"telegram": "Telegram", "discord": "Discord", "console": "terminal"}
UNLINK_WORDS = {"telegram": "telegram", "discord": "discord", "terminal": "console", "console": "console"}
USAGE = "/link gives a code to use on your other account; /link CODE joins this account to the code's profile."
UNLINK_USAGE = "Usage: /unlink telegram, /unlink discord or /unlink terminal."


class LinkStatus(StrEnum):
    LINKED = "linked"
    INVALID = "invalid"  # unknown, expired or used: nothing changed
    ALREADY = "already"  # the identity already belongs to the code's learner
    TAKEN = "taken"  # the code's learner already has an identity on a platform the joining side brings


@dataclass(frozen=True, slots=True)
class LinkedIdentity:
    identity: Identity
    display_name: str | None
    linked_at: datetime | None


@dataclass(frozen=True, slots=True)
class LinkOutcome:
    status: LinkStatus
    learner_id: int | None = None  # the learner the code belongs to
    issuer: Identity | None = None  # the identity that asked for the code
    joined: tuple[Identity, ...] = ()  # the identities that came over (the caller's and any linked to it)
    taken: Identity | None = None  # TAKEN: the code learner's identity on the clashing platform
    closed_questions: int = 0  # open questions of the joining side, closed
    closed_interviews: int = 0  # running interviews of the joining side, ended


@dataclass(frozen=True, slots=True)
class LinkSummary:
    """What the merged learner holds, for the message both sides get."""

    reviews: int
    cards: int
    quiz_points: int
    private_subscriptions: tuple[tuple[str, str], ...] = field(default=())  # (platform, local time)


class LinkStore(Protocol):
    async def create_link_code(
        self, learner_id: int, issuer: Identity, issuer_name: str, code_hash: str, now: datetime, expires_at: datetime
    ) -> None:
        """Store a new code for the learner (earlier unused codes of theirs stop working) and remember the
        issuer's current display name."""
        ...

    async def link_failures_since(self, identity: Identity, since: datetime) -> list[datetime]:
        """When the identity gave a wrong code since `since`, oldest first."""
        ...

    async def record_link_failure(self, identity: Identity, now: datetime) -> None: ...

    async def link_identity(self, code_hash: str, identity: Identity, display_name: str, now: datetime) -> LinkOutcome:
        """In one transaction: find the valid code, and join the identity (with its learner's other
        identities and all of its learner's history) to the code's learner, marking the code used."""
        ...

    async def linked_identities(self, learner_id: int) -> list[LinkedIdentity]: ...

    async def link_summary(self, learner_id: int) -> LinkSummary: ...

    async def unlink_identity(self, learner_id: int, identity: Identity, now: datetime) -> int | None:
        """Move the identity to a new learner holding a copy of the study history (None when it is the
        learner's last identity, or not theirs)."""
        ...

    async def add_link_notice(self, identity: Identity, text: str, now: datetime) -> None: ...

    async def take_link_notices(self, identity: Identity) -> list[str]:
        """The messages waiting for the identity, removed as they are read."""
        ...

    async def pending_link_notices(self, platforms: tuple[str, ...], limit: int) -> list[tuple[int, Identity, str]]:
        """Waiting messages for identities on these platforms: (id, identity, text)."""
        ...

    async def drop_link_notice(self, notice_id: int) -> None: ...


class LinkPorts(LinkStore, StudyStore, Protocol):
    """The store LinkService works on."""


def hash_code(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def normalise_code(text: str) -> str | None:
    """The code in what was typed (any case, spaces and hyphens ignored), or None if it cannot be one."""
    code = "".join(ch for ch in text.upper() if ch not in " -")
    if len(code) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in code):
        return None
    return code


def new_code() -> str:
    """A random code, from the operating system's secure source (never derived from ids)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def shown(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def platform_name(platform: str) -> str:
    return PLATFORM_NAMES.get(platform, platform.capitalize())


def private_chat(identity: Identity) -> Chat:
    """The identity's private chat with the bot (Discord DMs are "user:<id>"; Telegram's is the user id)."""
    if identity.platform == "discord":
        return Chat(identity.platform, f"user:{identity.external_id}")
    return Chat(identity.platform, identity.external_id)


def _account(item: LinkedIdentity) -> str:
    """ "Discord (Ann)", "Terminal (ann)": an account as listed."""
    name = f" ({item.display_name})" if item.display_name else ""
    platform = platform_name(item.identity.platform)
    return f"{platform[0].upper()}{platform[1:]}{name}"


def _say(*texts: str) -> Reply:
    return Reply(blocks=tuple(Paragraph.of(text) for text in texts), private=True)


class LinkService:
    def __init__(self, store: LinkPorts, study: StudyService, notifiers: Mapping[str, Notifier]) -> None:
        self.store = store
        self.study = study
        self.clock = study.clock
        self.notifiers = notifiers

    # --- /link -----------------------------------------------------------------------------------

    async def link(self, caller: Caller, args: str) -> Reply:
        """/link: a new code and the linked accounts; /link CODE: join this account to the code's learner."""
        if caller.chat.is_group and not caller.chat.private_replies:
            return _say("Send /link to me in a private chat: a link code is for you alone.")
        if not args:
            return await self._issue(caller)
        code = normalise_code(args)
        if code is None:
            return _say(
                f"That doesn't look like a link code: a code has {CODE_LENGTH} letters and digits, like "
                "ABCD-EFGH. Send /link on the account you want to join to get one, then /link CODE here."
            )
        now = self.clock.now()
        failures = await self.store.link_failures_since(caller.identity, now - FAILURE_WINDOW)
        if len(failures) >= MAX_FAILURES:
            wait = failures[len(failures) - MAX_FAILURES] + FAILURE_WINDOW - now
            minutes = max(1, -(-int(wait.total_seconds()) // 60))
            return _say(
                f"Too many wrong codes: please wait {minutes} minute{'s' if minutes != 1 else ''} before "
                "trying again. Nothing was changed."
            )
        outcome = await self.store.link_identity(hash_code(code), caller.identity, caller.display_name, now)
        if outcome.status is LinkStatus.INVALID:
            await self.store.record_link_failure(caller.identity, now)
            left = MAX_FAILURES - len(failures) - 1
            tries = f" You can try {left} more time{'s' if left != 1 else ''} this hour." if left else ""
            return _say(
                "That code is not valid: it may be mistyped, used already, or older than 10 minutes. Nothing "
                f"was changed. Send /link on your other account for a new code.{tries}"
            )
        if outcome.status is LinkStatus.ALREADY:
            return _say("This account is already linked to that profile: nothing to do. /link lists your accounts.")
        if outcome.status is LinkStatus.TAKEN:
            assert outcome.taken is not None
            word = next(w for w, p in UNLINK_WORDS.items() if p == outcome.taken.platform)
            return _say(
                f"That profile already has a {platform_name(outcome.taken.platform)} account. One profile holds "
                f"one account per platform: send /unlink {word} on the other account first if you want to "
                "swap it. Nothing was changed, and the code still works until it expires."
            )
        return await self._linked(caller, outcome)

    async def _issue(self, caller: Caller) -> Reply:
        learner = await self.study.learner(caller)
        now = self.clock.now()
        code = new_code()
        await self.store.create_link_code(
            learner.id, caller.identity, caller.display_name, hash_code(code), now, now + CODE_LIFETIME
        )
        accounts = await self.store.linked_identities(learner.id)
        blocks: list[Paragraph | Bullets] = [
            Paragraph.of("Your link code: ", Span(shown(code), "code")),
            Paragraph.of(
                "On your other account (Telegram, Discord or the terminal), send /link "
                f"{shown(code)} within 10 minutes. That account then shares this profile: one schedule, "
                "one streak, one history, and your quiz points add up. The code works once."
            ),
        ]
        if len(accounts) > 1:
            blocks.append(Paragraph.of(Span("Linked now:", "bold")))
            blocks.append(Bullets.of(*(_account(item) for item in accounts)))
            words = sorted({w for w, p in UNLINK_WORDS.items() if p in {a.identity.platform for a in accounts}})
            blocks.append(Paragraph.of(f"To detach one: /unlink {words[0]} (it keeps a copy of your history)."))
        else:
            blocks.append(Paragraph.of(f"Linked now: only this account, {_account(accounts[0])}."))
        return Reply(blocks=tuple(blocks), private=True)

    async def _linked(self, caller: Caller, outcome: LinkOutcome) -> Reply:
        assert outcome.learner_id is not None and outcome.issuer is not None
        summary = await self.store.link_summary(outcome.learner_id)
        accounts = await self.store.linked_identities(outcome.learner_id)
        others = [a for a in accounts if a.identity not in outcome.joined]
        merged = (
            f"One profile now: {summary.reviews} review{'s' if summary.reviews != 1 else ''} of "
            f"{summary.cards} card{'s' if summary.cards != 1 else ''}"
            + (f" and {summary.quiz_points} quiz points" if summary.quiz_points else "")
            + ", one schedule and one streak. Settings (new cards a day, time zone) are the other account's."
        )
        lines = [
            f"Linked: this {platform_name(caller.identity.platform)} account now shares its profile with "
            + ", ".join(_account(a) for a in others)
            + ".",
            merged,
        ]
        if outcome.closed_questions or outcome.closed_interviews:
            closed = []
            if outcome.closed_questions:
                closed.append("your open question")
            if outcome.closed_interviews:
                closed.append("your running mock interview")
            lines.append(f"I closed {' and '.join(closed)} here; send /question to go on.")
        daily = _daily_note(summary)
        if daily:
            lines.append(daily)
        await self._tell(
            outcome.issuer,
            f"Linked: your {platform_name(caller.identity.platform)} account {caller.display_name} now shares this "
            f"profile. {merged}" + (f" {daily}" if daily else ""),
        )
        return _say(*lines)

    async def _tell(self, identity: Identity, text: str) -> None:
        """Send to the identity's private chat now if its platform is served here; otherwise (or if that
        fails for now) keep the message for its front end to deliver."""
        notifier = self.notifiers.get(identity.platform)
        if notifier is not None:
            result = await notifier.send(private_chat(identity).chat_id, _say(text))
            if result.delivery is Delivery.SENT or result.delivery is Delivery.UNREACHABLE:
                return  # a user who closed their DMs will see the link in /link
        await self.store.add_link_notice(identity, text, self.clock.now())

    # --- /unlink ---------------------------------------------------------------------------------

    async def unlink(self, caller: Caller, args: str) -> Reply:
        if caller.chat.is_group and not caller.chat.private_replies:
            return _say("Send /unlink to me in a private chat.")
        platform = UNLINK_WORDS.get(args.lower())
        if platform is None:
            return _say(UNLINK_USAGE)
        learner = await self.store.find_learner(caller.identity)
        accounts = [] if learner is None else await self.store.linked_identities(learner.id)
        target = [a for a in accounts if a.identity.platform == platform]
        if learner is None or not target:
            return _say(f"No {platform_name(platform)} account is linked to your profile. /link lists them.")
        if len(accounts) == 1:
            return _say(
                "This is the only account of your profile, so it cannot be unlinked. (/forget deletes "
                "everything instead.)"
            )
        detached = target[0]
        new_id = await self.store.unlink_identity(learner.id, detached.identity, self.clock.now())
        if new_id is None:
            return _say("That account is not linked to your profile any more. /link lists your accounts.")
        text = (
            f"Unlinked: {_account(detached)} has its own profile again, starting with a copy of your history up "
            "to now (reviews, card schedule, interviews). From here on the two learn separately; quiz points "
            "stay with this profile."
        )
        if detached.identity != caller.identity:
            await self._tell(detached.identity, f"This account was unlinked from your other accounts. {text}")
        return _say(text)

    # --- messages kept for later -----------------------------------------------------------------

    async def notice_for(self, caller: Caller) -> str | None:
        """A notice provider: messages kept for this caller's identity, when its platform has no notifier in
        this process (the terminal); platforms served here get theirs from deliver_notices."""
        if caller.identity.platform in self.notifiers:
            return None
        notes = await self.store.take_link_notices(caller.identity)
        return "\n".join(notes) if notes else None

    async def deliver_notices(self) -> int:
        """Send kept messages to identities on the platforms served here (called by the minute tick)."""
        platforms = tuple(sorted(self.notifiers))
        if not platforms:
            return 0
        sent = 0
        for notice_id, identity, text in await self.store.pending_link_notices(platforms, NOTICE_BATCH):
            result = await self.notifiers[identity.platform].send(private_chat(identity).chat_id, _say(text))
            if result.delivery is Delivery.FAILED:
                continue  # try again next minute
            await self.store.drop_link_notice(notice_id)
            sent += result.delivery is Delivery.SENT
        return sent


def _daily_note(summary: LinkSummary) -> str:
    if len(summary.private_subscriptions) < 2:
        return ""
    where = ", ".join(f"{platform_name(p)} at {t}" for p, t in summary.private_subscriptions)
    return (
        f"You now get the daily question in {len(summary.private_subscriptions)} places ({where}). "
        "To keep it in one place only, send /daily off in the other."
    )
