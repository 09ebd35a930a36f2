"""/export anki through the real SDKs: the .apkg arrives as a document on Telegram and as an attachment of the
slash command's reply on Discord (format=anki), and opens with one note per card of the bank."""

from __future__ import annotations

import html
import json

from bot.adapters.discord import DiscordBot
from bot.core.bank import QuestionBank
from bot.core.model import Identity
from bot.storage.sqlite import SqliteStore
from tests.adapters.conftest import DISCORD_GUILD
from tests.adapters.fake_discord import EPHEMERAL, FakeDiscord
from tests.adapters.fake_telegram import FakeTelegram
from tests.adapters.stack import build_stack
from tests.conftest import small_bank
from tests.unit.test_anki import read_apkg

ANN_DISCORD = 710000000000000001


def notes_in(content: bytes, bank: QuestionBank) -> int:
    notes = read_apkg(content).notes
    assert {note.fields["Question"] for note in notes} == {card.question for card in bank.cards}
    return len(notes)


# --- Telegram ----------------------------------------------------------------------------------------------


async def test_telegram_export_anki_uploads_the_bank_as_an_apkg_document_with_how_to_import_it(
    fake: FakeTelegram, sqlite: SqliteStore
) -> None:
    stack = build_stack(fake, sqlite)
    await stack.telegram.start(polling=False)
    try:
        ann = fake.make_user(88, "Ann")
        await stack.telegram.process(fake.message_update(88, ann, "/export anki"))
        (upload,) = [c for c in fake.calls_to("sendDocument") if c.ok]
        document = upload.params["document"]
        assert upload.chat_id == 88 and document.filename.endswith(".apkg")
        assert notes_in(document.content, stack.app.bank) == len(stack.app.bank.cards)
        assert "choose File > Import" in html.unescape(upload.params["caption"])
        assert await sqlite.find_learner(Identity("telegram", "88")) is None  # nothing was stored for it

        await stack.telegram.process(fake.message_update(88, ann, "/question"))
        await stack.telegram.process(fake.message_update(88, ann, "/export"))  # the JSON export is unchanged
        uploads = [c for c in fake.calls_to("sendDocument") if c.ok]
        assert len(uploads) == 2 and uploads[1].params["document"].filename.endswith(".json")
        assert json.loads(uploads[1].params["document"].content)["learner"]["display_name"] == "Ann"

        await stack.telegram.process(fake.message_update(88, ann, "/export zip"))
        assert "/export anki" in fake.sent_texts(88, rendered=True)[-1]
        await stack.telegram.process(fake.message_update(-500, ann, "/export anki", chat_type="group"))
        assert "works in a private chat" in fake.sent_texts(-500, rendered=True)[-1]
        assert len([c for c in fake.calls_to("sendDocument") if c.ok]) == 2  # neither sent a file
    finally:
        await stack.stop()


# --- Discord -----------------------------------------------------------------------------------------------


async def export_on_discord(fake: FakeDiscord, bot: DiscordBot, fmt: str | None, *, guild: bool = False) -> dict:  # type: ignore[type-arg]
    payload = fake.slash_interaction(
        "export",
        {"format": fmt} if fmt is not None else None,
        user_id=ANN_DISCORD,
        guild_id=DISCORD_GUILD if guild else None,
    )
    await fake.send_interaction(payload)
    await fake.wait_for_callback(payload)
    await bot.drain()
    message = fake.original_message(payload)
    assert message is not None
    return message


async def test_discord_offers_format_as_a_choice_of_the_export_slash_command(
    discord_fake: FakeDiscord, discord_bot: DiscordBot
) -> None:
    synced = {c["name"]: c for c in discord_fake.synced_commands[None]}
    option, deck = synced["export"]["options"]
    assert option["name"] == "format" and not option["required"]
    assert [choice["value"] for choice in option["choices"]] == ["json", "anki"]
    assert deck["name"] == "deck" and not deck["required"] and deck["type"] == 3


async def test_discord_export_with_format_anki_attaches_the_bank_as_an_apkg(
    discord_fake: FakeDiscord, discord_bot: DiscordBot
) -> None:
    message = await export_on_discord(discord_fake, discord_bot, "anki")

    (attachment,) = message["attachments"]
    assert attachment["filename"].endswith(".apkg")
    content = discord_fake.uploads[int(attachment["id"])]
    bank = small_bank()  # the bank the test app runs on
    assert notes_in(content, bank) == len(bank.cards)
    text = " ".join([message.get("content") or ""] + [e.get("description") or "" for e in message.get("embeds", [])])
    assert "File > Import" in text
    assert all(r.status < 400 for r in discord_fake.requests)


async def test_discord_export_format_json_is_the_same_as_no_format(
    discord_fake: FakeDiscord, discord_bot: DiscordBot
) -> None:
    asked = discord_fake.slash_interaction("question", user_id=ANN_DISCORD)  # in DMs: Ann becomes a learner
    await discord_fake.send_interaction(asked)
    await discord_fake.wait_for_callback(asked)
    for fmt in ("json", None):
        message = await export_on_discord(discord_fake, discord_bot, fmt)
        (attachment,) = message["attachments"]
        assert attachment["filename"].endswith(".json")
        data = json.loads(discord_fake.uploads[int(attachment["id"])])
        assert data["format"] == "studybot-export/1" and data["identities"][0]["platform"] == "discord"


async def test_discord_export_anki_in_a_server_is_refused_privately(
    discord_fake: FakeDiscord, discord_bot: DiscordBot
) -> None:
    message = await export_on_discord(discord_fake, discord_bot, "anki", guild=True)
    assert not message["attachments"] and "works in a private chat" in json.dumps(message)
    assert message["flags"] & EPHEMERAL
