"""Row claims with leases: how many workers share one queue table safely.

A claimed row carries its holder (``lease_owner``) and a deadline (``lease_until``).
A live holder renews the deadline; a holder that died simply lets it run out, and
then any worker may claim the row again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from bot.storage.db import Database
from bot.storage.models import (
    EventStatus,
    InboundMessage,
    InboundStatus,
    OutboundMessage,
    SmartrrEvent,
)


@dataclass(frozen=True)
class RetryPolicy:
    """How a queue holds and retries its rows: the lease, the tries, the backoff between."""

    lease: timedelta
    max_attempts: int
    first_delay: timedelta
    max_delay: timedelta

    def delay(self, attempts: int) -> timedelta:
        """The wait after ``attempts`` tries: the first delay, doubled each time, capped."""
        doublings = max(0, attempts - 1)
        return min(self.max_delay, self.first_delay * int(2**doublings))


#: Texts and Smartrr events: the lease outlasts the Smartrr client's own retries, and
#: eight tries span about 26 minutes, so a ten-minute Smartrr outage is ridden out.
PENDING_WORK = RetryPolicy(
    lease=timedelta(minutes=5),
    max_attempts=8,
    first_delay=timedelta(seconds=15),
    max_delay=timedelta(minutes=10),
)


#: The tables that are work queues: each has ``lease_owner`` and ``lease_until``.
Q = TypeVar("Q", OutboundMessage, InboundMessage, SmartrrEvent)


def claim(
    session: Session,
    model: type[Q],
    where: Sequence[ColumnElement[bool]],
    order_by: Sequence[Any],
    *,
    limit: int,
    owner: str,
    lease: timedelta,
    now: datetime,
) -> list[Q]:
    """Lock up to ``limit`` matching rows that no live lease holds, and stamp ours on them.

    On PostgreSQL the rows are taken with ``FOR UPDATE SKIP LOCKED`` so any
    number of workers can claim at once without waiting on each other. On
    SQLite every write transaction starts with ``BEGIN IMMEDIATE`` (see
    bot.storage.db), so claimers simply take turns.
    """
    free = or_(model.lease_until.is_(None), model.lease_until < now)
    stmt = select(model).where(*where, free).order_by(*order_by).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = list(session.scalars(stmt))
    for row in rows:
        row.lease_owner = owner
        row.lease_until = now + lease
    return rows


#: Queues of work that arrived from outside and is retried until it succeeds.
P = TypeVar("P", InboundMessage, SmartrrEvent)
#: The status of such a queue's rows that still wait for their work.
PENDING: dict[type[InboundMessage | SmartrrEvent], InboundStatus | EventStatus] = {
    InboundMessage: InboundStatus.PENDING,
    SmartrrEvent: EventStatus.PENDING,
}


def claim_pending(
    session: Session,
    model: type[P],
    *,
    limit: int,
    owner: str,
    lease: timedelta,
    now: datetime,
    also: Sequence[ColumnElement[bool]] = (),
) -> list[tuple[int, int]]:
    """Claim pending rows whose next try is due (and that meet ``also``), in due order;
    count the try.

    A row's first try is due when it arrives, so new rows go in the order they came.
    Ordering by the (status, next_attempt_at) index lets the database stop after
    ``limit`` rows instead of sorting every pending one, inside the write lock on SQLite.

    Returns (id, attempts) pairs: the caller handles each outside this transaction.
    """
    rows = claim(
        session,
        model,
        (model.status == PENDING[model], model.next_attempt_at <= now, *also),
        (model.next_attempt_at, model.id),
        limit=limit,
        owner=owner,
        lease=lease,
        now=now,
    )
    for row in rows:
        row.attempts += 1
    return [(row.id, row.attempts) for row in rows]


def renew(
    session: Session,
    model: type[Q],
    ids: Sequence[int],
    *,
    owner: str,
    lease: timedelta,
    now: datetime,
) -> None:
    """Extend our lease on those of ``ids`` we still hold."""
    session.execute(
        update(model)
        .where(model.id.in_(ids), model.lease_owner == owner)
        .values(lease_until=now + lease)
    )


def release(session: Session, model: type[Q], ids: Sequence[int], *, owner: str) -> None:
    """Give back those of ``ids`` we still hold, so any worker may take them at once."""
    session.execute(
        update(model)
        .where(model.id.in_(ids), model.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )


def retry_later(
    database: Database,
    model: type[P],
    row_id: int,
    attempts: int,
    reason: str,
    now: datetime,
    policy: RetryPolicy = PENDING_WORK,
) -> bool:
    """Give back a claimed row to be tried again after the policy's wait, noting why.

    False when its tries are spent: the caller then gives up on it in its own way.
    """
    if attempts >= policy.max_attempts:
        return False
    with database.begin() as session:
        session.execute(
            update(model)
            .where(model.id == row_id)
            .values(
                next_attempt_at=now + policy.delay(attempts),
                error=reason[:500],
                lease_owner=None,
                lease_until=None,
            )
        )
    return True
