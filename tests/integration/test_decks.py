"""Your own decks (issue 19): /deck import, use and remove through the program's commands, on both engines.

A CSV sent with /deck import becomes a deck of this chat; /question, /quiz and /daily draw from the
decks a chat chose; importing again under the same name keeps the history of matched cards, adds new
ones and retires missing ones; an invalid file imports nothing; only admins change a group's decks; a
removal asks first and takes the deck's reviews with it; the decks survive a restart and another
process's import is seen within a tick.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.bootstrap import App
from bot.core.model import Caller, Chat, Identity, Upload, UploadFailed
from bot.core.views import Reply
from bot.deckfile import parse_deck_file
from bot.storage.store import Store
from tests.adapters.stack import app_for
from tests.fakes import FakeClock, FakeNotifier

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

ANN = Caller(Identity("telegram", "100"), "Ann", Chat("telegram", "100"))
BOB = Caller(Identity("telegram", "200"), "Bob", Chat("telegram", "200"))
GROUP = Chat("telegram", "-500", is_group=True)
ADMIN = Caller(Identity("telegram", "100"), "Ann", GROUP, is_chat_admin=True)
MEMBER = Caller(Identity("telegram", "200"), "Bob", GROUP)

NOTES = (
    "id,question,answer,topic,key_points,correct,distractors,explanation\n"
    "n1,What does the KV cache store?,The keys and values of earlier tokens so decoding does not recompute "
    "them.,Inference,keys and values;earlier tokens,Keys and values,Gradients;Weights;Logits,It saves work.\n"
    "n2,Why warm up the learning rate?,Early adaptive steps are noisy; a small rate at first keeps training "
    "stable.,Optimisation,noisy early steps;stability,,,\n"
    "n3,What is label smoothing?,Mixing the one-hot target with a uniform distribution to curb overconfidence.,"
    "Regularisation,,,,\n"
)


def upload(name: str, data: bytes, *, size: int | None = None) -> Upload:
    async def read() -> bytes:
        return data

    return Upload(name, len(data) if size is None else size, read)


@dataclass
class World:
    app: App
    store: Store
    clock: FakeClock

    async def say(self, who: Caller, command: str, args: str = "", file: Upload | None = None) -> Reply:
        return await self.app.commands.run(who, command, args, upload=file)

    async def text(self, who: Caller, command: str, args: str = "", file: Upload | None = None) -> str:
        return (await self.say(who, command, args, file)).plain_text()

    async def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await self.store.db.fetch(sql, *args)]

    async def questions(self, who: Caller, count: int) -> list[str]:
        """The questions /question asks `who` in a row, each skipped so the next comes."""
        asked = []
        for _ in range(count):
            reply = await self.say(who, "question")
            skip = next((b.action for row in reply.buttons for b in row if b.label == "Skip"), None)
            if skip is None:
                break
            attempt = await self.store.db.fetchrow("SELECT card_id FROM attempts WHERE id = ?", int(skip.split(":")[1]))
            assert attempt is not None
            asked.append(str(attempt[0]))
            await self.app.commands.press(who, skip)
        return asked


@pytest.fixture
async def world(store_location: str) -> AsyncIterator[World]:
    clock = FakeClock(START)
    async with Store(store_location) as store:
        yield World(app_for(store, clock), store, clock)


def button(reply: Reply, label: str) -> str:
    return next(b.action for row in reply.buttons for b in row if b.label.startswith(label))


async def test_a_csv_sent_with_deck_import_becomes_this_chats_deck_and_question_draws_from_it(w: World) -> None:
    reply = await w.text(ANN, "deck", "import notes", upload("my notes.csv", NOTES.encode()))
    assert "Imported the deck notes from my notes.csv: 3 cards." in reply
    assert "1 of its cards have a quiz question" in reply and "2 have key points" in reply
    assert "now in use in this chat" in reply
    listing = await w.text(ANN, "deck")
    assert "✓ bank" in listing and "✓ notes — notes: 3 cards, 1 with a quiz; imported by Ann" in listing
    # only the deck: every question comes from it, ids namespaced by the deck, never a shipped slug
    assert "now practises from notes: 3 cards, 1 of them with a quiz" in await w.text(ANN, "deck", "use notes")
    asked = await w.questions(ANN, 5)
    deck_id = (await w.rows("SELECT id FROM decks WHERE name = 'notes'"))[0][0]
    assert sorted(asked) == [f"{deck_id}:1", f"{deck_id}:2", f"{deck_id}:3"]
    topics = await w.text(ANN, "topics")
    assert "3 topics, 3 cards" in topics and "inference Inference (1)" in topics
    # another chat still practises from the shipped bank
    bob = await w.questions(BOB, 2)
    assert bob and all(":" not in card_id and w.app.bank.card(card_id) is not None for card_id in bob)


async def test_typed_answers_are_checked_against_imported_key_points_or_left_to_the_learner(w: World) -> None:
    await w.say(ANN, "deck", "import notes", upload("notes.csv", NOTES.encode()))
    await w.say(ANN, "deck", "use notes")
    await w.say(ANN, "question", "inference")
    graded = await w.app.commands.text(ANN, "It keeps the keys and values of the earlier tokens around")
    assert graded is not None and "You covered 2 of 2 key points." in graded.plain_text()
    await w.say(ANN, "question", "regularisation")
    free = await w.app.commands.text(ANN, "It mixes the target with a uniform distribution")
    assert free is not None
    text = free.plain_text()
    assert "no key points to check your words against" in text and "Mixing the one-hot target" in text
    assert "Key points" not in text


async def test_importing_again_keeps_matched_history_adds_new_cards_and_retires_missing_ones(w: World) -> None:
    await w.say(ANN, "deck", "import notes", upload("notes.csv", NOTES.encode()))
    await w.say(ANN, "deck", "use notes")
    reply = await w.say(ANN, "question", "inference")
    shown = await w.app.commands.press(ANN, button(reply, "Show answer"))
    rated = await w.app.commands.press(ANN, button(shown, "Good"))
    assert "Good" in rated.plain_text()
    deck_id = (await w.rows("SELECT id FROM decks WHERE name = 'notes'"))[0][0]
    assert await w.rows("SELECT card_id FROM reviews") == [(f"{deck_id}:1",)]
    lines = NOTES.splitlines()
    changed = "\n".join(
        [
            lines[0],
            lines[1].replace("does not recompute", "never recomputes"),
            lines[3],
            "n4,What is dropout?,Randomly zeroing activations in training so units cannot co-adapt.,Regularisation,,,,",
        ]
    )
    summary = await w.text(ANN, "deck", "import notes", upload("notes.csv", changed.encode()))
    assert "Updated the deck notes from notes.csv: 3 cards (1 new, 1 changed, 1 unchanged, 1 retired" in summary
    # the reviewed card kept its id, so its history and state
    assert await w.rows("SELECT card_id FROM reviews") == [(f"{deck_id}:1",)]
    assert await w.rows("SELECT card_id FROM card_states") == [(f"{deck_id}:1",)]
    kept = w.app.library.card(f"{deck_id}:1")
    assert kept is not None and "never recomputes" in kept.answer
    # the retired card is kept for history, never asked
    assert await w.rows("SELECT card_id, retired FROM deck_cards ORDER BY seq") == [
        (f"{deck_id}:1", 0),
        (f"{deck_id}:2", 1),
        (f"{deck_id}:3", 0),
        (f"{deck_id}:4", 0),
    ]
    assert w.app.library.card(f"{deck_id}:2") is not None
    w.clock.advance(days=40)
    asked = await w.questions(ANN, 6)
    assert f"{deck_id}:2" not in asked and {f"{deck_id}:3", f"{deck_id}:4"} <= set(asked)
    # the same file again: nothing changes; the retired card back in the file comes back
    again = await w.text(ANN, "deck", "import notes", upload("notes.csv", NOTES.encode()))
    assert "(0 new, 1 changed, 1 unchanged, 1 back from retirement, 1 retired" in again


async def test_quiz_uses_only_cards_with_a_quiz_item_and_says_so_when_there_are_none(w: World) -> None:
    no_quiz = "question,answer\nWhat is a residual connection?,Adding a block's input to its output.\n"
    await w.say(ANN, "deck", "import plain", upload("plain.csv", no_quiz.encode()))
    await w.say(ANN, "deck", "use plain")
    refused = await w.text(ANN, "quiz")
    assert "nothing for /quiz to ask" in refused
    assert await w.rows("SELECT COUNT(*) FROM matches") == [(0,)]
    await w.say(ANN, "deck", "import notes", upload("notes.csv", NOTES.encode()))
    await w.say(ANN, "deck", "use notes,plain")
    started = await w.text(ANN, "quiz", "3")
    assert "Solo quiz: 1 question" in started
    deck_id = (await w.rows("SELECT id FROM decks WHERE name = 'notes'"))[0][0]
    assert await w.rows("SELECT card_ids FROM matches") == [(f'["{deck_id}:1"]',)]


async def test_in_a_group_only_admins_import_choose_or_remove(w: World) -> None:
    file = upload("notes.csv", NOTES.encode())
    for args in ("import notes", "use notes", "remove notes"):
        assert "Only an admin of this chat can" in await w.text(MEMBER, "deck", args, file)
    assert await w.rows("SELECT COUNT(*) FROM decks") == [(0,)]
    assert "Imported the deck notes" in await w.text(ADMIN, "deck", "import notes", file)
    assert "Only an admin" in await w.text(MEMBER, "deck", "use bank")
    listing = await w.text(MEMBER, "deck")  # anyone may look
    assert "✓ notes" in listing
    # a private chat does not see the group's deck
    assert "notes —" not in await w.text(ANN, "deck")
    assert "I don't know the deck “notes”" in await w.text(ANN, "deck", "use notes")


async def test_remove_asks_first_only_the_asker_confirms_and_the_reviews_go_with_the_deck(w: World) -> None:
    await w.say(ADMIN, "deck", "import notes", upload("notes.csv", NOTES.encode()))
    await w.say(ADMIN, "deck", "use notes")
    asked = await w.say(ADMIN, "question")
    shown = await w.app.commands.press(ADMIN, button(asked, "Show answer"))
    await w.app.commands.press(ADMIN, button(shown, "Good"))
    assert await w.rows("SELECT COUNT(*) FROM reviews") == [(1,)]
    ask = await w.say(ADMIN, "deck", "remove notes")
    assert "Remove the deck notes?" in ask.plain_text()
    other_admin = Caller(Identity("telegram", "300"), "Cy", GROUP, is_chat_admin=True)
    refused = await w.app.commands.press(other_admin, button(ask, "Remove it"))
    assert refused.notice == "Only the person who asked can confirm this."
    kept = await w.app.commands.press(ADMIN, button(ask, "Keep it"))
    assert "nothing was removed" in kept.plain_text()
    assert await w.rows("SELECT COUNT(*) FROM decks") == [(1,)]
    ask = await w.say(ADMIN, "deck", "remove notes")
    done = await w.app.commands.press(ADMIN, button(ask, "Remove it"))
    assert "Removed the deck notes and 1 review of its cards" in done.plain_text()
    for table in ("decks", "deck_cards", "reviews", "card_states", "chat_decks"):
        assert await w.rows(f"SELECT COUNT(*) FROM {table}") == [(0,)], table
    late = await w.app.commands.press(ADMIN, button(ask, "Remove it"))
    assert late.notice is not None and "expired" in late.notice
    assert "This chat practises from: bank" in await w.text(ADMIN, "deck")


async def test_an_invalid_file_imports_nothing_and_skip_invalid_imports_the_valid_part(w: World) -> None:
    bad = "question,answer,difficulty\nGood one?,Fine.,2\n" + "Q" * 301 + ",Too long.,2\nBad level?,Yes.,7\n"
    refused = await w.text(ANN, "deck", "import bad", upload("bad.csv", bad.encode()))
    assert "Nothing was imported from bad.csv" in refused and "row 3" in refused and "row 4" in refused
    assert "--skip-invalid" in refused
    assert await w.rows("SELECT COUNT(*) FROM decks") == [(0,)]
    partial = await w.text(ANN, "deck", "import bad --skip-invalid", upload("bad.csv", bad.encode()))
    assert "Imported the deck bad from bad.csv: 1 card." in partial and "Skipped 2 rows" in partial
    assert await w.rows("SELECT COUNT(*) FROM deck_cards") == [(1,)]


async def test_oversized_or_unnamed_uploads_are_refused_before_anything_is_read(w: World) -> None:
    async def must_not_read() -> bytes:
        raise AssertionError("read an oversized file")

    async def fails() -> bytes:
        raise UploadFailed("That file is too big for me to download from Telegram (bots can fetch up to 20 MB).")

    failed = await w.text(ANN, "deck", "import big", Upload("big.csv", None, fails))
    assert failed == "That file is too big for me to download from Telegram (bots can fetch up to 20 MB)."
    big = Upload("huge.csv", 3 * 1024 * 1024, must_not_read)
    assert "huge.csv is 3.0 MB; the limit is 2.0 MB." in await w.text(ANN, "deck", "import huge", big)
    reserved = await w.text(ANN, "deck", "import bank", upload("x.csv", NOTES.encode()))
    assert "a name the bot uses already" in reserved
    how = await w.text(ANN, "deck", "import notes")
    assert "send the file to me with the caption /deck import NAME" in how
    assert await w.rows("SELECT COUNT(*) FROM decks") == [(0,)]


async def test_decks_and_choices_survive_a_restart_and_another_process_import_is_seen_on_the_tick(
    w: World, store_location: str
) -> None:
    await w.say(ANN, "deck", "import notes", upload("notes.csv", NOTES.encode()))
    await w.say(ANN, "deck", "use notes")
    async with Store(store_location) as other_store:
        restarted = app_for(other_store, w.clock)
        await restarted.library.open()
        assert "now practises from" not in (await restarted.commands.run(ANN, "deck")).plain_text()
        assert "This chat practises from: notes (3 cards)" in (await restarted.commands.run(ANN, "deck")).plain_text()
        # the other process imports a deck for Bob's chat; this process sees it after its tick
        await restarted.commands.run(BOB, "deck", "import extra", upload=upload("extra.csv", NOTES.encode()))
    assert "✓ extra —" not in await w.text(BOB, "deck")
    await w.app.library.refresh()
    assert "✓ extra — extra: 3 cards" in await w.text(BOB, "deck")


async def test_forget_deletes_the_decks_imported_in_the_learners_private_chat(w: World) -> None:
    await w.say(ANN, "question")
    await w.say(ANN, "deck", "import notes", upload("notes.csv", NOTES.encode()))
    await w.say(ADMIN, "deck", "import group-notes", upload("notes.csv", NOTES.encode()))
    exported = await w.say(ANN, "export")
    assert exported.attachment is not None and b'"name": "notes"' in exported.attachment[1]
    ask = await w.say(ANN, "forget")
    await w.app.commands.press(ANN, button(ask, "Delete everything"))
    assert await w.rows("SELECT name FROM decks") == [("group-notes",)]
    assert "notes —" not in await w.text(ANN, "deck")


async def test_export_holds_the_decks_imported_in_private_with_every_card_in_file_order(w: World) -> None:
    await w.say(ANN, "question")
    await w.say(ANN, "deck", "import notes", upload("notes.csv", NOTES.encode()))
    await w.say(ADMIN, "deck", "import group-notes", upload("notes.csv", NOTES.encode()))  # the group's, not hers
    exported = await w.say(ANN, "export")
    assert exported.attachment is not None
    data = json.loads(exported.attachment[1])
    assert [deck["name"] for deck in data["decks"]] == ["notes"]
    (deck,) = data["decks"]
    assert [card["deck_id"] for card in data["deck_cards"]] == [deck["id"]] * 3
    assert [card["position"] for card in data["deck_cards"]] == sorted(card["position"] for card in data["deck_cards"])
    assert [card["match_key"] for card in data["deck_cards"]] == ["id:n1", "id:n2", "id:n3"]


async def test_the_daily_push_draws_from_the_chats_decks_and_a_groups_poll_from_its_quiz_cards(w: World) -> None:
    telegram = FakeNotifier("telegram")
    w.app.notifiers["telegram"] = telegram
    await w.say(ANN, "deck", "import notes", upload("notes.csv", NOTES.encode()))
    await w.say(ANN, "deck", "use notes")
    await w.say(ANN, "daily", "09:30 UTC always")
    await w.say(ADMIN, "deck", "import notes", upload("notes.csv", NOTES.encode()))
    await w.say(ADMIN, "deck", "use notes")
    await w.say(ADMIN, "daily", "09:30 UTC")
    w.clock.advance(minutes=30)
    await w.app.daily.tick()
    pushed = telegram.texts("100")
    assert len(pushed) == 1 and any(q in pushed[0] for q in ("KV cache", "warm up", "label smoothing")), pushed
    polls = [reply.poll for chat, reply in telegram.sent if chat == "-500"]
    assert len(polls) == 1 and polls[0] is not None and polls[0].question.endswith("What does the KV cache store?")


async def test_export_anki_of_an_imported_deck_reads_back_as_the_same_cards(w: World) -> None:
    await w.say(ANN, "deck", "import notes", upload("notes.csv", NOTES.encode()))
    exported = await w.say(ANN, "export", "anki notes")
    assert exported.attachment is not None and "your deck notes (3 cards)" in exported.plain_text()
    name, content = exported.attachment
    assert name.startswith("studybot-anki-notes-") and name.endswith(".apkg")
    back = parse_deck_file(name, content)
    assert [card.question for card in back.cards] == [
        "What does the KV cache store?",
        "Why warm up the learning rate?",
        "What is label smoothing?",
    ]
    assert back.cards[0].answer.startswith("The keys and values of earlier tokens")
    assert "I have no deck called “nope”" in await w.text(ANN, "export", "anki nope")
    assert "I have no deck called" in await w.text(BOB, "export", "anki notes")  # Ann's deck is not Bob's


@pytest.fixture
def w(world: World) -> World:
    return world
