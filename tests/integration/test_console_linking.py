"""Linking from the terminal as a user runs it: `studybot chat --as NAME` (a local profile) uses a code that a
Telegram account asked for, in a subprocess on the same database; the Telegram side hears of it from the
bot process's next tick."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.core.model import Caller, Chat, Identity
from bot.storage.store import Store
from tests.adapters.stack import app_for
from tests.fakes import FakeClock, FakeNotifier
from tests.integration.test_console import run_bot

pytestmark = pytest.mark.slow

ANN = Caller(Identity("telegram", "100"), "Ann", Chat("telegram", "100"))


async def test_a_terminal_profile_links_to_a_telegram_account_with_its_code(tmp_path: Path) -> None:
    db = tmp_path / "data" / "studybot.db"
    db.parent.mkdir()
    async with Store(db) as store:
        app = app_for(store, FakeClock(datetime.now(UTC)))  # the subprocess reads the real clock
        issued = (await app.commands.run(ANN, "link")).plain_text()
    code = re.search(r"[A-Z0-9]{4}-[A-Z0-9]{4}", issued)
    assert code, issued

    wrong = run_bot(tmp_path, "/link ABCD-EFGH\n", "chat", "--as", "bob")
    assert wrong.returncode == 0 and "not valid" in wrong.stdout, wrong.stdout + wrong.stderr
    done = run_bot(tmp_path, f"/link {code.group()}\n/link\n", "chat", "--as", "bob")
    assert done.returncode == 0, done.stderr
    assert "Linked: this terminal account now shares its profile with Telegram (Ann)" in done.stdout, done.stdout
    assert "Terminal (bob)" in done.stdout and "Telegram (Ann)" in done.stdout.split("Linked now:")[-1]
    other = run_bot(tmp_path, "/link\n", "chat", "--as", "carol")  # another local profile: not linked
    assert "only this account, Terminal (carol)" in other.stdout, other.stdout

    async with Store(db) as store:
        app = app_for(store)
        bob = await store.find_learner(Identity("console", "bob"))
        ann = await store.find_learner(ANN.identity)
        assert bob is not None and ann is not None and bob.id == ann.id
        telegram = FakeNotifier("telegram")
        app.notifiers["telegram"] = telegram
        assert app.links is not None and await app.links.deliver_notices() == 1
        assert "Linked: your terminal account bob now shares this profile" in telegram.texts("100")[0]


def test_a_profile_name_is_checked(tmp_path: Path) -> None:
    bad = run_bot(tmp_path, "", "chat", "--as", "../../etc")
    assert bad.returncode == 2 and "a profile name is 1-32 letters" in bad.stderr, bad.stderr
