"""The command set every front end offers, and the one place that routes commands to services.

Adapters register one handler per CommandSpec and call `Commands.run`; they never decide what a
command means. Adding a command is one CommandSpec and one branch here.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from bot.core.actions import Verb, parse_action
from bot.core.competition import CompetitionService
from bot.core.daily import DailyService
from bot.core.decks import DeckService
from bot.core.interview import InterviewService
from bot.core.linking import LinkService
from bot.core.model import Caller, Upload
from bot.core.plan import PlanService
from bot.core.privacy import PrivacyService
from bot.core.progress import ProgressService
from bot.core.study import INVALID, StudyService
from bot.core.throttle import Throttle
from bot.core.views import Bullets, Paragraph, Reply, Span, Title, notice

MAX_ARGS = 200  # longer arguments are certainly a mistake (or abuse); refuse them early
MODES = ("coach", "real", "history")
SLOW_DOWN = "Whoa, that's a lot at once! Please slow down for a few seconds."


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One argument of a command, for platforms with typed options (Discord slash commands).

    Values are joined with spaces, in order, into the args string the command receives.
    """

    name: str
    description: str
    kind: Literal["text", "integer", "attachment"] = "text"  # attachment: a file, passed as an Upload
    required: bool = False
    choices: tuple[str, ...] = ()
    autocomplete: Literal["topic", "zone"] | None = None
    min_value: int | None = None
    max_value: int | None = None


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    usage: str
    description: str  # <= 100 characters: Discord's limit for a slash-command description
    group_only: bool = False
    private_only: bool = False
    options: tuple[OptionSpec, ...] = ()
    admin_aware: bool = False  # the adapter must fill Caller.is_chat_admin in groups
    # Who a reply in a group is for: "personal" (the caller's own practice; Discord answers ephemerally)
    # or "chat" (everyone in it: a quiz, a leaderboard, a group's daily question).
    audience: Literal["personal", "chat"] = "personal"


NoticeProvider = Callable[[Caller], Awaitable[str | None]]
UploadHandler = Callable[[Caller, str, Upload | None], Awaitable[Reply]]


ActionHandler = Callable[[Caller, str], Awaitable[Reply]]
CommandHandler = Callable[[Caller, str], Awaitable[Reply]]


class Commands:
    """Routes a caller's command, button press or free text to the services that own them."""

    def __init__(self, study: StudyService, *, bot_name: str = "StudyBot", throttle: Throttle | None = None) -> None:
        self.study = study
        self.bot_name = bot_name
        self.throttle = throttle or Throttle(study.clock)
        self._specs: dict[str, CommandSpec] = {}
        self._handlers: dict[str, CommandHandler] = {}
        self._upload_handlers: dict[str, UploadHandler] = {}
        self._verb_handlers: dict[Verb, ActionHandler] = {}
        self._notice_providers: list[NoticeProvider] = []
        self._interview: InterviewService | None = None
        self._competition: CompetitionService | None = None
        self._daily: DailyService | None = None
        self._progress: ProgressService | None = None
        self.register(CommandSpec("start", "/start", "Welcome and how to practise"), self._start)
        self.register(CommandSpec("help", "/help", "What I can do"), self._help)
        self.register(
            CommandSpec(
                "question",
                "/question [topic|weak]",
                "A question to practise: due reviews first, then new; weak: from your weakest topic",
                options=(OptionSpec("topic", "Only this topic (see /topics), or weak", autocomplete="topic"),),
            ),
            self._question,
        )
        self.register(CommandSpec("topics", "/topics", "The topics you can practise"), self._topics)
        self.register(CommandSpec("stats", "/stats", "Your progress, retention and streak"), self._stats)
        self.register(
            CommandSpec(
                "newcards",
                "/newcards [N]",
                "See or set how many new cards you get a day",
                options=(OptionSpec("n", "New cards per day (0-50)", kind="integer", min_value=0, max_value=50),),
            ),
            self._newcards,
        )
        self.register(
            CommandSpec(
                "reviews",
                "/reviews [N]",
                "See or set how many due reviews you get a day (the rest wait, most at risk first)",
                options=(OptionSpec("n", "Due reviews per day (10-500)", kind="integer", min_value=10, max_value=500),),
            ),
            self._reviews,
        )
        self.register(
            CommandSpec(
                "streak",
                "/streak [on|off]",
                "Show or hide your streak (one missed day a week is forgiven)",
                options=(OptionSpec("show", "on or off", choices=("on", "off")),),
            ),
            self._streak,
        )

    # --- services that plug in --------------------------------------------------------------------

    def attach_daily(self, daily: DailyService) -> None:
        """/daily, and the welcome-back notice when a paused subscription's chat returns."""
        self._daily = daily
        self.register(
            CommandSpec(
                "daily",
                "/daily [HH:MM [zone] [always] | quiet HH:MM-HH:MM | off]",
                "A question every day at your local time, skipped on days you practised (groups: admins)",
                options=(
                    OptionSpec("time", "Local time HH:MM, off, or quiet 22:00-07:00 (no pushes then)"),
                    OptionSpec("zone", "Time zone, e.g. Europe/Berlin, Berlin or UTC+5:30", autocomplete="zone"),
                    OptionSpec("always", "Also on days you have already practised", choices=("always",)),
                ),
                admin_aware=True,
                audience="chat",
            ),
            daily.command,
        )
        self.register_verbs(daily.press, Verb.DAILY_CHECK_IN)
        self.add_notice_provider(daily.welcome_back)

    def attach_competition(self, competition: CompetitionService) -> None:
        """/quiz, /stopquiz, /leaderboard and the quiz-answer buttons; /question waits while a solo quiz runs."""
        self._competition = competition
        self.register(
            CommandSpec(
                "quiz",
                "/quiz [questions] [topic|weak] [seconds]",
                "Start a quiz match in this chat (solo in a private chat); weak: this chat's weakest topics",
                options=(
                    OptionSpec("questions", "Number of questions (1-30)", kind="integer", min_value=1, max_value=30),
                    OptionSpec("topic", "Only this topic, or weak", autocomplete="topic"),
                    OptionSpec("seconds", "Seconds per question (10-120)", kind="integer", min_value=10, max_value=120),
                ),
                audience="chat",
            ),
            competition.start,
        )
        self.register(
            CommandSpec(
                "stopquiz",
                "/stopquiz",
                "End the running quiz (its starter or an admin)",
                admin_aware=True,
                audience="chat",
            ),
            competition.stop,
        )
        self.register(
            CommandSpec(
                "leaderboard",
                "/leaderboard [week|all]",
                "This chat's quiz leaderboard: this week or all time",
                options=(OptionSpec("period", "week or all", choices=("week", "all")),),
                audience="chat",
            ),
            competition.leaderboard,
        )
        self.register_verbs(competition.press, Verb.QUIZ_OPTION)

    def attach_plan(self, plan: PlanService) -> None:
        """/plan: a plan to the interview date."""
        self.register(
            CommandSpec(
                "plan",
                "/plan [YYYY-MM-DD [topics] | off]",
                "A plan to your interview date: new cards a day, countdown, on track or not",
                options=(
                    OptionSpec("date", "Interview date YYYY-MM-DD, or off to clear the plan"),
                    OptionSpec("topics", "Only these topics, e.g. transformers llm (default: all)"),
                ),
            ),
            plan.command,
        )

    def attach_privacy(self, privacy: PrivacyService) -> None:
        """/export and /forget."""
        self.register(
            CommandSpec(
                "export",
                "/export [anki [DECK]]",
                "Download everything I store about you (JSON), or the question bank (or a deck) as an Anki deck",
                private_only=True,
                options=(
                    OptionSpec(
                        "format", "json: your data (the default); anki: the question bank", choices=("json", "anki")
                    ),
                    OptionSpec("deck", "With anki: one deck (see /deck) instead of the whole bank"),
                ),
            ),
            privacy.export,
        )
        self.register(
            CommandSpec(
                "forget", "/forget", "Delete all your data, on every platform (asks to confirm)", private_only=True
            ),
            privacy.forget,
        )
        self.register_verbs(privacy.press, Verb.FORGET)

    def attach_links(self, links: LinkService) -> None:
        """/link and /unlink: one learner across Telegram, Discord and the terminal."""
        self.register(
            CommandSpec(
                "link",
                "/link [CODE]",
                "Link your accounts: a code to use on your other account, or use one here",
                options=(OptionSpec("code", "The code /link gave you on your other account"),),
            ),
            links.link,
        )
        self.register(
            CommandSpec(
                "unlink",
                "/unlink telegram|discord|terminal",
                "Detach one linked account (it keeps a copy of your history)",
                options=(
                    OptionSpec(
                        "account", "The account to detach", required=True, choices=("telegram", "discord", "terminal")
                    ),
                ),
            ),
            links.unlink,
        )
        self.add_notice_provider(links.notice_for)

    def attach_decks(self, decks: DeckService) -> None:
        """/deck: the decks this chat draws from, imports (a file sent with the command) and removal."""
        self.register_upload(
            CommandSpec(
                "deck",
                "/deck [use NAMES | import [NAME] | remove NAME]",
                "The decks this chat practises from; import your own (CSV, Anki .apkg, YAML)",
                options=(
                    OptionSpec(
                        "action",
                        "list (the default), use, import or remove",
                        choices=("list", "use", "import", "remove"),
                    ),
                    OptionSpec("names", "Deck name(s), e.g. bank,my-notes; for import, the new deck's name"),
                    OptionSpec("file", "The deck file to import (.csv, .apkg, .yaml)", kind="attachment"),
                ),
                admin_aware=True,
                audience="chat",
            ),
            decks.command,
        )
        self.register_verbs(decks.press, Verb.DECK_REMOVE)

    def attach_progress(self, progress: ProgressService) -> None:
        """/stats also draws the learner's progress: a picture sent with the text."""
        self._progress = progress

    def attach_interview(self, interview: InterviewService) -> None:
        """/interview, /skip, /end and the interview's buttons; while an interview runs in a chat, typed
        text answers it and /question waits."""
        self._interview = interview
        self.register(
            CommandSpec(
                "interview",
                "/interview [coach|real] [topic|mixed] [N]",
                "A mock interview: N questions (3-10) with follow-ups and a report; /interview history",
                options=(
                    OptionSpec("mode", "coach (feedback after each answer), real (timed) or history", choices=MODES),
                    OptionSpec("topic", "One topic, or mixed (the default)", autocomplete="topic"),
                    OptionSpec("questions", "Number of questions (3-10)", kind="integer", min_value=3, max_value=10),
                ),
            ),
            interview.command,
        )
        self.register(
            CommandSpec("skip", "/skip", "Pass the open question (in an interview: scored 0)"), interview.skip
        )
        self.register(CommandSpec("end", "/end", "End the running interview and see its report"), interview.end)
        self.register_verbs(interview.press, Verb.INTERVIEW_SKIP, Verb.INTERVIEW_END)

    # --- registration ----------------------------------------------------------------------------

    def register(self, spec: CommandSpec, handler: CommandHandler) -> None:
        """Add a command (later services plug in here)."""
        self._specs[spec.name] = spec
        self._handlers[spec.name] = handler

    def register_upload(self, spec: CommandSpec, handler: UploadHandler) -> None:
        """A command that may come with a file (`Commands.run(..., upload=...)`)."""
        self._specs[spec.name] = spec
        self._upload_handlers[spec.name] = handler

        async def without_file(caller: Caller, args: str) -> Reply:
            return await handler(caller, args, None)

        self._handlers[spec.name] = without_file

    def takes_upload(self, name: str) -> bool:
        """Whether /name reads a file sent with it (adapters pass documents and attachments only then)."""
        return name.lower() in self._upload_handlers

    def register_verbs(self, handler: ActionHandler, *verbs: Verb) -> None:
        """Route button actions with these verbs to another service."""
        for verb in verbs:
            self._verb_handlers[verb] = handler

    def add_notice_provider(self, provider: NoticeProvider) -> None:
        """Something the caller should hear about whatever they do (e.g. a paused daily question)."""
        self._notice_providers.append(provider)

    async def opening(self, caller: Caller) -> Reply | None:
        """What a chat that starts by itself (the terminal) opens with: today's daily question when it is
        due there, else None."""
        return await self._daily.opening(caller) if self._daily is not None else None

    async def pending_notice(self, caller: Caller) -> str | None:
        """A one-off message for this caller (adapters send it alongside their reply), or None."""
        notes = [note for provider in self._notice_providers if (note := await provider(caller))]
        return "\n".join(notes) if notes else None

    def spec(self, name: str) -> CommandSpec | None:
        return self._specs.get(name.lower())

    @property
    def specs(self) -> tuple[CommandSpec, ...]:
        return tuple(self._specs.values())

    # --- entry points ----------------------------------------------------------------------------

    def _slow_down(self, caller: Caller) -> Reply | None:
        allowed, first_refusal = self.throttle.check(caller.identity)
        if allowed:
            return None
        if first_refusal:
            return Reply(blocks=(Paragraph.of(SLOW_DOWN),), notice=SLOW_DOWN)
        return Reply(notice=SLOW_DOWN)  # already told: a notice only, nothing posted in the chat

    async def run(self, caller: Caller, name: str, args: str = "", upload: Upload | None = None) -> Reply:
        """Run a command by name (without the slash or @botname); `upload`: a file sent with it."""
        if (refusal := self._slow_down(caller)) is not None:
            return refusal
        name = name.lower()
        handler = self._handlers.get(name)
        if handler is None:
            return Reply(blocks=(Paragraph.of(f"I don't know /{name[:32]}. Send /help to see what I can do."),))
        spec = self._specs[name]
        if spec.group_only and not caller.chat.is_group:
            return Reply(blocks=(Paragraph.of(f"/{name} works in group chats. Add me to your study group!"),))
        if spec.private_only and caller.chat.is_group:
            return Reply(blocks=(Paragraph.of(f"/{name} works in a private chat with me, to keep your data yours."),))
        if len(args) > MAX_ARGS:
            return Reply(blocks=(Paragraph.of(f"That is too long for /{name}. Usage: {spec.usage}"),))
        if upload is not None and name in self._upload_handlers:
            return await self._upload_handlers[name](caller, args.strip(), upload)
        return await handler(caller, args.strip())

    async def press(self, caller: Caller, data: str) -> Reply:
        """A button press carrying `data`; forged or malformed data is refused, changing nothing."""
        if self._slow_down(caller) is not None:
            return Reply(notice=SLOW_DOWN)
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
        if (refusal := self._slow_down(caller)) is not None:
            return refusal
        if self._interview is not None and (reply := await self._interview.answer_text(caller, text[:4000])):
            return reply
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
        if args.lower() == "interview" and self._interview is not None:  # Telegram's deep link from a group
            return await self._interview.command(caller, "")
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
        blocks: tuple[Title | Bullets | Paragraph, ...] = (
            Title("Commands"),
            Bullets(items),
            Paragraph.of(
                "While a question is open, just type your answer: I'll tell you which key points you "
                "covered, then show the model answer."
            ),
        )
        if caller.chat.typed_keys:
            blocks += (
                Title("Keys"),
                Bullets(
                    (
                        (
                            "Press a button by typing its key: ",
                            Span("1", "code"),
                            " for ",
                            Span("[1]", "code"),
                            ", a letter for an option. A rating also answers to its name, such as ",
                            Span("good", "code"),
                            ". The open question's keys stay valid until it closes, whatever you type between.",
                        ),
                        (
                            "While a quiz runs, its letters answer the quiz and ",
                            Span("/question", "code"),
                            " waits: finish the quiz or end it with ",
                            Span("/stopquiz", "code"),
                            " first.",
                        ),
                        ("↑ and ↓ bring back what you typed before; ← and → move along the line.",),
                        (
                            Span("/quit", "code"),
                            " or Ctrl-D leaves; Ctrl-C leaves at once. Every answer is saved as you go.",
                        ),
                    )
                ),
            )
        return Reply(blocks=blocks)

    async def _question(self, caller: Caller, args: str) -> Reply:
        if (
            self._competition is not None
            and caller.chat.typed_keys
            and await self._competition.store.running_match(caller.chat.key) is not None
        ):
            return Reply(
                blocks=(
                    Paragraph.of(
                        "Your quiz is still running: answer its question first, or end it with /stopquiz. "
                        "Then /question picks up where you left off."
                    ),
                )
            )
        if self._interview is not None:
            refusal, learner = await self._interview.busy(caller)
            if refusal is not None:
                return refusal
            return await self.study.next_question(caller, args or None, learner=learner)
        return await self.study.next_question(caller, args or None)

    async def _topics(self, caller: Caller, args: str) -> Reply:
        return self.study.topics_view(await self.study.bank.pool_for(caller.chat.key))

    async def _stats(self, caller: Caller, args: str) -> Reply:
        reply = await self.study.stats(caller)
        if self._progress is None:
            return reply
        return await self._progress.illustrate(caller, reply)

    async def _streak(self, caller: Caller, args: str) -> Reply:
        return await self.study.set_show_streak(caller, args)

    async def _reviews(self, caller: Caller, args: str) -> Reply:
        return await self.study.set_reviews_per_day(caller, args)

    async def _newcards(self, caller: Caller, args: str) -> Reply:
        return await self.study.set_new_per_day(caller, args)
