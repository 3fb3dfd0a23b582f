"""Conversations: per subscriber, every text both ways with intents, actions and results."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flask import Blueprint, abort, render_template, request
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from bot.console.common import display_name, word_filters
from bot.rules.phones import mask
from bot.storage.db import get_db
from bot.storage.models import (
    ActionLog,
    InboundMessage,
    InboundStatus,
    OutboundMessage,
    SendStatus,
    Subscriber,
    Subscription,
)

bp = Blueprint("conversations", __name__, url_prefix="/conversations")

LIST_SIZE = 200
THREAD_SIZE = 300
#: Outbound rows that never reached a phone are shown, but do not make a thread "active".
NOT_SENT = (SendStatus.SCHEDULED, SendStatus.CANCELLED, SendStatus.EXPIRED)


@dataclass(frozen=True)
class Summary:
    subscriber_id: int
    name: str
    phone: str
    last_at: datetime
    texts: int
    open_items: int


@dataclass
class Entry:
    """One text in a thread; inbound texts carry the actions they led to."""

    direction: str  # "in" | "out"
    at: datetime
    body: str
    status: str
    detail: str  # intent and outcome, or kind and template
    error: str | None
    needs_person: bool = False
    actions: list[ActionLog] = field(default_factory=list)


def summaries(session: Session, query: str) -> list[Summary]:
    """Subscribers with texts, most recent activity first."""
    inbound = {
        row[0]: row[1:]
        for row in session.execute(
            select(
                InboundMessage.subscriber_id,
                func.max(InboundMessage.received_at),
                func.count(InboundMessage.id),
                func.count(InboundMessage.id).filter(
                    InboundMessage.status == InboundStatus.HANDOFF,
                    InboundMessage.handled_at.is_(None),
                ),
            )
            .where(InboundMessage.subscriber_id.is_not(None))
            .group_by(InboundMessage.subscriber_id)
        )
    }
    outbound = {
        row[0]: row[1:]
        for row in session.execute(
            select(
                OutboundMessage.subscriber_id,
                func.max(OutboundMessage.sent_at),
                func.count(OutboundMessage.id),
            )
            .where(
                OutboundMessage.subscriber_id.is_not(None),
                OutboundMessage.status.not_in(NOT_SENT),
            )
            .group_by(OutboundMessage.subscriber_id)
        )
    }
    ids = set(inbound) | set(outbound)
    stmt = select(Subscriber).where(Subscriber.id.in_(ids))
    stmt = stmt.where(
        *word_filters(
            query,
            (Subscriber.first_name, Subscriber.last_name, Subscriber.email, Subscriber.phone),
        )
    )
    found = []
    for subscriber in session.scalars(stmt):
        last_in, count_in, open_items = inbound.get(subscriber.id, (None, 0, 0))
        last_out, count_out = outbound.get(subscriber.id, (None, 0))
        moments = [moment for moment in (last_in, last_out) if moment is not None]
        if not moments:
            continue
        found.append(
            Summary(
                subscriber.id,
                display_name(subscriber),
                mask(subscriber.phone),
                max(moments),
                count_in + count_out,
                open_items,
            )
        )
    found.sort(key=lambda summary: summary.last_at, reverse=True)
    return found[:LIST_SIZE]


def thread(session: Session, subscriber: Subscriber) -> list[Entry]:
    """The subscriber's texts both ways in time order (the most recent THREAD_SIZE)."""
    number = subscriber.phone or ""
    inbound = session.scalars(
        select(InboundMessage).where(
            or_(InboundMessage.subscriber_id == subscriber.id, InboundMessage.from_number == number)
        )
    ).all()
    actions: dict[int | None, list[ActionLog]] = {}
    for action in session.scalars(
        select(ActionLog)
        .where(ActionLog.inbound_id.in_([row.id for row in inbound]))
        .order_by(ActionLog.id)
    ):
        actions.setdefault(action.inbound_id, []).append(action)
    entries = [
        Entry(
            direction="in",
            at=row.received_at,
            body=row.body,
            status=row.status,
            detail=" → ".join(filter(None, (row.intent, row.outcome))),
            error=row.error,
            needs_person=row.status == InboundStatus.HANDOFF and row.handled_at is None,
            actions=actions.get(row.id, []),
        )
        for row in inbound
    ]
    for message in session.scalars(
        select(OutboundMessage).where(
            or_(OutboundMessage.subscriber_id == subscriber.id, OutboundMessage.to_number == number)
        )
    ):
        entries.append(
            Entry(
                direction="out",
                at=message.sent_at or message.due_at,
                body=message.body,
                status=message.status,
                detail=f"{message.kind} · {message.template}",
                error=message.error_message,
            )
        )
    entries.sort(key=lambda entry: entry.at)
    return entries[-THREAD_SIZE:]


@bp.get("")
def index() -> str:
    """Subscribers with texts."""
    query = request.args.get("q", "").strip()[:100]
    with get_db().read() as db:
        found = summaries(db, query)
    return render_template("console/conversations.html", summaries=found, query=query)


@bp.get("/<int:subscriber_id>")
def show(subscriber_id: int) -> str:
    """One subscriber's thread and subscriptions."""
    with get_db().read() as db:
        subscriber = db.get(Subscriber, subscriber_id)
        if subscriber is None:
            abort(404, "No such subscriber.")
        entries = thread(db, subscriber)
        subscriptions = db.scalars(
            select(Subscription)
            .where(Subscription.subscriber_id == subscriber.id)
            .order_by(Subscription.next_billing_at)
        ).all()
        name, phone = display_name(subscriber), mask(subscriber.phone)
        opted_out = subscriber.opted_out
    return render_template(
        "console/conversation.html",
        name=name,
        phone=phone,
        opted_out=opted_out,
        entries=entries,
        subscriptions=subscriptions,
    )
