"""Health and, in sandbox mode, the outbox page."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, abort, current_app, jsonify, render_template
from sqlalchemy import func, select

from bot.config import Settings
from bot.db import get_db
from bot.models import Heartbeat, OutboxMessage, utcnow

bp = Blueprint("pages", __name__)

#: A worker whose scheduler has not beaten for this long is reported stale.
HEARTBEAT_STALE = timedelta(minutes=2)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 with JSON once the database answers; 503 otherwise."""
    database = get_db()
    if not database.ping():
        return jsonify(status="error", database="unreachable"), 503
    with database.read() as session:
        last_beat = session.scalar(select(func.max(Heartbeat.beat_at)))
    age = (utcnow() - last_beat).total_seconds() if last_beat else None
    return (
        jsonify(
            status="ok",
            database="ok",
            scheduler_heartbeat_age_seconds=None if age is None else round(age, 1),
            scheduler="ok"
            if age is not None and age < HEARTBEAT_STALE.total_seconds()
            else "stale",
        ),
        200,
    )


@bp.get("/outbox")
def outbox() -> str:
    """What the outbox transport recorded: only in sandbox mode (demo data)."""
    settings: Settings = current_app.extensions["settings"]
    if not settings.sandbox or settings.twilio_configured:
        abort(404)
    with get_db().read() as session:
        messages = list(
            session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(200))
        )
    return render_template("outbox.html", messages=messages, shop_name=settings.shop_name)
