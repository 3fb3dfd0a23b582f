"""Which upcoming-order notices exist, and when each is due."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.outbound.capacity import CapacityWarning, capacity_warnings
from bot.outbound.messages import locale_of
from bot.rules.waking_hours import place_notice
from bot.storage.db import ANALYZE_AFTER, Database, analyze, insert_new
from bot.storage.models import (
    OutboundMessage,
    SendStatus,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)

log = logging.getLogger(__name__)

NOTICE_KIND = "notice"
NOTICE_TEMPLATE = "upcoming_order"
#: Subscriptions planned per chunk (per transaction in `run_plan`, where SQLite takes
#: fewer: `Database.batch_rows`); ids per IN list.
CHUNK = 1000


def notice_key(subscription_smartrr_id: str, billing_at: datetime) -> str:
    """The idempotency key of a notice: one per subscription, kind and billing date."""
    return f"{NOTICE_TEMPLATE}:{subscription_smartrr_id}:{billing_at.date().isoformat()}"


@dataclass(frozen=True)
class PlanResult:
    scheduled: int
    expired: int
    cancelled: int
    #: Minutes that release more texts than the sender can send soon (full plans only).
    warnings: tuple[CapacityWarning, ...] = ()


def plan_notices(
    session: Session,
    settings: Settings,
    now: datetime,
    *,
    only: Collection[int] | None = None,
) -> PlanResult:
    """Cancel notices that are no longer true, then create the missing ones.

    A changed billing date (skip, delay, pause, cancel, a change in Smartrr's
    portal) cancels the pending notice of the old date and plans one for the new
    date; a notice that left for a date is never planned again for that date.
    ``only`` limits the work to these subscription ids (a webhook's changes).
    Subscriptions are read in chunks of plain rows, so memory stays flat
    however many there are.
    """
    cancelled = cancel_stale_notices(session, now, only=only)
    scheduled, expired = _plan_chunks(lambda: nullcontext(session), settings, now, only, CHUNK)
    return _finish(session, settings, now, PlanResult(scheduled, expired, cancelled), only)


def run_plan(database: Database, settings: Settings, now: datetime) -> PlanResult:
    """Like `plan_notices` for every subscription, committing each chunk on its own.

    On SQLite a writing transaction holds the one write lock that every webhook
    waits on, and planning 30,000 subscriptions in one transaction held it for
    seconds. A chunk needs nothing from the others (a notice's unique key makes
    planning it twice harmless), so each commits as soon as it is planned.
    """
    with database.begin() as session:
        cancelled = cancel_stale_notices(session, now)
    chunk = database.batch_rows(CHUNK)
    scheduled, expired = _plan_chunks(database.begin, settings, now, None, chunk)
    with database.begin() as session:
        return _finish(session, settings, now, PlanResult(scheduled, expired, cancelled), None)


def _plan_chunks(
    transaction: Callable[[], AbstractContextManager[Session]],
    settings: Settings,
    now: datetime,
    only: Collection[int] | None,
    size: int,
) -> tuple[int, int]:
    """Plan ``size`` subscriptions at a time, each chunk in a ``transaction()``; return
    (scheduled, expired)."""
    scheduled = expired = after = 0
    while True:
        with transaction() as session:
            rows = _candidates(session, now, only, after, size)
            if not rows:
                return scheduled, expired
            new, gone = _plan_chunk(session, settings, now, rows)
        after = rows[-1].id
        scheduled, expired = scheduled + new, expired + gone


def _finish(
    session: Session,
    settings: Settings,
    now: datetime,
    result: PlanResult,
    only: Collection[int] | None,
) -> PlanResult:
    """Log the plan, refresh statistics after a large one, and warn of capacity."""
    if result.scheduled or result.expired or result.cancelled:
        log.info(
            "plan: %d scheduled, %d expired, %d cancelled",
            result.scheduled,
            result.expired,
            result.cancelled,
        )
    if result.scheduled + result.expired >= ANALYZE_AFTER:
        analyze(session, OutboundMessage)
    # Warn when a plan adds texts, not on every run of an unchanged queue.
    if not result.scheduled or only is not None:
        return result
    warnings = capacity_warnings(
        session, settings.sms_rate_per_second, now, zone=settings.shop_timezone
    )
    for warning in warnings:
        log.warning("capacity: %s", warning.message)
    return replace(result, warnings=tuple(warnings))


def _candidates(
    session: Session, now: datetime, only: Collection[int] | None, after: int, size: int
) -> Sequence[Any]:
    """The next ``size`` active subscriptions that may want a notice, by id."""
    query = (
        select(
            Subscription.id,
            Subscription.smartrr_id,
            Subscription.next_billing_at,
            Subscriber.id.label("subscriber_id"),
            Subscriber.phone,
            Subscriber.time_zone,
            Subscriber.state,
        )
        .join(Subscriber, Subscription.subscriber_id == Subscriber.id)
        .where(
            Subscription.id > after,
            Subscription.status == SubscriptionStatus.ACTIVE,
            Subscription.next_billing_at > now,
            Subscriber.phone.is_not(None),
            Subscriber.opted_out_at.is_(None),
        )
        .order_by(Subscription.id)
        .limit(size)
    )
    if only is not None:
        query = query.where(Subscription.id.in_(only))
    return session.execute(query).all()


def _plan_chunk(
    session: Session, settings: Settings, now: datetime, rows: Sequence[Any]
) -> tuple[int, int]:
    """Plan one chunk; return how many notices were scheduled and how many expired."""
    wanted = {notice_key(row.smartrr_id, row.next_billing_at): row for row in rows}
    existing = {
        found.dedupe_key: found
        for found in session.execute(
            select(OutboundMessage.id, OutboundMessage.dedupe_key, OutboundMessage.status).where(
                OutboundMessage.dedupe_key.in_(list(wanted))
            )
        )
    }
    new_rows: list[dict[str, Any]] = []
    revived: list[dict[str, Any]] = []
    scheduled = expired = 0
    for key, row in wanted.items():
        previous = existing.get(key)
        if previous is not None and previous.status != SendStatus.CANCELLED:
            continue
        locale = locale_of(row.phone, row.time_zone, row.state, settings)
        due = place_notice(
            row.next_billing_at, settings.notice_days_before, locale, settings.send_window
        )
        status = SendStatus.SCHEDULED if due is not None else SendStatus.EXPIRED
        scheduled, expired = scheduled + (due is not None), expired + (due is None)
        if previous is not None:
            # The date came back (an undone skip, say) or the number changed
            # before the notice left.
            revived.append(
                {
                    "id": previous.id,
                    "status": status,
                    "due_at": due or now,
                    "error_message": None,
                    "to_number": row.phone,
                }
            )
            continue
        new_rows.append(
            {
                "kind": NOTICE_KIND,
                "dedupe_key": key,
                "subscriber_id": row.subscriber_id,
                "subscription_id": row.id,
                "to_number": row.phone,
                "template": NOTICE_TEMPLATE,
                "body": "",
                "billing_at": row.next_billing_at,
                "status": status,
                "due_at": due or now,
                "expires_at": row.next_billing_at,
                "attempts": 0,
                "created_at": now,
            }
        )
    if revived:
        session.execute(update(OutboundMessage), revived)  # one UPDATE, run for each row
    # Several workers may plan at once: the unique dedupe key decides.
    insert_new(session, OutboundMessage, new_rows, key="dedupe_key")
    return scheduled, expired


def cancel_stale_notices(
    session: Session, now: datetime, *, only: Collection[int] | None = None
) -> int:
    """Cancel scheduled notices whose subscription or number changed, or whose subscriber
    opted out; ``only`` limits this to these subscription ids."""
    stale = (
        select(OutboundMessage.id)
        .join(Subscription, OutboundMessage.subscription_id == Subscription.id)
        .join(Subscriber, OutboundMessage.subscriber_id == Subscriber.id)
        .where(
            OutboundMessage.kind == NOTICE_KIND,
            OutboundMessage.status == SendStatus.SCHEDULED,
            (Subscription.status != SubscriptionStatus.ACTIVE)
            | (Subscription.next_billing_at.is_(None))
            | (Subscription.next_billing_at != OutboundMessage.billing_at)
            | (Subscriber.opted_out_at.is_not(None))
            | (Subscriber.phone.is_(None))
            | (Subscriber.phone != OutboundMessage.to_number),
        )
    )
    if only is not None:
        stale = stale.where(OutboundMessage.subscription_id.in_(only))
    ids = list(session.scalars(stale))
    for start in range(0, len(ids), CHUNK):
        session.execute(
            update(OutboundMessage)
            .where(
                and_(OutboundMessage.id.in_(ids[start : start + CHUNK])),
                OutboundMessage.status == SendStatus.SCHEDULED,
            )
            .values(status=SendStatus.CANCELLED, status_at=now, error_message="no longer true")
        )
    return len(ids)
