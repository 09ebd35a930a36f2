"""Telegram: python-telegram-bot 22 Application -> core Commands -> Telegram HTML.

The adapter only translates, one module per job: `render` turns a Reply into HTML (every string
escaped) and an inline keyboard (callback_data is the core's compact action); `delivery` sends it
under one retry policy (429s waited out, timeouts and 5xx retried, a 403 marks the chat unreachable);
`commands` publishes the command menu; `updates` turns each update into one core call; `bot` holds
the Application and its lifecycle.
"""

from bot.adapters.common import SORRY
from bot.adapters.telegram.bot import TelegramBot
from bot.adapters.telegram.delivery import PLATFORM, TelegramNotifier, TelegramSender, chat_of
from bot.adapters.telegram.render import CHUNK_LIMIT, MESSAGE_LIMIT, escape, keyboard, render_block, render_html
from bot.adapters.telegram.updates import caller_of

__all__ = [
    "CHUNK_LIMIT",
    "MESSAGE_LIMIT",
    "PLATFORM",
    "SORRY",
    "TelegramBot",
    "TelegramNotifier",
    "TelegramSender",
    "caller_of",
    "chat_of",
    "escape",
    "keyboard",
    "render_block",
    "render_html",
]
