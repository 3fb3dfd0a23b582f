"""Overview: what the bot did, day by day, and how much it handled without a person."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, render_template, request
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from bot.console.chart import line_chart
from bot.console.common import shop_zone
from bot.storage.db import get_db
from bot.storage.models import (
    ActionLog,
    ActionResult,
    InboundMessage,
    InboundStatus,
    OutboundMessage,
    SendStatus,
    utcnow,
)

bp = Blueprint("overview", __name__)

PERIODS = (7, 14, 30)
#: Changes Smartrr refused as malformed requests: a bug of ours, shown apart.
REFUSED = "Refused by Smartrr"


@dataclass(frozen=True)
class Metric:
    label: str
    moment: InstrumentedAttribute[datetime | None] | InstrumentedAttribute[datetime]
    conditions: tuple[ColumnElement[bool], ...]


METRICS: tuple[Metric, ...] = (
    Metric(
        "Notices sent",
        OutboundMessage.sent_at,
        (OutboundMessage.kind == "notice", OutboundMessage.sent_at.is_not(None)),
    ),
    Metric("Replies", InboundMessage.received_at, ()),
    Metric(
        "Skips",
        ActionLog.created_at,
        (ActionLog.action == "skip", ActionLog.result == ActionResult.OK),
    ),
    Metric(
        "Delays",
        ActionLog.created_at,
        (ActionLog.action == "delay", ActionLog.result == ActionResult.OK),
    ),
    Metric(
        "Pauses",
        ActionLog.created_at,
        (ActionLog.action == "pause", ActionLog.result == ActionResult.OK),
    ),
    Metric("Opt-outs", InboundMessage.received_at, (InboundMessage.outcome == "opted_out",)),
    Metric(
        "Texts failed",
        OutboundMessage.status_at,
        (OutboundMessage.status.in_((SendStatus.FAILED, SendStatus.UNDELIVERED)),),
    ),
    Metric("Actions failed", ActionLog.created_at, (ActionLog.result == ActionResult.FAILED,)),
    Metric(REFUSED, ActionLog.created_at, (ActionLog.result == ActionResult.REFUSED,)),
)


@dataclass(frozen=True)
class Summary:
    days: list[date]
    series: dict[str, list[int]]
    handled_by_bot: int
    handed_to_person: int

    @property
    def refused(self) -> int:
        """Requests of ours Smartrr refused in the period (each one a bug to report)."""
        return sum(self.series[REFUSED])

    @property
    def bot_share(self) -> int | None:
        """Percent of answered replies the bot handled by itself; None before any reply."""
        total = self.handled_by_bot + self.handed_to_person
        return round(100 * self.handled_by_bot / total) if total else None


def _daily(
    session: Session, metric: Metric, start: datetime, days: Sequence[date], zone: ZoneInfo
) -> list[int]:
    counts = dict.fromkeys(days, 0)
    # One timestamp column per row; bucketing in Python keeps days in the shop's zone on
    # every database.
    for moment in session.scalars(
        select(metric.moment).where(metric.moment >= start, *metric.conditions)
    ):
        day = moment.astimezone(zone).date() if moment is not None else None
        if day in counts:
            counts[day] += 1
    return list(counts.values())


def summarise(session: Session, now: datetime, period: int, zone: ZoneInfo) -> Summary:
    """Counts per day for the last ``period`` days (today included) in ``zone``."""
    today = now.astimezone(zone).date()
    days = [today - timedelta(days=n) for n in range(period - 1, -1, -1)]
    start = datetime.combine(days[0], datetime.min.time(), zone)
    series = {metric.label: _daily(session, metric, start, days, zone) for metric in METRICS}
    outcomes = {
        status: count
        for status, count in session.execute(
            select(InboundMessage.status, func.count(InboundMessage.id))
            .where(InboundMessage.received_at >= start)
            .group_by(InboundMessage.status)
        )
    }
    return Summary(
        days, series, outcomes.get(InboundStatus.DONE, 0), outcomes.get(InboundStatus.HANDOFF, 0)
    )


@bp.get("/")
def index() -> str:
    """Counts and a chart."""
    period = request.args.get("days", 14, type=int)
    period = period if period in PERIODS else 14
    zone = shop_zone()
    with get_db().read() as db:
        summary = summarise(db, utcnow(), period, zone)
    labels = [f"{day:%b} {day.day}" for day in summary.days]
    return render_template(
        "console/overview.html",
        summary=summary,
        chart=line_chart(labels, summary.series),
        labels=labels,
        period=period,
        periods=PERIODS,
        zone=zone.key,
    )
