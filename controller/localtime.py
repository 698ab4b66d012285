"""The commune's wall clock: its time zone (the ``LOAXA_TIMEZONE`` setting) and local days.

Officers, staff and reports think in local days ("today's programme", "the 3rd's
alerts"); rows are stored in UTC. This module is the one place that turns a local day
into a UTC range and a UTC instant into local time. The runtime sets the zone from its
settings at start; until then it is the contract's default.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from mqtt_contract import DEFAULT_TIMEZONE, check_timezone

_zone = ZoneInfo(DEFAULT_TIMEZONE)


def configure(name: str) -> None:
    """Use ``name`` (an IANA zone) as the commune's zone from now on."""
    global _zone
    _zone = ZoneInfo(check_timezone(name))


def zone() -> ZoneInfo:
    return _zone


def zone_name() -> str:
    return _zone.key


def local(dt: datetime | None) -> datetime | None:
    return dt.astimezone(_zone) if dt is not None else None


def today(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(_zone).date()


def day_bounds(day: date, tz: str | None = None) -> tuple[datetime, datetime]:
    """Local day ``day`` (in ``tz``, default the commune's zone) as a UTC range [start,
    end). A bad ``tz`` raises ValueError (or KeyError from zoneinfo)."""
    zone_ = ZoneInfo(check_timezone(tz)) if tz else _zone
    start = datetime.combine(day, time(0), zone_)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)
