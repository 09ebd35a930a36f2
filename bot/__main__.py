"""`studybot` / `python -m bot`: the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.core.bank import DeckError, QuestionBank

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_CONFIG = 2


def _content_check(path: Path | None) -> int:
    from bot.config import default_content_path

    target = path or default_content_path()
    try:
        bank = QuestionBank.load(target)
    except DeckError as exc:
        print(f"{target}: {len(exc.problems)} problem(s)", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"{target}: OK")
    print(bank.summary())
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="studybot",
        description="StudyBot: practise deep-learning interview questions in Telegram, Discord or this terminal.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("run", help="start the bot: the chat adapters whose tokens are set, else the terminal chat")
    sub.add_parser("chat", help="practise in this terminal (works with piped input too)")
    content = sub.add_parser("content", help="work with the question bank")
    content_sub = content.add_subparsers(dest="content_command", metavar="SUBCOMMAND", required=True)
    check = content_sub.add_parser("check", help="validate decks and print a summary (exit 1 on errors)")
    check.add_argument("path", nargs="?", type=Path, help="a deck file or folder (default: the configured content)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "content":
        return _content_check(args.path)
    from bot.bootstrap import run_command

    return run_command(args.command or "run")


if __name__ == "__main__":
    sys.exit(main())
