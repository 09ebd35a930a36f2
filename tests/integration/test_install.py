"""Installed as a tool (`pip install .`, `pipx install .`): a wheel built from exactly the files the Docker
image copies, installed into a fresh virtual environment and run from a folder far from the source tree,
finds its question bank, its version and the user's data directory. The Dockerfile is checked statically
(no Docker engine here)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
import yaml

from bot.core.bank import QuestionBank
from tests.conftest import CONTENT, ROOT

DOCKERFILE = ROOT / "Dockerfile"


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    joined: list[str] = []
    pending = ""
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        joined.append(pending.strip())
        pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text else "") for text in joined]


def stages(dockerfile: Path) -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction in instructions(dockerfile):
        if instruction[0] == "FROM":
            found.append([])
        found[-1].append(instruction)
    return found


def copied_sources(stage: list[tuple[str, str]]) -> list[str]:
    """What the stage's COPY instructions take from the build context (not from another stage)."""
    sources: list[str] = []
    for name, args in stage:
        words = args.split()
        if name == "COPY" and not any(w.startswith("--from") for w in words):
            sources += [w for w in words[:-1] if not w.startswith("--")]
    return sources


def test_the_image_builds_the_package_and_runs_it_without_the_source_tree() -> None:
    build, final = stages(DOCKERFILE)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    needed = {"pyproject.toml", "setup.py", pyproject["project"]["readme"], "bot", "content"}
    assert needed <= set(copied_sources(build))
    assert any(name == "RUN" and "pip install ." in args for name, args in build)

    assert copied_sources(final) == []  # only the installed environment, copied from the build stage
    assert any(name == "COPY" and "--from=build" in args for name, args in final)
    env = " ".join(args for name, args in final if name == "ENV")
    assert "STUDYBOT_DB=/data/studybot.db" in env
    assert "STUDYBOT_CONTENT" not in DOCKERFILE.read_text(encoding="utf-8")  # the package carries the decks
    assert ("USER", "studybot") in final and final[-1] == ("CMD", '["studybot", "run"]')

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert compose["services"]["bot"]["environment"]["STUDYBOT_DB"] == "/data/studybot.db"
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()}
    assert not needed & ignored


def run(command: list[str], cwd: Path, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, input=stdin, capture_output=True, text=True, timeout=180, cwd=cwd, env=env, check=False
    )


def squeezed(text: str) -> str:
    return "".join(text.split())


@pytest.mark.slow
def test_a_wheel_installed_into_a_fresh_environment_works_from_any_folder(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    build, _final = stages(DOCKERFILE)
    for name in copied_sources(build):  # the same files the image builds from, and nothing else
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(origin, source / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STUDYBOT_", "TELEGRAM_", "DISCORD_", "XDG_"))}
    env.pop("PYTHONPATH", None)
    env.update({"XDG_DATA_HOME": str(tmp_path / "xdg"), "NO_COLOR": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"})

    pip = [sys.executable, "-m", "pip"]
    wheels = tmp_path / "wheels"
    offline = ["--no-deps", "--no-build-isolation", "--no-index"]
    built = run([*pip, "wheel", *offline, "--wheel-dir", str(wheels), str(source)], tmp_path, env)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("studybot-*.whl")

    venv = tmp_path / "venv"
    made = run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, env)
    assert made.returncode == 0, made.stderr
    python, studybot = venv / "bin" / "python", venv / "bin" / "studybot"
    installed = run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)], tmp_path, env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    # The dependencies come from this test's environment (no network in tests): a path entry after the new
    # environment's own site-packages, which holds studybot itself.
    purelib = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path, env)
    site = Path(purelib.stdout.strip())
    (site / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = run([str(python), "-c", "import bot; print(bot.__file__)"], elsewhere, env)
    assert Path(where.stdout.strip()).parent == site / "bot", where.stderr

    version = run([str(studybot), "--version"], elsewhere, env)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert (version.returncode, version.stdout) == (0, f"studybot {pyproject['project']['version']}\n")

    checked = run([str(studybot), "content", "check"], elsewhere, env)
    assert checked.returncode == 0, checked.stderr
    shipped = QuestionBank.load(CONTENT)
    assert checked.stdout.splitlines()[0] == f"{site / 'bot' / 'content'}: OK"
    assert f"{len(shipped)} cards, {len(shipped.topics)} topics" in checked.stdout
    assert "glossary: 0 groups" not in checked.stdout  # the grader's glossary came along

    chat = run([str(studybot), "chat"], elsewhere, env, stdin="/question\n")
    assert chat.returncode == 0, chat.stderr
    asked = [card for card in shipped.cards if squeezed(card.question) in squeezed(chat.stdout)]
    assert len(asked) == 1, chat.stdout
    assert (tmp_path / "xdg" / "studybot" / "studybot.db").is_file()
    assert list(elsewhere.iterdir()) == []
