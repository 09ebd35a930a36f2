"""`studybot` / `python -m bot`: the command line."""

from __future__ import annotations

import argparse
import sqlite3
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


def _ops(args: argparse.Namespace) -> int:
    from bot.bootstrap import ConfigError, load_settings
    from bot.ops import backup, health

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"studybot: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "health":
        ok, line = health(settings.db_path)
        print(line, file=sys.stdout if ok else sys.stderr)
        return EXIT_OK if ok else EXIT_PROBLEMS
    try:
        print(backup(settings.db_path, args.path))
    except (OSError, RuntimeError, sqlite3.Error) as exc:  # one line, no traceback
        print(f"studybot backup: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="studybot",
        description="StudyBot: practise deep-learning interview questions in Telegram, Discord or this terminal.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("run", help="start the bot: the chat adapters whose tokens are set, else the terminal chat")
    sub.add_parser("chat", help="practise in this terminal (works with piped input too)")
    sub.add_parser("health", help="exit 0 if the database opens and the scheduler ticked recently, else 1")
    backup = sub.add_parser("backup", help="copy the database consistently, even while the bot runs")
    backup.add_argument("path", type=Path, help="the backup file (or a folder to put it in)")
    content = sub.add_parser("content", help="work with the question bank")
    content_sub = content.add_subparsers(dest="content_command", metavar="SUBCOMMAND", required=True)
    check = content_sub.add_parser("check", help="validate decks and print a summary (exit 1 on errors)")
    check.add_argument("path", nargs="?", type=Path, help="a deck file or folder (default: the configured content)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "content":
        return _content_check(args.path)
    if args.command in ("health", "backup"):
        return _ops(args)
    from bot.bootstrap import run_command

    return run_command(args.command or "run")


if __name__ == "__main__":
    sys.exit(main())
