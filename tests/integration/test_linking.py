"""One learner everywhere (issue 14): /link and /unlink through the program's commands, on both engines.

Two accounts of one person, each with its own history (reviews on different days, a card both reviewed,
quiz points in a chat, a daily subscription, settings), are merged by a code: no review is lost, each
card keeps the state of its latest review, the streak spans both, points add up, the issuer's settings
stay, and the joining side's open question and interview are closed. A crash in the middle of the merge
leaves both as they were. Wrong, expired and reused codes change nothing, and wrong ones are limited.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.bootstrap import App
from bot.core.model import Caller, Chat, Identity
from bot.core.ports import Delivery, SendResult
from bot.core.views import Reply
from bot.storage.store import Store
from tests.adapters.stack import app_for
from tests.fakes import FakeClock, FakeNotifier

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


def private(platform: str, user: str, name: str) -> Caller:
    chat = Chat(platform, f"user:{user}" if platform == "discord" else user)
    return Caller(Identity(platform, user), name, chat)


TG = private("telegram", "100", "Ann")
DC = private("discord", "200", "ann_d")
TERM = private("console", "ann", "ann")
DC_SERVER = Caller(DC.identity, "ann_d", Chat("discord", "channel:77", is_group=True, private_replies=True))
TG_GROUP = Caller(Identity("telegram", "100"), "Ann", Chat("telegram", "-500", is_group=True))


class Crash(Exception):
    """Injected in the middle of a merge."""


@dataclass
class World:
    app: App
    store: Store
    clock: FakeClock
    telegram: FakeNotifier

    async def say(self, who: Caller, command: str, args: str = "") -> str:
        return (await self.app.commands.run(who, command, args)).plain_text()

    async def code(self, who: Caller) -> str:
        text = await self.say(who, "link")
        found = re.search(r"Your link code: ([A-Z0-9]{4}-[A-Z0-9]{4})", text)
        assert found, text
        return found.group(1)

    async def learner_id(self, who: Caller | Identity) -> int:
        identity = who.identity if isinstance(who, Caller) else who
        learner = await self.store.find_learner(identity)
        assert learner is not None
        return learner.id

    async def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await self.store.db.fetch(sql, *args)]


@pytest.fixture
async def world(store_location: str) -> AsyncIterator[World]:
    clock = FakeClock(START)
    async with Store(store_location) as store:
        app = app_for(store, clock)
        telegram = FakeNotifier("telegram")
        app.notifiers["telegram"] = telegram  # the issuer's platform is served by this process
        yield World(app, store, clock, telegram)


def button(reply: Reply, label: str) -> str:
    return next(b.action for row in reply.buttons for b in row if b.label.startswith(label))


async def review(w: World, who: Caller, rating: str = "Good") -> None:
    question = await w.app.commands.run(who, "question")
    revealed = await w.app.commands.press(who, button(question, "Show answer"))
    await w.app.commands.press(who, button(revealed, rating))


async def quiz_points(w: World, who: Caller, correct: bool) -> None:
    """A one-question quiz in who's chat (solo in a private chat), answered."""
    await w.app.commands.run(who, "quiz", "1 20")
    match = await w.store.running_match(who.chat.key)
    assert match is not None
    opened = await w.app.competition.open_round(match.id)
    assert opened is not None
    option = opened.round.correct_index if correct else (opened.round.correct_index + 1) % 4
    await w.app.competition.answer(who, opened.round.id, option)


async def states(w: World, learner_id: int) -> dict[str, tuple[Any, ...]]:
    found = await w.rows(
        "SELECT card_id, state, step, stability, difficulty, due, last_review, reps, lapses FROM card_states "
        "WHERE learner_id = ?",
        learner_id,
    )
    return {row[0]: row[1:] for row in found}


async def snapshot(w: World, learner_id: int) -> dict[str, Any]:
    """Everything the merge may touch of one learner, to compare before and after."""
    tables = ("reviews", "attempts", "interviews", "interview_answers", "round_answers", "subscriptions", "plans")
    counts = {t: (await w.rows(f"SELECT COUNT(*) FROM {t} WHERE learner_id = ?", learner_id))[0][0] for t in tables}
    return {
        "learner": await w.rows(
            "SELECT display_name, timezone, new_per_day, reviews_per_day FROM learners WHERE id = ?", learner_id
        ),
        "identities": await w.rows(
            "SELECT platform, external_id FROM identities WHERE learner_id = ? ORDER BY platform", learner_id
        ),
        "states": await states(w, learner_id),
        "open": await w.rows("SELECT id, status FROM attempts WHERE learner_id = ? ORDER BY id", learner_id),
        **counts,
    }


async def two_histories(w: World) -> None:
    """Ann practises on Telegram on Monday and Tuesday, on Discord on Wednesday (both answer the first
    card; Discord's review of it is later), scores in a quiz on each, subscribes on each, and leaves an
    open question and a running mock interview on Discord."""
    await w.say(TG, "newcards", "5")
    await w.say(DC, "newcards", "20")
    await review(w, TG)
    await review(w, TG, "Hard")
    w.clock.advance(days=1)
    await review(w, TG, "Easy")
    w.clock.advance(days=1)
    await review(w, DC)
    await review(w, DC, "Again")
    await quiz_points(w, TG_GROUP, correct=True)
    await quiz_points(w, DC, correct=True)
    assert "08:00" in await w.say(TG, "daily", "08:00 UTC")
    assert "19:30" in await w.say(DC, "daily", "19:30 UTC")
    await w.app.commands.run(DC_SERVER, "question")  # open in a server channel
    await w.app.commands.run(DC, "interview", "coach 3")
    await w.app.commands.run(TG, "question")  # the issuer's own open question stays open


async def test_linking_merges_two_histories_none_lost_latest_state_wins(world: World) -> None:
    w = world
    await two_histories(w)
    ann_tg, ann_dc = await w.learner_id(TG), await w.learner_id(DC)
    before_tg, before_dc = await snapshot(w, ann_tg), await snapshot(w, ann_dc)
    shared = set(before_tg["states"]) & set(before_dc["states"])
    assert shared, "the test needs a card both accounts reviewed"
    points = await w.rows(
        "SELECT r.chat_key, SUM(a.points) FROM round_answers a JOIN rounds r ON r.id = a.round_id GROUP BY r.chat_key "
        "ORDER BY r.chat_key"
    )
    assert len(points) == 2 and all(p[1] > 0 for p in points)

    code = await w.code(TG)
    w.clock.advance(minutes=3)
    reply = await w.say(DC, "link", code.lower().replace("-", " "))  # any case, spaces for the hyphen

    assert "Linked" in reply and "Telegram (Ann)" in reply, reply
    assert "closed your open question and your running mock interview" in reply, reply
    assert "daily question in 2 places" in reply and "/daily off" in reply, reply
    merged = await w.learner_id(DC)
    assert merged == ann_tg == await w.learner_id(TG)
    assert await w.store.get_learner(ann_dc) is None
    after = await snapshot(w, merged)
    assert after["reviews"] == before_tg["reviews"] + before_dc["reviews"] == 5
    assert after["interviews"] == 1 and after["subscriptions"] == 2 and after["round_answers"] == 2
    # each card: the state of whichever account reviewed it last, field by field
    for card in set(before_tg["states"]) | set(before_dc["states"]):
        candidates = [s for s in (before_tg["states"].get(card), before_dc["states"].get(card)) if s]
        expected = max(candidates, key=lambda s: s[5] or -1)
        assert after["states"][card] == expected, card
        newest = await w.rows("SELECT MAX(reviewed_at) FROM reviews WHERE learner_id = ? AND card_id = ?", merged, card)
        assert after["states"][card][5] == newest[0][0], card  # consistent with the kept review log
    for card in shared:
        assert after["states"][card] == before_dc["states"][card]  # Discord's review of it was later
    # points: every chat's leaderboard keeps its points, now one learner's
    assert (
        await w.rows(
            "SELECT r.chat_key, SUM(a.points) FROM round_answers a JOIN rounds r ON r.id = a.round_id "
            "WHERE a.learner_id = ? GROUP BY r.chat_key ORDER BY r.chat_key",
            merged,
        )
        == points
    )
    assert "Ann" in (await w.app.commands.run(TG_GROUP, "leaderboard", "all")).plain_text()
    # the issuer's settings; the streak spans Monday to Wednesday; the joining side's open things closed
    learner = await w.store.get_learner(merged)
    assert learner is not None and learner.new_per_day == 5
    assert re.search(r"\b3[- ]day", await w.say(DC, "stats")), await w.say(DC, "stats")
    assert await w.rows("SELECT COUNT(*) FROM interviews WHERE status = 'running'") == [(0,)]
    still_open = await w.rows("SELECT chat_key FROM attempts WHERE status IN ('open', 'choice', 'revealed')")
    assert still_open == [("telegram:100",)]
    # the issuer was told on Telegram, in its private chat
    told = w.telegram.texts("100")
    assert told and "Discord account ann_d now shares this profile" in told[-1]
    listing = await w.say(TG, "link")
    assert "Telegram (Ann)" in listing and "Discord (ann_d)" in listing


async def test_a_crash_in_the_middle_of_a_merge_leaves_both_learners_as_they_were(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    await two_histories(w)
    ann_tg, ann_dc = await w.learner_id(TG), await w.learner_id(DC)
    before = (await snapshot(w, ann_tg), await snapshot(w, ann_dc))
    code = await w.code(TG)

    real = w.store.db.transaction

    @contextlib.asynccontextmanager
    async def crashing() -> AsyncIterator[Any]:
        async with real() as tx:
            original = tx.execute

            async def execute(sql: str, *args: Any) -> None:
                if sql.startswith("UPDATE matches"):  # half-way: states, reviews and attempts already moved
                    raise Crash("the process died here")
                await original(sql, *args)

            tx.execute = execute  # type: ignore[method-assign]
            yield tx

    monkeypatch.setattr(w.store.db, "transaction", crashing)
    with pytest.raises(Crash):
        await w.say(DC, "link", code)
    monkeypatch.undo()

    assert (await snapshot(w, ann_tg), await snapshot(w, ann_dc)) == before
    assert await w.rows("SELECT COUNT(*) FROM link_codes WHERE used_at IS NOT NULL") == [(0,)]
    assert "Linked" in await w.say(DC, "link", code)  # the code still works once the database does


async def test_wrong_expired_and_reused_codes_change_nothing(world: World) -> None:
    w = world
    await review(w, TG)
    await review(w, DC)
    ann_tg, ann_dc = await w.learner_id(TG), await w.learner_id(DC)
    before = (await snapshot(w, ann_tg), await snapshot(w, ann_dc))

    assert "doesn't look like a link code" in await w.say(DC, "link", "12345")
    assert "doesn't look like a link code" in await w.say(DC, "link", "ABCD-EFG0")  # 0 is not in the alphabet
    assert "not valid" in await w.say(DC, "link", "ABCD-EFGH")  # unknown
    expired = await w.code(TG)
    w.clock.advance(minutes=10, seconds=1)
    assert "not valid" in await w.say(DC, "link", expired)
    first = await w.code(TG)
    second = await w.code(TG)  # a new code replaces the one not yet used
    assert "not valid" in await w.say(DC, "link", first)
    assert (await snapshot(w, ann_tg), await snapshot(w, ann_dc)) == before

    assert "Linked" in await w.say(DC, "link", second)
    assert "not valid" in await w.say(TERM, "link", second)  # used once already
    assert await w.store.find_learner(TERM.identity) is None
    assert "already linked" in await w.say(DC, "link", await w.code(TG))
    assert "in a private chat" in await w.say(TG_GROUP, "link")


async def test_five_wrong_codes_an_hour_then_a_wait(world: World) -> None:
    w = world
    code = await w.code(TG)
    for left in (4, 3, 2, 1):
        reply = await w.say(DC, "link", "ABCD-EFGH")
        assert "not valid" in reply and f"try {left} more time" in reply, reply
        w.clock.advance(minutes=1)
    assert "not valid" in await w.say(DC, "link", "ABCD-EFGH")  # the fifth: no tries left to mention
    w.clock.advance(minutes=1)
    refused = await w.say(DC, "link", code)  # even the right code waits
    assert "Too many wrong codes" in refused and "55 minutes" in refused, refused
    assert await w.store.find_learner(DC.identity) is None
    assert "Linked" not in await w.say(DC, "link", code)
    w.clock.advance(minutes=55)
    assert "Linked" in await w.say(DC, "link", await w.code(TG))
    assert await w.learner_id(DC) == await w.learner_id(TG)


async def test_a_profile_holds_one_account_per_platform(world: World) -> None:
    w = world
    other_tg = private("telegram", "101", "Ann (work phone)")
    await review(w, other_tg)
    assert "Linked" in await w.say(DC, "link", await w.code(TG))
    reply = await w.say(other_tg, "link", code := await w.code(TG))
    assert "already has a Telegram account" in reply and "/unlink telegram" in reply
    assert await w.learner_id(other_tg) != await w.learner_id(TG)
    assert "Unlinked" in await w.say(DC, "unlink", "telegram")
    assert "Linked" in await w.say(other_tg, "link", code)  # the code was not spent by the refusal


async def test_unlink_keeps_a_copy_of_the_history_and_the_last_account_stays(world: World) -> None:
    w = world
    await review(w, TG)
    w.clock.advance(days=1)
    await review(w, TG)
    await w.say(TG, "daily", "08:00 UTC")
    await quiz_points(w, TG_GROUP, correct=True)
    assert "Linked" in await w.say(TERM, "link", await w.code(TG))
    await review(w, TERM)
    profile = await w.learner_id(TG)
    history = await snapshot(w, profile)

    assert "Usage: /unlink" in await w.say(TERM, "unlink", "myspace")
    assert "No Discord account" in await w.say(TERM, "unlink", "discord")
    reply = await w.say(TERM, "unlink", "telegram")
    assert "Unlinked: Telegram (Ann)" in reply and "copy of your history" in reply
    detached = await w.learner_id(TG)
    assert detached != profile and await w.learner_id(TERM) == profile
    copy = await snapshot(w, detached)
    assert copy["reviews"] == history["reviews"] == 3 and copy["states"] == history["states"]
    assert copy["subscriptions"] == 1 and copy["round_answers"] == 0  # its own chat's push; points stay
    assert (await snapshot(w, profile))["reviews"] == 3
    assert "unlinked from your other accounts" in w.telegram.texts("100")[-1]
    # each learns on its own from here
    await review(w, TG)
    assert (await snapshot(w, detached))["reviews"] == 4 and (await snapshot(w, profile))["reviews"] == 3
    assert "only account" in await w.say(TERM, "unlink", "terminal")
    assert await w.learner_id(TERM) == profile


async def test_forget_after_link_deletes_every_account_and_says_which(world: World) -> None:
    w = world
    await review(w, TG)
    assert "not valid" in await w.say(DC, "link", "ABCD-EFGH")  # a wrong code counted against Discord
    w.app.notifiers.pop("telegram")  # the issuer's message waits (as for a platform served elsewhere)
    assert "Linked" in await w.say(DC, "link", await w.code(TG))
    assert await w.rows("SELECT COUNT(*) FROM link_failures") == [(1,)]
    assert await w.rows("SELECT COUNT(*) FROM link_notices") == [(1,)]
    exported = await w.app.commands.run(DC, "export")
    assert exported.attachment is not None
    document = exported.attachment[1].decode()
    assert '"external_id": "100"' in document and '"external_id": "200"' in document
    asked = await w.app.commands.run(TG, "forget")
    done = (await w.app.commands.press(TG, button(asked, "Delete everything"))).plain_text()
    assert "Discord, Telegram" in done, done
    assert await w.store.find_learner(TG.identity) is None and await w.store.find_learner(DC.identity) is None
    assert await w.rows("SELECT COUNT(*) FROM identities") == [(0,)]
    assert await w.rows("SELECT COUNT(*) FROM link_codes") == [(0,)]
    assert await w.rows("SELECT COUNT(*) FROM link_failures") == [(0,)]  # nothing kept per account either
    assert await w.rows("SELECT COUNT(*) FROM link_notices") == [(0,)]


async def test_the_issuer_hears_later_when_its_platform_is_not_served_here(world: World) -> None:
    """A terminal issuer (no notifier in this process) finds the message at its next command; a Telegram
    issuer whose message failed for now gets it from the next tick."""
    w = world
    assert "Linked" in await w.say(TG, "link", await w.code(TERM))
    note = await w.app.commands.pending_notice(TERM)
    assert note is not None and "Telegram account Ann now shares this profile" in note
    assert await w.app.commands.pending_notice(TERM) is None  # told once

    await w.say(TG, "unlink", "telegram")
    w.telegram.script = [SendResult(Delivery.FAILED, detail="502")]
    assert "Linked" in await w.say(DC, "link", await w.code(TG))
    assert not w.telegram.texts("100")
    assert w.app.links is not None
    assert await w.app.links.deliver_notices() == 1
    assert "Discord account ann_d now shares this profile" in w.telegram.texts("100")[-1]
    assert await w.app.links.deliver_notices() == 0
