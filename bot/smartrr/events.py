"""Smartrr webhook events: what a stored delivery names, and applying it.

The webhook stores each delivery raw, keyed by the event's own id (else a hash
of its body), and answers at once. This job then re-reads the subscriptions
the event is about through the REST API, never trusting the payload's copy
(deliveries arrive late and out of order; the API says how things are now),
and re-plans their notices so a skip, delay, pause, cancel or portal change
moves or cancels the pending notice within seconds, and tells the subscriber
about the change (bot.smartrr.event_changes). The periodic sync catches anything an
event could not say.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.outbound.planner import plan_notices
from bot.smartrr.client import SmartrrClient
from bot.smartrr.errors import SmartrrError, SmartrrUnavailable
from bot.smartrr.event_changes import announce, snapshot
from bot.smartrr.records import PurchaseState
from bot.smartrr.sync import apply_states
from bot.storage.claims import PENDING_WORK, claim_pending, retry_later
from bot.storage.db import Database
from bot.storage.models import (
    EventStatus,
    SmartrrEvent,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    utcnow,
)
from bot.storage.shop import effective_settings, ensure_shop

log = logging.getLogger(__name__)

BATCH = 20
#: Column widths of SmartrrEvent; a longer value is no id we could use.
ID_WIDTH = 64
KEY_WIDTH = 128

TOPIC_HEADERS = ("X-Smartrr-Topic", "X-Smartrr-Event", "X-Smartrr-Webhook-Topic")
EVENT_ID_HEADERS = ("X-Smartrr-Event-Id", "X-Smartrr-Webhook-Id", "X-Smartrr-Delivery-Id")
#: Where a payload may nest the object it is about.
ENVELOPES = ("data", "payload", "object", "purchaseState", "subscription", "resource")
SHOPIFY_ID_KEYS = (
    "shopifySubscriptionId",
    "shopifySubscriptionContractId",
    "subscriptionContractId",
)
#: Keys only a purchase state has: an object with one of them is one, so its "id" is its id.
STATE_KEYS = ("purchaseStateStatus", "custRel", "stLineItems", "nextBillingDate")


@dataclass(frozen=True)
class EventInfo:
    """What a delivery says about itself, read liberally from its body and headers."""

    key: str
    topic: str | None
    purchase_state_id: str | None
    customer_id: str | None
    shopify_id: str | None


def describe(payload: Mapping[str, Any], headers: Mapping[str, str]) -> EventInfo:
    """Read the event key, topic and the ids it names; None for whatever is not there."""
    objects = list(_objects(payload))
    states = [obj for obj in objects if any(key in obj for key in STATE_KEYS)]
    return EventInfo(
        key=_event_key(payload, headers),
        topic=_first(
            [(payload, k) for k in ("topic", "event", "type", "eventType", "eventName")]
            + [(headers, k) for k in TOPIC_HEADERS]
        ),
        purchase_state_id=_first(
            [(obj, "purchaseStateId") for obj in objects]
            + [(payload.get(k), "id") for k in ("purchaseState", "data")]
            + [(obj, "id") for obj in states]
        ),
        customer_id=_first(
            [(obj.get("custRel"), "id") for obj in objects]
            + [(obj, k) for obj in objects for k in ("customerRelationshipId", "customerId")]
            + [(payload.get("customer"), "id")]
        ),
        shopify_id=_first(
            [(obj, k) for obj in objects for k in SHOPIFY_ID_KEYS]
            + [(obj, "shopifyId") for obj in states]
        ),
    )


def _objects(payload: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The payload and the objects it wraps, outermost first (two levels deep)."""
    yield payload
    for key in ENVELOPES:
        inner = payload.get(key)
        if isinstance(inner, dict):
            yield inner
            for nested in ENVELOPES:
                if isinstance(inner.get(nested), dict):
                    yield inner[nested]


def _event_key(payload: Mapping[str, Any], headers: Mapping[str, str]) -> str:
    # A body that is itself a purchase state has the state's id as "id": keying
    # on it would drop every later change of that subscription as a repeat.
    own_id = None if any(key in payload for key in STATE_KEYS) else (payload, "id")
    event_id = _first(
        [(payload, k) for k in ("eventId", "event_id", "webhookEventId", "deliveryId")]
        + ([own_id] if own_id else [])
        + [(headers, k) for k in EVENT_ID_HEADERS],
        width=KEY_WIDTH - 3,
    )
    if event_id is not None:
        return f"id:{event_id}"
    webhook_id = _first([(payload, "webhookId")])
    sent_at = _first([(payload, k) for k in ("timestamp", "createdAt", "sentAt", "eventTime")])
    if webhook_id and sent_at:
        joined = f"{webhook_id}:{sent_at}"
        if len(joined) <= KEY_WIDTH - 3:
            return f"wh:{joined}"
    # ensure_ascii keeps lone surrogates encodable; sort_keys makes it canonical.
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _first(candidates: list[tuple[Any, str]], width: int = ID_WIDTH) -> str | None:
    """The first usable text among (mapping, key) pairs: a string or integer that fits."""
    for source, key in candidates:
        value = source.get(key) if isinstance(source, Mapping) else None
        if isinstance(value, bool) or not isinstance(value, str | int):
            continue
        text = str(value).strip()
        if text and len(text) <= width:
            return text
    return None


# -- the job --------------------------------------------------------------------


class Unusable(Exception):
    """The event names nothing we can look up; a person may read it in the console."""


def process_events(
    database: Database,
    client: SmartrrClient,
    settings: Settings,
    owner: str,
    clock: Callable[[], datetime] = utcnow,
) -> int:
    """Claim pending events and apply each; return how many were taken."""
    now = clock()
    with database.begin() as session:
        work = claim_pending(
            session, SmartrrEvent, limit=BATCH, owner=owner, lease=PENDING_WORK.lease, now=now
        )
    for event_id, attempts in work:
        try:
            _apply(database, client, settings, event_id, clock)
        except SmartrrUnavailable as exc:
            # After the last try the event fails visibly; the periodic sync catches up.
            if retry_later(database, SmartrrEvent, event_id, attempts, str(exc), clock()):
                log.warning(
                    "Smartrr event %s: Smartrr unavailable, try %d later", event_id, attempts
                )
            else:
                _finish(
                    database,
                    event_id,
                    EventStatus.FAILED,
                    f"{exc} The periodic sync will catch up.",
                )
        except (Unusable, SmartrrError) as exc:
            _finish(database, event_id, EventStatus.FAILED, str(exc))
        except Exception:
            # A bug must not stop the queue: the event fails visibly, the sync catches up.
            log.exception("applying Smartrr event %s failed", event_id)
            _finish(database, event_id, EventStatus.FAILED, "internal error")
    return len(work)


@dataclass(frozen=True)
class _Target:
    customer_id: str | None
    purchase_state_id: str | None
    shopify_id: str | None


def _apply(
    database: Database,
    client: SmartrrClient,
    settings: Settings,
    event_id: int,
    clock: Callable[[], datetime],
) -> None:
    # Smartrr is called outside any transaction: on SQLite a transaction holds
    # the write lock, and every other job would wait on the network.
    with database.begin() as session:
        event = session.get(SmartrrEvent, event_id)
        if event is None:
            return
        target = _target(session, event)
    states = _read(client, target)
    with database.begin() as session:
        now = clock()
        ensure_shop(session, settings)  # subscribers belong to it, even before a first sync
        welcome = session.scalar(select(Subscription.id).limit(1)) is not None
        named = [target.purchase_state_id] if target.purchase_state_id else []
        before = snapshot(session, [state.id for state in states] + named)
        apply_states(session, states, now)
        touched = {state.id for state in states}
        if target.customer_id is not None:
            touched |= _mark_unlisted(session, target, touched)
        ids = list(
            session.scalars(select(Subscription.id).where(Subscription.smartrr_id.in_(touched)))
        )
        result = plan_notices(session, effective_settings(session, settings), now, only=ids)
        event = session.get(SmartrrEvent, event_id)
        texts = announce(
            session,
            settings,
            before,
            now,
            welcome=welcome,
            topic=event.topic if event is not None else None,
            event_id=event_id,
            named=target.purchase_state_id,
        )
        if event is not None:
            event.status, event.applied_at, event.error = EventStatus.APPLIED, now, None
            event.lease_owner = event.lease_until = None
    log.info(
        "Smartrr event %s applied: %d subscriptions read, %d notices scheduled, %d cancelled, "
        "%d event texts queued",
        event_id,
        len(states),
        result.scheduled,
        result.cancelled,
        texts,
    )


def _target(session: Session, event: SmartrrEvent) -> _Target:
    """Who to re-read: the customer (named, or found through a state we know), else a
    Shopify subscription id."""
    state_id = event.purchase_state_id
    # The owner of a subscription we know comes from the API; the payload's
    # customer id is only read, so it is the second choice.
    known_owner = (
        session.scalar(
            select(Subscriber.smartrr_customer_id)
            .join(Subscription, Subscription.subscriber_id == Subscriber.id)
            .where(Subscription.smartrr_id == state_id)
        )
        if state_id is not None
        else None
    )
    customer_id = known_owner or event.customer_id
    # The Shopify id has no column: it is read from the stored payload again.
    shopify_id = describe(event.payload, {}).shopify_id
    if customer_id is None and shopify_id is None:
        if state_id is not None:
            raise Unusable(
                f"The event names subscription {state_id}, which the bot does not know yet, "
                "and no customer: the periodic sync will pick it up."
            )
        raise Unusable(
            "The event names no subscription, customer or Shopify subscription id; "
            "nothing to re-read."
        )
    return _Target(customer_id, state_id, shopify_id)


def _read(client: SmartrrClient, target: _Target) -> list[PurchaseState]:
    if target.customer_id is not None:
        return client.customer_purchase_states(target.customer_id)
    assert target.shopify_id is not None
    return [client.get_purchase_state(target.shopify_id)]


def _mark_unlisted(session: Session, target: _Target, listed: set[str]) -> set[str]:
    """A named subscription missing from its customer's list was deleted: it is cancelled."""
    if target.purchase_state_id is None or target.purchase_state_id in listed:
        return set()
    owned = select(Subscriber.id).where(Subscriber.smartrr_customer_id == target.customer_id)
    session.execute(
        update(Subscription)
        .where(
            Subscription.smartrr_id == target.purchase_state_id,
            Subscription.subscriber_id.in_(owned),
            Subscription.status != SubscriptionStatus.CANCELLED,
        )
        .values(status=SubscriptionStatus.CANCELLED)
    )
    return {target.purchase_state_id}


def _finish(database: Database, event_id: int, status: EventStatus, reason: str) -> None:
    with database.begin() as session:
        event = session.get(SmartrrEvent, event_id)
        if event is None:
            return
        event.status, event.error = status, reason[:500]
        event.lease_owner = event.lease_until = None
    log.warning("Smartrr event %s %s: %s", event_id, status, reason)
