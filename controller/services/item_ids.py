"""Plan item ids: one occurrence of one schedule, ``s{schedule}-{unix seconds}``.

The same id is in the plan, in an emergency's play command, in every playback report and
in the delivery views, so a node plays an item once whichever way it heard of it and the
log can name the schedule a report belongs to. Built and parsed only here.
"""

from __future__ import annotations

import re
from datetime import datetime

_ITEM = re.compile(r"^s(\d+)-(\d+)$")


def item_id(schedule_id: int, occurrence: datetime) -> str:
    return f"s{schedule_id}-{int(occurrence.timestamp())}"


def item_prefix(schedule_id: int) -> str:
    """What every item id of one schedule starts with (to find its reports)."""
    return f"s{schedule_id}-"


def schedule_of(item: str) -> int | None:
    """The schedule of an item id; None for an id not built here (a live item, junk)."""
    m = _ITEM.match(item)
    return int(m.group(1)) if m else None


def schedule_label(item: str) -> str:
    """``s12`` for items of schedule 12 (the report groups an item's occurrences)."""
    sid = schedule_of(item)
    return f"s{sid}" if sid is not None else item
