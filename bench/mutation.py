"""Mutation testing with mutmut: how many small, realistic breakages of the code the fast tests catch.

`python -m bench mutation` runs every mutant of the modules below (mutmut runs, for each mutant, only
the tests that call the mutated function; its settings are [tool.mutmut] in pyproject.toml) and
prints one JSON line per module:
{"name": "mutation:bot/core/study.py", "killed": k, "survived": s, "equivalent": e, "score": k / (k + s)}.
`python -m bench.mutation bot/core/actions.py` runs one module (exit 1 when a module misses the target);
CI runs `python -m bench.mutation --unit-only bot/core/actions.py` as its smoke check.

It runs on a fresh copy of the committed tree (HEAD, in a temporary directory), so uncommitted work
in progress in the working tree neither breaks the run nor colours its score; `--working-tree` runs
on the working tree as it is instead (its mutants/ directory is then left for `mutmut results`).

Mutants that survive because they cannot change behaviour are listed with a one-line reason in
bench/mutation_equivalent.txt; they count as "equivalent", not "survived".

What keeps a full pass short (it must finish within 15 minutes on a 2-core machine):
- the storage modules' PostgreSQL tests borrow one of a few clusters started once per pass (one per
  mutmut worker; tests/pg.py, STUDYBOT_TEST_PG_CLUSTERS) instead of running initdb and starting a
  server in every mutant's test session; each test still starts on an emptied database;
- this module is also a pytest plugin in the mutants' runs (`-p bench.mutation`): a mutant's tests
  run cheapest test file first (by the timings of mutmut's stats run), so the first failure, which
  ends the run, comes sooner; every test still runs when none fails;
- and a test that spins far beyond its measured time (a mutant that loops forever) ends the run as
  a timeout after TEST_CPU_FLOOR seconds of CPU or TEST_CPU_FACTOR times its time, instead of after
  mutmut's own limit for all the function's tests together (minutes).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import ROOT, Context, Result

MODULES = (
    "bot/core/study.py",
    "bot/core/daily.py",
    "bot/core/competition.py",
    "bot/core/grading.py",
    "bot/core/llm_grading.py",
    # the storage repositories (bot/storage/sqlite.py is only a shim over them now); each mutant runs its
    # tests on SQLite and PostgreSQL (clusters started once per pass from the server binaries on PATH).
    # db.py, the connection layer, is left out: nearly every test calls it, so its mutants take longer
    # than all the others together (`python -m bench.mutation bot/storage/db.py` runs it on its own).
    "bot/storage/study.py",
    "bot/storage/daily.py",
    "bot/storage/competition.py",
    "bot/storage/chats.py",
    "bot/storage/privacy.py",
    "bot/storage/rows.py",
)
# Functions left out of a module's mutation run, by mutmut key (none at present).
SKIPPED_FUNCTIONS: dict[str, frozenset[str]] = {}
EQUIVALENT_FILE = ROOT / "bench" / "mutation_equivalent.txt"
TARGET = 0.85
# mutmut's exit codes per mutant (mutmut.stats.status_by_exit_code): 1 and 3 mean a test failed; 0 means
# the tests passed, 5 and 33 that no test calls the mutated function (so nothing would catch it either)
KILLED_CODES = frozenset({1, 3})
SURVIVED_CODES = frozenset({0, 5, 33})
TIMEOUT_CODE = 36  # mutmut's "timeout"
# A test of a mutant that has used this many CPU seconds, and TEST_CPU_FACTOR times its stats-run time, is spinning.
TEST_CPU_FLOOR = 15.0
TEST_CPU_FACTOR = 20.0
STATS_FILE = "mutmut-stats.json"  # in mutants/, the folder the tests run in


def equivalents() -> dict[str, str]:
    """mutant name -> why it cannot change behaviour, from the committed list."""
    found: dict[str, str] = {}
    if EQUIVALENT_FILE.exists():
        for line in EQUIVALENT_FILE.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                name, _, reason = line.partition(" ")
                found[name] = reason.strip()
    return found


def outcomes(path: str, root: Path = ROOT) -> dict[str, int | None]:
    """mutant name -> mutmut's exit code, for the module's mutants that were selected."""
    meta = root / "mutants" / f"{path}.meta"
    codes: dict[str, int | None] = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    module = path.removesuffix(".py").replace("/", ".")
    skipped = SKIPPED_FUNCTIONS.get(path, frozenset())
    return {
        name: code
        for name, code in codes.items()
        if name.startswith(module + ".") and name[len(module) + 1 :].partition("__mutmut_")[0] not in skipped
    }


def summarise(path: str, equivalent: dict[str, str], seconds: float, root: Path = ROOT) -> Result:
    """One module's line. Listed equivalents are not run (see run_mutmut) and count as equivalent;
    one that was run anyway and killed (`--all`) is stale: it counts as killed and is named."""
    codes = outcomes(path, root)
    listed = {name for name in codes if name in equivalent}
    killed = sum(1 for code in codes.values() if code in KILLED_CODES)
    stale = sorted(name for name in listed if codes[name] in KILLED_CODES)
    survivors = sorted(name for name, code in codes.items() if code in SURVIVED_CODES and name not in listed)
    other = Counter(
        "timeout" if code in (24, -24, 36, 152, 255) else f"exit {code}"
        for name, code in codes.items()
        if code not in KILLED_CODES | SURVIVED_CODES and name not in listed
    )
    equivalents_left = len(listed) - len(stale)
    score = killed / (killed + len(survivors)) if killed + len(survivors) else 0.0
    return {
        "name": f"mutation:{path}",
        "killed": killed,
        "survived": len(survivors),
        "equivalent": equivalents_left,
        "score": round(score, 3),
        "target": f">= {TARGET:.0%} of non-equivalent mutants killed",
        "target_met": score >= TARGET,
        "other": dict(other),
        "seconds": round(seconds, 1),
        "survivors": survivors,
        "stale_equivalents": stale,
    }


def snapshot(paths: list[str], tests: tuple[str, ...] | None = None) -> Path:
    """A fresh copy of the committed tree (git archive HEAD) in a temporary directory, with mutmut told to
    mutate only `paths` (generating and mapping the other modules' mutants is wasted work) and, when
    given, to select tests only from `tests`."""
    root = Path(tempfile.mkdtemp(prefix="studybot-mutation-"))  # its own folder: runs may overlap
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(root, filter="data")
    config = root / "pyproject.toml"
    lines = config.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines):
        if line.startswith("only_mutate ="):
            # this module as a pytest plugin in every test run (see the module docstring)
            lines[n] = f'only_mutate = {json.dumps(paths)}\npytest_add_cli_args = ["-p", "bench.mutation"]'
        elif tests is not None and line.startswith("pytest_add_cli_args_test_selection ="):
            lines[n] = f"pytest_add_cli_args_test_selection = {json.dumps([*tests, '-m', 'not slow'])}"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@contextlib.contextmanager
def shared_postgres(count: int) -> Iterator[dict[str, str]]:
    """Start `count` throwaway PostgreSQL clusters for the whole run and yield the environment that lends
    them to the tests (tests/pg.py); they are removed afterwards. For the storage modules the PostgreSQL
    tests must run, not skip: without them a mutant that breaks only PostgreSQL (a column name's case:
    asyncpg.Record keeps it, sqlite3.Row ignores it) would pass for a survivor, so missing server binaries
    fail the run (here, and through STUDYBOT_REQUIRE_POSTGRES in the tests)."""
    from tests.pg import REQUIRE_ENV, SHARED_ENV, PgCluster

    clusters: list[PgCluster] = []
    try:
        for _ in range(count):
            clusters.append(PgCluster(shared=()))
            clusters[-1].start()
        yield {REQUIRE_ENV: "1", SHARED_ENV: os.pathsep.join(str(cluster.root) for cluster in clusters)}
    finally:
        for cluster in clusters:
            cluster.cleanup()


def _mutmut(root: Path, names: list[str], *, none_expected: bool = False, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mutmut", "run", *names],
        cwd=root,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    output = done.stdout + done.stderr
    if none_expected and "nothing matches" in output and (root / "mutants" / "mutmut-stats.json").exists():
        return  # generated and mapped, and (as asked) ran no mutant
    if done.returncode != 0:
        raise RuntimeError(f"mutmut failed ({done.returncode}): {output[-2000:]}")


def run_mutmut(paths: list[str], root: Path, log: Context | None = None, run_equivalents: bool = False) -> float:
    """Run mutmut over the modules' mutants in `root`; returns the seconds it took.

    First mutmut generates every mutant and maps each function to the tests that call it (a pattern
    that selects no mutant); then it runs the modules' mutants, minus the ones listed as equivalent
    (they would only survive, after running every test of their function: the slowest kind), unless
    `run_equivalents` (to audit the list)."""
    started = time.perf_counter()
    postgres = any(path.startswith("bot/storage/") for path in paths)
    # one cluster per mutmut worker (mutmut runs as many as there are CPUs)
    clusters: contextlib.AbstractContextManager[dict[str, str]] = (
        shared_postgres(os.cpu_count() or 4) if postgres else contextlib.nullcontext({})
    )
    with clusters as env:
        _mutmut(root, ["bench.no_such_module.x_nothing__mutmut_*"], none_expected=True, env=env)
        skip = set() if run_equivalents else set(equivalents())
        names = sorted(name for path in paths for name in outcomes(path, root) if name not in skip)
        if log:
            log.log(f"mutmut: {len(names)} mutants in {', '.join(paths)} ({root})")
        _mutmut(root, names, env=env)
    return time.perf_counter() - started


def measure(
    paths: list[str],
    working_tree: bool = False,
    keep: bool = False,
    log: Context | None = None,
    run_equivalents: bool = False,
    tests: tuple[str, ...] | None = None,
) -> list[Result]:
    """Run and summarise; the snapshot is removed afterwards unless `keep` (its path then goes to
    stderr, for `mutmut show NAME` there). `tests`: select the covering tests only from these folders."""
    root = ROOT if working_tree else snapshot(paths, tests)
    try:
        seconds = run_mutmut(paths, root, log, run_equivalents)
        equivalent = equivalents()
        return [summarise(path, equivalent, seconds, root) for path in paths]
    finally:
        if keep and not working_tree:
            print(f"mutants kept in {root}", file=sys.stderr)
        elif not working_tree:
            shutil.rmtree(root, ignore_errors=True)


# --- the pytest plugin in the mutants' runs (`-p bench.mutation`, see snapshot) -----------------------------


def pytest_configure() -> None:
    """In mutmut's stats run, keep MUTANT_UNDER_TEST=stats out of the programs tests start: this process's
    own trampolines still read it (mutmut keeps a copy in the process), but a `python -m bot` started from
    another folder would look for mutmut's config there to record its calls, and fail. What a program
    calls is never recorded anyway (the stats are gathered in this process)."""
    if os.environ.get("MUTANT_UNDER_TEST") == "stats":
        del os.environ["MUTANT_UNDER_TEST"]


def _testing_a_mutant() -> bool:
    # mutmut names the mutant in MUTANT_UNDER_TEST; "stats", "fail" and "" are its other runs
    return "__mutmut_" in os.environ.get("MUTANT_UNDER_TEST", "")


_durations: dict[str, float] | None = None  # per test process (each mutant's run is a fresh fork)


def _stats_durations() -> dict[str, float]:
    """Each test's time in mutmut's stats run, by node id."""
    global _durations
    if _durations is None:
        try:
            _durations = dict(json.loads(Path(STATS_FILE).read_text(encoding="utf-8"))["duration_by_test"])
        except (OSError, ValueError, KeyError):
            _durations = {}
    return _durations


def pytest_collection_modifyitems(items: list[Any]) -> None:
    """A mutant's tests, cheapest test file first (a file's tests stay together, in their order, so
    module fixtures are set up once); unknown files last."""
    if not _testing_a_mutant():
        return
    durations = _stats_durations()
    cost: dict[str, float] = {}
    for item in items:
        file = item.nodeid.partition("::")[0]
        cost[file] = cost.get(file, 0.0) + durations.get(item.nodeid, math.inf)
    items.sort(key=lambda item: cost[item.nodeid.partition("::")[0]])  # stable: file order kept within


def _spinning(signum: int, frame: object) -> None:
    os._exit(TIMEOUT_CODE)  # mutmut files the mutant under "timeout", as it does at its own limit


def pytest_runtest_logstart(nodeid: str, location: object) -> None:
    """Arm a CPU-time alarm for the test (setup, call and teardown), scaled from its stats-run time."""
    measured = _stats_durations().get(nodeid) if _testing_a_mutant() else None
    if measured is None:
        return
    signal.signal(signal.SIGPROF, _spinning)
    signal.setitimer(signal.ITIMER_PROF, max(TEST_CPU_FLOOR, TEST_CPU_FACTOR * measured))


def pytest_runtest_logfinish(nodeid: str, location: object) -> None:
    if _testing_a_mutant():
        signal.setitimer(signal.ITIMER_PROF, 0)


async def run(ctx: Context) -> list[Result]:
    return measure(list(MODULES), log=ctx)


def main(argv: list[str]) -> int:
    """`python -m bench.mutation [--working-tree] [--keep] [--all] [--unit-only] MODULE...`: run and report
    the given modules (`--all` runs the listed equivalents too, to find stale entries; `--unit-only` takes
    the covering tests from tests/unit alone: the CI smoke check, which must finish within a minute)."""
    flags = ("--working-tree", "--keep", "--all", "--unit-only")
    paths = [str(Path(arg)) for arg in argv if arg not in flags] or list(MODULES)
    tests = ("tests/unit",) if "--unit-only" in argv else None
    lines = measure(paths, "--working-tree" in argv, "--keep" in argv, run_equivalents="--all" in argv, tests=tests)
    for line in lines:
        print(json.dumps(line, ensure_ascii=False), flush=True)
    return 0 if all(line["target_met"] for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
