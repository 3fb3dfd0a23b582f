"""Upcoming: the queue of order notices, with filters and capacity warnings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, render_template, request
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.console.common import app_settings, display_name, word_filters
from bot.outbound.capacity import capacity_warnings
from bot.outbound.messages import subscriber_locale
from bot.rules.phones import mask
from bot.storage.db import get_db
from bot.storage.models import OutboundMessage, SendStatus, Shop, Subscriber, Subscription, utcnow
from bot.storage.shop import SHOP_ID, effective_settings

bp = Blueprint("queue", __name__, url_prefix="/upcoming")

STATUSES = (
    SendStatus.SCHEDULED,
    SendStatus.SENDING,
    SendStatus.SENT,
    SendStatus.DELIVERED,
    SendStatus.UNDELIVERED,
    SendStatus.FAILED,
    SendStatus.EXPIRED,
    SendStatus.CANCELLED,
)
PAGE_SIZE = 200


@dataclass(frozen=True)
class Filters:
    status: str  # one of STATUSES, or "all"
    query: str


@dataclass(frozen=True)
class Row:
    id: int
    subscriber_id: int | None
    name: str
    phone: str
    due_at: datetime
    zone: ZoneInfo
    products: str
    billing_at: datetime | None
    status: str
    note: str | None


def _conditions(filters: Filters) -> list[ColumnElement[bool]]:
    # Bot-initiated texts: order notices and event texts (replies never wait here).
    conditions: list[ColumnElement[bool]] = [OutboundMessage.kind.in_(("notice", "event"))]
    if filters.status != "all":
        conditions.append(OutboundMessage.status == filters.status)
    # Every word must match somewhere: "maya coffee" finds Maya's coffee notice.
    conditions += word_filters(
        filters.query,
        (
            Subscriber.first_name,
            Subscriber.last_name,
            Subscriber.email,
            Subscriber.phone,
            Subscription.products,
        ),
    )
    return conditions


def upcoming(session: Session, settings: Settings, filters: Filters) -> tuple[list[Row], int]:
    """The notices matching ``filters``, soonest first (one page), and how many match."""
    conditions = _conditions(filters)
    base = (
        select(OutboundMessage, Subscriber, Subscription)
        .outerjoin(Subscriber, OutboundMessage.subscriber_id == Subscriber.id)
        .outerjoin(Subscription, OutboundMessage.subscription_id == Subscription.id)
        .where(*conditions)
    )
    total = session.scalar(select(func.count()).select_from(base.subquery()))
    rows = []
    for message, subscriber, subscription in session.execute(
        base.order_by(OutboundMessage.due_at, OutboundMessage.id).limit(PAGE_SIZE)
    ):
        locale = subscriber_locale(subscriber, settings)
        rows.append(
            Row(
                id=message.id,
                subscriber_id=message.subscriber_id,
                name=display_name(subscriber) if subscriber else "",
                phone=mask(message.to_number),
                due_at=message.due_at,
                zone=ZoneInfo(locale.zones[0]),
                products=subscription.products if subscription else "",
                billing_at=message.billing_at,
                status=message.status,
                note=message.error_message,
            )
        )
    return rows, total or 0


@bp.get("")
def index() -> str:
    """The queue page."""
    status = request.args.get("status", SendStatus.SCHEDULED)
    filters = Filters(
        status=status if status in (*STATUSES, "all") else SendStatus.SCHEDULED,
        query=request.args.get("q", "").strip()[:100],
    )
    with get_db().read() as db:
        settings = effective_settings(db, app_settings())
        rows, total = upcoming(db, settings, filters)
        warnings = capacity_warnings(
            db, settings.sms_rate_per_second, utcnow(), zone=settings.shop_timezone
        )
        shop = db.get(Shop, SHOP_ID)
        dry_run = shop is not None and not shop.sending_enabled
    return render_template(
        "console/upcoming.html",
        rows=rows,
        total=total,
        filters=filters,
        statuses=STATUSES,
        page_size=PAGE_SIZE,
        warnings=warnings,
        dry_run=dry_run,
    )
