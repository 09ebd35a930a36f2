"""The one small layer between the repositories and a database engine: SQLite (aiosqlite) or PostgreSQL (asyncpg).

Repositories write their SQL once, with `?` placeholders; PostgreSQL gets them rewritten to `$1, $2, ...`.
A statement is one round trip (`trips` counts them, BEGIN and COMMIT included), so an action's cost in
round trips is visible and testable. Either a single statement runs on its own (it is its own
transaction), or several run inside `transaction()`: BEGIN ... COMMIT, rolled back on any error or
cancellation.

Schema changes are numbered files in migrations/<engine>/, the same numbers on both engines, applied
in order at open: SQLite tracks them with PRAGMA user_version under BEGIN IMMEDIATE; PostgreSQL with a
schema_migrations table under an advisory lock, so two processes starting at once apply each one once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import aiosqlite
import asyncpg

MIGRATION_LOCK = 0x57D1_B07  # the advisory lock key PostgreSQL migrations run under


class Row(Protocol):
    """sqlite3.Row and asyncpg.Record alike: by column name or position."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def keys(self) -> Any: ...


class DatabaseUnavailable(Exception):
    """The database could not be reached or dropped the connection (PostgreSQL restarting, network)."""


def is_postgres_url(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def migrations(engine: str) -> list[tuple[int, str, str]]:
    """(number, name, sql) of every migration for `engine` shipped with the package, in order."""
    found = []
    folder = resources.files("bot.storage") / "migrations" / engine
    for entry in folder.iterdir():
        match = re.match(r"^(\d+)_.*\.sql$", entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def sql_statements(script: str) -> list[str]:
    """A migration script as single statements (trigger bodies kept whole), for SQLite."""
    found: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            found.append(buffer.strip())
            buffer = ""
    rest = [line for line in buffer.splitlines() if line.strip() and not line.strip().startswith("--")]
    if rest:
        raise ValueError(f"a migration ends with an incomplete statement: {rest[0][:60]!r}")
    return found


@functools.lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """`?` placeholders as PostgreSQL's `$1, $2, ...` (our SQL has no `?` inside string literals)."""
    counter = iter(range(1, 10_000))
    return re.sub(r"\?", lambda _m: f"${next(counter)}", sql)


class Tx(ABC):
    """Statements inside one transaction (or, from Database itself, each on its own)."""

    @abstractmethod
    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        """Run one statement and return its rows (a write with RETURNING returns what it wrote)."""

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    @abstractmethod
    async def execute(self, sql: str, *args: Any) -> None: ...

    @abstractmethod
    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement run for each parameter row, in one round trip."""


class Database(Tx):
    """An open database: single statements, transactions, migrations and a round-trip counter."""

    engine: str
    trips: int

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    def transaction(self) -> contextlib.AbstractAsyncContextManager[Tx]: ...

    @abstractmethod
    async def schema_version(self) -> int: ...

    @abstractmethod
    async def migrate(self) -> int:
        """Apply every migration newer than the database; return the resulting version."""

    @abstractmethod
    async def tables(self) -> list[str]: ...


# --- SQLite --------------------------------------------------------------------------------------


class _SqliteTx(Tx):
    def __init__(self, owner: SqliteDatabase, conn: aiosqlite.Connection) -> None:
        self.owner = owner
        self.conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        self.owner.trips += 1
        return list(await self.conn.execute_fetchall(sql, args))

    async def execute(self, sql: str, *args: Any) -> None:
        self.owner.trips += 1
        await self.conn.execute_fetchall(sql, args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.owner.trips += 1
            await self.conn.executemany(sql, rows)


class SqliteDatabase(Database):
    """One aiosqlite connection in WAL mode; a lock keeps one coroutine's transaction whole.

    Each statement is one hop to aiosqlite's worker thread and back (one "round trip").
    """

    engine = "sqlite"

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self.trips = 0
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("the database is not open")
        return self._conn

    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            conn.row_factory = aiosqlite.Row
            await conn.execute("PRAGMA busy_timeout=5000")
            await self._switch_to_wal(conn)
            for pragma in ("foreign_keys=ON", "synchronous=NORMAL"):
                await conn.execute(f"PRAGMA {pragma}")
            self._conn = conn
            await self.migrate()
        except BaseException:
            self._conn = None
            await conn.close()
            raise

    @staticmethod
    async def _switch_to_wal(conn: aiosqlite.Connection, attempts: int = 100) -> None:
        """PRAGMA journal_mode=WAL, retried: SQLite does not wait on its busy handler for this switch,
        so a second process opening a fresh file at the same moment gets "database is locked"."""
        for attempt in range(attempts):
            try:
                await conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == attempts - 1:
                    raise
                await asyncio.sleep(0.05)

    async def close(self) -> None:
        if self._conn is not None:
            async with self._lock:
                await self._conn.close()
                self._conn = None

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        async with self._lock:
            return await _SqliteTx(self, self.conn).fetch(sql, *args)

    async def execute(self, sql: str, *args: Any) -> None:
        async with self._lock:
            await _SqliteTx(self, self.conn).execute(sql, *args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self._lock:
            await _SqliteTx(self, self.conn).executemany(sql, rows)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error), exclusive among this database's users.

        Safe under task cancellation: aiosqlite runs statements in order on its own thread, so a
        shielded ROLLBACK queued after a cancelled statement always ends the transaction before the
        next one begins.
        """
        async with self._lock:
            conn = self.conn
            tx = _SqliteTx(self, conn)
            try:
                await tx.execute("BEGIN IMMEDIATE")
                yield tx
            except BaseException:
                await asyncio.shield(self._rollback(conn))
                raise
            self.trips += 1
            await asyncio.shield(conn.execute("COMMIT"))

    async def _rollback(self, conn: aiosqlite.Connection) -> None:
        self.trips += 1
        with contextlib.suppress(sqlite3.OperationalError):  # no transaction was open
            await conn.execute("ROLLBACK")

    async def schema_version(self) -> int:
        row = await self.fetchrow("PRAGMA user_version")
        return int(row[0]) if row else 0

    async def migrate(self) -> int:
        """All pending migrations in one BEGIN IMMEDIATE transaction, the version read inside it: a
        second process starting at once waits for the lock, then finds nothing left to do."""
        async with self._lock:
            conn = self.conn
            await conn.execute("BEGIN IMMEDIATE")
            try:
                rows = await conn.execute_fetchall("PRAGMA user_version")
                current = int(next(iter(rows))[0])
                for number, _name, sql in migrations(self.engine):
                    if number <= current:
                        continue
                    for statement in sql_statements(sql):
                        await conn.execute(statement)
                    await conn.execute(f"PRAGMA user_version = {number}")
                    current = number
            except BaseException:
                await asyncio.shield(self._rollback(conn))
                raise
            await conn.execute("COMMIT")
            return current

    async def tables(self) -> list[str]:
        rows = await self.fetch("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        return [row[0] for row in rows]


# --- PostgreSQL ----------------------------------------------------------------------------------

_CONNECTION_ERRORS = (
    OSError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.InterfaceError,
)


async def _no_reset(_conn: asyncpg.Connection) -> None:
    """We set no session state, so a released connection needs no RESET round trip (asyncpg still
    rolls back a transaction left open, e.g. by a cancelled task)."""


class _PgTx(Tx):
    def __init__(self, owner: PostgresDatabase, conn: Any) -> None:
        self.owner = owner
        self.conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        self.owner.trips += 1
        return list(await self.conn.fetch(numbered(sql), *args))

    async def execute(self, sql: str, *args: Any) -> None:
        self.owner.trips += 1
        await self.conn.execute(numbered(sql), *args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.owner.trips += 1
            await self.conn.executemany(numbered(sql), rows)


class PostgresDatabase(Database):
    """A pool of asyncpg connections. With `pgbouncer`, no prepared-statement cache (transaction pooling)."""

    engine = "postgresql"

    def __init__(self, url: str, *, pgbouncer: bool = False, min_size: int = 1, max_size: int = 10) -> None:
        self.url = url
        self.pgbouncer = pgbouncer
        self.min_size = min_size
        self.max_size = max_size
        self.trips = 0
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the database is not open")
        return self._pool

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=self.min_size,
                max_size=self.max_size,
                statement_cache_size=0 if self.pgbouncer else 100,
                reset=_no_reset,
                command_timeout=30,
            )
        except _CONNECTION_ERRORS as exc:
            raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
        try:
            await self.migrate()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        try:
            async with self.pool.acquire() as conn:
                yield conn
        except _CONNECTION_ERRORS as exc:
            raise DatabaseUnavailable(str(exc) or type(exc).__name__) from exc

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        async with self._connection() as conn:
            return await _PgTx(self, conn).fetch(sql, *args)

    async def execute(self, sql: str, *args: Any) -> None:
        async with self._connection() as conn:
            await _PgTx(self, conn).execute(sql, *args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self._connection() as conn:
            await _PgTx(self, conn).executemany(sql, rows)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self._connection() as conn:
            self.trips += 1  # BEGIN
            async with conn.transaction():
                yield _PgTx(self, conn)
                self.trips += 1  # COMMIT

    async def schema_version(self) -> int:
        rows = await self.fetch(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"
            if "schema_migrations" in await self.tables()
            else "SELECT 0"
        )
        return int(rows[0][0])

    async def migrate(self) -> int:
        async with self._connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            current = int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))
            for number, name, sql in migrations(self.engine):
                if number <= current:
                    continue
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", number, name)
                current = number
            return current

    async def tables(self) -> list[str]:
        rows = await self.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
        )
        return [row[0] for row in rows]


def open_database(location: str | Path, *, pgbouncer: bool = False) -> Database:
    """A Database for a SQLite path (or ':memory:') or a postgresql:// URL; call open() on it."""
    text = str(location)
    if is_postgres_url(text):
        return PostgresDatabase(text, pgbouncer=pgbouncer)
    return SqliteDatabase(text)


# How old a repository's in-memory copy of a small table (unreachable chats, paused subscriptions) may get
# on PostgreSQL, where other processes change it too; on SQLite one process owns the file and the copy is exact.
SHARED_CACHE_SECONDS = 10.0


def shared_cache_stale(db: Database, read_at: float) -> bool:
    """Whether an in-memory copy read at `read_at` (time.monotonic()) must be read again."""
    return db.engine == "postgresql" and time.monotonic() - read_at > SHARED_CACHE_SECONDS


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
