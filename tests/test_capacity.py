"""Capacity warnings: a minute that releases more texts than the sender can send in ten."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import SEED_NOW
from flask import Flask
from freezegun import freeze_time
from sqlalchemy import insert
from sqlalchemy.orm import Session

from bot.outbound.capacity import CapacityWarning, capacity_warnings
from bot.smartrr.sandbox import SandboxServer, make_customer, make_purchase_state
from bot.storage.models import OutboundMessage
from bot.worker import Worker

#: 11:00 in New York on Nov 25.
OPENING = datetime(2026, 11, 25, 16, tzinfo=UTC)


@pytest.fixture
def config(config: dict[str, Any]) -> dict[str, Any]:
    return {**config, "SMS_RATE_PER_SECOND": 0.04}


def queue(session: Session, due_at: datetime, count: int, status: str = "scheduled") -> None:
    """``count`` texts due at ``due_at``, as the planner leaves them."""
    rows = [
        {
            "kind": "notice",
            "to_number": f"+1212555{index:04d}",
            "template": "upcoming_order",
            "body": "",
            "status": status,
            "due_at": due_at,
            "attempts": 0,
            "created_at": SEED_NOW,
        }
        for index in range(count)
    ]
    session.execute(insert(OutboundMessage), rows)
    session.commit()


def test_a_minute_that_needs_forty_minutes_is_reported(session: Session) -> None:
    queue(session, OPENING, 2400)

    warnings = capacity_warnings(session, 1.0, SEED_NOW, zone="America/New_York")

    assert warnings == [
        CapacityWarning(
            due_at=OPENING,
            count=2400,
            minutes=40,
            message="2,400 texts due at 11:00 EST on Nov 25 need 40 min at 1 msg/s",
        )
    ]


def test_the_message_is_in_utc_unless_a_zone_is_given(session: Session) -> None:
    queue(session, OPENING, 700)

    [warning] = capacity_warnings(session, 1.0, SEED_NOW)

    assert warning.message == "700 texts due at 16:00 UTC on Nov 25 need 12 min at 1 msg/s"


def test_ten_minutes_of_sending_is_no_warning_but_a_second_more_is(session: Session) -> None:
    queue(session, OPENING, 600)
    queue(session, OPENING + timedelta(hours=1), 601)

    warnings = capacity_warnings(session, 1.0, SEED_NOW)

    assert [(w.due_at, w.count, w.minutes) for w in warnings] == [
        (OPENING + timedelta(hours=1), 601, 11)
    ]


def test_texts_are_grouped_by_the_minute_they_become_due(session: Session) -> None:
    queue(session, OPENING, 400)
    queue(session, OPENING + timedelta(seconds=59, microseconds=999_999), 400)
    queue(session, OPENING + timedelta(minutes=1), 400)

    warnings = capacity_warnings(session, 1.0, SEED_NOW)

    assert [(w.due_at, w.count) for w in warnings] == [(OPENING, 800)]


def test_the_rate_decides(session: Session) -> None:
    queue(session, OPENING, 2400)

    assert capacity_warnings(session, 5.0, SEED_NOW) == []
    [warning] = capacity_warnings(session, 0.5, SEED_NOW)
    assert warning.minutes == 80
    assert warning.message.endswith("need 80 min at 0.5 msg/s")


def test_overdue_texts_count_as_due_now(session: Session) -> None:
    queue(session, SEED_NOW - timedelta(hours=2), 400)
    queue(session, SEED_NOW - timedelta(minutes=5), 400)
    now = SEED_NOW + timedelta(seconds=30)

    [warning] = capacity_warnings(session, 1.0, now)

    assert (warning.due_at, warning.count) == (SEED_NOW, 800)


def test_only_texts_still_waiting_count(session: Session) -> None:
    for status in ("sent", "delivered", "cancelled", "expired", "failed", "sending"):
        queue(session, OPENING, 700, status=status)

    assert capacity_warnings(session, 1.0, SEED_NOW) == []


@pytest.mark.parametrize("rate", [0.0, -1.0])
def test_a_rate_that_is_not_positive_is_refused(session: Session, rate: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        capacity_warnings(session, rate, SEED_NOW)


def test_planning_logs_the_warning_for_the_console(
    app: Flask, sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Thirty New Yorkers billing at 09:00 on Dec 1: their notices all wait for 11:00 on Nov 28.
    billing = datetime(2026, 12, 1, 14, tzinfo=UTC)
    for index in range(30):
        key = f"ny-{index}"
        customer = make_customer(key, phone=f"+1212555{index:04d}")
        sandbox.store.add(make_purchase_state(key, billing, customer=customer))

    with freeze_time(SEED_NOW), caplog.at_level(logging.WARNING, logger="bot.outbound.planner"):
        worker = Worker(app)
        worker.sync()
        worker.plan()

    assert [r.getMessage() for r in caplog.records if r.name == "bot.outbound.planner"] == [
        "capacity: 30 texts due at 11:00 EST on Nov 28 need 13 min at 0.04 msg/s"
    ]
