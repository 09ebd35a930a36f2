"""Files sent with a command reach the core as an Upload, through the real SDKs against the fakes.

A test command, /echofile, answers with the file's name, the size the platform declared and a SHA-256 of
the bytes it reads (and the args it got, and whether the caller is a chat admin). On Telegram the file is
a document whose caption is the command, or the document a command replies to; on Discord it is the
slash command's attachment option (type 11), which is never part of the args string. A download that
fails (after the retries for 5xx and timeouts) gives the caller one plain line, not the generic apology.
At the end, /deck import end to end: a CSV sent with it becomes a deck that /deck lists, on both platforms.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.adapters.common import SORRY
from bot.adapters.discord import DiscordBot
from bot.adapters.discord.uploads import DOWNLOAD_FAILED as DISCORD_DOWNLOAD_FAILED
from bot.adapters.telegram.uploads import DOWNLOAD_FAILED as TELEGRAM_DOWNLOAD_FAILED
from bot.adapters.telegram.uploads import TOO_BIG
from bot.bootstrap import discord_adapter
from bot.core.commands import Commands, CommandSpec, OptionSpec
from bot.core.model import Caller, Upload
from bot.core.views import Paragraph, Reply
from bot.storage.sqlite import SqliteStore
from tests.adapters.conftest import DISCORD_GUILD, DISCORD_TOKEN, DISCORD_TUNING, discord_app
from tests.adapters.fake_discord import EPHEMERAL, FakeDiscord
from tests.adapters.fake_telegram import DEFAULT_USERNAME, FakeTelegram
from tests.adapters.stack import Stack, app_for, build_stack

CSV = b"question,answer\nWhat is a tensor?,An n-dimensional array\nWhat is SGD?,Stochastic gradient descent\n"
SHA = hashlib.sha256(CSV).hexdigest()
ANN = 88
GROUP = -1001234567890
ANN_DISCORD = 710000000000000001

ECHOFILE = CommandSpec(
    "echofile",
    "/echofile [NOTE]",
    "Echo a file back (test)",
    options=(
        OptionSpec("file", "The file to echo", kind="attachment"),
        OptionSpec("note", "A note"),
    ),
    admin_aware=True,
    audience="chat",
)
ECHOARGS = CommandSpec("echoargs", "/echoargs [TEXT]", "Echo the args (test)")


async def echofile(caller: Caller, args: str, upload: Upload | None) -> Reply:
    if upload is None:
        text = f"no file; args={args!r}"
    else:
        data = await upload.read()
        text = f"file {upload.filename} size={upload.size} sha={hashlib.sha256(data).hexdigest()} args={args!r}"
    return Reply(blocks=(Paragraph.of(f"{text} admin={caller.is_chat_admin}"),))


async def echoargs(caller: Caller, args: str) -> Reply:
    return Reply(blocks=(Paragraph.of(f"echo args={args!r}"),))


def register_test_commands(commands: Commands) -> None:
    commands.register_upload(ECHOFILE, echofile)
    commands.register(ECHOARGS, echoargs)


# --- Telegram ----------------------------------------------------------------------------------------------


@pytest.fixture
async def stack(fake: FakeTelegram, sqlite: SqliteStore) -> AsyncIterator[Stack]:
    built = build_stack(fake, sqlite)
    register_test_commands(built.commands)
    await built.telegram.start(polling=False)
    try:
        yield built
    finally:
        await built.stop()


def rendered(fake: FakeTelegram, chat_id: int) -> list[str]:
    return fake.sent_texts(chat_id, rendered=True)


async def test_telegram_document_with_a_command_caption_runs_it_with_the_file(fake: FakeTelegram, stack: Stack) -> None:
    ann = fake.make_user(ANN, "Ann")
    document = fake.add_file("my notes.csv", CSV, mime_type="text/csv")
    await stack.telegram.process(fake.document_update(ANN, ann, document, "/echofile my-notes"))

    assert rendered(fake, ANN) == [f"file my notes.csv size={len(CSV)} sha={SHA} args='my-notes' admin=False"]
    (asked,) = fake.calls_to("getFile")
    assert asked.ok and asked.params["file_id"] == document["file_id"]
    assert [d.status for d in fake.downloads] == [200]


async def test_telegram_caption_command_for_this_bot_in_a_group_fills_admin_and_replies_to_it(
    fake: FakeTelegram, stack: Stack
) -> None:
    ann = fake.make_user(ANN, "Ann")
    fake.set_member_status(GROUP, ANN, "administrator")
    document = fake.add_file("deck.csv", CSV)
    update = fake.document_update(GROUP, ann, document, f"/echofile@{DEFAULT_USERNAME}", chat_type="supergroup")
    await stack.telegram.process(update)

    assert rendered(fake, GROUP) == [f"file deck.csv size={len(CSV)} sha={SHA} args='' admin=True"]
    assert fake.calls_to("getChatMember")[0].params["user_id"] == ANN
    (sent,) = fake.calls_to("sendMessage")
    assert sent.params["reply_parameters"]["message_id"] == update["message"]["message_id"]

    other = fake.add_file("x.csv", CSV)  # a caption command for another bot is not ours
    await stack.telegram.process(fake.document_update(GROUP, ann, other, "/echofile@other_bot", chat_type="supergroup"))
    assert len(rendered(fake, GROUP)) == 1 and len(fake.calls_to("getFile")) == 1


async def test_telegram_command_replying_to_a_document_gets_that_document(fake: FakeTelegram, stack: Stack) -> None:
    ann = fake.make_user(ANN, "Ann")
    document = fake.add_file(None, CSV)  # Telegram may leave out the name: the Upload says "file"
    sent = fake.document_update(ANN, ann, document)
    await stack.telegram.process(sent)
    assert rendered(fake, ANN) == []  # a bare document is nothing to answer

    reply_to = sent["message"]["message_id"]
    await stack.telegram.process(fake.message_update(ANN, ann, "/echofile import", reply_to=reply_to))
    assert rendered(fake, ANN) == [f"file file size={len(CSV)} sha={SHA} args='import' admin=False"]

    words = fake.message_update(ANN, ann, "just words")
    await stack.telegram.process(fake.message_update(ANN, ann, "/echofile", reply_to=words["message"]["message_id"]))
    assert rendered(fake, ANN)[-1] == "no file; args='' admin=False"  # a reply to a text: no file
    await stack.telegram.process(fake.message_update(ANN, ann, "/echofile alone"))
    assert rendered(fake, ANN)[-1] == "no file; args='alone' admin=False"
    assert len(fake.calls_to("getFile")) == 1


async def test_telegram_group_reply_to_a_document_fills_admin_too(fake: FakeTelegram, stack: Stack) -> None:
    ann, bob = fake.make_user(ANN, "Ann"), fake.make_user(89, "Bob")
    fake.set_member_status(GROUP, ANN, "creator")
    sent = fake.document_update(GROUP, bob, fake.add_file("shared.csv", CSV), chat_type="supergroup")
    update = fake.message_update(
        GROUP, ann, "/echofile", chat_type="supergroup", reply_to=sent["message"]["message_id"]
    )
    await stack.telegram.process(update)
    assert rendered(fake, GROUP) == [f"file shared.csv size={len(CSV)} sha={SHA} args='' admin=True"]


async def test_telegram_a_caption_that_is_no_command_is_ignored_and_other_commands_run_without_the_file(
    fake: FakeTelegram, stack: Stack
) -> None:
    ann = fake.make_user(ANN, "Ann")
    await stack.telegram.process(fake.document_update(ANN, ann, fake.add_file("a.csv", CSV), "my notes for today"))
    assert fake.calls_to("sendMessage") == []

    await stack.telegram.process(fake.document_update(ANN, ann, fake.add_file("b.csv", CSV), "/echoargs hello"))
    assert rendered(fake, ANN) == ["echo args='hello'"]
    sent = fake.document_update(ANN, ann, fake.add_file("c.csv", CSV))
    await stack.telegram.process(fake.message_update(ANN, ann, "/echoargs", reply_to=sent["message"]["message_id"]))
    assert rendered(fake, ANN) == ["echo args='hello'", "echo args=''"]
    assert fake.calls_to("getFile") == [] and fake.downloads == []  # neither was fetched


async def test_telegram_a_file_that_cannot_be_downloaded_gets_a_plain_answer(fake: FakeTelegram, stack: Stack) -> None:
    ann = fake.make_user(ANN, "Ann")
    fake.fail_next_download(404)  # the file server lost it
    await stack.telegram.process(fake.document_update(ANN, ann, fake.add_file("a.csv", CSV), "/echofile"))
    assert rendered(fake, ANN) == [TELEGRAM_DOWNLOAD_FAILED]
    assert [d.status for d in fake.downloads] == [404]  # not worth a second try

    fake.fail_next_download(500, times=3)  # a 5xx is retried (twice here), then given up
    await stack.telegram.process(fake.document_update(ANN, ann, fake.add_file("b.csv", CSV), "/echofile"))
    assert rendered(fake, ANN)[-1] == TELEGRAM_DOWNLOAD_FAILED
    assert [d.status for d in fake.downloads][1:] == [500, 500, 500]

    fake.fail_next_download(502)  # one 5xx, then the file comes
    await stack.telegram.process(fake.document_update(ANN, ann, fake.add_file("c.csv", CSV), "/echofile"))
    assert rendered(fake, ANN)[-1] == f"file c.csv size={len(CSV)} sha={SHA} args='' admin=False"

    fake.fail_next("getFile", 500, times=3)  # getFile itself failing
    await stack.telegram.process(fake.document_update(ANN, ann, fake.add_file("d.csv", CSV), "/echofile"))
    assert rendered(fake, ANN)[-1] == TELEGRAM_DOWNLOAD_FAILED
    assert SORRY not in rendered(fake, ANN)
    assert await stack.store.is_reachable(f"telegram:{ANN}")  # a failed download says nothing about the chat


async def test_telegram_a_download_that_times_out_is_retried_then_answered_plainly(
    fake: FakeTelegram, sqlite: SqliteStore
) -> None:
    slow = build_stack(fake, sqlite, request_timeout=0.3)
    register_test_commands(slow.commands)
    await slow.telegram.start(polling=False)
    try:
        ann = fake.make_user(ANN, "Ann")
        fake.delay_next("getFile", 2.0, times=3)  # every try times out (two retries here)
        await slow.telegram.process(fake.document_update(ANN, ann, fake.add_file("a.csv", CSV), "/echofile"))
        assert rendered(fake, ANN) == [TELEGRAM_DOWNLOAD_FAILED]
        assert [c.status for c in fake.calls_to("getFile")] == [499, 499, 499]
    finally:
        await slow.stop()


async def test_telegram_a_file_over_the_bot_download_limit_is_named_as_too_big(
    fake: FakeTelegram, stack: Stack
) -> None:
    ann = fake.make_user(ANN, "Ann")
    big = fake.add_file("huge.csv", b"x" * (20 * 1024 * 1024 + 1))
    await stack.telegram.process(fake.document_update(ANN, ann, big, "/echofile"))
    assert rendered(fake, ANN) == [TOO_BIG]
    assert fake.calls_to("getFile")[0].description == "Bad Request: file is too big" and fake.downloads == []


# --- Discord -----------------------------------------------------------------------------------------------


@pytest.fixture
async def discord_echo(discord_fake: FakeDiscord, sqlite: SqliteStore) -> AsyncIterator[DiscordBot]:
    app, bot = discord_app(discord_fake, sqlite)
    register_test_commands(app.commands)
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()


async def slash(fake: FakeDiscord, bot: DiscordBot, options: dict[str, Any], *, guild: bool = False) -> dict[str, Any]:
    payload = fake.slash_interaction(
        "echofile", options, user_id=ANN_DISCORD, guild_id=DISCORD_GUILD if guild else None
    )
    await fake.send_interaction(payload)
    await fake.wait_for_callback(payload)
    await bot.drain()
    message = fake.original_message(payload)
    assert message is not None
    return message


def text_of(message: dict[str, Any]) -> str:
    return " ".join([message.get("content") or ""] + [e.get("description") or "" for e in message.get("embeds", [])])


async def test_discord_syncs_an_attachment_option_as_type_11(
    discord_fake: FakeDiscord, discord_echo: DiscordBot
) -> None:
    synced = {c["name"]: c for c in discord_fake.synced_commands[None]}
    file_option, note_option = synced["echofile"]["options"]
    assert file_option["name"] == "file" and file_option["type"] == 11 and not file_option["required"]
    assert note_option["name"] == "note" and note_option["type"] == 3


async def test_discord_attachment_option_reaches_the_core_as_the_upload_not_in_the_args(
    discord_fake: FakeDiscord, discord_echo: DiscordBot
) -> None:
    attachment = discord_fake.add_attachment("my notes.csv", CSV, "text/csv")
    message = await slash(discord_fake, discord_echo, {"file": attachment, "note": "hello"})
    assert f"file my notes.csv size={len(CSV)} sha={SHA} args='hello' admin=False" in text_of(message)
    assert [r.status for r in discord_fake.requests if r.path.startswith("/ephemeral-attachments/")] == [200]

    message = await slash(discord_fake, discord_echo, {"note": "plain"})  # no file: the core gets None
    assert "no file; args='plain'" in text_of(message)

    attachment = discord_fake.add_attachment("team.csv", CSV)
    message = await slash(discord_fake, discord_echo, {"file": attachment}, guild=True)
    assert f"file team.csv size={len(CSV)} sha={SHA} args=''" in text_of(message)
    assert not message["flags"] & EPHEMERAL  # the command is for the whole chat


async def test_discord_a_file_that_cannot_be_downloaded_gets_a_plain_private_answer(
    discord_fake: FakeDiscord, discord_echo: DiscordBot
) -> None:
    discord_fake.fail_next("GET /ephemeral-attachments/", 404)
    message = await slash(discord_fake, discord_echo, {"file": discord_fake.add_attachment("a.csv", CSV)}, guild=True)
    assert DISCORD_DOWNLOAD_FAILED in text_of(message) and message["flags"] & EPHEMERAL
    cdn = [r.status for r in discord_fake.requests if r.path.startswith("/ephemeral-attachments/")]
    assert cdn == [404]  # a missing file is not retried

    discord_fake.fail_next("GET /ephemeral-attachments/", 500, times=3)  # retried twice, then given up
    message = await slash(discord_fake, discord_echo, {"file": discord_fake.add_attachment("b.csv", CSV)})
    assert DISCORD_DOWNLOAD_FAILED in text_of(message)
    cdn = [r.status for r in discord_fake.requests if r.path.startswith("/ephemeral-attachments/")]
    assert cdn == [404, 500, 500, 500]

    discord_fake.fail_next("GET /ephemeral-attachments/", 503)  # one 5xx, then the file comes
    message = await slash(discord_fake, discord_echo, {"file": discord_fake.add_attachment("c.csv", CSV)})
    assert f"file c.csv size={len(CSV)} sha={SHA}" in text_of(message)
    assert SORRY not in json.dumps([m for m in discord_fake.messages.values()])


async def test_discord_a_download_that_times_out_is_retried_then_answered_plainly(
    discord_fake: FakeDiscord, sqlite: SqliteStore
) -> None:
    app = app_for(
        sqlite,
        DISCORD_TOKEN=DISCORD_TOKEN,
        DISCORD_API_URL=discord_fake.base_url,
        DISCORD_GATEWAY_URL=discord_fake.gateway_url,
    )
    register_test_commands(app.commands)
    bot = discord_adapter(app, **{**DISCORD_TUNING, "request_timeout": 0.2})
    await bot.start()
    try:
        discord_fake.delay_next("GET /ephemeral-attachments/", 0.5, times=3)  # every try times out
        message = await slash(discord_fake, bot, {"file": discord_fake.add_attachment("a.csv", CSV)})
        assert DISCORD_DOWNLOAD_FAILED in text_of(message)
        discord_fake.delay_next("GET /ephemeral-attachments/", 0.5)  # one slow try, then the file comes
        message = await slash(discord_fake, bot, {"file": discord_fake.add_attachment("b.csv", CSV)})
        assert f"file b.csv size={len(CSV)} sha={SHA}" in text_of(message)
    finally:
        await bot.stop()


async def test_discord_fake_cdn_refuses_an_unsigned_or_altered_attachment_url(
    discord_fake: FakeDiscord, discord_echo: DiscordBot
) -> None:
    attachment_id = discord_fake.add_attachment("a.csv", CSV)
    url = discord_fake.user_attachments[attachment_id]["url"]
    session = discord_echo.client.http._HTTPClient__session  # type: ignore[attr-defined]
    async with session.get(url) as response:
        assert response.status == 200 and await response.read() == CSV
    for wrong in (url.split("?")[0], url.replace("hm=", "hm=0"), url.replace("a.csv", "b.csv")):
        async with session.get(wrong) as response:
            assert response.status == 404


# --- /deck import end to end: a CSV becomes a deck of the chat --------------------------------------------

DECK_CSV = b"question,answer\nWhat does Adam keep per parameter?,Running means of the gradient and its square\n"
DECK_CSV += b"Why warm up the learning rate?,Early Adam steps are noisy; a small rate keeps them from diverging\n"


async def test_telegram_deck_import_with_a_csv_document_makes_a_deck_that_deck_lists(
    fake: FakeTelegram, stack: Stack
) -> None:
    ann = fake.make_user(ANN, "Ann")
    document = fake.add_file("notes.csv", DECK_CSV, mime_type="text/csv")
    await stack.telegram.process(fake.document_update(ANN, ann, document, "/deck import notes"))
    (imported,) = rendered(fake, ANN)
    assert imported.startswith("Imported the deck notes from notes.csv: 2 cards.")

    await stack.telegram.process(fake.message_update(ANN, ann, "/deck"))
    listing = rendered(fake, ANN)[-1]
    assert "✓ notes — notes: 2 cards" in listing and "imported by Ann" in listing
    assert "This chat practises from: bank, notes" in listing


async def deck_on_discord(fake: FakeDiscord, bot: DiscordBot, options: dict[str, Any] | None) -> str:
    payload = fake.slash_interaction("deck", options, user_id=ANN_DISCORD)  # in DMs: a private chat
    await fake.send_interaction(payload)
    await fake.wait_for_callback(payload)
    await bot.drain()
    message = fake.original_message(payload)
    assert message is not None
    return " ".join([text_of(message)] + [e.get("title") or "" for e in message.get("embeds", [])])


async def test_discord_deck_import_with_an_attached_csv_makes_a_deck_that_deck_lists(
    discord_fake: FakeDiscord, discord_echo: DiscordBot
) -> None:
    synced = {c["name"]: c for c in discord_fake.synced_commands[None]}
    assert [(o["name"], o["type"]) for o in synced["deck"]["options"]] == [("action", 3), ("names", 3), ("file", 11)]
    attachment = discord_fake.add_attachment("notes.csv", DECK_CSV, "text/csv")
    imported = await deck_on_discord(
        discord_fake, discord_echo, {"action": "import", "names": "notes", "file": attachment}
    )
    assert "Imported the deck notes from notes.csv: 2 cards." in imported

    listing = await deck_on_discord(discord_fake, discord_echo, None)
    assert "✓ `notes` — notes: 2 cards" in listing and "This chat practises from: bank, notes" in listing
