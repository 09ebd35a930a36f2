"""Fixtures for the reliability suite."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.adapters.fake_telegram import FakeTelegram


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server
