"""Phone simulator (sandbox mode): text the bot as a demo subscriber and watch what happens."""

from __future__ import annotations

import logging
import os
import uuid

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from bot.console.common import app_settings, display_name
from bot.console.conversations import thread
from bot.conversation.handler import Conversation
from bot.outbound.dispatcher import Dispatcher
from bot.outbound.sms import get_transport
from bot.rules.phones import mask
from bot.rules.templates import MAX_LENGTH
from bot.smartrr.client import get_client
from bot.smartrr.errors import SmartrrError, SmartrrUnavailable
from bot.smartrr.records import PurchaseState
from bot.smartrr.sync import run_sync
from bot.storage.claims import PENDING_WORK
from bot.storage.db import get_db
from bot.storage.models import InboundMessage, OutboundMessage, Subscriber, utcnow

log = logging.getLogger(__name__)

bp = Blueprint("simulator", __name__, url_prefix="/simulator")

THREAD_TAIL = 12


@bp.before_request
def sandbox_only() -> None:
    """The simulator acts on subscriptions: never on a real shop."""
    if not app_settings().sandbox:
        abort(404, "The phone simulator exists only in sandbox mode.")


def store_text(session: Session, subscriber: Subscriber, body: str, owner: str) -> int:
    """Store a text as the webhook would, leased to ``owner`` so no worker takes it meanwhile."""
    sid = f"SIM{uuid.uuid4().hex}"
    to_number = app_settings().twilio_from_number or ""
    phone = subscriber.phone or ""
    now = utcnow()
    inbound = InboundMessage(
        message_sid=sid,
        from_number=phone,
        to_number=to_number,
        body=body,
        params={"MessageSid": sid, "From": phone, "To": to_number, "NumMedia": "0"},
        received_at=now,
        attempts=1,
        lease_owner=owner,
        lease_until=now + PENDING_WORK.lease,
    )
    session.add(inbound)
    session.flush()
    return inbound.id


def answer(inbound_id: int, owner: str) -> None:
    """Handle the stored text at once, as the worker would, and send the replies."""
    database, settings = get_db(), app_settings()
    conversation = Conversation(database, get_client(), settings)
    try:
        conversation.handle(inbound_id)
    except SmartrrUnavailable as exc:
        # The text stays stored; the worker takes it once the lease runs out.
        flash(f"Smartrr did not answer ({exc}); the worker will try again.", "error")
        return
    except Exception:
        log.exception("simulated text %s failed", inbound_id)
        conversation.give_up(inbound_id, "internal error")
    Dispatcher(database, get_transport(), settings, owner).run_once(kinds=("reply",))


def _states(customer_id: str) -> tuple[list[PurchaseState], str | None]:
    try:
        return get_client().customer_purchase_states(customer_id), None
    except SmartrrError as exc:
        return [], str(exc)


@bp.get("")
def index() -> str:
    """Pick a subscriber, text the bot, see the answer and the sandbox's subscriptions."""
    chosen_id = request.args.get("subscriber", type=int)
    sent_id = request.args.get("sent", type=int)
    with get_db().read() as db:
        subscribers = db.scalars(
            select(Subscriber)
            .where(Subscriber.phone.is_not(None))
            .order_by(Subscriber.first_name, Subscriber.id)
        ).all()
        choices = [(s.id, f"{display_name(s)} ({mask(s.phone)})") for s in subscribers]
        chosen = next((s for s in subscribers if s.id == chosen_id), None) or (
            subscribers[0] if subscribers else None
        )
        entries = thread(db, chosen)[-THREAD_TAIL:] if chosen else []
        answers = (
            db.scalars(
                select(OutboundMessage.body)
                .where(OutboundMessage.in_reply_to_id == sent_id)
                .order_by(OutboundMessage.id)
            ).all()
            if sent_id
            else []
        )
        customer_id = chosen.smartrr_customer_id if chosen else None
    states, error = _states(customer_id) if customer_id else ([], None)
    return render_template(
        "console/simulator.html",
        choices=choices,
        chosen_id=chosen.id if chosen else None,
        entries=entries,
        answers=answers,
        states=states,
        smartrr_error=error,
        max_length=MAX_LENGTH,
    )


@bp.post("")
def send() -> Response:
    """Text the bot as the chosen subscriber."""
    body = request.form.get("body", "").strip()
    subscriber_id = request.form.get("subscriber", type=int)
    with get_db().begin() as db:
        subscriber = db.get(Subscriber, subscriber_id) if subscriber_id else None
        if subscriber is None or not subscriber.phone:
            abort(400, "Pick a subscriber.")
        if not body or len(body) > MAX_LENGTH:
            flash(f"Type a text of 1 to {MAX_LENGTH:,} characters.", "error")
            return redirect(url_for(".index", subscriber=subscriber_id))
        owner = f"simulator:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        inbound_id = store_text(db, subscriber, body, owner)
    answer(inbound_id, owner)
    return redirect(url_for(".index", subscriber=subscriber_id, sent=inbound_id, _anchor="answer"))


@bp.post("/load")
def load() -> Response:
    """Pull the sandbox's demo subscriptions now (the worker does it on its own schedule)."""
    try:
        result = run_sync(get_db(), get_client(), app_settings())
    except SmartrrError as exc:
        flash(f"Could not load the demo subscribers: {exc}", "error")
    else:
        flash(f"Loaded {result.synced} demo subscriptions.")
    return redirect(url_for(".index"))
