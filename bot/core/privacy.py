"""Learners' data rights: /export (everything we hold about you, as JSON) and /forget (delete it all); and
/export anki, the question bank as an Anki deck to study elsewhere."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from bot.core.actions import Action, Verb, parse_action
from bot.core.bank import QuestionBank
from bot.core.decks import Library
from bot.core.linking import platform_name
from bot.core.model import Caller, Card, Identity
from bot.core.ports import Clock, StudyStore
from bot.core.views import Button, Paragraph, Reply, Span, notice

CONFIRM = 1
CANCEL = 0
EXPORT_USAGE = (
    "Usage: /export for everything I store about you (JSON), or /export anki [DECK] for the question bank (or one "
    "deck, see /deck) as an Anki deck."
)
BANK_DECK_TITLE = "StudyBot · deep-learning interview questions"  # the Anki deck of the whole bank (its id too)

# Writes cards as an Anki package (.apkg): (cards, deck title, topic names by slug) -> the file's bytes.
# bot.anki.build_apkg is the one the program passes in; the core never imports genanki.
AnkiExporter = Callable[[Sequence[Card], str, Mapping[str, str]], bytes]


class PrivacyStore(Protocol):
    async def export_learner(self, learner_id: int) -> dict[str, Any]:
        """Every row that belongs to the learner, as JSON-ready data."""
        ...

    async def forget_learner(self, learner_id: int) -> list[Identity]:
        """Delete the learner and everything linked to them; returns the identities that were removed."""
        ...


class PrivacyPorts(PrivacyStore, StudyStore, Protocol):
    """The store PrivacyService works on."""


class PrivacyService:
    def __init__(
        self,
        store: PrivacyPorts,
        clock: Clock,
        *,
        bank: QuestionBank | None = None,
        anki: AnkiExporter | None = None,
        after_forget: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.bank = bank
        self.anki = anki
        self.after_forget = after_forget  # the library reads the decks again: the learner's own are gone

    async def export(self, caller: Caller, args: str = "") -> Reply:
        """/export: the learner's data as a JSON file; /export anki: the question bank as an Anki deck."""
        wanted = args.strip().lower()
        if wanted.split()[:1] == ["anki"]:
            return await self.export_anki(caller, wanted.removeprefix("anki").strip())
        if wanted not in ("", "json"):
            return Reply(blocks=(Paragraph.of(EXPORT_USAGE),), private=True)
        learner = await self.store.find_learner(caller.identity)
        if learner is None:
            return Reply(blocks=(Paragraph.of("I don't hold any data about you yet."),), private=True)
        data = await self.store.export_learner(learner.id)
        document = {
            "format": "studybot-export/1",
            "exported_at": self.clock.now().isoformat(),
            **data,
        }
        content = json.dumps(document, ensure_ascii=False, indent=2, default=_default).encode()
        stamp = self.clock.now().strftime("%Y%m%d")
        return Reply(
            blocks=(Paragraph.of("Here is everything I store about you, as JSON."),),
            attachment=(f"studybot-export-{stamp}.json", content),
            private=True,
        )

    async def export_anki(self, caller: Caller | None = None, deck: str = "") -> Reply:
        """The whole question bank (or one deck: a part of the bank, or one of the caller's imported decks) as
        an .apkg file, with how to import it; nothing is stored or changed."""
        if self.bank is None or self.anki is None or len(self.bank) == 0:
            return Reply(blocks=(Paragraph.of("The Anki export is not available here, sorry."),), private=True)
        shipped = self.bank.shipped if isinstance(self.bank, Library) else self.bank
        names = {topic.slug: topic.name for topic in shipped.topics}
        cards: tuple[Card, ...] = shipped.cards
        title, what, file_name = BANK_DECK_TITLE, f"the whole question bank ({len(shipped)} cards)", "anki"
        if deck and deck != "bank":
            part = next((d for d in shipped.decks if d.slug == deck), None)
            own = (
                self.bank.deck_named(caller.chat.key, deck)
                if isinstance(self.bank, Library) and caller is not None
                else None
            )
            if part is not None:
                cards = tuple(card for card in shipped.cards if card.deck == part.slug)
                title, what = f"StudyBot · {part.title}", f"the bank's {part.slug} deck ({len(cards)} cards)"
            elif own is not None and own.cards:
                cards, title = own.cards, own.title
                names = {topic.slug: topic.name for topic in own.topics}
                what = f"your deck {own.name} ({len(cards)} cards)"
            else:
                return Reply(
                    blocks=(Paragraph.of(f"I have no deck called “{deck[:40]}” here. /deck lists them."),),
                    private=True,
                )
            file_name = f"anki-{deck}"
        # a few hundred cards take a moment to write: off the event loop, so other chats are not kept waiting
        content = await asyncio.to_thread(self.anki, cards, title, names)
        stamp = self.clock.now().strftime("%Y%m%d")
        return Reply(
            blocks=(
                Paragraph.of(
                    f"Here is {what} as an Anki deck. In Anki, choose "
                    "File > Import and pick this file; importing a newer one later updates the same cards."
                ),
            ),
            attachment=(f"studybot-{file_name}-{stamp}.apkg", content),
            private=True,
        )

    async def forget(self, caller: Caller, args: str = "") -> Reply:
        """/forget: ask for confirmation before deleting everything."""
        learner = await self.store.find_learner(caller.identity)
        if learner is None:
            return Reply(blocks=(Paragraph.of("I don't hold any data about you."),), private=True)
        return Reply(
            blocks=(
                Paragraph.of(Span("Delete all your StudyBot data?", "bold")),
                Paragraph.of(
                    "This removes your progress, review history, streaks, quiz scores and daily-question "
                    "subscription, on every platform linked to you. It cannot be undone. "
                    "(Tip: /export first if you want a copy.)"
                ),
            ),
            buttons=(
                (
                    Button("Delete everything", Action(Verb.FORGET, learner.id, CONFIRM).encode()),
                    Button("Cancel", Action(Verb.FORGET, learner.id, CANCEL).encode()),
                ),
            ),
            private=True,
        )

    async def press(self, caller: Caller, data: str) -> Reply:
        """The confirmation buttons of /forget; only the learner themself can confirm."""
        action = parse_action(data)
        if action is None or action.verb is not Verb.FORGET or action.arg not in (CONFIRM, CANCEL):
            return notice("That button is not valid any more.")
        learner = await self.store.find_learner(caller.identity)
        if learner is None or learner.id != action.target:
            return notice("Only the person who asked can confirm this.")
        if action.arg == CANCEL:
            return Reply(blocks=(Paragraph.of("Cancelled: nothing was deleted."),), edit=True, private=True)
        identities = await self.store.forget_learner(learner.id)
        if self.after_forget is not None:
            await self.after_forget()
        platforms = sorted({platform_name(i.platform) for i in identities})
        covered = f" ({', '.join(platforms)})" if platforms else ""
        return Reply(
            blocks=(
                Paragraph.of(
                    f"Done: all your data is deleted, on every account linked to you{covered}. "
                    "If you come back, you'll start fresh."
                ),
            ),
            edit=True,
            private=True,
        )


def _default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
