"""The command set every front end offers, and the one place that routes commands to services.

Adapters register one handler per CommandSpec and call `Commands.run`; they never decide what a
command means. Adding a command is one CommandSpec and one branch here.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.core.actions import Verb, parse_action
from bot.core.model import Caller
from bot.core.study import INVALID, StudyService
from bot.core.views import Bullets, Paragraph, Reply, Span, Title, notice

MAX_ARGS = 200  # longer arguments are certainly a mistake (or abuse); refuse them early


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    usage: str
    description: str  # <= 100 characters: Discord's limit for a slash-command description
    group_only: bool = False
    private_only: bool = False


ActionHandler = Callable[[Caller, str], Awaitable[Reply]]
CommandHandler = Callable[[Caller, str], Awaitable[Reply]]


class Commands:
    """Routes a caller's command, button press or free text to the services that own them."""

    def __init__(self, study: StudyService, *, bot_name: str = "StudyBot") -> None:
        self.study = study
        self.bot_name = bot_name
        self._specs: dict[str, CommandSpec] = {}
        self._handlers: dict[str, CommandHandler] = {}
        self._verb_handlers: dict[Verb, ActionHandler] = {}
        self.register(CommandSpec("start", "/start", "Welcome and how to practise"), self._start)
        self.register(CommandSpec("help", "/help", "What I can do"), self._help)
        self.register(
            CommandSpec("question", "/question [topic]", "A question to practise: due reviews first, then new"),
            self._question,
        )
        self.register(CommandSpec("topics", "/topics", "The topics you can practise"), self._topics)
        self.register(CommandSpec("stats", "/stats", "Your progress, retention and streak"), self._stats)
        self.register(
            CommandSpec("newcards", "/newcards [N]", "See or set how many new cards you get a day"), self._newcards
        )

    # --- registration ----------------------------------------------------------------------------

    def register(self, spec: CommandSpec, handler: CommandHandler) -> None:
        """Add a command (later services plug in here)."""
        self._specs[spec.name] = spec
        self._handlers[spec.name] = handler

    def register_verbs(self, handler: ActionHandler, *verbs: Verb) -> None:
        """Route button actions with these verbs to another service."""
        for verb in verbs:
            self._verb_handlers[verb] = handler

    @property
    def specs(self) -> tuple[CommandSpec, ...]:
        return tuple(self._specs.values())

    # --- entry points ----------------------------------------------------------------------------

    async def run(self, caller: Caller, name: str, args: str = "") -> Reply:
        """Run a command by name (without the slash or @botname)."""
        name = name.lower()
        handler = self._handlers.get(name)
        if handler is None:
            return Reply(blocks=(Paragraph.of(f"I don't know /{name[:32]}. Send /help to see what I can do."),))
        spec = self._specs[name]
        if spec.group_only and not caller.chat.is_group:
            return Reply(blocks=(Paragraph.of(f"/{name} works in group chats. Add me to your study group!"),))
        if spec.private_only and caller.chat.is_group:
            return Reply(blocks=(Paragraph.of(f"/{name} works in a private chat with me."),))
        if len(args) > MAX_ARGS:
            return Reply(blocks=(Paragraph.of(f"That is too long for /{name}. Usage: {spec.usage}"),))
        return await handler(caller, args.strip())

    async def press(self, caller: Caller, data: str) -> Reply:
        """A button press carrying `data`; forged or malformed data is refused, changing nothing."""
        action = parse_action(data)
        if action is None:
            return notice(INVALID)
        handler = self._verb_handlers.get(action.verb)
        if handler is not None:
            return await handler(caller, data)
        return await self.study.act(caller, action)

    async def text(self, caller: Caller, text: str) -> Reply | None:
        """Plain text: a free-text answer to the caller's open question, else None."""
        if not text.strip():
            return None
        return await self.study.answer_text(caller, text[:4000])

    # --- parsing helpers -------------------------------------------------------------------------

    @staticmethod
    def split_command(text: str, bot_username: str | None = None) -> tuple[str, str] | None:
        """ "/cmd@bot args" -> ("cmd", "args"); None when the text is not a command for this bot."""
        match = re.match(r"^/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{1,64}))?(?:\s+(.*))?$", text.strip(), re.S)
        if match is None:
            return None
        target = match.group(2)
        if target and bot_username and target.lower() != bot_username.lower():
            return None
        return match.group(1).lower(), (match.group(3) or "").strip()

    # --- built-in commands -----------------------------------------------------------------------

    async def _start(self, caller: Caller, args: str) -> Reply:
        return Reply(
            blocks=(
                Title(f"Hi {caller.display_name}! I'm {self.bot_name}."),
                Paragraph.of(
                    "I help you prepare for deep-learning scientist interviews: "
                    f"{len(self.study.bank)} questions across {len(self.study.bank.topics)} topics, "
                    "scheduled with spaced repetition so you review each one just before you'd forget it."
                ),
                Bullets(
                    (
                        (
                            "Send ",
                            Span("/question", "code"),
                            " to practise. Type your answer, "
                            "pick multiple choice, or reveal the model answer and rate yourself.",
                        ),
                        ("Send ", Span("/topics", "code"), " to focus on one area, e.g. /question transformers."),
                        ("Send ", Span("/help", "code"), " for everything else."),
                    )
                ),
            )
        )

    async def _help(self, caller: Caller, args: str) -> Reply:
        items = tuple((Span(spec.usage, "code"), f" — {spec.description}") for spec in self.specs)
        return Reply(
            blocks=(
                Title("Commands"),
                Bullets(items),
                Paragraph.of(
                    "While a question is open, just type your answer: I'll tell you which key points you "
                    "covered, then show the model answer."
                ),
            )
        )

    async def _question(self, caller: Caller, args: str) -> Reply:
        return await self.study.next_question(caller, args or None)

    async def _topics(self, caller: Caller, args: str) -> Reply:
        return self.study.topics_view()

    async def _stats(self, caller: Caller, args: str) -> Reply:
        return await self.study.stats(caller)

    async def _newcards(self, caller: Caller, args: str) -> Reply:
        return await self.study.set_new_per_day(caller, args)
