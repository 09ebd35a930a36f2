"""Discord: a discord.py 2.x Client + app_commands tree -> core Commands -> embeds and buttons.

The adapter only translates, one module per job: `render` turns a Reply into embeds, buttons and the
answer-box modal; `delivery` sends unprompted under one retry policy (and names Discord chats);
`commands` builds the slash commands from the core's CommandSpecs; `updates` answers interactions,
each with one core call; `bot` holds the Client and its lifecycle.
"""

from bot.adapters.common import SORRY
from bot.adapters.discord.bot import DiscordBot, api_base
from bot.adapters.discord.delivery import DiscordNotifier, DiscordSender, channel_chat, chat_of, dm_chat
from bot.adapters.discord.render import (
    ANSWER_MODAL_ID,
    CONTENT_LIMIT,
    DESCRIPTION_LIMIT,
    EMBED_TOTAL_LIMIT,
    PLATFORM,
    TYPE_ANSWER_ID,
    TYPE_ANSWER_LABEL,
    MessagePart,
    build_view,
    render,
    render_block,
)
from bot.adapters.discord.updates import DMS_CLOSED, NO_OPEN_QUESTION, caller_of

__all__ = [
    "ANSWER_MODAL_ID",
    "CONTENT_LIMIT",
    "DESCRIPTION_LIMIT",
    "DMS_CLOSED",
    "EMBED_TOTAL_LIMIT",
    "NO_OPEN_QUESTION",
    "PLATFORM",
    "SORRY",
    "TYPE_ANSWER_ID",
    "TYPE_ANSWER_LABEL",
    "DiscordBot",
    "DiscordNotifier",
    "DiscordSender",
    "MessagePart",
    "api_base",
    "build_view",
    "caller_of",
    "channel_chat",
    "chat_of",
    "dm_chat",
    "render",
    "render_block",
]
