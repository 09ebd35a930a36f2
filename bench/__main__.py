"""`python -m bench <name> [--full]` or `python -m bench all`: JSON lines on stdout, progress on stderr."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, Context, Result

# In `all`, scale runs before memory so that both use the same 100k-learner database.
BENCHMARKS = ("core", "telegram", "push", "scale", "memory", "quiz", "grading", "picture", "replicas")


async def run_one(name: str, ctx: Context) -> list[Result]:
    module = importlib.import_module(f"bench.{name}")
    started = time.perf_counter()
    lines: list[Result] = await module.run(ctx)
    ctx.log(f"{name} done in {time.perf_counter() - started:.1f}s")
    for line in lines:
        print(json.dumps(line, ensure_ascii=False), flush=True)
    return lines


async def main(names: list[str], full: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="studybot-bench-") as tmp:
        ctx = Context(tmp=Path(tmp), full=full)
        failed = 0
        for name in names:
            try:
                await run_one(name, ctx)
            except Exception as exc:  # one broken benchmark must not hide the others' figures
                failed += 1
                logging.getLogger("bench").exception("benchmark %s failed", name)
                print(json.dumps({"name": name, "error": repr(exc)}), flush=True)
        return 1 if failed else 0


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    # mutation (mutmut, about an hour here for every module) is not part of `all`
    parser.add_argument("name", choices=(*BENCHMARKS, "mutation", "all"))
    parser.add_argument(
        "--full",
        action="store_true",
        help="run `core` at the issue's full size (5,000 learners x 20 answers; about 10+ minutes here)",
    )
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    names = list(BENCHMARKS) if args.name == "all" else [args.name]
    started = time.perf_counter()
    code = asyncio.run(main(names, args.full))
    print(f"[bench] total {time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(cli())
