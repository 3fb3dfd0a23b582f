"""Event texts: their kinds, what a webhook topic means, and whether a queued one is still
true, may go under the daily cap, and what its template is rendered with.

An event text tells a subscriber about a change made outside a conversation with the
bot (the customer portal, support, a payment). bot.smartrr.event_changes finds and queues them;
the dispatcher asks `still_true` and `cap_until` before one leaves.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.outbound.messages import base_variables, format_date, local_zone
from bot.rules.catalog import SUBSCRIPTION_VARIABLES
from bot.storage.models import (
    OutboundMessage,
    SendStatus,
    Shop,
    SmartrrEvent,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)

EVENT_KIND = "event"
TEMPLATE_PREFIX = "event_"
KINDS = (
    "welcome",
    "skipped",
    "unskipped",
    "date_changed",
    "paused",
    "resumed",
    "cancelled",
    "goodbye",
    "payment_failed",
    "payment_method_updated",
    "resume_reminder",
)
#: A topic that means "paid": it sends nothing, it makes a payment_failed text untrue.
PAYMENT_SUCCEEDED = "payment_succeeded"
PAYMENT_KINDS = ("payment_failed", "payment_method_updated")
RUNNING = (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED)
#: Kinds about a new order date; their stamp is that date.
DATED = ("skipped", "unskipped", "date_changed")
#: The status each kind describes: once the subscription has left it, the text is untrue.
DESCRIBES = {
    "skipped": SubscriptionStatus.ACTIVE,
    "unskipped": SubscriptionStatus.ACTIVE,
    "date_changed": SubscriptionStatus.ACTIVE,
    "paused": SubscriptionStatus.PAUSED,
    "resumed": SubscriptionStatus.ACTIVE,
    "cancelled": SubscriptionStatus.CANCELLED,
    "goodbye": SubscriptionStatus.CANCELLED,
    "resume_reminder": SubscriptionStatus.PAUSED,
}
#: Texts the bot starts (as opposed to answers): the daily cap counts these.
BOT_INITIATED = ("notice", EVENT_KIND)
#: States of a text that has left, or may have: they count toward the cap.
LEFT = (
    SendStatus.SENDING,
    SendStatus.ACCEPTED,
    SendStatus.QUEUED,
    SendStatus.SENT,
    SendStatus.DELIVERED,
    SendStatus.UNDELIVERED,
)
CAP_WINDOW = timedelta(hours=24)


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def enabled(shop: Shop | None, kind: str) -> bool:
    """Whether the merchant lets ``kind`` go out (a kind never switched is on)."""
    switches = shop.event_texts if shop is not None else {}
    return bool(switches.get(kind, True))


def topic_kind(topic: str | None) -> str | None:
    """What a Smartrr webhook topic says happened, read by its words in any spelling.

    None when the topic names nothing worth a text ("purchase_state.updated"): the
    change itself, read back from Smartrr, then decides.
    """
    if not topic:
        return None
    words = re.findall(r"[a-z]+", _CAMEL.sub(" ", topic).lower())
    joined = "".join(words)

    def has(*stems: str) -> bool:
        return any(word.startswith(stem) for word in words for stem in stems)

    money = "payment" in joined or has("charge", "bill")
    if money and has("fail", "declin"):
        return "payment_failed"
    if "paymentmethod" in joined or has("card"):
        return "payment_method_updated"
    if money and has("succe", "paid"):
        return PAYMENT_SUCCEEDED
    if "unskip" in joined:
        return "unskipped"
    if has("skip"):
        return "skipped"
    if has("cancel"):
        return "cancelled"
    if "unpause" in joined or has("activat", "reactivat", "resum"):
        return "resumed"
    if has("pause"):
        return "paused"
    if has("creat"):
        return "welcome"
    if "date" in words or has("reschedul"):
        return "date_changed"
    return None


def kind_of(message: OutboundMessage) -> str:
    """The kind of an event text, from its template name."""
    return message.template.removeprefix(TEMPLATE_PREFIX)


def stamp_of(message: OutboundMessage) -> str:
    """The last part of an event text's key: the date it is about, or its event ("e12")."""
    return (message.dedupe_key or "").rsplit(":", 1)[-1]


def still_true(session: Session, message: OutboundMessage) -> str | None:
    """Why a queued event text is no longer true (so it is dropped), or None when it is."""
    kind, stamp = kind_of(message), stamp_of(message)
    subscription = (
        session.get(Subscription, message.subscription_id) if message.subscription_id else None
    )
    if subscription is None:
        return "subscription no longer known"
    status = subscription.status
    if kind in DESCRIBES and status != DESCRIBES[kind]:
        return f"subscription is {status.lower()} now"
    if kind not in DESCRIBES and status == SubscriptionStatus.CANCELLED:
        return "subscription cancelled since"
    if kind in DATED and _day(subscription.next_billing_at) != stamp:
        return "order date changed again"
    if kind == "resume_reminder" and _day(subscription.unpause_at) != stamp:
        return "resume date changed"
    if kind == "goodbye" and has_running(session, subscription.subscriber_id):
        return "another subscription is running"
    if kind == "payment_failed" and _paid_since(session, subscription, stamp):
        return "paid or card updated since"
    return None


def drop_stale(session: Session, subscription_ids: Collection[int], now: datetime) -> int:
    """Cancel the queued event texts of these subscriptions that are no longer true."""
    if not subscription_ids:
        return 0
    queued = session.scalars(
        select(OutboundMessage).where(
            OutboundMessage.kind == EVENT_KIND,
            OutboundMessage.status == SendStatus.SCHEDULED,
            OutboundMessage.subscription_id.in_(list(subscription_ids)),
        )
    )
    dropped = 0
    for message in queued:
        reason = still_true(session, message)
        if reason is not None:
            message.status = SendStatus.CANCELLED
            message.status_at, message.error_message = now, reason
            dropped += 1
    return dropped


def cap_until(session: Session, subscriber_id: int, at: datetime, limit: int) -> datetime | None:
    """When one more bot-initiated text may reach the subscriber, if not at ``at``.

    At most ``limit`` in any 24 hours (several states' laws): the next may go 24 hours
    after the oldest of the last ``limit``.
    """
    left_at = func.coalesce(OutboundMessage.sent_at, OutboundMessage.claimed_at)
    times = list(
        session.scalars(
            select(left_at)
            .where(
                OutboundMessage.subscriber_id == subscriber_id,
                OutboundMessage.kind.in_(BOT_INITIATED),
                OutboundMessage.status.in_(LEFT),
                left_at > at - CAP_WINDOW,
            )
            .order_by(left_at)
        )
    )
    if len(times) < limit:
        return None
    return times[len(times) - limit] + CAP_WINDOW


def event_variables(
    settings: Settings,
    subscriber: Subscriber | None,
    subscription: Subscription | None,
    now: datetime,
) -> dict[str, object]:
    """What an event template is rendered with: the subscription as it is now."""
    variables: dict[str, object] = dict.fromkeys((*SUBSCRIPTION_VARIABLES, "resume_date"), "")
    variables |= base_variables(settings, subscriber, subscription)
    if subscription is not None:
        zone = local_zone(subscriber, settings)
        variables["new_delivery_date"] = variables["next_order_date"]
        variables["resume_date"] = format_date(subscription.unpause_at, zone)
        if subscription.next_billing_at is not None:
            days = (
                subscription.next_billing_at.astimezone(zone).date() - now.astimezone(zone).date()
            ).days
            variables["days_until"] = max(0, days)
    return variables


def has_running(session: Session, subscriber_id: int) -> bool:
    """Whether the subscriber has a subscription that is active or paused."""
    running = select(Subscription.id).where(
        Subscription.subscriber_id == subscriber_id, Subscription.status.in_(RUNNING)
    )
    return session.scalar(running.limit(1)) is not None


def _paid_since(session: Session, subscription: Subscription, stamp: str) -> bool:
    """Has a payment succeeded, or the card changed, since the failure this text is about?"""
    failure_id = int(stamp[1:]) if stamp[:1] == "e" and stamp[1:].isdigit() else 0
    customer_id = subscription.subscriber.smartrr_customer_id
    topics = session.scalars(
        select(SmartrrEvent.topic).where(
            SmartrrEvent.id > failure_id,
            or_(
                SmartrrEvent.purchase_state_id == subscription.smartrr_id,
                SmartrrEvent.customer_id == customer_id,
            ),
        )
    )
    return any(
        topic_kind(topic) in (PAYMENT_SUCCEEDED, "payment_method_updated") for topic in topics
    )


def _day(moment: datetime | None) -> str:
    return moment.date().isoformat() if moment is not None else ""
