"""`python -m bench.mutation --again DIR`: what an earlier kept pass killed is taken over as it was, but only for
functions whose code is unchanged (mutmut's hash); everything else runs again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.mutation import carried_over, main

SERVICE = "xǁServiceǁanswer"
HELPER = "x_helper"


def kept_pass(root: Path, hashes: dict[str, str], codes: dict[str, int | None]) -> Path:
    meta = root / "mutants" / "bot" / "core" / "thing.py.meta"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"hash_by_function_name": hashes, "exit_code_by_key": codes}), encoding="utf-8")
    return root


def name(function: str, n: int) -> str:
    return f"bot.core.thing.{function}__mutmut_{n}"


def test_kills_in_unchanged_functions_are_carried_over_and_everything_else_runs_again(tmp_path: Path) -> None:
    previous = kept_pass(
        tmp_path / "before",
        {SERVICE: "aaaa", HELPER: "bbbb"},
        {
            name(SERVICE, 1): 1,  # killed: carried
            name(SERVICE, 2): 3,  # killed (another failing exit code): carried
            name(SERVICE, 3): 0,  # survived: runs again
            name(SERVICE, 4): 36,  # timed out: runs again
            name(SERVICE, 5): None,  # not run (a listed equivalent): not carried
            name(HELPER, 1): 1,  # killed, but the helper changed since: runs again
        },
    )
    now = kept_pass(tmp_path / "now", {SERVICE: "aaaa", HELPER: "cccc"}, {})
    assert carried_over(previous, now, ["bot/core/thing.py"]) == {name(SERVICE, 1): 1, name(SERVICE, 2): 3}


def test_a_module_the_earlier_pass_did_not_mutate_carries_nothing(tmp_path: Path) -> None:
    previous = kept_pass(tmp_path / "before", {SERVICE: "aaaa"}, {name(SERVICE, 1): 1})
    now = kept_pass(tmp_path / "now", {SERVICE: "aaaa"}, {})
    assert carried_over(previous, now, ["bot/core/other.py"]) == {}


def test_again_without_a_kept_pass_says_what_it_needs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--again", str(tmp_path), "bot/core/actions.py"]) == 2
    assert main(["bot/core/actions.py", "--again"]) == 2
    err = capsys.readouterr().err
    assert err.count("--again needs the folder of a kept pass") == 2
