"""Pulling subscriptions and their customers from Smartrr into our tables."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.rules.phones import normalize
from bot.smartrr.client import SmartrrClient
from bot.smartrr.errors import SmartrrNotFound
from bot.smartrr.event_changes import announce, queue_resume_reminders, snapshot
from bot.smartrr.records import PurchaseState
from bot.storage.db import ANALYZE_AFTER, Database, analyze, upsert
from bot.storage.models import Subscriber, Subscription, SubscriptionStatus, utcnow
from bot.storage.shop import SHOP_ID, ensure_shop

log = logging.getLogger(__name__)

#: The statuses of running subscriptions, which a sync lists (FAILED: a payment failed).
LISTED = (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED, SubscriptionStatus.FAILED)
#: Subscriptions written per transaction (SQLite takes fewer: `Database.batch_rows`).
BATCH = 500

T = TypeVar("T")


def apply_states(session: Session, states: Iterable[PurchaseState], now: datetime) -> int:
    """Insert or update the given purchase states and their customers; return how many."""
    return write_rows(session, StateRows.of(states, now))


@dataclass(frozen=True)
class StateRows:
    """The rows a batch of purchase states writes: subscribers, and subscriptions by
    their customer's Smartrr id.

    Built before the write transaction: parsing the phone numbers is most of the
    work, and on SQLite every webhook waits while a transaction writes.
    """

    subscribers: list[dict[str, Any]]
    subscriptions: list[tuple[str, dict[str, Any]]]

    @classmethod
    def of(cls, states: Iterable[PurchaseState], now: datetime) -> StateRows:
        """The rows of ``states``, stamped with ``now``."""
        states = list(states)
        customers = {state.customer.id: state.customer for state in states}
        subscribers = [
            {
                "shop_id": SHOP_ID,
                "smartrr_customer_id": customer.id,
                "shopify_customer_id": customer.shopify_id,
                "email": customer.email,
                "first_name": customer.first_name,
                "last_name": customer.last_name,
                "phone": normalize(customer.phone),
                "time_zone": customer.time_zone,
                "state": customer.state,
                "updated_at": now,
            }
            for customer in customers.values()
        ]
        subscriptions = [
            (
                state.customer.id,
                {
                    "smartrr_id": state.id,
                    "shopify_id": state.shopify_id,
                    "status": state.status,
                    "next_billing_at": state.next_billing_at,
                    "products": state.products[:500],
                    "interval_unit": state.interval_unit,
                    "interval_count": state.interval_count,
                    "synced_at": now,
                },
            )
            for state in states
        ]
        return cls(subscribers, subscriptions)


def write_rows(session: Session, rows: StateRows) -> int:
    """Insert or update the subscribers and subscriptions of ``rows``; return how many
    subscriptions.

    Two bulk upserts (customers, then their subscriptions) instead of one ORM
    object per row: a sync of 100,000 subscriptions is dominated by this.
    Objects the session already holds are expired, so they read the new values.
    """
    if not rows.subscriptions:
        return 0
    session.flush()
    subscriber_ids = upsert(
        session,
        Subscriber,
        rows.subscribers,
        keys=("shop_id", "smartrr_customer_id"),
        returning="smartrr_customer_id",
    )
    upsert(
        session,
        Subscription,
        [
            {**subscription, "subscriber_id": subscriber_ids[customer_id]}
            for customer_id, subscription in rows.subscriptions
        ],
        keys=("smartrr_id",),
        returning="smartrr_id",
    )
    # Smartrr's state does not say when a pause ends; what we know of it ends with the pause.
    session.execute(
        update(Subscription)
        .where(
            Subscription.smartrr_id.in_([row["smartrr_id"] for _, row in rows.subscriptions]),
            Subscription.status != SubscriptionStatus.PAUSED,
            Subscription.unpause_at.is_not(None),
        )
        .values(unpause_at=None)
    )
    session.expire_all()
    return len(rows.subscriptions)


def _reread(client: SmartrrClient, shopify_ids: list[str]) -> list[PurchaseState]:
    """The current states of these subscriptions; those Smartrr no longer has are left out."""
    found = []
    for shopify_id in shopify_ids:
        try:
            found.append(client.get_purchase_state(shopify_id))
        except SmartrrNotFound:
            continue
    return found


def _batches(items: Iterable[PurchaseState], size: int) -> Iterator[list[PurchaseState]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _read_ahead(items: Iterator[T]) -> Iterator[T]:
    """Yield from ``items`` while a thread already fetches the next one.

    A sync then writes one batch while Smartrr serves the next page, instead of
    waiting for each in turn. Only one item is ever read ahead, so memory stays flat;
    an error while reading is raised where that item would have been yielded.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-read-ahead") as pool:
        upcoming = pool.submit(next, items, None)
        while (item := upcoming.result()) is not None:
            upcoming = pool.submit(next, items, None)
            yield item


@dataclass(frozen=True)
class SyncResult:
    synced: int
    gone: int


def run_sync(database: Database, client: SmartrrClient, settings: Settings) -> SyncResult:
    """Pull every running subscription (ACTIVE, PAUSED, FAILED); one transaction per batch.

    Subscriptions we knew as running that Smartrr no longer lists are read
    again one by one: they keep the status Smartrr gives them now (EXPIRED,
    CANCELLED), and the ones it no longer has are marked CANCELLED. Either way
    their pending notices stop. Changes the webhooks missed are announced
    (event texts), and paused subscriptions restarting soon get their reminder.
    """
    started = utcnow()
    with database.begin() as session:
        ensure_shop(session, settings)
        # The first sync of an installation finds every subscription new: no welcomes then.
        welcome = session.scalar(select(Subscription.id).limit(1)) is not None
    synced = 0
    pages = client.iter_purchase_states(LISTED)
    for batch in _read_ahead(_batches(pages, database.batch_rows(BATCH))):
        now = utcnow()
        rows = StateRows.of(batch, now)
        with database.begin() as session:
            before = snapshot(session, [state.id for state in batch])
            synced += write_rows(session, rows)
            announce(session, settings, before, now, welcome=welcome)
    unlisted = (Subscription.synced_at < started, Subscription.status.in_(LISTED))
    with database.read() as session:
        vanished = list(
            session.execute(
                select(Subscription.smartrr_id, Subscription.shopify_id).where(*unlisted)
            )
        )
    # No longer listed as running: ask for each what it is now (expired is not cancelled).
    found = _reread(client, [shopify_id for _, shopify_id in vanished if shopify_id])
    with database.begin() as session:
        now = utcnow()
        before = snapshot(session, [smartrr_id for smartrr_id, _ in vanished])
        write_rows(session, StateRows.of(found, now))
        result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
            update(Subscription).where(*unlisted).values(status=SubscriptionStatus.CANCELLED)
        )
        # Gone: no longer running, whether Smartrr still has it (cancelled, expired) or not.
        gone = result.rowcount + sum(state.status not in LISTED for state in found)
        announce(session, settings, before, now)
        queue_resume_reminders(session, settings, now)
        if synced >= ANALYZE_AFTER:
            analyze(session, Subscriber, Subscription)
    log.info("sync: %d subscriptions, %d no longer listed", synced, gone)
    return SyncResult(synced=synced, gone=gone)
