"""A throwaway PostgreSQL cluster for tests: initdb into a temp dir, pg_ctl start/stop, no Docker.

The server binaries (initdb, pg_ctl, postgres) come from PATH, `pg_config --bindir` or the Debian
layout /usr/lib/postgresql/<version>/bin. initdb refuses to run as root, so when this process is
root the server programs run as the `postgres` OS user (runuser, else su); otherwise directly.

The cluster is for local tests only: `trust` authentication, listening on 127.0.0.1 and a unix
socket in its own temp dir, with durability switched off (fsync, synchronous_commit,
full_page_writes) for speed.

Shared clusters: when STUDYBOT_TEST_PG_CLUSTERS names the directories of clusters that are already
running (made by PgCluster, separated by os.pathsep; `python -m bench mutation` starts one per
worker and sets it), start() borrows one of them instead of making a new one: it takes the
cluster's lock file (waiting while every one is taken), so a cluster serves one test session at a
time, and that session may stop and restart it as if it were its own. cleanup() gives it back
running for the next session and keeps its files. This saves initdb and a server start per session
when many short sessions run one after another (a mutation run starts one per mutant).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fcntl
import os
import pwd
import re
import shlex
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

import asyncpg

T = TypeVar("T")

REQUIRE_ENV = "STUDYBOT_REQUIRE_POSTGRES"
SHARED_ENV = "STUDYBOT_TEST_PG_CLUSTERS"
MISSING_MESSAGE = (
    "PostgreSQL server binaries not found (initdb/pg_ctl); "
    "install postgresql (e.g. apt install postgresql) to run these tests"
)
SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
SERVER_USER = "postgres"  # the OS user the server runs as when we are root; also the database superuser


class PgError(RuntimeError):
    """initdb, pg_ctl or the server failed; the message carries their output and the log tail."""


def postgres_required() -> bool:
    """True when STUDYBOT_REQUIRE_POSTGRES=1: missing server binaries fail the tests instead of skipping them."""
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in {"1", "true", "yes"}


def shared_cluster_dirs() -> tuple[Path, ...]:
    """The running clusters STUDYBOT_TEST_PG_CLUSTERS lends out (their directories), or none."""
    value = os.environ.get(SHARED_ENV, "")
    return tuple(Path(part) for part in value.split(os.pathsep) if part.strip())


def _has_server_programs(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) and (directory / name).is_file() for name in SERVER_PROGRAMS)


def _version_key(directory: Path) -> tuple[int, ...]:
    """/usr/lib/postgresql/15/bin -> (15,); newest first when sorted in reverse."""
    return tuple(int(part) for part in re.findall(r"\d+", directory.parent.name)) or (0,)


def find_pg_bin() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres: PATH, then `pg_config --bindir`, then
    /usr/lib/postgresql/*/bin (newest version first). None when there is none."""
    candidates: list[Path] = []
    found = shutil.which("initdb")
    if found:
        # /usr/local/bin/initdb may be a symlink into the real bin dir; prefer the real one (psql etc. live there)
        candidates += [Path(found).resolve().parent, Path(found).parent]
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out:
                candidates.append(Path(out))
    candidates += sorted((p for p in Path("/usr/lib/postgresql").glob("*/bin")), key=_version_key, reverse=True)
    return next((c for c in candidates if _has_server_programs(c)), None)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _world_traversable(path: Path) -> bool:
    """Whether another user (the postgres OS user) can reach files under path."""
    for part in (path, *path.parents):
        try:
            if not part.stat().st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


def _conf_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _run_in_fresh_loop(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on a new event loop in a worker thread: safe to call from sync
    code whether or not the calling thread already runs an event loop (pytest-asyncio)."""

    async def main() -> T:
        return await factory()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-sync") as pool:
        return pool.submit(asyncio.run, main()).result()


class PgCluster:
    """One PostgreSQL cluster in a temp dir. start() initialises it on first use; stop() and
    start() again reuse the same data dir and port; cleanup() stops it and deletes the dir.

        with PgCluster() as cluster:
            cluster.create_database("app")
            dsn = cluster.dsn("app")
    """

    def __init__(
        self,
        bin_dir: Path | None = None,
        *,
        start_timeout: int = 60,
        shared_buffers: str = "16MB",
        settings: dict[str, str] | None = None,
        shared: Sequence[Path] | None = None,
    ) -> None:
        """`shared`: running clusters to borrow one of instead of making one (default: those named by
        STUDYBOT_TEST_PG_CLUSTERS; pass () to always make a new one)."""
        found = bin_dir or find_pg_bin()
        if found is None:
            raise PgError(MISSING_MESSAGE)
        self.bin_dir: Path = found
        self.host = "127.0.0.1"
        self.user = SERVER_USER  # database superuser (initdb -U)
        self.start_timeout = start_timeout
        self.shared_buffers = shared_buffers
        self.extra_settings: dict[str, str] = dict(settings or {})
        self.port: int | None = None  # pinned by the first successful start
        self.root: Path | None = None
        self._as_root = os.geteuid() == 0
        self._running = False
        self._atexit_registered = False
        self.shared = tuple(shared_cluster_dirs() if shared is None else shared)
        self._lock: int | None = None  # the borrowed cluster's lock file, held while borrowed

    # -- paths -----------------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self._root() / "data"

    @property
    def log_file(self) -> Path:
        return self._root() / "server.log"

    @property
    def socket_dir(self) -> Path:
        return self._root()

    @property
    def running(self) -> bool:
        return self._running

    @property
    def borrowed(self) -> bool:
        """Whether this is one of the shared clusters, borrowed for now (see the module docstring)."""
        return self._lock is not None

    def _root(self) -> Path:
        if self.root is None:
            raise PgError("the cluster has no directory yet; call start() first")
        return self.root

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """initdb (first time only) and start the server; returns once it accepts connections."""
        if self._running:
            return
        if self.root is None and self.shared:
            self._borrow()
            if self._server_is_up():  # as the last borrower left it, normally
                self._running = True
                self._register_cleanup()
                return
        if self.root is None:
            self._make_root()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        if self.port is not None:
            self._pg_ctl_start(self.port)
        else:
            # the port is free when chosen but someone may take it before the server binds; try a few
            for attempt in range(3):
                port = free_port(self.host)
                try:
                    self._pg_ctl_start(port)
                except PgError as e:
                    if attempt < 2 and "could not bind" in str(e).lower():
                        continue
                    raise
                break
        self._running = True
        self._register_cleanup()

    def _register_cleanup(self) -> None:
        if not self._atexit_registered:
            atexit.register(self.cleanup)
            self._atexit_registered = True

    def stop(self) -> None:
        """Fast shutdown (-m fast: clients are disconnected, no waiting for them); immediate if that hangs."""
        if self.root is None or not (self.data_dir / "postmaster.pid").exists():
            self._running = False
            return
        try:
            self._run([self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30", "stop"], 45)
        except PgError:
            self._run([self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"], 45)
        self._running = False

    def restart(self) -> None:
        """stop() then start() on the same data dir and port (open client connections are dropped)."""
        self.stop()
        self.start()

    def cleanup(self) -> None:
        """Stop the server if it runs and delete the temp dir; a borrowed cluster is given back running
        instead, its files kept. Safe to call more than once."""
        try:
            if self._lock is not None:
                with contextlib.suppress(PgError, OSError):
                    self.start()  # a session that stopped it and failed before starting it again
                self._running = False
                self.root = None
                os.close(self._lock)  # releases the lock: the next session may borrow it
                self._lock = None
            elif self.root is not None:
                with contextlib.suppress(PgError, OSError):
                    self.stop()
                shutil.rmtree(self.root, ignore_errors=True)
                self.root = None
        finally:
            if self._atexit_registered:
                atexit.unregister(self.cleanup)
                self._atexit_registered = False

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cleanup()

    # -- client side -----------------------------------------------------------------------------

    def dsn(self, database: str = "postgres") -> str:
        if self.port is None:
            raise PgError("the cluster has not been started")
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def execute(self, sql: str, database: str = "postgres", *args: object) -> str:
        """Run SQL (several statements allowed when there are no args) and return asyncpg's status."""

        async def run() -> str:
            conn = await asyncpg.connect(self.dsn(database), timeout=10)
            try:
                return str(await conn.execute(sql, *args))
            finally:
                await conn.close()

        return _run_in_fresh_loop(run)

    def create_database(self, name: str) -> None:
        """CREATE DATABASE; on a borrowed cluster a database of that name an earlier session made is kept
        (the conftest fixture empties it before each test, as it does between the tests of one session)."""
        if self.borrowed:
            exists = self.execute(f"SELECT 1 FROM pg_database WHERE datname = {_conf_string(name)}")
            if exists == "SELECT 1":
                return
        self.execute(f"CREATE DATABASE {quote_ident(name)}")

    def reset_schema(self, database: str) -> None:
        """Empty the database: disconnect its other clients (a pool a previous test leaked would
        otherwise block the DROP), then recreate the public schema."""

        async def run() -> None:
            conn = await asyncpg.connect(self.dsn(database), timeout=10)
            try:
                await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                await conn.execute(
                    "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;"
                )
            finally:
                await conn.close()

        _run_in_fresh_loop(run)

    # -- internals -------------------------------------------------------------------------------

    def _bin(self, name: str) -> str:
        return str(self.bin_dir / name)

    def _server_account(self) -> pwd.struct_passwd:
        try:
            return pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise PgError(
                f"running as root, and initdb refuses root, but there is no {SERVER_USER!r} OS user to run the "
                f"server as (the postgresql package creates it; or run the tests as a normal user)"
            ) from None

    def _borrow(self) -> None:
        """Take the lock of one of the shared clusters (waiting up to start_timeout while all are taken)
        and use its directory and port."""
        deadline = time.monotonic() + self.start_timeout
        while True:
            for root in self.shared:
                descriptor = os.open(root / "lock", os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    # flock: held by this open file (so two clusters in one process exclude each other too),
                    # released when it is closed or the process dies
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(descriptor)
                    continue
                try:
                    self.port = int((root / "port").read_text(encoding="ascii"))
                except (OSError, ValueError):
                    os.close(descriptor)
                    raise PgError(f"{root} is not a running cluster made by tests/pg.py (no port file)") from None
                self.root, self._lock = root, descriptor
                return
            if time.monotonic() > deadline:
                raise PgError(
                    f"all {len(self.shared)} shared clusters ({SHARED_ENV}) stayed busy for {self.start_timeout}s"
                )
            time.sleep(0.05)

    def _server_is_up(self) -> bool:
        try:
            self._run([self._bin("pg_ctl"), "-D", str(self.data_dir), "status"], 30)
        except PgError:
            return False  # exit code 3: not running (a session stopped it, or was killed while it was down)
        return True

    def _make_root(self) -> None:
        base: str | None = None
        if self._as_root:
            account = self._server_account()
            if not _world_traversable(Path(tempfile.gettempdir())):
                base = "/tmp"  # the postgres user must reach the data dir
        root = Path(tempfile.mkdtemp(prefix="studybot-pg-", dir=base))
        if self._as_root:
            os.chown(root, account.pw_uid, account.pw_gid)
        self.root = root

    def _command(self, argv: Sequence[str]) -> list[str]:
        if not self._as_root:
            return list(argv)
        self._server_account()
        if shutil.which("runuser"):
            return ["runuser", "-u", SERVER_USER, "--", *argv]
        return ["su", SERVER_USER, "-s", "/bin/sh", "-c", "exec " + shlex.join(argv)]

    def _run(self, argv: Sequence[str], timeout: float) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        try:
            done = subprocess.run(
                self._command(argv),
                cwd=self._root(),  # the postgres user may not be able to read our working directory
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as e:
            raise PgError(f"{Path(argv[0]).name} timed out after {timeout:.0f}s{self._log_tail()}") from e
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()
            raise PgError(f"{shlex.join(argv)} failed with exit code {done.returncode}:\n{output}{self._log_tail()}")
        return done.stdout

    def _initdb(self) -> None:
        self._run(
            [
                self._bin("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "--auth=trust",  # local test use only
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            timeout=120,
        )
        settings = {
            "listen_addresses": _conf_string(self.host),
            "unix_socket_directories": _conf_string(str(self.socket_dir)),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": _conf_string(self.shared_buffers),
            **self.extra_settings,
        }
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# StudyBot test cluster (tests/pg.py): throwaway, not durable\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _pg_ctl_start(self, port: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.log_file.unlink()  # so a failure shows this attempt's log, not an earlier one
        self._run(
            [
                self._bin("pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-o",
                f"-p {port}",
                "-w",
                "-t",
                str(self.start_timeout),
                "start",
            ],
            timeout=self.start_timeout + 15,
        )
        self.port = port
        (self._root() / "port").write_text(str(port), encoding="ascii")  # for sessions that borrow it

    def _log_tail(self, lines: int = 30) -> str:
        if self.root is None:
            return ""
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        tail = "\n".join(text.splitlines()[-lines:])
        return f"\n--- server log ({self.log_file}), last {lines} lines ---\n{tail}" if tail else ""
