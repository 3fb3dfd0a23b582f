"""The send-time checks: whether a claimed text may still go, and its body when it may."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.outbound.event_texts import (
    BOT_INITIATED,
    EVENT_KIND,
    cap_until,
    event_variables,
    still_true,
)
from bot.outbound.messages import base_variables, local_zone, render_message, subscriber_locale
from bot.rules.waking_hours import is_allowed, next_allowed
from bot.storage.models import (
    OutboundMessage,
    SendStatus,
    Shop,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)
from bot.storage.shop import SHOP_ID, effective_settings

#: What may still reach an opted-out number: the answers carriers require.
OPTED_OUT_TEMPLATES = frozenset({"help", "opt_in_confirmed", "opt_out_confirmed"})
#: Texts someone is waiting for (an answer, a merchant's own message): they go
#: at any hour, to unreachable-marked numbers, and while bot texts are off.
ON_REQUEST = frozenset({"reply", "manual"})


@dataclass(frozen=True)
class Hold:
    """Why a text must not go now: closed as ``status``, else left scheduled (until ``until``)."""

    status: SendStatus | None = None
    reason: str | None = None
    until: datetime | None = None


def policy(session: Session, settings: Settings) -> tuple[Settings, bool]:
    """The merchant's settings in force, and whether bot-initiated texts may go."""
    shop = session.get(Shop, SHOP_ID)
    return effective_settings(session, settings), shop is None or shop.sending_enabled


def check(
    message: OutboundMessage,
    subscriber: Subscriber | None,
    subscription: Subscription | None,
    settings: Settings,
    at: datetime,
) -> Hold | None:
    """Send-time checks for a text leaving at ``at``: None when it may go."""
    opted_out = subscriber is not None and subscriber.opted_out
    if opted_out and message.template not in OPTED_OUT_TEMPLATES:
        return Hold(SendStatus.CANCELLED, "subscriber opted out")
    if message.kind in ON_REQUEST:
        return None
    if subscriber is None:
        return Hold(SendStatus.CANCELLED, "subscriber no longer known")
    if subscriber.unreachable_at is not None:
        return Hold(SendStatus.CANCELLED, "number marked unreachable")
    if message.expires_at is not None and at >= message.expires_at:
        return Hold(SendStatus.EXPIRED, "not sent before the billing moment")
    # A notice: the order it announces must still be coming on that date.
    announced = message.billing_at
    if announced is not None and (
        subscription is None
        or subscription.status != SubscriptionStatus.ACTIVE
        or subscription.next_billing_at != announced
    ):
        return Hold(SendStatus.CANCELLED, "billing date changed")
    locale = subscriber_locale(subscriber, settings)
    if is_allowed(at, locale, settings.send_window):
        return None
    later = next_allowed(at, locale, settings.send_window)
    if message.expires_at is not None and later >= message.expires_at:
        return Hold(SendStatus.EXPIRED, "no waking hour left before billing")
    return Hold(until=later)


def recheck(
    session: Session, message: OutboundMessage, settings: Settings, at: datetime
) -> Hold | None:
    """The send-time checks that read other rows: an event text must still be true, and a
    bot-initiated text must fit the subscriber's daily cap (the overflow waits)."""
    if message.kind == EVENT_KIND:
        reason = still_true(session, message)
        if reason is not None:
            return Hold(SendStatus.CANCELLED, reason)
    if message.kind not in BOT_INITIATED or message.subscriber_id is None:
        return None
    # Rows begun earlier in this burst are flushed first, so they count too.
    until = cap_until(session, message.subscriber_id, at, settings.bot_texts_per_day)
    if until is None:
        return None
    if message.expires_at is not None and until >= message.expires_at:
        return Hold(SendStatus.EXPIRED, "daily text limit reached until it was too late")
    return Hold(until=until)


def related(
    session: Session, rows: Sequence[OutboundMessage]
) -> tuple[dict[int | None, Subscriber], dict[int | None, Subscription]]:
    """The batch's subscribers and subscriptions by id, in two queries rather than two a row."""
    subscriber_ids = {m.subscriber_id for m in rows if m.subscriber_id is not None}
    subscription_ids = {m.subscription_id for m in rows if m.subscription_id is not None}
    subscribers = session.scalars(select(Subscriber).where(Subscriber.id.in_(subscriber_ids)))
    subscriptions = session.scalars(
        select(Subscription).where(Subscription.id.in_(subscription_ids))
    )
    return {s.id: s for s in subscribers}, {s.id: s for s in subscriptions}


def apply(message: OutboundMessage, hold: Hold, now: datetime) -> None:
    """Release a held row: close it, or leave it scheduled (due at ``until`` when it has one)."""
    message.lease_owner = message.lease_until = None
    if hold.status is not None:
        close(message, hold.status, hold.reason or hold.status, now)
    elif hold.until is not None:
        message.due_at = hold.until


def render(
    session: Session,
    message: OutboundMessage,
    subscriber: Subscriber | None,
    subscription: Subscription | None,
    settings: Settings,
    now: datetime,
    sources: dict[str, str] | None = None,
) -> str:
    """The body of a bot-initiated text, rendered with the details as they are now."""
    if message.kind == EVENT_KIND:
        variables = event_variables(settings, subscriber, subscription, now)
        return render_message(session, message.template, variables, sources)
    variables = base_variables(settings, subscriber, subscription)
    if message.billing_at is not None:
        zone = local_zone(subscriber, settings)
        days = (message.billing_at.astimezone(zone).date() - now.astimezone(zone).date()).days
        variables["days_until"] = max(0, days)
    return render_message(session, message.template, variables, sources)


def close(message: OutboundMessage, status: SendStatus, reason: str, now: datetime) -> None:
    """Give a row its final ``status``, with ``reason`` as its error message."""
    message.status = status
    message.error_message = reason[:500]
    message.status_at = now
