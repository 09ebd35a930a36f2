"""Local times and time zones as people type them, and DST-safe "next occurrence" arithmetic."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

_OFFSET = re.compile(r"^(?:utc|gmt)?\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?$", re.I)
_TIME = re.compile(r"^(\d{1,2})(?:[:.h](\d{2}))?\s*(am|pm)?$", re.I)
_LEGACY_PREFIXES = ("Etc/", "SystemV/", "US/", "Canada/", "Mexico/", "Brazil/", "Chile/")


class ZoneError(ValueError):
    """A time zone the user typed that we cannot use; the message says why and what would work."""


@cache
def _zone_index() -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    names = sorted(available_timezones())
    exact = {name.casefold(): name for name in names}
    cities: dict[str, list[str]] = {}
    for name in names:
        if "/" not in name or name.startswith(_LEGACY_PREFIXES):
            continue
        city = name.rsplit("/", 1)[1].casefold()
        for key in {city, city.replace("_", " ")}:
            cities.setdefault(key, []).append(name)
    return exact, {k: tuple(v) for k, v in cities.items()}


def parse_zone(text: str) -> str:
    """Canonical zone name for an IANA name, a unique city, or a fixed offset like UTC+5:30."""
    raw = " ".join(text.strip().split())
    if not raw:
        raise ZoneError("no time zone given")
    if raw.casefold() in ("utc", "gmt", "z"):
        return "UTC"
    offset = _OFFSET.match(raw)
    if offset:
        sign, hours, minutes = offset.group(1), int(offset.group(2)), int(offset.group(3) or 0)
        if hours > 14 or minutes not in (0, 15, 30, 45) or (hours == 14 and minutes):
            raise ZoneError(f"“{raw}” is not a real UTC offset (they run from UTC-12 to UTC+14)")
        if hours == 0 and minutes == 0:
            return "UTC"
        return f"UTC{sign}{hours:02d}:{minutes:02d}"
    exact, cities = _zone_index()
    key = raw.casefold().replace(" ", "_")
    if key in exact:
        return exact[key]
    matches = cities.get(raw.casefold(), ())
    if len({name.split("/", 1)[0] for name in matches}) == 1:
        # same continent: an old alias and its canonical name (America/Buenos_Aires and
        # America/Argentina/Buenos_Aires); the canonical one is the longer path
        return max(matches, key=lambda name: (name.count("/"), name))
    if len(matches) > 1:
        raise ZoneError(f"“{raw}” could be {', '.join(matches)}; please write the full name")
    raise ZoneError(f"I don't know the time zone “{raw[:40]}”")


def zone_info(name: str) -> tzinfo:
    """The tzinfo of a canonical zone name (from parse_zone, or UTC)."""
    if name.startswith("UTC") and len(name) > 3:
        sign = -1 if name[3] == "-" else 1
        hours, minutes = int(name[4:6]), int(name[7:9])
        return timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ZoneError(f"unknown time zone {name!r}") from exc


def parse_local_time(text: str) -> time:
    """'08:00', '8:30', '7', '7am', '9:15pm' -> time; ValueError for anything else."""
    match = _TIME.match(text.strip())
    if not match:
        raise ValueError(f"“{text.strip()[:20]}” is not a time")
    hour, minute, meridiem = int(match.group(1)), int(match.group(2) or 0), (match.group(3) or "").lower()
    if meridiem:
        if not 1 <= hour <= 12:
            raise ValueError(f"“{text.strip()}” is not a time")
        hour = hour % 12 + (12 if meridiem == "pm" else 0)
    if hour > 23 or minute > 59:
        raise ValueError(f"“{text.strip()[:20]}” is not a time")
    return time(hour, minute)


def local_datetime(day: date, at: time, zone: tzinfo) -> datetime:
    """The first instant on `day` when the wall clock in `zone` shows `at` (or, in a DST gap, the
    first valid minute after it), as UTC."""
    wall = datetime.combine(day, at)
    for step in range(0, 24 * 60):
        candidate = (wall + timedelta(minutes=step)).replace(tzinfo=zone, fold=0)
        as_utc = candidate.astimezone(UTC)
        if as_utc.astimezone(zone).replace(tzinfo=None) == candidate.replace(tzinfo=None):
            return as_utc
    raise ValueError("no valid local time found")  # pragma: no cover - zones have no day-long gaps


def next_occurrence(at: time, zone_name: str, after: datetime) -> datetime:
    """The next instant strictly after `after` when it is `at` local time in the zone, as UTC."""
    zone = zone_info(zone_name)
    day = after.astimezone(zone).date() - timedelta(days=1)
    for _ in range(4):
        candidate = local_datetime(day, at, zone)
        if candidate > after:
            return candidate
        day += timedelta(days=1)
    raise ValueError("no next occurrence found")  # pragma: no cover


def local_day_of(moment: datetime, zone_name: str) -> str:
    return moment.astimezone(zone_info(zone_name)).date().isoformat()
