"""The terminal chat: the same commands as the chat platforms, typed at a prompt.

chat.py runs the conversation (keys, the quiz clock, the daily question on start), text.py lays replies
out for a terminal, and lines.py reads what the user types (line editing and history on a TTY).
"""

from bot.adapters.console.chat import PLATFORM, ConsoleChat
from bot.adapters.console.text import Look, render

__all__ = ["PLATFORM", "ConsoleChat", "Look", "render"]
