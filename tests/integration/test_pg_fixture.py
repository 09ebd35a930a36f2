"""The PostgreSQL fixtures (tests/pg.py, conftest pg_cluster / pg_dsn): a real server, an empty
database per test, and a server restart that clients survive by reconnecting."""

from __future__ import annotations

import asyncio

import asyncpg

from tests.conftest import PG_TEST_DATABASE
from tests.pg import PgCluster


async def user_tables(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
    return [row["tablename"] for row in rows]


async def check_empty_then_create(dsn: str, table: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        assert await user_tables(conn) == []  # whatever ran before, this test starts empty
        await conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, note text)")
        await conn.execute(f"INSERT INTO {table} VALUES (1, 'left behind on purpose')")
        assert await user_tables(conn) == [table]
    finally:
        await conn.close()


async def test_each_test_starts_with_an_empty_database_one(pg_dsn: str) -> None:
    await check_empty_then_create(pg_dsn, "first_table")


async def test_each_test_starts_with_an_empty_database_two(pg_dsn: str) -> None:
    await check_empty_then_create(pg_dsn, "second_table")


async def test_asyncpg_connects_to_the_test_database(pg_dsn: str, pg_cluster: PgCluster) -> None:
    assert pg_dsn == pg_cluster.dsn(PG_TEST_DATABASE)
    conn = await asyncpg.connect(pg_dsn)
    try:
        assert await conn.fetchval("SELECT current_database()") == PG_TEST_DATABASE
        assert await conn.fetchval("SHOW fsync") == "off"
        assert int(await conn.fetchval("SHOW server_version_num")) >= 150000
        assert await conn.fetchval("SELECT $1::int + 1", 41) == 42
    finally:
        await conn.close()


async def test_the_server_restarts_under_an_open_pool(pg_dsn: str, pg_cluster: PgCluster) -> None:
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=2)
    try:
        await pool.execute("CREATE TABLE kept (n int)")
        await pool.execute("INSERT INTO kept VALUES (7)")
        port = pg_cluster.port

        await asyncio.to_thread(pg_cluster.restart)  # fast shutdown drops the pool's connections

        assert pg_cluster.port == port and pg_cluster.running
        conn = await asyncpg.connect(pg_dsn)  # a new connection succeeds after the restart
        try:
            assert await conn.fetchval("SELECT n FROM kept") == 7  # same data dir: the data survived
        finally:
            await conn.close()
        # the pool's old connection is dead; the pool replaces it, at most one query is lost
        try:
            value = await pool.fetchval("SELECT 1")
        except (asyncpg.InterfaceError, asyncpg.PostgresError, ConnectionError):
            value = await pool.fetchval("SELECT 1")
        assert value == 1
    finally:
        await pool.close()
