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
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.common import ROOT, Context, Result

MODULES = (
    "bot/core/study.py",
    "bot/core/daily.py",
    "bot/core/competition.py",
    # the storage repositories (bot/storage/sqlite.py is only a shim over them now); each mutant runs its
    # tests on SQLite and PostgreSQL (a throwaway cluster per mutant run, from the server binaries on PATH).
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
            lines[n] = f"only_mutate = {json.dumps(paths)}"
        elif tests is not None and line.startswith("pytest_add_cli_args_test_selection ="):
            lines[n] = f"pytest_add_cli_args_test_selection = {json.dumps([*tests, '-m', 'not slow'])}"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def _mutmut(root: Path, names: list[str], *, none_expected: bool = False, postgres: bool = False) -> None:
    # For the storage modules the PostgreSQL tests must run, not skip: without them a mutant that breaks
    # only PostgreSQL (a column name's case: asyncpg.Record keeps it, sqlite3.Row ignores it) would pass
    # for a survivor. STUDYBOT_REQUIRE_POSTGRES makes missing server binaries fail the run instead.
    env = {**os.environ, "STUDYBOT_REQUIRE_POSTGRES": "1"} if postgres else None
    done = subprocess.run(
        [sys.executable, "-m", "mutmut", "run", *names], cwd=root, env=env, capture_output=True, text=True, check=False
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
    _mutmut(root, ["bench.no_such_module.x_nothing__mutmut_*"], none_expected=True, postgres=postgres)
    skip = set() if run_equivalents else set(equivalents())
    names = sorted(name for path in paths for name in outcomes(path, root) if name not in skip)
    if log:
        log.log(f"mutmut: {len(names)} mutants in {', '.join(paths)} ({root})")
    _mutmut(root, names, postgres=postgres)
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
