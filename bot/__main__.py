"""`studybot` / `python -m bot`: the command line."""

from __future__ import annotations

import argparse
import asyncio
import re
import sqlite3
import sys
from pathlib import Path

from bot.core.bank import DeckError, QuestionBank
from bot.core.model import Card

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_CONFIG = 2


def _content_check(path: Path | None) -> int:
    """`studybot content check [PATH]`: validate PATH, else the configured decks (STUDYBOT_CONTENT, else the
    shipped ones)."""
    if path is None:
        from bot.bootstrap import ConfigError, load_settings

        try:
            path = load_settings().content_path
        except ConfigError as exc:
            print(f"studybot: configuration error: {exc}", file=sys.stderr)
            return EXIT_CONFIG
    target = path
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
    import asyncio

    from bot.bootstrap import ConfigError, load_settings
    from bot.ops import backup, health, health_postgres, postgres_backup_hint

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"studybot: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "health":
        if settings.db_is_postgres:
            ok, line = asyncio.run(health_postgres(settings.db, pgbouncer=settings.db_pgbouncer))
        else:
            ok, line = health(settings.db_path)
        print(line, file=sys.stdout if ok else sys.stderr)
        return EXIT_OK if ok else EXIT_PROBLEMS
    if settings.db_is_postgres:
        print(f"studybot backup: {postgres_backup_hint(settings.db)}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        print(backup(settings.db_path, args.path))
    except (OSError, RuntimeError, sqlite3.Error) as exc:  # one line, no traceback
        print(f"studybot backup: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    return EXIT_OK


def _one_line(exc: BaseException, *locations: str) -> str:
    from bot.storage.copy import redact

    return redact(" ".join(str(exc).split()) or type(exc).__name__, *locations)


def _migrate() -> int:
    """`studybot migrate`: bring STUDYBOT_DB to this version's schema without starting the bot."""
    import asyncio

    import asyncpg

    from bot.bootstrap import ConfigError, load_settings
    from bot.ops import migrate_database
    from bot.storage.copy import CopyError
    from bot.storage.db import DatabaseUnavailable

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"studybot: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        done = asyncio.run(migrate_database(settings.db, pgbouncer=settings.db_pgbouncer))
    except CopyError as exc:
        print(f"studybot migrate: {_one_line(exc, settings.db)}", file=sys.stderr)
        return EXIT_PROBLEMS
    except (DatabaseUnavailable, OSError, sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(
            f"studybot migrate: cannot open the database {settings.db_display()}: {_one_line(exc, settings.db)}",
            file=sys.stderr,
        )
        return EXIT_PROBLEMS
    print(f"engine: {done.engine}")
    print(f"database: {settings.db_display()}")
    print(f"schema version {done.version} (applied {done.applied})")
    return EXIT_OK


def _copy_db(args: argparse.Namespace) -> int:
    """`studybot copy-db SRC DST [--force] [--batch N]`: every row of one database into another."""
    import asyncio

    import asyncpg

    from bot.storage.copy import CopyError, ProgressBar, copy_database, mask_password
    from bot.storage.db import DatabaseUnavailable

    src, dst = args.source, args.destination
    print(f"copying {mask_password(src)} -> {mask_password(dst)}", file=sys.stderr)
    try:
        report = asyncio.run(
            copy_database(
                src, dst, force=args.force, batch=args.batch, progress=ProgressBar(sys.stderr), pgbouncer=args.pgbouncer
            )
        )
    except CopyError as exc:
        print(f"studybot copy-db: {_one_line(exc, src, dst)}", file=sys.stderr)
        return EXIT_PROBLEMS
    except KeyboardInterrupt:
        print(
            f"\nstudybot copy-db: interrupted; {mask_password(dst)} may hold part of the copy "
            "(run again with --force to replace it)",
            file=sys.stderr,
        )
        return 130
    except (DatabaseUnavailable, OSError, sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(f"studybot copy-db: {_one_line(exc, src, dst)}", file=sys.stderr)
        return EXIT_PROBLEMS
    print(report.summary())
    if report.mismatches:
        tables = "; ".join(table.problem for table in report.mismatches)
        print(f"studybot copy-db: the copy does not match the source: {tables}", file=sys.stderr)
        return EXIT_PROBLEMS
    return EXIT_OK


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _grade(card_id: str, as_json: bool) -> int:
    """`studybot grade CARD_ID [--json]`: judge an answer read from stdin, as the bot would."""
    import asyncio
    import difflib
    import json

    from bot.bootstrap import ConfigError, build_grader, load_bank, load_settings
    from bot.core.grading import Judgement, LexicalGrader
    from bot.core.llm_grading import ModelGrader
    from bot.core.ports import SystemClock

    try:
        settings = load_settings()
        bank = load_bank(settings.content_path)
    except ConfigError as exc:
        print(f"studybot: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    card = bank.card(card_id)
    if card is None:
        close = difflib.get_close_matches(card_id, [c.id for c in bank.cards], n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else "; list the ids with `studybot content check`"
        print(f"studybot grade: no card {card_id!r}{hint}", file=sys.stderr)
        return EXIT_CONFIG
    answer = sys.stdin.read()
    if not answer.strip():
        print("studybot grade: no answer on stdin (pipe one in: echo 'my answer' | studybot grade ID)", file=sys.stderr)
        return EXIT_CONFIG
    offline = LexicalGrader(bank.cards, bank.glossary)
    refused = offline.non_answer(card, answer)
    if refused is not None:
        judgement = Judgement(card.id, "lexical", card.key_points, ())
    else:
        grader = build_grader(settings, bank, SystemClock())

        async def judge() -> Judgement:
            try:
                return await grader.judge(card, answer)
            finally:
                if isinstance(grader, ModelGrader):
                    await grader.close()

        judgement = asyncio.run(judge())
    if as_json:
        data = judgement.as_dict()
        data["non_answer"] = refused
        print(json.dumps(data, ensure_ascii=False))
        return EXIT_OK
    print(f"card: {card.id} ({card.question})")
    if refused is not None:
        print(f"not taken as an answer: {refused}; the bot would leave the question open")
        return EXIT_OK
    print(f"grader: {judgement.grader}")
    print(
        f"score: {judgement.score:.2f} ({len(judgement.covered)} of {len(card.key_points)} key points)"
        f" · suggested rating: {judgement.suggested_rating.label}"
    )
    if judgement.off_topic:
        print("off topic: the answer shares too little of this card's vocabulary, so it earns nothing")
    for n, point in enumerate(card.key_points):
        mark = "✓" if n in judgement.covered else "✗"
        accepts = f"  (also accepts: {'; '.join(point.accept)})" if point.accept else ""
        print(f"  {mark} [{n}] {point.text}{accepts}")
    for index, quote in judgement.evidence:
        print(f"  evidence for [{index}]: “{quote}”")
    for misconception in judgement.misconceptions:
        print(f"misconception: {misconception}")
    if judgement.feedback:
        print(f"feedback: {judgement.feedback}")
    if judgement.follow_up:
        print(f"follow-up: {judgement.follow_up}")
    return EXIT_OK


def _deck_export(name: str, target: Path, force: bool) -> int:
    """`studybot deck export NAME --anki FILE [--force]`: a shipped deck (or `all`) as an Anki package."""
    from bot.anki import build_apkg
    from bot.bootstrap import ConfigError, load_bank, load_settings
    from bot.core.privacy import BANK_DECK_TITLE

    try:
        bank = load_bank(load_settings().content_path)
    except ConfigError as exc:
        print(f"studybot: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    wanted = name.strip().lower()
    topics = {topic.slug: topic.name for topic in bank.topics}
    if wanted == "all":
        cards, title = bank.cards, BANK_DECK_TITLE
    else:
        deck = next((d for d in bank.decks if d.slug == wanted), None)
        if deck is not None:
            cards, title = tuple(c for c in bank.cards if c.deck == deck.slug), f"StudyBot · {deck.title}"
        else:  # an imported deck (the operator's first, else a chat's) from the database
            found = asyncio.run(_imported_deck(wanted))
            if isinstance(found, int):
                return found
            if found is None:
                names = ", ".join(["all", *(d.slug for d in bank.decks)])
                print(
                    f"studybot deck export: no deck {name!r}; the shipped decks are: {names} "
                    "(`studybot deck list` shows the imported ones)",
                    file=sys.stderr,
                )
                return EXIT_CONFIG
            cards, title, topics = found
    if target.is_dir():
        target = target / f"studybot-{wanted}.apkg"
    elif target.suffix.lower() != ".apkg":
        target = target.with_name(target.name + ".apkg")
    content = build_apkg(cards, title, topics)
    try:
        # "xb" (create, never replace) unless --force, so even a file that appeared meanwhile is kept
        with target.open("wb" if force else "xb") as file:
            file.write(content)
    except FileExistsError:
        print(f"studybot deck export: {target} already exists (add --force to replace it)", file=sys.stderr)
        return EXIT_PROBLEMS
    except OSError as exc:
        print(f"studybot deck export: cannot write {target}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"wrote {len(cards)} cards to {target} (deck {title!r}); in Anki: File > Import")
    return EXIT_OK


async def _imported_deck(name: str) -> tuple[tuple[Card, ...], str, dict[str, str]] | int | None:
    """An imported deck's cards, title and topic names (the operator's deck of that name, else a chat's), None
    when there is none, or an exit code when the database cannot be opened."""
    from bot.bootstrap import ConfigError, build_app, load_settings

    try:
        app = await build_app(load_settings())
    except ConfigError as exc:
        print(f"studybot: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        found = next((d for d in app.library.all_decks() if d.name == name and d.cards), None)
        if found is None:
            return None
        return found.cards, found.title, {topic.slug: topic.name for topic in found.topics}
    finally:
        await app.close()


def _deck_database(args: argparse.Namespace) -> int:
    """`studybot deck import|list|remove`: decks in the database (the operator's are shared by every chat)."""
    data = b""
    if args.deck_command == "import":
        source: Path = args.file
        if not source.is_file():
            print(f"studybot deck import: no such file: {source}", file=sys.stderr)
            return EXIT_CONFIG
        size = source.stat().st_size
        if size > args.max_mb * 1024 * 1024:
            print(
                f"studybot deck import: {source} is {size / 1024 / 1024:.1f} MB; the limit is "
                f"{args.max_mb:g} MB (--max-mb raises it)",
                file=sys.stderr,
            )
            return EXIT_PROBLEMS
        data = source.read_bytes()
    return asyncio.run(_deck_database_async(args, data))


async def _deck_database_async(args: argparse.Namespace, data: bytes) -> int:
    from bot.bootstrap import ConfigError, build_app, load_settings
    from bot.core.decks import DeckFileError, summary_blocks
    from bot.core.views import render_plain

    command = args.deck_command
    try:
        app = await build_app(load_settings())
    except ConfigError as exc:
        print(f"studybot: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        assert app.decks is not None
        library, service = app.library, app.decks
        if command == "import":
            source = args.file
            name, problem = service.check_name(args.name or source.stem, "")
            if problem:
                print(f"studybot deck import: {problem}", file=sys.stderr)
                return EXIT_CONFIG
            try:
                outcome = await service.import_file(
                    owner="",
                    name=name,
                    filename=source.name,
                    data=data,
                    imported_by="the operator",
                    skip_invalid=args.skip_invalid,
                    max_bytes=int(args.max_mb * 1024 * 1024),
                )
            except DeckFileError as exc:
                print(f"studybot deck import: nothing was imported from {source}:", file=sys.stderr)
                for line in exc.problems:
                    print(f"  {line}", file=sys.stderr)
                return EXIT_PROBLEMS
            print(render_plain(summary_blocks(outcome)))
            print(f"Every chat can now choose it with /deck use {name}.")
            return EXIT_OK
        if command == "list":
            decks = library.all_decks()
            print(f"bank: the shipped question bank, {len(library.shipped)} cards (parts: {', '.join(library.parts)})")
            for deck in decks:
                where = "every chat (the operator's)" if deck.owner == "" else f"chat {deck.owner}"
                print(
                    f"{deck.name}: {deck.title}, {len(deck.cards)} cards ({len(deck.retired)} retired, "
                    f"{deck.quiz_cards} with a quiz); {where}; updated {deck.updated_at:%Y-%m-%d %H:%M} UTC"
                )
            return EXIT_OK
        # remove: the operator's deck of that name (a chat's own decks are removed in that chat)
        found = library.shared_deck(args.name.strip().lower())
        if found is None:
            print(f"studybot deck remove: no shared deck {args.name!r} (see `studybot deck list`)", file=sys.stderr)
            return EXIT_CONFIG
        if not args.yes:
            print(
                f"studybot deck remove: this deletes {found.name} ({len(found.cards) + len(found.retired)} cards) and "
                "every review of its cards; add --yes to do it",
                file=sys.stderr,
            )
            return EXIT_PROBLEMS
        reviews = await app.store.delete_deck(found.id)
        print(f"removed {found.name} and {reviews} reviews of its cards")
        return EXIT_OK
    finally:
        await app.close()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("studybot")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown (not installed)"


def _profile_name(value: str) -> str:
    """A terminal profile's name: 1-32 letters, digits, dots, hyphens or underscores."""
    name = value.strip()
    if not re.fullmatch(r"[\w.-]{1,32}", name):
        raise argparse.ArgumentTypeError("a profile name is 1-32 letters, digits, '.', '-' or '_'")
    return name


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="studybot",
        description="StudyBot: practise deep-learning interview questions in Telegram, Discord or this terminal.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("run", help="start the bot: the chat adapters whose tokens are set, else the terminal chat")
    chat = sub.add_parser("chat", help="practise in this terminal (works with piped input too)")
    chat.add_argument(
        "--as",
        dest="profile",
        metavar="NAME",
        type=_profile_name,
        help="practise as another local profile (default: your operating-system user name)",
    )
    sub.add_parser("health", help="exit 0 if the database opens and the scheduler ticked recently, else 1")
    backup = sub.add_parser(
        "backup", help="copy the SQLite database consistently, even while the bot runs (PostgreSQL: use pg_dump)"
    )
    backup.add_argument("path", type=Path, help="the backup file (or a folder to put it in)")
    sub.add_parser(
        "migrate",
        help="apply pending schema migrations to STUDYBOT_DB without starting the bot",
        description="Brings STUDYBOT_DB (a SQLite file, created if missing, or a postgresql:// URL) to this "
        "version's schema and prints the engine, the database (password hidden) and the schema version. "
        "Exit 1 when the database cannot be opened or a newer StudyBot migrated it.",
    )
    copy_db = sub.add_parser(
        "copy-db",
        help="copy every row from one database to another (SQLite <-> PostgreSQL)",
        description="Copies every table from SRC to DST, parents first, in batches, keeping ids; both are "
        "migrated to this version's schema first. A DST holding any row is refused unless --force. Row counts "
        "and contents are verified at the end (exit 1 on a mismatch). Stop the bot first. A PostgreSQL "
        "password can come from PGPASSWORD or ~/.pgpass instead of the URL; it is never printed.",
    )
    copy_db.add_argument("source", metavar="SRC", help="a SQLite file or a postgresql:// URL to copy from")
    copy_db.add_argument("destination", metavar="DST", help="a SQLite file (created if missing) or postgresql:// URL")
    copy_db.add_argument("--force", action="store_true", help="empty DST's tables first if it holds any rows")
    copy_db.add_argument(
        "--batch", type=_positive, default=1000, metavar="N", help="rows read and written per batch (default 1000)"
    )
    copy_db.add_argument(
        "--pgbouncer", action="store_true", help="the PostgreSQL URLs go through PgBouncer (no statement cache)"
    )
    content = sub.add_parser("content", help="work with the question bank")
    content_sub = content.add_subparsers(dest="content_command", metavar="SUBCOMMAND", required=True)
    check = content_sub.add_parser("check", help="validate decks and print a summary (exit 1 on errors)")
    check.add_argument("path", nargs="?", type=Path, help="a deck file or folder (default: the configured content)")
    deck = sub.add_parser("deck", help="work with decks: import your own, list, remove, export to Anki")
    deck.set_defaults(print_deck_help=deck.print_help)  # `studybot deck` alone shows what it can do
    deck_sub = deck.add_subparsers(dest="deck_command", metavar="SUBCOMMAND")
    export = deck_sub.add_parser(
        "export",
        help="write a deck (or all of them) as an Anki package (.apkg)",
        description="Writes the cards of a shipped deck, or of the whole bank with `all`, to FILE as an Anki "
        "package: question on the front; answer, key points and follow-ups on the back; tagged by topic. "
        "Importing a newer export in Anki (File > Import) updates the same notes. An existing FILE is kept "
        "unless --force. Exit 2 for an unknown deck.",
    )
    export.add_argument("name", metavar="NAME", help="a deck's name (see `studybot content check`), or all")
    export.add_argument(
        "--anki", dest="file", type=Path, required=True, metavar="FILE", help="the .apkg to write (or a folder)"
    )
    export.add_argument("--force", action="store_true", help="replace FILE if it exists")
    deck_import = deck_sub.add_parser(
        "import",
        help="import a deck file (CSV, Anki .apkg, YAML) that every chat can use",
        description="Reads FILE (a CSV with a header row: question,answer and optionally id, topic, key_points, "
        "correct, distractors, explanation, difficulty; an Anki .apkg; or a YAML deck in the shipped schema) into "
        "the database as a deck every chat can choose with /deck use NAME. Importing the same NAME again updates it "
        "in place: cards matched by their id (or Anki note id, else question) keep their history, new ones are "
        "added, missing ones are retired. An invalid file imports nothing (exit 1) unless --skip-invalid.",
    )
    deck_import.add_argument("file", metavar="FILE", type=Path, help="the .csv, .apkg or .yaml file")
    deck_import.add_argument("--name", help="the deck's name (default: from the file name)")
    deck_import.add_argument("--skip-invalid", action="store_true", help="import the valid rows, list the others")
    deck_import.add_argument("--max-mb", type=float, default=20.0, help="the largest file accepted, in MB (default 20)")
    deck_sub.add_parser("list", help="list the decks in the database (the shared ones and every chat's own)")
    deck_remove = deck_sub.add_parser("remove", help="delete a shared deck and every review of its cards")
    deck_remove.add_argument("name", metavar="NAME")
    deck_remove.add_argument("--yes", action="store_true", help="really delete it")
    grade = sub.add_parser(
        "grade",
        help="grade an answer read from stdin against a card's key points, as the bot would",
        description="Reads an answer on stdin and prints each key point covered or not, the score and the grader "
        "that decided (the model grader when STUDYBOT_LLM_URL is set, else the offline one). Exit 2 for an "
        "unknown card id or an empty answer.",
    )
    grade.add_argument("card_id", metavar="CARD_ID", help="the card's id, e.g. backpropagation-algorithm")
    grade.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "content":
        return _content_check(args.path)
    if args.command == "deck":
        if args.deck_command is None:
            args.print_deck_help()
            return EXIT_OK
        if args.deck_command == "export":
            return _deck_export(args.name, args.file, args.force)
        return _deck_database(args)
    if args.command == "grade":
        return _grade(args.card_id, args.json)
    if args.command in ("health", "backup"):
        return _ops(args)
    if args.command == "migrate":
        return _migrate()
    if args.command == "copy-db":
        return _copy_db(args)
    from bot.bootstrap import run_command

    return run_command(args.command or "run", profile=getattr(args, "profile", None))


if __name__ == "__main__":
    sys.exit(main())
