"""Inbox: replies the bot could not handle, with "mark handled" and a reply box."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from bot.console.common import app_settings, display_name
from bot.outbound.dispatcher import Dispatcher
from bot.outbound.sms import get_transport
from bot.rules.phones import mask
from bot.rules.templates import MAX_LENGTH
from bot.storage.db import get_db
from bot.storage.models import (
    InboundMessage,
    InboundStatus,
    OutboundMessage,
    SendStatus,
    Subscriber,
    utcnow,
)

bp = Blueprint("inbox", __name__, url_prefix="/inbox")

PAGE_SIZE = 200


@dataclass(frozen=True)
class Item:
    id: int
    subscriber_id: int | None
    sender: str
    received_at: datetime
    body: str
    intent: str | None
    outcome: str | None
    error: str | None


def open_items(session: Session) -> list[Item]:
    """Texts handed to a person and not yet handled, newest first."""
    rows = session.execute(
        select(InboundMessage, Subscriber)
        .outerjoin(Subscriber, InboundMessage.subscriber_id == Subscriber.id)
        .where(InboundMessage.status == InboundStatus.HANDOFF, InboundMessage.handled_at.is_(None))
        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
        .limit(PAGE_SIZE)
    )
    return [
        Item(
            id=inbound.id,
            subscriber_id=inbound.subscriber_id,
            sender=f"{display_name(subscriber)} ({mask(inbound.from_number)})"
            if subscriber
            else f"Unknown number {mask(inbound.from_number)}",
            received_at=inbound.received_at,
            body=inbound.body,
            intent=inbound.intent,
            outcome=inbound.outcome,
            error=inbound.error,
        )
        for inbound, subscriber in rows
    ]


def queue_reply(session: Session, inbound: InboundMessage, body: str) -> int:
    """Queue a merchant's reply to ``inbound``, due now; return its id."""
    message = OutboundMessage(
        kind="manual",
        template="manual",
        subscriber_id=inbound.subscriber_id,
        in_reply_to_id=inbound.id,
        to_number=inbound.from_number,
        body=body,
        status=SendStatus.SCHEDULED,
        due_at=utcnow(),
    )
    session.add(message)
    session.flush()
    return message.id


def _open_or_404(session: Session, inbound_id: int) -> InboundMessage:
    inbound = session.get(InboundMessage, inbound_id)
    if inbound is None or inbound.status != InboundStatus.HANDOFF:
        abort(404, "No such inbox item.")
    return inbound


@bp.get("")
def index() -> str:
    """The open items."""
    with get_db().read() as db:
        items = open_items(db)
    return render_template("console/inbox.html", items=items, max_length=MAX_LENGTH)


@bp.post("/<int:inbound_id>/handled")
def mark_handled(inbound_id: int) -> Response:
    """Take an item off the inbox."""
    with get_db().begin() as db:
        inbound = _open_or_404(db, inbound_id)
        if inbound.handled_at is None:
            inbound.handled_at = utcnow()
    flash("Marked handled.")
    return redirect(url_for(".index"))


@bp.post("/<int:inbound_id>/reply")
def reply(inbound_id: int) -> Response:
    """Send a reply through the bot's own transport, then mark the item handled if asked."""
    body = request.form.get("body", "").replace("\r\n", "\n").strip()
    if not body or len(body) > MAX_LENGTH:
        flash(f"Write a reply of 1 to {MAX_LENGTH:,} characters.", "error")
        return redirect(url_for(".index", _anchor=f"item-{inbound_id}"))
    database = get_db()
    with database.begin() as db:
        inbound = _open_or_404(db, inbound_id)
        message_id = queue_reply(db, inbound, body)
        if request.form.get("handled"):
            inbound.handled_at = utcnow()
    dispatcher = Dispatcher(database, get_transport(), app_settings(), f"console:{os.getpid()}")
    dispatcher.run_once(kinds=("manual",))
    with database.begin() as db:
        message = db.get(OutboundMessage, message_id)
        status, reason = (message.status, message.error_message) if message else ("gone", None)
    if status in (SendStatus.SENT, SendStatus.DELIVERED):
        flash("Reply sent.")
    elif status == SendStatus.SCHEDULED:
        flash("Reply queued: the provider did not take it yet; the worker will retry.", "error")
    else:
        flash(f"Reply not sent ({status}: {reason or 'no reason given'}).", "error")
    return redirect(url_for(".index"))
