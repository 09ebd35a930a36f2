"""/stats with its progress picture through the real SDKs: a photo after the text on Telegram, an embed
showing the attached PNG on Discord; a picture the platform refuses, or one that fails to draw, never
costs the learner the text."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from bot.adapters.discord import SORRY as DISCORD_SORRY
from bot.adapters.discord import DiscordBot
from bot.adapters.telegram import SORRY as TELEGRAM_SORRY
from bot.adapters.telegram import TelegramBot
from bot.core.commands import Commands
from bot.core.model import Caller, Chat, Identity
from bot.core.progress import NO_PICTURE_YET, Progress, ProgressService
from bot.pictures import ProgressPicturer
from bot.storage.sqlite import SqliteStore
from tests.adapters.conftest import DISCORD_GUILD
from tests.adapters.fake_discord import EPHEMERAL, FakeDiscord
from tests.adapters.fake_telegram import FakeTelegram

ANN = 1001
ANN_DISCORD = 710000000000000001


class BrokenPicturer:
    async def draw(self, progress: Progress) -> bytes:
        raise RuntimeError("no fonts on this machine")


@pytest.fixture(scope="module")
def pictures() -> Iterator[ProgressPicturer]:
    """One drawing process for the whole module (starting one takes a second or two)."""
    picturer = ProgressPicturer()
    yield picturer
    picturer.close()


def with_pictures(commands: Commands, store: SqliteStore, picturer: Any) -> None:
    commands.attach_progress(ProgressService(store, commands.study, picturer))


async def practise(commands: Commands, who: Caller, answers: int = 3) -> None:
    """Answer `answers` questions: show the answer, rate it Good."""
    for _ in range(answers):
        asked = await commands.run(who, "question")
        show = next(b.action for row in asked.buttons for b in row if b.action.startswith("sa:"))
        revealed = await commands.press(who, show)
        good = next(b.action for row in revealed.buttons for b in row if b.label.startswith("Good"))
        await commands.press(who, good)


def png_size(data: bytes) -> tuple[int, int]:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image.size


# --- Telegram ---------------------------------------------------------------------------------------------


def telegram_ann() -> Caller:
    return Caller(Identity("telegram", str(ANN)), "Ann", Chat("telegram", str(ANN)))


async def stats_on_telegram(fake: FakeTelegram, bot: TelegramBot) -> None:
    ann = fake.make_user(ANN, "Ann")
    await bot.process(fake.message_update(ANN, ann, "/stats"))


async def test_telegram_sends_the_text_then_the_picture_as_a_photo_with_its_caption(
    fake: FakeTelegram, telegram: TelegramBot, sqlite: SqliteStore, pictures: ProgressPicturer
) -> None:
    with_pictures(telegram.commands, sqlite, pictures)
    await practise(telegram.commands, telegram_ann())

    await stats_on_telegram(fake, telegram)

    sent = [m for m in fake.messages(ANN) if m.from_bot]
    assert [bool(m.photo) for m in sent] == [False, True]  # the text first, then the photo
    text, photo = sent
    assert "Progress of Ann" in (text.text or "") and "Cards seen: 3 of 14" in (text.text or "")
    assert "90%" in (photo.caption or "") and "FSRS" in (photo.caption or "")
    upload = fake.calls_to("sendPhoto")[0].params["photo"]
    width, _ = png_size(upload.content)
    assert width >= 1000 and len(upload.content) < 200 * 1024
    assert photo.photo is not None and photo.photo[-1]["width"] == width
    assert all(call.ok for call in fake.calls)


async def test_telegram_refusing_the_photo_still_delivers_the_text(
    fake: FakeTelegram, telegram: TelegramBot, sqlite: SqliteStore, pictures: ProgressPicturer
) -> None:
    with_pictures(telegram.commands, sqlite, pictures)
    await practise(telegram.commands, telegram_ann())
    fake.fail_next("sendPhoto", 400, description="Bad Request: PHOTO_INVALID_DIMENSIONS")

    await stats_on_telegram(fake, telegram)

    sent = [m for m in fake.messages(ANN) if m.from_bot]
    assert len(sent) == 1 and "Progress of Ann" in (sent[0].text or "")
    assert TELEGRAM_SORRY not in (sent[0].text or "")
    assert [call.status for call in fake.calls_to("sendPhoto")] == [400]  # a refusal is not retried


async def test_telegram_gets_the_text_alone_when_the_picture_cannot_be_drawn(
    fake: FakeTelegram, telegram: TelegramBot, sqlite: SqliteStore, pictures: ProgressPicturer
) -> None:
    with_pictures(telegram.commands, sqlite, BrokenPicturer())
    await practise(telegram.commands, telegram_ann())

    await stats_on_telegram(fake, telegram)

    sent = [m for m in fake.messages(ANN) if m.from_bot]
    assert len(sent) == 1 and "Progress of Ann" in (sent[0].text or "")
    assert fake.calls_to("sendPhoto") == []


async def test_telegram_learner_with_no_reviews_gets_a_friendly_text_and_no_picture(
    fake: FakeTelegram, telegram: TelegramBot, sqlite: SqliteStore, pictures: ProgressPicturer
) -> None:
    with_pictures(telegram.commands, sqlite, pictures)

    await stats_on_telegram(fake, telegram)

    sent = [m for m in fake.messages(ANN) if m.from_bot]
    assert len(sent) == 1 and NO_PICTURE_YET in (sent[0].text or "")
    assert fake.calls_to("sendPhoto") == []


# --- Discord ----------------------------------------------------------------------------------------------


def discord_ann() -> Caller:
    return Caller(Identity("discord", str(ANN_DISCORD)), "Ann", Chat("discord", f"user:{ANN_DISCORD}"))


async def stats_on_discord(fake: FakeDiscord, bot: DiscordBot) -> dict[str, Any]:
    payload = fake.slash_interaction("stats", user_id=ANN_DISCORD, guild_id=DISCORD_GUILD)
    await fake.send_interaction(payload)
    await fake.wait_for_callback(payload)
    await bot.drain()
    message = fake.original_message(payload)
    assert message is not None
    return message


async def test_discord_shows_the_picture_in_the_embed_with_the_png_attached(
    discord_fake: FakeDiscord, discord_bot: DiscordBot, sqlite: SqliteStore, pictures: ProgressPicturer
) -> None:
    with_pictures(discord_bot.commands, sqlite, pictures)
    await practise(discord_bot.commands, discord_ann())

    message = await stats_on_discord(discord_fake, discord_bot)

    assert message["flags"] & EPHEMERAL  # the learner's own progress, in a server
    (embed,) = message["embeds"]
    assert embed["title"].startswith("Progress of ") and "Cards seen: 3 of 14" in embed["description"]
    assert "90%" in embed["footer"]["text"]
    (attachment,) = message["attachments"]
    assert attachment["filename"] == "stats.png" and embed["image"]["url"] == attachment["url"]
    content = discord_fake.uploads[int(attachment["id"])]
    assert png_size(content) == (attachment["width"], attachment["height"])
    assert attachment["width"] >= 1000 and len(content) < 200 * 1024
    assert all(r.status < 400 for r in discord_fake.requests)


async def test_discord_refusing_the_picture_still_delivers_the_text(
    discord_fake: FakeDiscord, discord_bot: DiscordBot, sqlite: SqliteStore, pictures: ProgressPicturer
) -> None:
    with_pictures(discord_bot.commands, sqlite, pictures)
    await practise(discord_bot.commands, discord_ann())
    discord_fake.fail_next("/callback", 400, code=50035, message="Invalid Form Body")

    message = await stats_on_discord(discord_fake, discord_bot)

    (embed,) = message["embeds"]
    assert embed["title"].startswith("Progress of ") and "image" not in embed
    assert message["attachments"] == []
    assert DISCORD_SORRY not in str(message)
    callbacks = [r.status for r in discord_fake.requests if r.path.endswith("/callback")]
    assert callbacks == [400, 200]  # refused with the picture, taken without it


async def test_discord_learner_with_no_reviews_gets_a_friendly_text_and_no_picture(
    discord_fake: FakeDiscord, discord_bot: DiscordBot, sqlite: SqliteStore, pictures: ProgressPicturer
) -> None:
    with_pictures(discord_bot.commands, sqlite, pictures)

    message = await stats_on_discord(discord_fake, discord_bot)

    (embed,) = message["embeds"]
    assert "image" not in embed and message["attachments"] == []
    assert "picture appears here after your first answer" in embed["description"]
