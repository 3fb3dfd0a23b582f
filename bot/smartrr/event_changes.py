"""Finding and queueing event texts: changes made outside a conversation with the bot.

A skip in the customer portal, a pause by support, a failed payment: the webhook job and
the reconciliation sync both note how each subscription was stored (`snapshot`) before
they apply what Smartrr says, then call `announce`. That one place decides what changed
(`detect`), leaves out changes the bot itself made because of a text (the conversation
has confirmed those already) and queues the text for the subscriber's waking hours. What
is no longer true when its time comes is dropped, not sent (`bot.outbound.event_texts.still_true`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from bot.config import Settings
from bot.outbound.event_texts import (
    DATED,
    EVENT_KIND,
    PAYMENT_KINDS,
    RUNNING,
    TEMPLATE_PREFIX,
    drop_stale,
    enabled,
    has_running,
    topic_kind,
)
from bot.outbound.messages import subscriber_locale
from bot.rules.waking_hours import next_allowed
from bot.storage.db import insert_new
from bot.storage.models import (
    ActionLog,
    ActionResult,
    OutboundMessage,
    SendStatus,
    Shop,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)
from bot.storage.shop import SHOP_ID, effective_settings

log = logging.getLogger(__name__)

#: An event text that cannot leave in this long (waking hours, the daily cap) is stale.
TTL = timedelta(hours=48)
#: A change the bot made by text this recently is its own echo, not news.
ECHO_WINDOW = timedelta(hours=2)
RESUME_REMINDER_AHEAD = timedelta(days=7)
NEVER = datetime.max.replace(tzinfo=UTC)
#: The conversation's actions that move the order date.
DATE_ACTIONS = ("skip", "unskip", "delay")
#: Which of the bot's own actions (`ActionLog.action`) each kind of change may echo.
ECHO_ACTIONS: dict[str, tuple[str, ...]] = {
    "skipped": DATE_ACTIONS,
    "unskipped": DATE_ACTIONS,
    "date_changed": DATE_ACTIONS,
    "paused": ("pause",),
    "resumed": ("activate",),
    "cancelled": ("cancel",),
    "goodbye": ("cancel",),
}


@dataclass(frozen=True)
class Seen:
    """A subscription as stored before a change from Smartrr was applied."""

    status: str
    next_billing_at: datetime | None


def snapshot(session: Session, smartrr_ids: Iterable[str]) -> dict[str, Seen | None]:
    """How these subscriptions are stored now; None for those not stored yet."""
    seen: dict[str, Seen | None] = dict.fromkeys(smartrr_ids)
    rows = session.execute(
        select(Subscription.smartrr_id, Subscription.status, Subscription.next_billing_at).where(
            Subscription.smartrr_id.in_(list(seen))
        )
    )
    for smartrr_id, status, next_billing_at in rows:
        seen[smartrr_id] = Seen(status, next_billing_at)
    return seen


def detect(
    before: Seen | None, after: Subscription, topic: str | None, *, welcome: bool, now: datetime
) -> str | None:
    """The change between two states of a subscription worth a text, if any.

    ``topic`` is the webhook's `topic_kind`: it only says which kind a moved order
    date is (a skip is a moved date); the states themselves decide whether anything
    changed, so a late or repeated delivery says nothing. A new subscription is
    welcomed when ``welcome`` (the shop had subscriptions before) or the topic says
    "created". A cancellation is "cancelled" here; `announce` tells a last one apart.
    """
    if before is None:
        wanted = welcome or topic == "welcome"
        return "welcome" if wanted and after.status == SubscriptionStatus.ACTIVE else None
    if after.status != before.status:
        if after.status == SubscriptionStatus.CANCELLED:
            return "cancelled"
        if (before.status, after.status) == (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED):
            return "paused"
        if (before.status, after.status) == (SubscriptionStatus.PAUSED, SubscriptionStatus.ACTIVE):
            return "resumed"
        return None
    old, new = before.next_billing_at, after.next_billing_at
    # After an order is billed Smartrr moves the date on by itself: that is no news.
    billed = old is not None and old <= now
    if after.status == SubscriptionStatus.ACTIVE and new is not None and new != old and not billed:
        return topic if topic in ("skipped", "unskipped") else "date_changed"
    return None


def announce(
    session: Session,
    settings: Settings,
    before: Mapping[str, Seen | None],
    now: datetime,
    *,
    welcome: bool = False,
    topic: str | None = None,
    event_id: int | None = None,
    named: str | None = None,
) -> int:
    """Queue the texts the changes since ``before`` call for, and drop queued ones that are
    no longer true; return how many were queued.

    ``topic``, ``event_id`` and ``named`` (the subscription it names) come from a
    webhook: payments are known from the topic alone, never from a state.
    """
    settings = effective_settings(session, settings)
    shop = session.get(Shop, SHOP_ID)
    subscriptions = list(
        session.scalars(
            select(Subscription)
            .where(Subscription.smartrr_id.in_(list(before)))
            .order_by(Subscription.id)
        )
    )
    meaning = topic_kind(topic)
    detected = {
        subscription.id: detect(
            before[subscription.smartrr_id], subscription, meaning, welcome=welcome, now=now
        )
        for subscription in subscriptions
    }
    kinds = {id_: kind for id_, kind in detected.items() if kind is not None}
    # The changed ones again, with their subscribers (`queue` reads them) in the same query.
    changed = list(
        session.scalars(
            select(Subscription)
            .where(Subscription.id.in_(list(kinds)))
            .options(joinedload(Subscription.subscriber))
            .order_by(Subscription.id)
        )
        if kinds
        else ()
    )
    recent = _recent_actions(session, [s.id for s in changed if kinds[s.id] in ECHO_ACTIONS], now)
    queued = 0
    farewells: set[int] = set()
    for subscription in changed:
        kind = kinds[subscription.id]
        if kind == "cancelled" and not has_running(session, subscription.subscriber_id):
            if subscription.subscriber_id in farewells:
                continue  # several ended at once: one goodbye says it
            farewells.add(subscription.subscriber_id)
            kind = "goodbye"
        if kind in ECHO_ACTIONS and _echoes(recent.get(subscription.id, ()), subscription, kind):
            log.info("event %s of subscription %s is the bot's own change", kind, subscription.id)
            continue
        stamp = _stamp(kind, subscription, now)
        queued += queue(session, settings, shop, subscription, kind, stamp, now)
    if meaning in PAYMENT_KINDS and event_id is not None:
        target = _payment_target(subscriptions, named)
        if target is not None:
            queued += queue(session, settings, shop, target, meaning, f"e{event_id}", now)
    drop_stale(session, [s.id for s in subscriptions], now)
    return queued


def queue_resume_reminders(session: Session, settings: Settings, now: datetime) -> int:
    """Queue the heads-up for paused subscriptions restarting by themselves within 7 days."""
    settings = effective_settings(session, settings)
    shop = session.get(Shop, SHOP_ID)
    if not enabled(shop, "resume_reminder"):
        return 0
    paused = session.scalars(
        select(Subscription)
        .join(Subscriber, Subscription.subscriber_id == Subscriber.id)
        .where(
            Subscription.status == SubscriptionStatus.PAUSED,
            Subscription.unpause_at > now,
            Subscription.unpause_at <= now + RESUME_REMINDER_AHEAD,
            Subscriber.phone.is_not(None),
            Subscriber.opted_out_at.is_(None),
        )
    )
    queued = 0
    for subscription in paused:
        resumes = subscription.unpause_at
        assert resumes is not None
        stamp = resumes.date().isoformat()
        queued += queue(
            session, settings, shop, subscription, "resume_reminder", stamp, now, expires=resumes
        )
    return queued


def queue(
    session: Session,
    settings: Settings,
    shop: Shop | None,
    subscription: Subscription,
    kind: str,
    stamp: str,
    now: datetime,
    *,
    expires: datetime | None = None,
) -> bool:
    """Queue one event text in the subscriber's next waking hour, unless it is switched
    off, cannot reach them or was queued before."""
    subscriber = subscription.subscriber
    if not enabled(shop, kind) or subscriber.phone is None:
        return False
    if subscriber.opted_out or subscriber.unreachable_at is not None:
        return False
    expires = expires or now + TTL
    due = next_allowed(now, subscriber_locale(subscriber, settings), settings.send_window)
    if due >= expires:
        return False
    row = {
        "kind": EVENT_KIND,
        "dedupe_key": f"{EVENT_KIND}:{kind}:{subscription.smartrr_id}:{stamp}",
        "subscriber_id": subscriber.id,
        "subscription_id": subscription.id,
        "to_number": subscriber.phone,
        "template": TEMPLATE_PREFIX + kind,
        "body": "",
        "status": SendStatus.SCHEDULED,
        "due_at": due,
        "expires_at": expires,
        "attempts": 0,
        "created_at": now,
    }
    # The webhook job and the sync may see the same change at once: the key decides.
    added = insert_new(session, OutboundMessage, [row], key="dedupe_key") == 1
    if added:
        log.info("event text %s queued for subscription %s", kind, subscription.id)
    return added


def _stamp(kind: str, subscription: Subscription, now: datetime) -> str:
    """What makes one event of a kind distinct: the new order date, else the day it happened."""
    if kind == "welcome":
        return "new"
    if kind in DATED:
        assert subscription.next_billing_at is not None
        return subscription.next_billing_at.date().isoformat()
    return now.date().isoformat()


@dataclass(frozen=True)
class Action:
    """One of the bot's recent actions on a subscription, as `_echoes` weighs it."""

    action: str
    result: str
    new_billing_at: datetime | None


def _recent_actions(
    session: Session, subscription_ids: Collection[int], now: datetime
) -> dict[int, list[Action]]:
    """The bot's actions of the last ECHO_WINDOW on these subscriptions (one query)."""
    recent: dict[int, list[Action]] = {}
    if not subscription_ids:
        return recent
    rows = session.execute(
        select(
            ActionLog.subscription_id, ActionLog.action, ActionLog.result, ActionLog.new_billing_at
        ).where(
            ActionLog.subscription_id.in_(list(subscription_ids)),
            # "started" too: the webhook may be applied before the conversation notes "ok".
            ActionLog.result.in_((ActionResult.OK, ActionResult.STARTED)),
            ActionLog.created_at >= now - ECHO_WINDOW,
        )
    )
    for subscription_id, action, result, new_billing_at in rows:
        recent.setdefault(subscription_id, []).append(Action(action, result, new_billing_at))
    return recent


def _echoes(recent: Iterable[Action], subscription: Subscription, kind: str) -> bool:
    """Did the bot make this change itself because of a text? The conversation confirmed it."""
    actions = ECHO_ACTIONS[kind]
    return any(
        done.action in actions
        # Only the date the bot set is its echo: a later move in the portal is news.
        and (
            actions != DATE_ACTIONS
            or done.result == ActionResult.STARTED
            or done.new_billing_at == subscription.next_billing_at
        )
        for done in recent
    )


def _payment_target(
    subscriptions: Collection[Subscription], named: str | None
) -> Subscription | None:
    """The subscription a payment event is about: the one it names, else the customer's
    running one with the soonest order (one text, however many subscriptions they have)."""
    for subscription in subscriptions:
        if subscription.smartrr_id == named:
            return subscription
    running = [s for s in subscriptions if s.status in RUNNING]
    return min(
        running,
        key=lambda s: (s.status != SubscriptionStatus.ACTIVE, s.next_billing_at or NEVER),
        default=None,
    )
