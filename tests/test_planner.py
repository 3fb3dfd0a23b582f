"""Notices: one per subscription, billing date and kind, placed in the subscriber's
waking hours, and following the subscription when its billing date changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import SEED_NOW, additions, counted_at_each_commit, portal_body
from flask import Flask
from freezegun import freeze_time
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from twilio_fake import TwilioFake

from bot.outbound import planner
from bot.smartrr.client import get_client
from bot.smartrr.sandbox import JSON, SandboxServer, make_customer, make_purchase_state
from bot.smartrr.sync import run_sync
from bot.storage.db import get_db
from bot.storage.models import OutboundMessage, Subscription
from bot.storage.shop import ensure_shop
from bot.worker import Worker

MARCUS = "+13125794420"
#: Marcus's notice (Chicago, billing Nov 26 14:00 UTC) opens at 11:00 CST.
SENT_AT = datetime(2026, 11, 23, 17, tzinfo=UTC)


def demo_state(sandbox: SandboxServer, first_name: str) -> JSON:
    return next(s for s in sandbox.store.states() if s["custRel"]["firstName"] == first_name)


def act(sandbox: SandboxServer, state: JSON, action: str, body: JSON | None = None) -> JSON:
    """A change made in Smartrr itself (its portal, the merchant's admin)."""
    body = portal_body(sandbox.store, state, action, body)
    return sandbox.store.act(state["custRel"]["id"], state["id"], action, body)


def reminders(twilio: TwilioFake, number: str) -> list[str]:
    """The order reminders ``number`` received (event texts about the changes left out)."""
    return [body for body in twilio.state.bodies_to(number) if "Heads up" in body]


def notices(session: Session, state: JSON) -> list[tuple[str, str, str]]:
    """(billing day, status, due moment) of each notice of the subscription, oldest first."""
    rows = session.scalars(
        select(OutboundMessage)
        .join(Subscription, OutboundMessage.subscription_id == Subscription.id)
        .where(Subscription.smartrr_id == state["id"], OutboundMessage.kind == "notice")
        .order_by(OutboundMessage.id)
    )
    found = [
        (m.billing_at.date().isoformat(), m.status, m.due_at.isoformat())  # type: ignore[union-attr]
        for m in rows
    ]
    session.rollback()  # SQLite: do not hold the write lock the worker needs
    return found


def set_shop(app: Flask, session: Session, **values: object) -> None:
    """The merchant's own settings, as the console stores them."""
    shop = ensure_shop(session, app.extensions["settings"])
    for name, value in values.items():
        setattr(shop, name, value)
    session.commit()


def test_each_subscription_gets_one_notice_per_billing_date(app: Flask, session: Session) -> None:
    with freeze_time(SEED_NOW):
        worker = Worker(app)
        worker.sync()
        for _ in range(3):
            worker.plan()

    keys = session.execute(select(OutboundMessage.subscription_id, OutboundMessage.billing_at))
    pairs = list(keys)
    assert len(pairs) == 6  # the seven demo subscriptions but Dana's, which is paused
    assert len(set(pairs)) == 6
    assert session.scalar(select(func.count(func.distinct(OutboundMessage.dedupe_key)))) == 6


NOTICES = select(func.count()).where(OutboundMessage.kind == "notice")


def test_a_full_plan_commits_chunk_by_chunk(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    # On SQLite a writing transaction holds the lock every webhook waits on: a
    # large plan must let go of it between chunks, not hold it for the whole run.
    monkeypatch.setattr(planner, "CHUNK", 2)
    database = get_db(app)

    with freeze_time(SEED_NOW), app.app_context():
        run_sync(database, get_client(app), app.extensions["settings"])
        with counted_at_each_commit(database, NOTICES) as seen:
            Worker(app).plan()

    # Six notices to plan, two subscriptions a chunk: others see them arrive in steps.
    assert sorted(set(seen)) == [0, 2, 4, 6]


def test_on_sqlite_a_full_plan_takes_a_hundred_subscriptions_a_chunk(
    app: Flask, sandbox: SandboxServer
) -> None:
    # The chunk's transaction holds SQLite's one write lock, which every webhook waits on.
    for n in range(300):
        add_subscriber(sandbox, f"chunk-{n}", f"+1212555{n:04d}", SEED_NOW + timedelta(days=10))
    database = get_db(app)

    with freeze_time(SEED_NOW), app.app_context():
        run_sync(database, get_client(app), app.extensions["settings"])
        with counted_at_each_commit(database, NOTICES) as seen:
            Worker(app).plan()

    steps = additions(seen)
    assert sum(steps) == 306  # and the demo's six
    # PostgreSQL locks rows, so a chunk there keeps the plan's 1,000.
    assert max(steps) == (306 if database.is_postgres else 100)


def test_notices_are_due_in_each_subscribers_waking_hours(
    app: Flask, sandbox: SandboxServer, session: Session
) -> None:
    with freeze_time(SEED_NOW):
        Worker(app).sync()
        Worker(app).plan()

    # Every demo billing is at 14:00 UTC; 3 days before, the window opens at 11:00 local.
    due = {
        name: notices(session, demo_state(sandbox, name))
        for name in ("Marcus", "Sofia", "Kenji", "Ana")
    }
    assert due == {
        "Marcus": [("2026-11-26", "scheduled", "2026-11-23T17:00:00+00:00")],  # Chicago
        "Sofia": [("2026-11-27", "scheduled", "2026-11-24T18:00:00+00:00")],  # Denver
        "Kenji": [("2026-12-01", "scheduled", "2026-11-28T19:00:00+00:00")],  # Los Angeles
        "Ana": [("2026-12-03", "scheduled", "2026-11-30T16:00:00+00:00")],  # Miami
    }


@pytest.mark.parametrize(
    ("action", "body", "after"),
    [
        ("skip", None, [("2026-11-26", "cancelled"), ("2026-12-26", "scheduled")]),
        (
            "next-billing-date",
            {"nextBillingDate": "2026-12-02"},
            [("2026-11-26", "cancelled"), ("2026-12-02", "scheduled")],
        ),
        ("pause", None, [("2026-11-26", "cancelled")]),
        ("cancel", None, [("2026-11-26", "cancelled")]),
    ],
)
def test_a_changed_billing_date_cancels_or_moves_the_pending_notice(
    app: Flask,
    sandbox: SandboxServer,
    session: Session,
    action: str,
    body: JSON | None,
    after: list[tuple[str, str]],
) -> None:
    bars = demo_state(sandbox, "Marcus")
    with freeze_time(SEED_NOW) as clock:
        worker = Worker(app)
        worker.sync()
        worker.plan()
        act(sandbox, bars, action, body)
        clock.tick(timedelta(minutes=15))
        worker.sync()
        worker.plan()

    assert [(day, status) for day, status, _ in notices(session, bars)] == after


def test_a_notice_sent_for_a_date_is_never_sent_again_for_it(
    app: Flask, sandbox: SandboxServer, twilio: TwilioFake, session: Session
) -> None:
    bars = demo_state(sandbox, "Marcus")
    with freeze_time(SENT_AT) as clock:
        worker = Worker(app)
        worker.sync()
        worker.plan()
        worker.dispatch()
        # Skipped, then the skip undone: the billing date is the one already announced.
        for action in ("skip", "unskip"):
            act(sandbox, bars, action)
            clock.tick(timedelta(minutes=15))
            worker.sync()
            worker.plan()
            worker.dispatch()

    assert len(reminders(twilio, MARCUS)) == 1
    assert [(day, status) for day, status, _ in notices(session, bars)] == [
        ("2026-11-26", "sent"),
        ("2026-12-26", "cancelled"),
    ]


def test_a_date_that_comes_back_before_the_notice_left_revives_it(
    app: Flask, sandbox: SandboxServer, twilio: TwilioFake, session: Session
) -> None:
    bars = demo_state(sandbox, "Marcus")
    with freeze_time(SEED_NOW) as clock:
        worker = Worker(app)
        worker.sync()
        for action in ("skip", "unskip"):
            act(sandbox, bars, action)
            clock.tick(timedelta(minutes=15))
            worker.sync()
            worker.plan()
        clock.move_to(SENT_AT)
        worker.dispatch()

    assert len(reminders(twilio, MARCUS)) == 1
    assert [(day, status) for day, status, _ in notices(session, bars)] == [
        ("2026-11-26", "sent"),
        ("2026-12-26", "cancelled"),
    ]


def test_a_new_number_moves_the_pending_notice_to_it(
    app: Flask, sandbox: SandboxServer, twilio: TwilioFake, session: Session
) -> None:
    bars = demo_state(sandbox, "Marcus")
    with freeze_time(SEED_NOW) as clock:
        worker = Worker(app)
        worker.sync()
        worker.plan()
        bars["custRel"]["phone"] = "(312) 555-0199"
        sandbox.store.add(bars)
        clock.tick(timedelta(minutes=15))
        worker.sync()
        worker.plan()
        clock.move_to(SENT_AT)
        worker.dispatch()

    assert twilio.state.bodies_to(MARCUS) == []
    assert len(twilio.state.bodies_to("+13125550199")) == 1
    assert [status for _, status, _ in notices(session, bars)] == ["sent"]


def test_a_notice_that_cannot_arrive_in_waking_hours_before_billing_expires(
    app: Flask, sandbox: SandboxServer, session: Session
) -> None:
    # Notices on the billing day itself: 14:00 UTC is before 11:00 everywhere in the US.
    set_shop(app, session, notice_days_before=0)
    with freeze_time(SEED_NOW):
        Worker(app).sync()
        Worker(app).plan()

    bars = notices(session, demo_state(sandbox, "Marcus"))
    assert [(day, status) for day, status, _ in bars] == [("2026-11-26", "expired")]


def add_subscriber(
    sandbox: SandboxServer, key: str, phone: str, billing: datetime, **address: str
) -> JSON:
    customer = make_customer(key, first_name=key.title(), phone=phone, address=address or None)
    state = make_purchase_state(key, billing, customer=customer)
    sandbox.store.add(state)
    return state


def test_a_florida_address_closes_the_window_at_eight_pm(
    app: Flask, sandbox: SandboxServer, session: Session
) -> None:
    # Both have New York numbers and bill at 20:30 New York time; one lives in Florida.
    billing = datetime(2026, 11, 28, 1, 30, tzinfo=UTC)
    florida = add_subscriber(sandbox, "flo", "+12125550101", billing, province="Florida")
    new_york = add_subscriber(sandbox, "nia", "+12125550102", billing, province="NY")
    with freeze_time(SEED_NOW):
        Worker(app).sync()
        Worker(app).plan()

    # Due 3 days before, 20:30 in New York: allowed there, too late for Florida's 20:00.
    assert notices(session, new_york) == [("2026-11-28", "scheduled", "2026-11-25T01:30:00+00:00")]
    assert notices(session, florida) == [("2026-11-28", "scheduled", "2026-11-25T16:00:00+00:00")]


def test_a_toll_free_number_is_placed_in_the_shops_zone(
    app: Flask, sandbox: SandboxServer, session: Session
) -> None:
    set_shop(app, session, time_zone="America/Denver")
    state = add_subscriber(sandbox, "tol", "(800) 555-0199", datetime(2026, 12, 1, 14, tzinfo=UTC))
    with freeze_time(SEED_NOW):
        Worker(app).sync()
        Worker(app).plan()

    # Nov 28 07:00 in Denver, moved to 11:00 there; dozens of zones would share no window.
    assert notices(session, state) == [("2026-12-01", "scheduled", "2026-11-28T18:00:00+00:00")]
