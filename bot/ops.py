"""Operations commands: `studybot health`, `studybot backup` and `studybot migrate`.

On SQLite, health and backup use plain sqlite3 (no event loop); on PostgreSQL, health reads the heartbeat
through asyncpg and backup is pg_dump's job (`postgres_backup_hint`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bot.storage.copy import SchemaTooNew, latest_version, mask_password, redact, stored_schema_version
from bot.storage.db import DatabaseUnavailable, migrations, open_database

HEARTBEAT = "daily-tick"
HEALTHY_WITHIN_S = 180  # the tick runs every minute; three missed ticks is unhealthy


def health(db_path: Path, *, now: float | None = None, within_s: int = HEALTHY_WITHIN_S) -> tuple[bool, str]:
    """Whether the database opens and the scheduler ticked recently, with one line saying why."""
    if not db_path.exists():
        return False, f"unhealthy: no database at {db_path} (has the bot started?)"
    try:
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        try:
            row = con.execute("SELECT at FROM heartbeats WHERE name = ?", (HEARTBEAT,)).fetchone()
        finally:
            con.close()
    except sqlite3.Error as exc:
        return False, f"unhealthy: the database cannot be read: {exc}"
    return judge_heartbeat(None if row is None else int(row[0]), now, within_s)


def judge_heartbeat(at_ms: int | None, now: float | None, within_s: int) -> tuple[bool, str]:
    """The verdict on the heartbeat's time (None: there is none), the same on both engines and for the
    running bot's /healthz."""
    if at_ms is None:
        return False, "unhealthy: the scheduler has not ticked yet"
    age = (now if now is not None else time.time()) - at_ms / 1000
    if age > within_s:
        return False, f"unhealthy: the scheduler last ticked {age:.0f} s ago (limit {within_s} s)"
    return True, f"healthy: database opens, scheduler ticked {max(age, 0):.0f} s ago"


SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")  # files SQLite keeps beside a database while it is in use


class BackupOntoLiveDatabase(RuntimeError):
    """`studybot backup` was given the live database (or one of its companion files) as its target."""


def _is_live_file(target: Path, db_path: Path) -> bool:
    """Whether writing `target` would write the database itself or its WAL/SHM/journal: the same path once
    relative parts and symbolic links are resolved, or the same file under another name (a hard link, a
    different letter case on a case-insensitive disk)."""
    database = db_path.resolve()
    live = [database, *(database.with_name(database.name + suffix) for suffix in SQLITE_COMPANIONS)]
    resolved = target.resolve()
    for path in live:
        if resolved == path:
            return True
        try:
            if target.exists() and path.exists() and os.path.samefile(target, path):
                return True
        except OSError:  # unreadable: the comparison of resolved paths above has to do
            continue
    return False


def backup(db_path: Path, target: Path) -> str:
    """A consistent copy of the live database (SQLite's online backup API), safe while the bot runs.
    Refuses (BackupOntoLiveDatabase, before touching anything) a target that is the database itself."""
    if not db_path.exists():
        raise FileNotFoundError(f"no database at {db_path}")
    if target.exists() and target.is_dir():
        target = target / f"studybot-{time.strftime('%Y%m%d-%H%M%S')}.db"
    if _is_live_file(target, db_path):
        raise BackupOntoLiveDatabase(
            f"{target} is the live database itself ({db_path.resolve()}); nothing was written. "
            "Give another file name, or a folder for a dated copy"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    destination = sqlite3.connect(target)
    try:
        source.backup(destination)
        learners = destination.execute("SELECT COUNT(*) FROM learners").fetchone()[0]
        check = destination.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        destination.close()
        source.close()
    if check != "ok":
        raise RuntimeError(f"the copy failed its integrity check: {check}")
    return f"backed up {learners} learner(s) to {target}"


_PG_ERRORS = (OSError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError)


async def health_postgres(
    url: str, *, pgbouncer: bool = False, now: float | None = None, within_s: int = HEALTHY_WITHIN_S
) -> tuple[bool, str]:
    """`health` for a PostgreSQL STUDYBOT_DB: the heartbeat read through asyncpg, the same verdicts."""
    try:
        conn = await asyncpg.connect(url, timeout=5, command_timeout=5, statement_cache_size=0 if pgbouncer else 100)
    except _PG_ERRORS as exc:
        return False, redact(f"unhealthy: the database cannot be read: {_one_line(exc)}", url)
    try:
        if await conn.fetchval("SELECT to_regclass('heartbeats')") is None:
            return False, f"unhealthy: no StudyBot tables in {mask_password(url)} (has the bot started?)"
        at = await conn.fetchval("SELECT at FROM heartbeats WHERE name = $1", HEARTBEAT)
    except _PG_ERRORS as exc:
        return False, redact(f"unhealthy: the database cannot be read: {_one_line(exc)}", url)
    finally:
        with contextlib.suppress(*_PG_ERRORS):
            await conn.close()
    return judge_heartbeat(None if at is None else int(at), now, within_s)


def postgres_backup_hint(url: str) -> str:
    """What `studybot backup` says for a PostgreSQL STUDYBOT_DB (it only copies SQLite files)."""
    return (
        f"STUDYBOT_DB is a PostgreSQL database ({mask_password(url)}); back it up with pg_dump, e.g. "
        '`pg_dump --format=custom --file=studybot.dump "$STUDYBOT_DB"` (restore with pg_restore), '
        'or copy it into a SQLite file with `studybot copy-db "$STUDYBOT_DB" backup.db`'
    )


@dataclass(frozen=True)
class Migrated:
    engine: str
    version: int  # the schema version the database is at now
    applied: int  # how many migrations this run applied


async def migrate_database(location: str, *, pgbouncer: bool = False) -> Migrated:
    """Apply every pending migration to `location` (creating a SQLite file if needed), without starting
    the bot. Raises DatabaseUnavailable, OSError or sqlite3.Error when it cannot be opened, SchemaTooNew
    when a newer StudyBot migrated it."""
    before = await stored_schema_version(location, pgbouncer=pgbouncer) or 0
    db = open_database(location, pgbouncer=pgbouncer)
    latest = latest_version(db.engine)
    if before > latest:
        raise SchemaTooNew(
            f"{mask_password(location)} is at schema version {before}, newer than this StudyBot knows ({latest})"
        )
    try:
        await db.open()
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DatabaseUnavailable(redact(_one_line(exc), location)) from exc
    try:
        version = await db.schema_version()
    finally:
        await db.close()
    applied = sum(1 for number, _name, _sql in migrations(db.engine) if before < number <= version)
    return Migrated(db.engine, version, applied)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
