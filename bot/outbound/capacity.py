"""Capacity warnings: when a window opening releases more texts than the sender can send soon."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.storage.models import OutboundMessage, SendStatus

#: A group of texts due in the same minute that takes longer than this to send is worth a warning.
LIMIT = timedelta(minutes=10)


@dataclass(frozen=True)
class CapacityWarning:
    """Texts due in one minute that need longer than LIMIT at the sender's rate."""

    due_at: datetime
    count: int
    minutes: int
    message: str


def capacity_warnings(
    session: Session, rate_per_second: float, now: datetime, *, zone: str = "UTC"
) -> list[CapacityWarning]:
    """Warnings for each minute whose scheduled texts need more than LIMIT, earliest first.

    Texts already overdue are counted in the current minute: they are all due now.
    ``zone`` is only the zone the message writes the time in (the shop's, for people).
    """
    if rate_per_second <= 0:
        raise ValueError("rate_per_second must be positive")
    # Notices are placed on window openings, so there are few distinct due moments
    # even for many texts: count per moment in SQL, then per minute here.
    rows = session.execute(
        select(OutboundMessage.due_at, func.count())
        .where(OutboundMessage.status == SendStatus.SCHEDULED)
        .group_by(OutboundMessage.due_at)
    ).all()
    current = _minute(now)
    per_minute: Counter[datetime] = Counter()
    for due_at, count in rows:
        per_minute[max(_minute(due_at), current)] += count
    warnings = []
    for due_at, count in sorted(per_minute.items()):
        seconds = count / rate_per_second
        if seconds > LIMIT.total_seconds():
            minutes = math.ceil(seconds / 60)
            warnings.append(
                CapacityWarning(
                    due_at=due_at,
                    count=count,
                    minutes=minutes,
                    message=_describe(due_at, count, minutes, rate_per_second, ZoneInfo(zone)),
                )
            )
    return warnings


def _minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def _describe(due_at: datetime, count: int, minutes: int, rate: float, zone: ZoneInfo) -> str:
    local = due_at.astimezone(zone)
    return (
        f"{count:,} texts due at {local:%H:%M} {local.tzname()} on {local:%b} {local.day} "
        f"need {minutes} min at {rate:g} msg/s"
    )
