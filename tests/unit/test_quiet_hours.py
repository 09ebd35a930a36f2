"""Quiet hours (`/daily quiet`): when a moment falls in them, and when they end, as wall-clock times in the
learner's zone: a daytime range, one across midnight, their edges, and the two DST changes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.core.daily import parse_quiet_hours, quiet_until

BERLIN = "Europe/Berlin"  # UTC+1 in winter, UTC+2 in summer


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "ends"),
    [
        (utc(2026, 1, 14, 7, 59), None),  # 08:59 Berlin: before the start
        (utc(2026, 1, 14, 8, 0), utc(2026, 1, 14, 16, 0)),  # 09:00: the start is quiet, until 17:00 Berlin
        (utc(2026, 1, 14, 15, 59), utc(2026, 1, 14, 16, 0)),  # 16:59
        (utc(2026, 1, 14, 16, 0), None),  # 17:00: the end is not quiet
        (utc(2026, 1, 14, 22, 0), None),  # 23:00: a daytime range does not wrap around midnight
    ],
)
def test_a_daytime_range_is_quiet_from_its_start_until_its_end_in_the_learners_zone(
    moment: datetime, ends: datetime | None
) -> None:
    assert quiet_until("09:00-17:00", BERLIN, moment) == ends


@pytest.mark.parametrize(
    ("moment", "ends"),
    [
        (utc(2026, 1, 14, 20, 59), None),  # 21:59 Berlin
        (utc(2026, 1, 14, 21, 0), utc(2026, 1, 15, 6, 0)),  # 22:00: until 07:00 tomorrow
        (utc(2026, 1, 14, 23, 30), utc(2026, 1, 15, 6, 0)),  # 00:30: past midnight, until 07:00 today
        (utc(2026, 1, 15, 5, 59), utc(2026, 1, 15, 6, 0)),  # 06:59
        (utc(2026, 1, 15, 6, 0), None),  # 07:00
        (utc(2026, 1, 15, 11, 0), None),  # noon
    ],
)
def test_a_night_across_midnight_ends_the_next_morning(moment: datetime, ends: datetime | None) -> None:
    assert quiet_until("22:00-07:00", BERLIN, moment) == ends


def test_no_quiet_hours_are_never_quiet() -> None:
    assert quiet_until(None, BERLIN, utc(2026, 1, 14, 3, 0)) is None
    assert quiet_until("", BERLIN, utc(2026, 1, 14, 3, 0)) is None


def test_an_end_lost_to_the_spring_change_is_the_first_minute_after_it() -> None:
    # 2026-03-29 in Berlin: 02:00 CET jumps to 03:00 CEST, so 02:30 never happens that night
    assert quiet_until("23:00-02:30", BERLIN, utc(2026, 3, 28, 23, 30)) == utc(2026, 3, 29, 1, 0)  # 03:00 CEST


def test_a_night_made_longer_by_the_autumn_change_ends_the_first_time_the_clock_shows_the_end() -> None:
    # 2026-10-25 in Berlin: 03:00 CEST goes back to 02:00 CET, so 02:10 happens twice
    first_0210, second_0210 = utc(2026, 10, 25, 0, 10), utc(2026, 10, 25, 1, 10)
    assert quiet_until("22:00-02:30", BERLIN, first_0210) == utc(2026, 10, 25, 0, 30)  # 02:30 CEST
    assert quiet_until("22:00-02:30", BERLIN, second_0210) is None  # that 02:30 has passed: no longer quiet


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("22:00-07:00", "22:00-07:00"),
        ("22-7", "22:00-07:00"),
        ("10pm TO 7am", "22:00-07:00"),
        ("9:30 17", "09:30-17:00"),
    ],
)
def test_quiet_hours_are_read_in_the_ways_people_write_them(text: str, stored: str) -> None:
    assert parse_quiet_hours(text) == stored


def test_quiet_hours_that_are_not_a_range_say_so_quoting_the_start_of_what_was_typed() -> None:
    with pytest.raises(ValueError, match=r"^“22:00” is not a start and an end, like 22:00-07:00$"):
        parse_quiet_hours(" 22:00 ")
    with pytest.raises(ValueError, match="^“" + "x" * 30 + "” is not"):
        parse_quiet_hours("x" * 40)
    with pytest.raises(ValueError, match="differ"):
        parse_quiet_hours("08:00-08:00")
