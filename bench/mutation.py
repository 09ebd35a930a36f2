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
bench/mutation_equivalent.txt; they count as "equivalent", not "survived", while their function's code
is the code they were checked against (a `# checked FUNCTION HASH` line there, mutmut's hash).

What keeps a pass short (about 7,400 mutants: some 60-80 minutes for a complete pass on a 2-core machine; one
module takes 1-25 minutes, and `--again` after adding tests 6-10 minutes):
- the storage modules' PostgreSQL tests borrow one of a few clusters started once per pass (one per
  mutmut worker; tests/pg.py, STUDYBOT_TEST_PG_CLUSTERS) instead of running initdb and starting a
  server in every mutant's test session; each test still starts on an emptied database;
- this module is also a pytest plugin in the mutants' runs (`-p bench.mutation`): a mutant's tests
  run in the order most likely to fail soonest (the first failure ends the run): the tests that
  failed for the same function's earlier mutants first, then the cheapest test file first (by the
  timings of mutmut's stats run); every test still runs when none fails;
- a mutant's tests are only those that run a statement it changes (narrow_to_lines): the others run
  exactly as on the original code and cannot fail;
- a test that spins or hangs far beyond its measured time (a mutant that loops or waits forever)
  ends the run as a timeout (TEST_CPU_* seconds of CPU, TEST_WALL_* of the clock) instead of after
  mutmut's own limit for all the function's tests together (minutes);
- mutmut's check that the tests pass unmutated runs one test only (CHECKED_ENV): its stats run has
  just run them all on the same copy.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
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
CHECKED_PREFIX = "# checked "
TARGET = 0.85
# mutmut's exit codes per mutant (mutmut.stats.status_by_exit_code): 1 and 3 mean a test failed; 0 means
# the tests passed, 5 and 33 that no test calls the mutated function (so nothing would catch it either)
KILLED_CODES = frozenset({1, 3})
SURVIVED_CODES = frozenset({0, 5, 33})
TIMEOUT_CODE = 36  # mutmut's "timeout"
# A test of a mutant that has used this many CPU seconds, and TEST_CPU_FACTOR times its stats-run time, is spinning.
TEST_CPU_FLOOR = 15.0
TEST_CPU_FACTOR = 20.0
# One that has taken this long by the clock, and TEST_WALL_FACTOR times its time, is stuck (waiting forever,
# or sleeping in a loop: fsrs.Card without a card_id sleeps a millisecond to make one).
TEST_WALL_FLOOR = 60.0
TEST_WALL_FACTOR = 50.0
STATS_FILE = "mutmut-stats.json"  # in mutants/, the folder the tests run in
COVERAGE_ENV = "STUDYBOT_MUTATION_COVERAGE"  # the mutated files whose lines the stats run measures, as JSON
COVERAGE_FILE = "mutation-coverage"  # there too: which test ran which line of the mutated files (coverage.py data)
# Set for mutmut's run of the mutants: its check that the tests pass on the unmutated code then runs one test
# only, as the stats run just ran every one of them on it (and mutmut stops at a failure there).
CHECKED_ENV = "STUDYBOT_MUTATION_CLEAN_CHECKED"
NARROWED_DIR = "mutation-tests"  # there too: per mutant whose changed lines only some of its tests run, those tests
KILLS_FILE = "mutation-kills.tsv"  # there too: function key, tab, node id of a test that failed for one of its mutants


def _function(name: str) -> str:
    """bot.core.daily.xǁDailyServiceǁcommand__mutmut_93 -> bot.core.daily.xǁDailyServiceǁcommand"""
    return name.partition("__mutmut_")[0]


def listed_equivalents() -> tuple[dict[str, str], dict[str, str]]:
    """From the committed list: mutant name -> why it cannot change behaviour, and function -> the mutmut hash
    of the code its entries were checked against (a line `# checked FUNCTION HASH`)."""
    found: dict[str, str] = {}
    checked: dict[str, str] = {}
    if EQUIVALENT_FILE.exists():
        for line in EQUIVALENT_FILE.read_text(encoding="utf-8").splitlines():
            if line.startswith(CHECKED_PREFIX):
                function, _, digest = line.removeprefix(CHECKED_PREFIX).strip().partition(" ")
                checked[function] = digest.strip()
            elif line.strip() and not line.startswith("#"):
                name, _, reason = line.partition(" ")
                found[name] = reason.strip()
    return found, checked


def function_hashes(root: Path = ROOT) -> dict[str, str]:
    """function -> mutmut's hash of its code, for the modules whose mutants are generated under root."""
    hashes: dict[str, str] = {}
    for meta in (root / "mutants").glob("**/*.py.meta"):
        module = str(meta.relative_to(root / "mutants")).removesuffix(".py.meta").replace("/", ".")
        for function, digest in json.loads(meta.read_text(encoding="utf-8"))["hash_by_function_name"].items():
            hashes[f"{module}.{function}"] = digest
    return hashes


def equivalents(root: Path | None = None) -> dict[str, str]:
    """mutant name -> why it cannot change behaviour. With `root` (mutants generated there), only the entries
    whose function is unchanged since they were checked: mutmut numbers a function's mutants in order, so
    after an edit the same name may be another mutant, which then runs like any other until re-checked."""
    found, checked = listed_equivalents()
    if root is None:
        return found
    now = function_hashes(root)
    return {name: why for name, why in found.items() if now.get(_function(name), "?") == checked.get(_function(name))}


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
    one that was run anyway and killed (`--all`) is stale: it counts as killed and is named. Entries whose
    function changed since they were checked ran like the others; they are named with the function's new
    hash, to re-check them and update their `# checked` line."""
    codes = outcomes(path, root)
    hashes = function_hashes(root)
    unchecked = sorted(name for name in listed_equivalents()[0] if name in codes and name not in equivalent)
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
        "unchecked_equivalents": {
            f"{CHECKED_PREFIX}{function} {hashes.get(function)}": [
                name for name in unchecked if _function(name) == function
            ]
            for function in sorted({_function(name) for name in unchecked})
        },
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


def run_mutmut(
    paths: list[str],
    root: Path,
    log: Context | None = None,
    run_equivalents: bool = False,
    again: Path | None = None,
) -> float:
    """Run mutmut over the modules' mutants in `root`; returns the seconds it took.

    First mutmut generates every mutant and maps each function to the tests that call it (a pattern
    that selects no mutant); then it runs the modules' mutants, minus the ones listed as equivalent
    (they would only survive, after running every test of their function: the slowest kind), unless
    `run_equivalents` (to audit the list). With `again` (the folder of a kept earlier pass), only the
    mutants that pass did not kill are run; see carried_over."""
    started = time.perf_counter()
    postgres = any(path.startswith("bot/storage/") for path in paths)
    # one cluster per mutmut worker (mutmut runs as many as there are CPUs)
    clusters: contextlib.AbstractContextManager[dict[str, str]] = (
        shared_postgres(os.cpu_count() or 4) if postgres else contextlib.nullcontext({})
    )
    with clusters as env:
        # the stats run also measures which test runs which line of the mutated files (see narrow_to_lines)
        measuring = {**env, COVERAGE_ENV: json.dumps(paths)}
        _mutmut(root, ["bench.no_such_module.x_nothing__mutmut_*"], none_expected=True, env=measuring)
        skip = set() if run_equivalents else set(equivalents(root))
        names = sorted(name for path in paths for name in outcomes(path, root) if name not in skip)
        carried: dict[str, int] = {}
        if again is not None:
            carried = carried_over(again, root, paths)
            names = [name for name in names if name not in carried]
            if log:
                log.log(f"again: {len(carried)} results carried over from {again}")
        if log:
            log.log(f"mutmut: {len(names)} mutants in {', '.join(paths)} ({root})")
        narrowed = narrow_to_lines(root, paths, names)
        if log:
            log.log(f"line coverage: {narrowed} of them run only the tests that reach their change")
        if names:
            _mutmut(root, names, env={**env, CHECKED_ENV: "1"})
        if carried:
            for meta in (root / "mutants").glob("**/*.py.meta"):
                data = json.loads(meta.read_text(encoding="utf-8"))
                codes = data["exit_code_by_key"]
                codes.update({name: code for name, code in carried.items() if name in codes})
                meta.write_text(json.dumps(data, indent=4), encoding="utf-8")
    return time.perf_counter() - started


def carried_over(previous: Path, root: Path, paths: list[str]) -> dict[str, int]:
    """The mutants an earlier pass (kept in `previous`) killed, with its exit code, for the functions whose code
    has not changed since (the same mutmut hash): after tests were added, they would fail again (a new test
    can only add failures), so only the others need to run."""
    before, now = function_hashes(previous), function_hashes(root)
    carried: dict[str, int] = {}
    for path in paths:
        if not (previous / "mutants" / f"{path}.meta").exists():
            continue
        for name, code in outcomes(path, previous).items():
            function = _function(name)
            if code in KILLED_CODES and before.get(function) is not None and before.get(function) == now.get(function):
                carried[name] = code
    return carried


# --- narrowing a mutant's tests to those that run its changed lines -----------------------------------------
#
# mutmut runs, for a mutant, every test that calls the mutated function. A test that calls the function but
# never runs the statement the mutant changes behaves exactly as on the original code (everything it runs is
# the same), so it cannot fail; leaving it out changes no verdict and saves most of the time of a survivor,
# which otherwise runs every test of its function (hundreds for the study service's entry points). Which test
# runs which line is measured with coverage.py during mutmut's stats run, which runs every selected test once
# on the unmutated copies of the functions (the plugin's pytest_configure).


def narrow_to_lines(root: Path, paths: list[str], names: list[str]) -> int:
    """From the line coverage per test of the stats run, write for each of `names` whose changed statements
    only some of its function's tests run, the tests that do (mutants/NARROWED_DIR/<mutant>); returns how
    many."""
    mutants = root / "mutants"
    import coverage

    data = coverage.CoverageData(basename=str(mutants / COVERAGE_FILE))
    data.read()
    measured = set(data.measured_contexts()) - {""}
    if not measured:
        raise RuntimeError("the stats run measured no line of the mutated files")
    tests_of = {
        key: set(tests)
        for key, tests in json.loads((mutants / STATS_FILE).read_text(encoding="utf-8"))[
            "tests_by_mangled_function_name"
        ].items()
    }
    (mutants / NARROWED_DIR).mkdir(exist_ok=True)
    wanted = set(names)
    count = 0
    for path in paths:
        source = mutants / path
        runs = {line: set(contexts) for line, contexts in data.contexts_by_lineno(str(source.resolve())).items()}
        module = path.removesuffix(".py").replace("/", ".")
        lines = source.read_text(encoding="utf-8").splitlines()
        functions = {
            node.name: node
            for node in ast.walk(ast.parse("\n".join(lines)))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and "__mutmut_" in node.name
        }
        for name, node in functions.items():
            mutant = f"{module}.{name}"
            if mutant not in wanted:
                continue
            original = functions[name.partition("__mutmut_")[0] + "__mutmut_orig"]
            reached = _tests_reaching_change(original, node, lines, runs)
            if reached is None:
                continue
            tests = tests_of.get(mutant.partition("__mutmut_")[0], set())
            keep = {test for test in tests if test in reached or test not in measured}
            if keep != tests:
                (mutants / NARROWED_DIR / mutant).write_text("\n".join(sorted(keep)), encoding="utf-8")
                count += 1
    return count


def _tests_reaching_change(
    original: ast.FunctionDef | ast.AsyncFunctionDef,
    mutant: ast.FunctionDef | ast.AsyncFunctionDef,
    lines: list[str],
    runs: dict[int, set[str]],
) -> set[str] | None:
    """The tests that ran a statement the mutant changes (in the original copy of the function), or None when
    that cannot be told: the change is in the signature (a default value, used by any call) or outside every
    statement."""
    signature = lines[original.lineno - 1 : original.body[0].lineno - 1]
    mutated_signature = lines[mutant.lineno - 1 : mutant.body[0].lineno - 1]
    if [signature[0].replace(original.name, ""), *signature[1:]] != [
        mutated_signature[0].replace(mutant.name, ""),
        *mutated_signature[1:],
    ]:
        return None
    start = original.body[0].lineno
    body = lines[start - 1 : original.end_lineno]
    mutated_body = lines[mutant.body[0].lineno - 1 : mutant.end_lineno]
    changed: set[int] = set()
    for tag, i1, i2, _, _ in difflib.SequenceMatcher(None, body, mutated_body, autojunk=False).get_opcodes():
        if tag != "equal":  # an insertion lies between two lines: count both
            changed.update(start + n for n in range(max(i1 - 1, 0) if i1 == i2 else i1, max(i2, i1 + 1)))
    statements = [node for node in ast.walk(original) if isinstance(node, ast.stmt) and node is not original]
    reached: set[str] = set()
    for line in changed:
        around = [node for node in statements if node.lineno <= line <= (node.end_lineno or node.lineno)]
        if not around:
            return None
        # the innermost statement holding the line; any line of it that ran means it ran (a multi-line
        # statement is recorded on the lines its code is on; a compound one's body runs only after its header)
        innermost = min(around, key=lambda node: (node.end_lineno or node.lineno) - node.lineno)
        for number in range(innermost.lineno, (innermost.end_lineno or innermost.lineno) + 1):
            reached |= runs.get(number, set())
    return reached - {""}


def measure(
    paths: list[str],
    working_tree: bool = False,
    keep: bool = False,
    log: Context | None = None,
    run_equivalents: bool = False,
    tests: tuple[str, ...] | None = None,
    again: Path | None = None,
) -> list[Result]:
    """Run and summarise; the snapshot is removed afterwards unless `keep` (its path then goes to
    stderr, for `mutmut show NAME` there). `tests`: select the covering tests only from these folders."""
    root = ROOT if working_tree else snapshot(paths, tests)
    try:
        seconds = run_mutmut(paths, root, log, run_equivalents, again)
        equivalent = equivalents(root)
        return [summarise(path, equivalent, seconds, root) for path in paths]
    finally:
        if keep and not working_tree:
            print(f"mutants kept in {root}", file=sys.stderr)
        elif not working_tree:
            shutil.rmtree(root, ignore_errors=True)


# --- the pytest plugin in the mutants' runs (`-p bench.mutation`, see snapshot) -----------------------------


_coverage: Any = None  # the stats run's coverage.Coverage (narrow_to_lines)


def pytest_configure() -> None:
    """In mutmut's stats run, keep MUTANT_UNDER_TEST=stats out of the programs tests start: this process's
    own trampolines still read it (mutmut keeps a copy in the process), but a `python -m bot` started from
    another folder would look for mutmut's config there to record its calls, and fail. What a program
    calls is never recorded anyway (the stats are gathered in this process). In a mutant's run, programs
    the tests start do run the mutant (they inherit the variable)."""
    stats = os.environ.get("MUTANT_UNDER_TEST") == "stats"
    if stats:
        del os.environ["MUTANT_UNDER_TEST"]
    elif _testing_a_mutant():
        # Every call of a mutated module's function asks which mutant is active, and mutmut reads it from
        # os.environ each time (a tenth of a test run's CPU); in a mutant's own process it never changes.
        from mutmut.mutation import trampoline

        active = trampoline.get_mutant_under_test()
        trampoline.get_mutant_under_test = lambda: active
    if stats and os.environ.get(COVERAGE_ENV):
        import coverage

        global _coverage
        files = [str(Path(path).resolve()) for path in json.loads(os.environ[COVERAGE_ENV])]
        _coverage = coverage.Coverage(data_file=COVERAGE_FILE, include=files, config_file=False)
        _coverage.start()


def pytest_unconfigure() -> None:
    if _coverage is not None:
        _coverage.stop()
        _coverage.save()


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


def _mutated_function() -> str:
    """The mutmut key of the function the mutant under test changes (its name without __mutmut_N)."""
    return os.environ.get("MUTANT_UNDER_TEST", "").partition("__mutmut_")[0]


def _killers() -> Counter[str]:
    """The tests that failed for earlier mutants of the same function in this pass, with how often."""
    function = _mutated_function()
    try:
        lines = Path(KILLS_FILE).read_text(encoding="utf-8").splitlines()
    except OSError:
        return Counter()
    return Counter(nodeid for line in lines for key, _, nodeid in [line.partition("\t")] if key == function)


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """A mutant's tests, only those that reach its change when that is known (narrow_to_lines; a Hypothesis
    test, which draws new examples each run, always stays), in the order most likely to fail soonest: the
    tests that failed for earlier mutants of the same function first (most often first), then the cheapest
    test file first (a file's tests stay together, in their order, so module fixtures are set up once)."""
    if os.environ.get("MUTANT_UNDER_TEST") == "" and os.environ.get(CHECKED_ENV) and items:
        config.hook.pytest_deselected(items=items[1:])  # mutmut's clean check, already done (CHECKED_ENV)
        del items[1:]
    if not _testing_a_mutant():
        return
    narrowed = Path(NARROWED_DIR) / os.environ["MUTANT_UNDER_TEST"]
    if narrowed.exists():
        keep = set(narrowed.read_text(encoding="utf-8").splitlines())
        left_out = [
            item for item in items if item.nodeid not in keep and not getattr(item.obj, "is_hypothesis_test", False)
        ]
        if left_out:
            config.hook.pytest_deselected(items=left_out)
            dropped = {id(item) for item in left_out}
            items[:] = [item for item in items if id(item) not in dropped]
    durations = _stats_durations()
    killers = _killers()
    cost: dict[str, float] = {}
    for item in items:
        file = item.nodeid.partition("::")[0]
        cost[file] = cost.get(file, 0.0) + durations.get(item.nodeid, math.inf)
    items.sort(key=lambda item: (-killers[item.nodeid], cost[item.nodeid.partition("::")[0]]))  # stable


def pytest_runtest_logreport(report: Any) -> None:
    """Remember a test that failed for a mutant, for the order of its function's other mutants."""
    if report.failed and _testing_a_mutant():
        line = f"{_mutated_function()}\t{report.nodeid}\n".encode()
        descriptor = os.open(KILLS_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(descriptor, line)  # one short appended write: whole lines even from parallel workers
        finally:
            os.close(descriptor)


def _spinning(signum: int, frame: object) -> None:
    os._exit(TIMEOUT_CODE)  # mutmut files the mutant under "timeout", as it does at its own limit


def pytest_runtest_logstart(nodeid: str, location: object) -> None:
    """Arm a CPU-time alarm for the test (setup, call and teardown), scaled from its stats-run time; in the
    stats run, record the lines that follow under the test's name."""
    if _coverage is not None:
        _coverage.switch_context(nodeid)
    measured = _stats_durations().get(nodeid) if _testing_a_mutant() else None
    if measured is None:
        return
    signal.signal(signal.SIGPROF, _spinning)
    signal.signal(signal.SIGALRM, _spinning)
    signal.setitimer(signal.ITIMER_PROF, max(TEST_CPU_FLOOR, TEST_CPU_FACTOR * measured))
    signal.setitimer(signal.ITIMER_REAL, max(TEST_WALL_FLOOR, TEST_WALL_FACTOR * measured))


def pytest_runtest_logfinish(nodeid: str, location: object) -> None:
    if _testing_a_mutant():
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)


async def run(ctx: Context) -> list[Result]:
    return measure(list(MODULES), log=ctx)


def main(argv: list[str]) -> int:
    """`python -m bench.mutation [--working-tree] [--keep] [--all] [--unit-only] [--again DIR] MODULE...`: run
    and report the given modules (`--all` runs the listed equivalents too, to find stale entries; `--unit-only`
    takes the covering tests from tests/unit alone: the CI smoke check, which must finish within a minute;
    `--again DIR`, the folder a `--keep` pass left: run only what that pass did not kill, in functions
    unchanged since, and take its kills as they were: after adding tests, a result for the whole module in
    a fraction of the time)."""
    flags = ("--working-tree", "--keep", "--all", "--unit-only")
    again = None
    if "--again" in argv:
        at = argv.index("--again")
        if at + 1 >= len(argv) or not (Path(argv[at + 1]) / "mutants").is_dir():
            print("--again needs the folder of a kept pass (one with a mutants/ folder)", file=sys.stderr)
            return 2
        again = Path(argv[at + 1])
        argv = argv[:at] + argv[at + 2 :]
    paths = [str(Path(arg)) for arg in argv if arg not in flags] or list(MODULES)
    tests = ("tests/unit",) if "--unit-only" in argv else None
    lines = measure(
        paths,
        "--working-tree" in argv,
        "--keep" in argv,
        run_equivalents="--all" in argv,
        tests=tests,
        again=again,
    )
    for line in lines:
        print(json.dumps(line, ensure_ascii=False), flush=True)
    return 0 if all(line["target_met"] for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
