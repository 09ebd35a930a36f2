"""Through both chat platforms: a second learner, who has asked and answered questions of their own,
presses the first learner's buttons and is refused, and nothing of the first learner's changes."""

from __future__ import annotations

from bot.adapters.discord import DiscordBot
from bot.adapters.telegram import TelegramBot
from bot.core.actions import parse_action
from bot.core.model import AttemptStatus, Identity
from bot.storage.sqlite import SqliteStore
from tests.adapters import test_discord as on_discord
from tests.adapters import test_telegram as on_telegram
from tests.adapters.fake_discord import EPHEMERAL, FakeDiscord
from tests.adapters.fake_telegram import FakeTelegram

GROUP = -100777


async def reviews_by(store: SqliteStore, platform: str, user: int) -> int:
    learner = await store.find_learner(Identity(platform, str(user)))
    assert learner is not None, f"{platform} user {user} has no learner record"
    row = await store.db.fetchrow("SELECT COUNT(*) FROM reviews WHERE learner_id = ?", learner.id)
    return int(row[0]) if row else 0


async def status_behind(store: SqliteStore, button_data: str) -> AttemptStatus:
    """The status of the attempt a button acts on, read from the database."""
    action = parse_action(button_data)
    assert action is not None
    attempt = await store.get_attempt(action.target)
    assert attempt is not None
    return attempt.status


async def test_on_telegram_a_learner_with_history_cannot_press_another_learners_buttons(
    fake: FakeTelegram, telegram: TelegramBot, sqlite: SqliteStore
) -> None:
    ann = fake.make_user(on_telegram.ANN, "Ann")
    bob = fake.make_user(on_telegram.BOB, "Bob")
    # Bob is a real learner: he answers a question of his own in the group first.
    await on_telegram.say(fake, telegram, "/question", bob, GROUP, "supergroup")
    bobs = on_telegram.last_bot_message(fake, GROUP)
    await on_telegram.press(fake, telegram, bobs, "Show answer", bob)
    await on_telegram.press(fake, telegram, fake.message(GROUP, bobs.message_id), "Good", bob)  # type: ignore[arg-type]
    assert await reviews_by(sqlite, "telegram", on_telegram.BOB) == 1

    await on_telegram.say(fake, telegram, "/question", ann, GROUP, "supergroup")
    question = on_telegram.last_bot_message(fake, GROUP)
    assert "Question for Ann" in (question.text or "")
    anns_show_answer = on_telegram.buttons(question)["Show answer"]
    edits = len(fake.calls_to("editMessageText"))
    for label in on_telegram.buttons(question):
        await on_telegram.press(fake, telegram, question, label, bob)
        assert "belongs to someone else" in (fake.callback_answers[-1].text or ""), label
    assert len(fake.calls_to("editMessageText")) == edits
    assert fake.message(GROUP, question.message_id).text == question.text  # type: ignore[union-attr]
    assert await status_behind(sqlite, anns_show_answer) is AttemptStatus.OPEN

    await on_telegram.press(fake, telegram, question, "Show answer", ann)
    revealed = fake.message(GROUP, question.message_id)
    assert revealed is not None and "Model answer" in (revealed.text or "")
    for label in ("Again", "Hard", "Good", "Easy"):
        await on_telegram.press(fake, telegram, revealed, label, bob)
        assert "belongs to someone else" in (fake.callback_answers[-1].text or ""), label
    assert await reviews_by(sqlite, "telegram", on_telegram.ANN) == 0
    assert await reviews_by(sqlite, "telegram", on_telegram.BOB) == 1
    assert await status_behind(sqlite, anns_show_answer) is AttemptStatus.REVEALED
    assert on_telegram.all_calls_ok(fake)


async def test_on_discord_a_learner_with_history_cannot_press_another_learners_buttons(
    discord_fake: FakeDiscord, discord_bot: DiscordBot, sqlite: SqliteStore
) -> None:
    ann, bob = on_discord.ANN, on_discord.BOB
    # Bob is a real learner: he answers a question of his own first.
    payload, _ = await on_discord.slash(discord_fake, "question", user=bob)
    bobs = on_discord.original(discord_fake, payload)
    await on_discord.press(discord_fake, bobs, "Show answer", user=bob)
    await on_discord.press(discord_fake, discord_fake.messages[int(bobs["id"])], "Good", user=bob)
    assert await reviews_by(sqlite, "discord", bob) == 1

    payload, _ = await on_discord.slash(discord_fake, "question", user=ann)
    question = on_discord.original(discord_fake, payload)
    before = on_discord.text_of(question)
    anns_show_answer = on_discord.buttons(question)["Show answer"]
    for label in ("Show answer", "Multiple choice", "Skip"):
        _, refused = await on_discord.press(discord_fake, question, label, user=bob)
        data = refused.data or {}
        assert refused.type == 4 and data["flags"] & EPHEMERAL, label
        assert "belongs to someone else" in data["content"], label
    assert on_discord.text_of(discord_fake.messages[int(question["id"])]) == before
    assert await status_behind(sqlite, anns_show_answer) is AttemptStatus.OPEN

    _, shown = await on_discord.press(discord_fake, question, "Show answer", user=ann)
    assert shown.type == 7
    revealed = discord_fake.messages[int(question["id"])]
    for label in ("Again", "Hard", "Good", "Easy"):
        _, refused = await on_discord.press(discord_fake, revealed, label, user=bob)
        assert refused.type == 4 and "belongs to someone else" in (refused.data or {})["content"], label
    assert "Model answer" in on_discord.text_of(discord_fake.messages[int(question["id"])])
    assert await reviews_by(sqlite, "discord", ann) == 0
    assert await reviews_by(sqlite, "discord", bob) == 1
    assert await status_behind(sqlite, anns_show_answer) is AttemptStatus.REVEALED
    await discord_bot.drain()
    assert on_discord.all_ok(discord_fake)
