"""Delivery receipts: moving a sent text's row forward, and what a receipt says about the number."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.outbound.sms import OPTED_OUT_CODES
from bot.storage.models import OutboundMessage, SendStatus, Subscriber, utcnow

FINAL = frozenset(
    {
        SendStatus.DELIVERED,
        SendStatus.UNDELIVERED,
        SendStatus.FAILED,
        SendStatus.EXPIRED,
        SendStatus.CANCELLED,
    }
)
#: Twilio's status progression; a receipt never moves a message backwards. Keyed by
#: plain strings because it is looked up with Twilio's receipt words as they come.
RANK: dict[str, int] = {
    SendStatus.SCHEDULED: 0,
    SendStatus.SENDING: 1,
    SendStatus.ACCEPTED: 2,
    SendStatus.QUEUED: 2,
    SendStatus.SENT: 3,
    SendStatus.DELIVERED: 4,
    SendStatus.UNDELIVERED: 4,
    SendStatus.FAILED: 4,
}
#: Carrier errors meaning the number cannot take texts; this many in a row stop them.
UNREACHABLE_CODES = frozenset({"30003", "30005", "30006"})
UNREACHABLE_AFTER = 3


def opt_out(subscriber: Subscriber, now: datetime) -> None:
    """Mark the subscriber opted out, keeping the first moment they were."""
    if subscriber.opted_out_at is None:
        subscriber.opted_out_at = now


def _note_outcome(
    subscriber: Subscriber, status: str, error_code: str | None, now: datetime
) -> None:
    """What a receipt says about the number: opted out, unreachable, or working."""
    if error_code in OPTED_OUT_CODES:
        opt_out(subscriber, now)
    if status == SendStatus.DELIVERED:
        subscriber.failed_deliveries = 0
        subscriber.unreachable_at = None
    elif error_code in UNREACHABLE_CODES:
        subscriber.failed_deliveries += 1
        if subscriber.failed_deliveries >= UNREACHABLE_AFTER and subscriber.unreachable_at is None:
            subscriber.unreachable_at = now


def _receipt_target(
    session: Session, provider_sid: str, message_id: int | None
) -> OutboundMessage | None:
    """The row a receipt is about: the one with its SID, else the one it names without a SID."""
    message = session.scalar(
        select(OutboundMessage)
        .where(OutboundMessage.provider_sid == provider_sid)
        .with_for_update()
    )
    if message is not None or message_id is None:
        return message
    message = session.get(OutboundMessage, message_id, with_for_update=True)
    return message if message is not None and message.provider_sid is None else None


def record_status(
    session: Session,
    *,
    provider_sid: str,
    message_id: int | None,
    status: str,
    error_code: str | None,
) -> bool:
    """Apply a delivery receipt; False when it changed nothing (repeat, stale or unknown)."""
    if status not in RANK:
        return False
    message = _receipt_target(session, provider_sid[:64], message_id)
    if message is None or message.status in FINAL or RANK[status] <= RANK.get(message.status, 0):
        return False
    now = utcnow()
    message.provider_sid = provider_sid[:64]
    message.status = status
    message.status_at = now
    message.sent_at = message.sent_at or now
    if error_code:
        message.error_code = error_code[:16]
    if message.subscriber_id is not None:
        subscriber = session.get(Subscriber, message.subscriber_id, with_for_update=True)
        if subscriber is not None:
            _note_outcome(subscriber, status, error_code, now)
    return True
