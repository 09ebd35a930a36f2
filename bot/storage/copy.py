"""Copy every row of one StudyBot database into another: SQLite -> PostgreSQL, back, or SQLite -> SQLite.

`studybot copy-db SRC DST` runs `copy_database`. Stop the bot before copying. The steps:

1. Both schema versions are read without changing anything; a database newer than this code is refused
   (its rows may hold things this code does not know about).
2. Both are opened, which migrates them to this code's schema as the bot does at start, and must then
   agree on the version, the tables and their columns.
3. The tables, their primary keys and foreign keys are read from the source's catalogue (not from a
   list in here); `schema_migrations` is left out. They are copied parents first.
4. A destination with any row in any of those tables is refused (nothing changed) unless `force`, which
   empties them, children first, in one transaction.
5. The source is read inside one transaction, so the copy is of one consistent moment (PostgreSQL:
   REPEATABLE READ, READ ONLY; SQLite: BEGIN IMMEDIATE, which also holds other writers off), each table
   in primary-key order by keyset pagination (`WHERE key > last ORDER BY key LIMIT n`, never OFFSET).
   Each batch is written with one executemany in its own destination transaction, ids as they are.
6. Triggers must not rewrite copied rows (attempts_expire_others would expire an "open" attempt that
   sits next to another active one, e.g. rows from before migration 005). Inside each batch's own
   transaction the destination table's triggers are switched off around the INSERT and back on:
     - SQLite has no way to disable a trigger, so it is dropped and re-created from its own SQL in
       sqlite_master. DDL is transactional in SQLite: on any error the ROLLBACK restores it, and no
       other connection ever sees the table without it (BEGIN IMMEDIATE keeps other writers out).
     - PostgreSQL: ALTER TABLE ... DISABLE TRIGGER name / ENABLE TRIGGER name, transactional too, and
       the ALTER's lock makes other writers to that table wait until COMMIT. Chosen over
       `SET session_replication_role = replica`, which needs a superuser and also stops enforcing
       foreign keys (they are triggers too), and we want them checked while copying.
7. A PostgreSQL destination gets each identity sequence set to max(id) + 1, so new rows get fresh ids.
8. Verification: per table, the rows counted on both sides and an order-independent digest of every
   row (computed while reading the source, and by reading the destination back) must match.

Locations are shown with any password masked (`mask_password`), errors too (`redact`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO, cast

import asyncpg

from bot.storage.db import Database, DatabaseUnavailable, Row, Tx, is_postgres_url, migrations, open_database

EXCLUDED_TABLES = frozenset({"schema_migrations"})  # bookkeeping of each engine, written by migrate()
DEFAULT_BATCH = 1000
_PASSWORD = re.compile(r"^postgres(?:ql)?://[^:/@]+:([^@]+)@")
_PG_CONNECT_ERRORS = (OSError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError)


class CopyError(Exception):
    """A refusal or a failure, said in one line with no password in it."""


class SchemaTooNew(CopyError):
    """The database was migrated by a newer StudyBot than this one."""


class DestinationNotEmpty(CopyError):
    """The destination holds rows and `force` was not given."""


# --- locations ------------------------------------------------------------------------------------


def mask_password(location: str) -> str:
    """The location with its password hidden, as Settings.db_display() does."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", location)


def redact(text: str, *locations: str) -> str:
    """`text` (an error message, say) with each location's password replaced by ***."""
    for location in locations:
        found = _PASSWORD.match(location)
        if found is None:
            continue
        text = text.replace(location, mask_password(location))
        for secret in {found.group(1), urllib.parse.unquote(found.group(1))}:
            text = text.replace(secret, "***")
    return text


def engine_of(location: str) -> str:
    return "postgresql" if is_postgres_url(location) else "sqlite"


def latest_version(engine: str) -> int:
    """The schema version this code migrates `engine` databases to."""
    return max((number for number, _name, _sql in migrations(engine)), default=0)


def _values(row: Row) -> tuple[Any, ...]:
    """A row's values in column order (sqlite3.Row and asyncpg.Record both iterate over them)."""
    return tuple(cast("Iterable[Any]", row))


def _sqlite_user_version(path: Path) -> int:
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    try:
        return int(con.execute("PRAGMA user_version").fetchone()[0])
    finally:
        con.close()


def _sqlite_exists(location: str) -> bool:
    return location != ":memory:" and Path(location).is_file()


async def stored_schema_version(location: str, *, pgbouncer: bool = False) -> int | None:
    """The schema version a database is at now, without migrating or creating anything: 0 for an
    empty PostgreSQL database, None for a SQLite file that does not exist.

    Raises DatabaseUnavailable when PostgreSQL cannot be reached, sqlite3.Error for an unreadable file.
    """
    if is_postgres_url(location):
        try:
            conn = await asyncpg.connect(
                location, timeout=10, command_timeout=30, statement_cache_size=0 if pgbouncer else 100
            )
        except _PG_CONNECT_ERRORS as exc:
            raise DatabaseUnavailable(redact(f"cannot connect to PostgreSQL: {exc}", location)) from exc
        try:
            if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
                return 0
            return int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))
        finally:
            with contextlib.suppress(*_PG_CONNECT_ERRORS):
                await conn.close()
    if not await asyncio.to_thread(_sqlite_exists, location):
        return None
    return await asyncio.to_thread(_sqlite_user_version, Path(location))


def _same_database(a: str, b: str) -> bool:
    if is_postgres_url(a) or is_postgres_url(b):
        return a.rstrip("/") == b.rstrip("/")
    return Path(a).resolve() == Path(b).resolve()


# --- the schema, as each database's catalogue describes it ---------------------------------------


def quote(name: str) -> str:
    """An SQL identifier, double-quoted (the same on both engines)."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]  # in the table's own order
    key: tuple[str, ...]  # the primary key's columns, in key order
    parents: frozenset[str]  # tables its foreign keys refer to
    triggers: tuple[tuple[str, str], ...] = ()  # (name, SQL to re-create it: SQLite only)
    identity: tuple[str, ...] = ()  # PostgreSQL identity columns

    @property
    def key_positions(self) -> tuple[int, ...]:
        return tuple(self.columns.index(column) for column in self.key)


async def _describe_sqlite(db: Tx) -> list[Table]:
    names = await db.fetch(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
        "ORDER BY rowid"  # creation order: the tie-break among tables ready to copy
    )
    tables = []
    for name in (str(row[0]) for row in names):
        if name in EXCLUDED_TABLES:
            continue
        info = [_values(row) for row in await db.fetch("SELECT name, pk FROM pragma_table_info(?) ORDER BY cid", name)]
        key = tuple(column for column, position in sorted((r for r in info if r[1]), key=lambda r: r[1]))
        parents = await db.fetch('SELECT DISTINCT "table" FROM pragma_foreign_key_list(?)', name)
        triggers = await db.fetch(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? ORDER BY rowid", name
        )
        tables.append(
            Table(
                name=name,
                columns=tuple(r[0] for r in info),
                key=key,
                parents=frozenset(row[0] for row in parents),
                triggers=tuple((row[0], row[1]) for row in triggers),
            )
        )
    return tables


_PG_RELATION = (
    "JOIN pg_class c ON c.oid = {col} JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = current_schema() AND c.relname = ?"
)


async def _describe_postgres(db: Tx) -> list[Table]:
    names = await db.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY c.oid"  # creation order
    )
    tables = []
    for name in (str(row[0]) for row in names):
        if name in EXCLUDED_TABLES:
            continue
        columns = await db.fetch(
            "SELECT column_name, is_identity FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
            name,
        )
        key = await db.fetch(
            "SELECT a.attname FROM pg_index i "
            "JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position) ON true "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            + _PG_RELATION.format(col="i.indrelid")
            + " AND i.indisprimary ORDER BY k.position",
            name,
        )
        parents = await db.fetch(
            "SELECT DISTINCT p.relname FROM pg_constraint f JOIN pg_class p ON p.oid = f.confrelid "
            + _PG_RELATION.format(col="f.conrelid")
            + " AND f.contype = 'f'",
            name,
        )
        triggers = await db.fetch(
            "SELECT t.tgname FROM pg_trigger t "
            + _PG_RELATION.format(col="t.tgrelid")
            + " AND NOT t.tgisinternal AND t.tgenabled <> 'D' ORDER BY t.tgname",
            name,
        )
        tables.append(
            Table(
                name=name,
                columns=tuple(str(row[0]) for row in columns),
                key=tuple(str(row[0]) for row in key),
                parents=frozenset(str(row[0]) for row in parents),
                triggers=tuple((str(row[0]), "") for row in triggers),
                identity=tuple(str(row[0]) for row in columns if row[1] == "YES"),
            )
        )
    return tables


async def describe(db: Tx, engine: str) -> list[Table]:
    """Every table to copy (all but EXCLUDED_TABLES), in creation order."""
    return await (_describe_postgres(db) if engine == "postgresql" else _describe_sqlite(db))


def copy_order(tables: Sequence[Table]) -> list[Table]:
    """Parents before the tables that refer to them; otherwise the order given (creation order)."""
    known = {table.name for table in tables}
    ordered: list[Table] = []
    placed: set[str] = set()
    remaining = list(tables)
    while remaining:
        ready = next(
            (t for t in remaining if all(p in placed or p == t.name or p not in known for p in t.parents)), None
        )
        if ready is None:
            cycle = ", ".join(t.name for t in remaining)
            raise CopyError(f"the foreign keys between these tables form a cycle, cannot order them: {cycle}")
        ordered.append(ready)
        placed.add(ready.name)
        remaining.remove(ready)
    return ordered


def _check_schemas(source: list[Table], destination: list[Table]) -> None:
    theirs = {table.name: table for table in destination}
    ours = {table.name: table for table in source}
    if set(theirs) != set(ours):
        only_source = sorted(set(ours) - set(theirs))
        only_destination = sorted(set(theirs) - set(ours))
        raise CopyError(
            "the two schemas differ: tables only in the source: "
            f"{', '.join(only_source) or 'none'}; only in the destination: {', '.join(only_destination) or 'none'}"
        )
    for name, table in ours.items():
        if set(table.columns) != set(theirs[name].columns):
            raise CopyError(
                f"the two schemas differ: {name} has columns {', '.join(table.columns)} in the source but "
                f"{', '.join(theirs[name].columns)} in the destination"
            )
        if not table.key:
            raise CopyError(f"{name} has no primary key, so it cannot be read in batches")


# --- progress ---------------------------------------------------------------------------------------


class Progress(Protocol):
    def update(self, table: str, copied: int, total: int) -> None:
        """Some rows of `table` are copied (called after each batch)."""

    def finish(self, table: str, copied: int, total: int) -> None:
        """`table` is done."""


class NoProgress:
    def update(self, table: str, copied: int, total: int) -> None:
        pass

    def finish(self, table: str, copied: int, total: int) -> None:
        pass


class ProgressBar:
    """Per table: a bar and `copied/total`, redrawn in place on a terminal; one line per table otherwise."""

    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None, width: int = 24) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = tty if tty is not None else self.stream.isatty()
        self.width = width

    def line(self, table: str, copied: int, total: int) -> str:
        filled = self.width if total == 0 else min(self.width, copied * self.width // total)
        bar = "#" * filled + "." * (self.width - filled)
        return f"{table:<14} [{bar}] {copied}/{total} rows"

    def update(self, table: str, copied: int, total: int) -> None:
        if self.tty:
            self.stream.write(f"\r{self.line(table, copied, total)}\x1b[K")
            self.stream.flush()

    def finish(self, table: str, copied: int, total: int) -> None:
        self.stream.write(f"{chr(13) if self.tty else ''}{self.line(table, copied, total)}\n")
        self.stream.flush()


# --- the report ---------------------------------------------------------------------------------------


@dataclass
class TableReport:
    name: str
    source_rows: int
    copied_rows: int
    destination_rows: int
    same_content: bool

    @property
    def ok(self) -> bool:
        return self.source_rows == self.copied_rows == self.destination_rows and self.same_content

    @property
    def problem(self) -> str:
        if self.source_rows != self.destination_rows or self.copied_rows != self.source_rows:
            return (
                f"{self.name} (source {self.source_rows} rows, copied {self.copied_rows}, "
                f"destination {self.destination_rows})"
            )
        return f"{self.name} (same row count, different contents)" if not self.same_content else ""


@dataclass
class CopyReport:
    source: str  # masked
    destination: str  # masked
    schema_version: int
    emptied: bool = False
    tables: list[TableReport] = field(default_factory=list)
    sequences: dict[str, int] = field(default_factory=dict)  # "table.column" -> the next id it hands out
    seconds: float = 0.0

    @property
    def mismatches(self) -> list[TableReport]:
        return [table for table in self.tables if not table.ok]

    @property
    def rows(self) -> int:
        return sum(table.destination_rows for table in self.tables)

    def summary(self) -> str:
        width = max([len("table"), *(len(t.name) for t in self.tables)])
        lines = [
            f"copied {self.source} -> {self.destination} (schema version {self.schema_version})",
            f"{'table':<{width}}  {'source':>9}  {'copied':>9}  {'destination':>11}  check",
        ]
        for t in self.tables:
            check = "ok" if t.ok else ("CONTENT DIFFERS" if t.source_rows == t.destination_rows else "COUNT DIFFERS")
            counts = f"{t.source_rows:>9}  {t.copied_rows:>9}  {t.destination_rows:>11}"
            lines.append(f"{t.name:<{width}}  {counts}  {check}")
        total_source = sum(t.source_rows for t in self.tables)
        total_copied = sum(t.copied_rows for t in self.tables)
        lines.append(f"{'total':<{width}}  {total_source:>9}  {total_copied:>9}  {self.rows:>11}")
        tail = f"{len(self.tables)} tables, {self.rows} rows in {self.seconds:.1f} s"
        if self.emptied:
            tail += "; the destination was emptied first (--force)"
        if self.sequences:
            tail += f"; {len(self.sequences)} identity sequences continue after the copied ids"
        lines.append(tail)
        return "\n".join(lines)


# --- copying ----------------------------------------------------------------------------------------


def _row_digest(rows: Sequence[tuple[Any, ...]]) -> int:
    """Order-independent digest of rows (values compare equal across engines: int, float, str, None)."""
    return sum(hash(row) for row in rows) & 0xFFFF_FFFF_FFFF_FFFF


async def _count(db: Tx, table: str) -> int:
    row = await db.fetchrow(f"SELECT COUNT(*) FROM {quote(table)}")
    return int(row[0]) if row else 0


async def _batches(db: Tx, table: Table, batch: int) -> AsyncIterator[list[tuple[Any, ...]]]:
    """The rows of `table` in primary-key order, `batch` at a time, by keyset pagination."""
    columns = ", ".join(quote(c) for c in table.columns)
    order = ", ".join(quote(c) for c in table.key)
    first = f"SELECT {columns} FROM {quote(table.name)} ORDER BY {order} LIMIT ?"
    after = (
        f"{quote(table.key[0])} > ?" if len(table.key) == 1 else f"({order}) > ({', '.join('?' for _ in table.key)})"
    )
    following = f"SELECT {columns} FROM {quote(table.name)} WHERE {after} ORDER BY {order} LIMIT ?"
    positions = table.key_positions
    last: tuple[Any, ...] | None = None
    while True:
        fetched = await (db.fetch(first, batch) if last is None else db.fetch(following, *last, batch))
        rows = [_values(row) for row in fetched]
        if rows:
            yield rows
        if len(rows) < batch:
            return
        last = tuple(rows[-1][i] for i in positions)


@asynccontextmanager
async def _snapshot(db: Database) -> AsyncIterator[Tx]:
    """One read transaction on the source for the whole copy: every table as of one moment."""
    async with db.transaction() as tx:
        if db.engine == "postgresql":
            await tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield tx


async def _insert_batch(db: Database, table: Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """One transaction: the table's triggers off, one executemany, the triggers back (see step 6 above)."""
    names = ", ".join(quote(c) for c in columns)
    overriding = " OVERRIDING SYSTEM VALUE" if table.identity else ""  # ids as they are, even GENERATED ALWAYS
    insert = f"INSERT INTO {quote(table.name)} ({names}){overriding} VALUES ({', '.join('?' for _ in columns)})"
    async with db.transaction() as tx:
        for trigger, _sql in table.triggers:
            if db.engine == "postgresql":
                await tx.execute(f"ALTER TABLE {quote(table.name)} DISABLE TRIGGER {quote(trigger)}")
            else:
                await tx.execute(f"DROP TRIGGER {quote(trigger)}")
        await tx.executemany(insert, rows)
        for trigger, sql in table.triggers:
            if db.engine == "postgresql":
                await tx.execute(f"ALTER TABLE {quote(table.name)} ENABLE TRIGGER {quote(trigger)}")
            else:
                await tx.execute(sql)


async def _empty(db: Database, tables: Sequence[Table]) -> None:
    """Delete every row of `tables` (children first), in one transaction."""
    async with db.transaction() as tx:
        if db.engine == "postgresql":
            await tx.execute(f"TRUNCATE TABLE {', '.join(quote(t.name) for t in tables)}")
        else:
            for table in reversed(tables):
                await tx.execute(f"DELETE FROM {quote(table.name)}")


async def _reset_sequences(db: Database, tables: Sequence[Table]) -> dict[str, int]:
    """PostgreSQL: each identity sequence set so the next id is max(id) + 1 (1 for an empty table)."""
    reset: dict[str, int] = {}
    for table in tables:
        for column in table.identity:
            row = await db.fetchrow(
                f"SELECT setval(pg_get_serial_sequence(?, ?), COALESCE((SELECT MAX({quote(column)}) "
                f"FROM {quote(table.name)}), 0) + 1, false)",
                quote(table.name),
                column,
            )
            if row is not None:
                reset[f"{table.name}.{column}"] = int(row[0])
    return reset


async def _open(stack: AsyncExitStack, location: str, pgbouncer: bool) -> Database:
    db = open_database(location, pgbouncer=pgbouncer)
    try:
        await db.open()
    except _PG_CONNECT_ERRORS as exc:
        if not is_postgres_url(location) or isinstance(exc, ValueError):
            raise
        raise DatabaseUnavailable(redact(f"cannot open {mask_password(location)}: {exc}", location)) from exc
    stack.push_async_callback(db.close)
    return db


async def copy_database(
    source: str | Path,
    destination: str | Path,
    *,
    force: bool = False,
    batch: int = DEFAULT_BATCH,
    progress: Progress | None = None,
    pgbouncer: bool = False,
) -> CopyReport:
    """Copy every row from `source` to `destination` (SQLite paths or postgresql:// URLs); see the module
    docstring. Raises CopyError (SchemaTooNew, DestinationNotEmpty, ...) for a refusal, DatabaseUnavailable
    when PostgreSQL cannot be reached; a report whose `mismatches` is not empty when verification failed."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    src, dst = str(source), str(destination)
    shown_src, shown_dst = mask_password(src), mask_password(dst)
    if _same_database(src, dst):
        raise CopyError(f"the source and the destination are the same database ({shown_src})")
    src_version = await stored_schema_version(src, pgbouncer=pgbouncer)
    if src_version is None:
        raise CopyError(f"no database at {shown_src} (the source must exist)")
    for location, version, role in ((src, src_version, "source"), (dst, None, "destination")):
        if version is None:
            version = await stored_schema_version(location, pgbouncer=pgbouncer) or 0
        latest = latest_version(engine_of(location))
        if version > latest:
            raise SchemaTooNew(
                f"the {role} {mask_password(location)} is at schema version {version}, newer than this StudyBot "
                f"knows ({latest}); copy it with the StudyBot version that migrated it"
            )
    progress = progress or NoProgress()
    started = time.monotonic()
    async with AsyncExitStack() as stack:
        reader_db = await _open(stack, src, pgbouncer)
        writer = await _open(stack, dst, pgbouncer)
        versions = (await reader_db.schema_version(), await writer.schema_version())
        if versions[0] != versions[1]:
            raise CopyError(
                f"after migrating, the source is at schema version {versions[0]} but the destination at {versions[1]}"
            )
        report = CopyReport(shown_src, shown_dst, versions[0])
        async with _snapshot(reader_db) as reader:
            source_tables = await describe(reader, reader_db.engine)
            destination_tables = {t.name: t for t in await describe(writer, writer.engine)}
            _check_schemas(source_tables, list(destination_tables.values()))
            order = copy_order(source_tables)
            targets = [destination_tables[t.name] for t in order]
            occupied = {t.name: n for t in order if (n := await _count(writer, t.name))}
            if occupied and not force:
                held = ", ".join(f"{name} ({n} rows)" for name, n in occupied.items())
                raise DestinationNotEmpty(
                    f"the destination {shown_dst} is not empty: {held}; nothing was changed. "
                    "Pass --force to empty it and copy anyway"
                )
            if force:
                await _empty(writer, targets)
                report.emptied = bool(occupied)
            digests: dict[str, int] = {}
            counts: dict[str, tuple[int, int]] = {}
            for table, target in zip(order, targets, strict=True):
                total = await _count(reader, table.name)
                copied, digest = 0, 0
                progress.update(table.name, 0, total)
                async for rows in _batches(reader, table, batch):
                    await _insert_batch(writer, target, table.columns, rows)
                    copied += len(rows)
                    digest = (digest + _row_digest(rows)) & 0xFFFF_FFFF_FFFF_FFFF
                    progress.update(table.name, copied, total)
                progress.finish(table.name, copied, total)
                digests[table.name] = digest
                counts[table.name] = (total, copied)
        if writer.engine == "postgresql":
            report.sequences = await _reset_sequences(writer, targets)
        for table in order:
            # read back with the source's column order, so rows compare as tuples
            readback = Table(table.name, table.columns, table.key, table.parents)
            digest = 0
            async for rows in _batches(writer, readback, batch):
                digest = (digest + _row_digest(rows)) & 0xFFFF_FFFF_FFFF_FFFF
            total, copied = counts[table.name]
            report.tables.append(
                TableReport(table.name, total, copied, await _count(writer, table.name), digest == digests[table.name])
            )
    report.seconds = time.monotonic() - started
    return report
