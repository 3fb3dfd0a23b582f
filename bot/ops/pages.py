"""Health and, in sandbox mode, the outbox page."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Blueprint, Response, abort, current_app, jsonify, render_template
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import SQLAlchemyError

from bot.config import Settings
from bot.storage.db import get_db
from bot.storage.models import Heartbeat, OutboxMessage, utcnow

log = logging.getLogger(__name__)
bp = Blueprint("pages", __name__)

#: A worker whose scheduler has not beaten for this long is reported stale.
HEARTBEAT_STALE = timedelta(minutes=2)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 with JSON once the database answers with our schema; 503 otherwise."""
    database = get_db()
    if not database.ping():
        return jsonify(status="error", database="unreachable"), 503
    try:
        with database.read() as session:
            last_beat = session.scalar(select(func.max(Heartbeat.beat_at)))
    except SQLAlchemyError as exc:
        # One line, not a traceback: a load balancer asks every few seconds.
        log.warning("health check: the heartbeat query failed: %s", exc)
        return jsonify(status="error", database=_schema_problem()), 503
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


def _schema_problem() -> str:
    """The database's problem: "not migrated" before `flask --app wsgi db upgrade`, else "error"."""
    try:
        with get_db().read() as session:
            migrated = inspect(session.connection()).has_table(Heartbeat.__tablename__)
    except SQLAlchemyError:
        return "error"
    return "error" if migrated else "not migrated"


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
