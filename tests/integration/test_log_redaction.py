"""No secret reaches a log line: checked on the formatted output of the real logging setup.

The secret here matches none of the token shapes the redactor knows, so only the list of named
secrets handed to setup_logging protects it; each case logs it a different way (in the message, as
an argument, in an exception's traceback, through a chained exception, from a library's logger).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest

from bot.logs import REDACTED, redact, setup_logging

SECRET = "correct-horse-battery-staple-Zq7"  # an API key of no known token shape
NOISY = ("httpx", "httpcore", "discord.http", "discord.gateway", "apscheduler.executors")


class UpstreamError(RuntimeError):
    pass


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """setup_logging configures the process's root logger; put it back as pytest had it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in NOISY}
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        for name, old in levels.items():
            logging.getLogger(name).setLevel(old)


def logged(fmt: str, write: Callable[[], None]) -> str:
    out = io.StringIO()
    setup_logging("DEBUG", fmt, [SECRET, "unused-secret"], stream=out)
    write()
    return out.getvalue()


def fail_with_secret() -> None:
    raise UpstreamError(f"POST https://llm.example/v1?key={SECRET} answered 401")


def in_the_message() -> None:
    logging.getLogger("studybot.test").warning(f"calling https://llm.example/v1?key={SECRET}")


def as_an_argument() -> None:
    logging.getLogger("studybot.test").info("calling %s with key=%s", "https://llm.example/v1", SECRET)


def in_a_traceback() -> None:
    try:
        fail_with_secret()
    except UpstreamError:
        logging.getLogger("studybot.test").exception("the grader failed")


def in_a_chained_traceback() -> None:
    try:
        try:
            fail_with_secret()
        except UpstreamError as inner:
            raise ConnectionError("the model server is down") from inner
    except ConnectionError as outer:
        logging.getLogger("studybot.test").error("falling back to the offline grader", exc_info=outer)


def from_a_library_logger() -> None:
    try:
        fail_with_secret()
    except UpstreamError as exc:
        logging.getLogger("httpx").warning("request failed: %r", exc, exc_info=True)


CASES = {
    "in the message": in_the_message,
    "as an argument": as_an_argument,
    "in a traceback": in_a_traceback,
    "in a chained traceback": in_a_chained_traceback,
    "from a library logger": from_a_library_logger,
}


def test_the_secret_used_here_matches_no_token_shape() -> None:
    assert redact(f"key={SECRET}") == f"key={SECRET}"  # so only the named-secret list can redact it


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_named_secret_never_appears_in_formatted_log_output(fmt: str, case: str) -> None:
    output = logged(fmt, CASES[case])
    assert output.strip(), "nothing was logged"
    assert SECRET not in output
    assert REDACTED in output
    if fmt == "json":
        for line in output.splitlines():
            json.loads(line)


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_redacted_traceback_still_says_what_failed_and_where(fmt: str) -> None:
    output = logged(fmt, in_a_chained_traceback)
    assert SECRET not in output
    for evidence in ("Traceback (most recent call last)", "fail_with_secret", "UpstreamError", "ConnectionError"):
        assert evidence in output, evidence
    assert "the model server is down" in output and "answered 401" in output
