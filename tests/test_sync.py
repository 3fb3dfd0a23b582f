"""Pulling subscriptions from Smartrr: through the CLI and the job, idempotent, with
phones in E.164, address states kept, and vanished subscriptions cancelled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import SEED_NOW, additions, counted_at_each_commit, portal_body
from flask import Flask
from flask.testing import FlaskCliRunner
from freezegun import freeze_time
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from bot.smartrr.errors import SmartrrUnavailable
from bot.smartrr.sandbox import JSON, SandboxServer, make_customer, make_purchase_state
from bot.smartrr.sync import SyncResult
from bot.storage.db import get_db
from bot.storage.models import OutboundMessage, Subscriber, Subscription
from bot.worker import Worker

BILLING = datetime(2026, 11, 30, 14, tzinfo=UTC)


def count(session: Session, model: type[Subscriber] | type[Subscription]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def subscriber(session: Session, key: str) -> Subscriber:
    session.expire_all()
    customer_id = make_customer(key)["id"]
    return session.scalars(
        select(Subscriber).where(Subscriber.smartrr_customer_id == customer_id)
    ).one()


def add_customer(
    sandbox: SandboxServer, key: str, phone: str | None, address: JSON | None = None
) -> None:
    customer = make_customer(key, first_name=key.title(), phone=phone, address=address)
    sandbox.store.add(make_purchase_state(key, BILLING, customer=customer))


def test_the_sync_command_pulls_active_and_paused_subscriptions(
    runner: FlaskCliRunner, session: Session
) -> None:
    result = runner.invoke(args=["sync"])

    assert result.exit_code == 0, result.output
    assert result.output == "synced 7 subscriptions (0 no longer listed)\n"
    assert (count(session, Subscriber), count(session, Subscription)) == (6, 7)
    statuses = session.scalars(select(Subscription.status).order_by(Subscription.status))
    assert list(statuses) == ["ACTIVE"] * 6 + ["PAUSED"]


def test_running_the_sync_again_updates_and_never_duplicates(
    app: Flask, sandbox: SandboxServer, session: Session
) -> None:
    worker = Worker(app)
    assert worker.sync() == SyncResult(synced=7, gone=0)
    bars = next(s for s in sandbox.store.states() if s["custRel"]["firstName"] == "Marcus")
    bars["custRel"]["firstName"] = "Marc"
    bars["nextBillingDate"] = "2026-12-01T15:00:00.000Z"
    bars["stLineItems"][0]["quantity"] = 3
    sandbox.store.add(bars)

    assert worker.sync() == SyncResult(synced=7, gone=0)

    assert (count(session, Subscriber), count(session, Subscription)) == (6, 7)
    changed = session.scalars(
        select(Subscription).where(Subscription.smartrr_id == bars["id"])
    ).one()
    assert changed.next_billing_at == datetime(2026, 12, 1, 15, tzinfo=UTC)
    assert changed.products == "Protein Bars x3"
    assert changed.subscriber.first_name == "Marc"


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("(718) 555-0142", "+17185550142"),
        ("718.555.0142", "+17185550142"),
        ("1-718-555-0142", "+17185550142"),
        ("+44 20 7946 0958", "+442079460958"),
        ("12345", None),
        (None, None),
    ],
)
def test_phones_are_stored_in_e164_or_not_at_all(
    app: Flask, sandbox: SandboxServer, session: Session, raw: str | None, e164: str | None
) -> None:
    add_customer(sandbox, "lee", raw)

    Worker(app).sync()

    assert subscriber(session, "lee").phone == e164


def test_a_subscriber_without_a_usable_phone_gets_no_notice(
    app: Flask, sandbox: SandboxServer, session: Session
) -> None:
    add_customer(sandbox, "lee", "12345")
    with freeze_time(SEED_NOW):
        worker = Worker(app)
        worker.sync()
        worker.plan()

    lee = subscriber(session, "lee")
    assert (
        session.scalars(
            select(OutboundMessage).where(OutboundMessage.subscriber_id == lee.id)
        ).all()
        == []
    )


@pytest.mark.parametrize(
    ("address", "state"),
    [
        ({"province": "FL", "country": "US"}, "FL"),
        ({"province": "Florida", "countryCode": "US"}, "FL"),
        ({"provinceCode": "WA", "province": "Washington", "country": "United States"}, "WA"),
        ({"provinceCode": "ok"}, "OK"),
        ({"provinceCode": "WA", "country": "Australia"}, None),
        ({"provinceCode": "ON", "countryCode": "CA"}, None),
        ({"city": "Nowhere"}, None),
    ],
)
def test_the_address_state_is_kept_for_state_windows(
    app: Flask, sandbox: SandboxServer, session: Session, address: JSON, state: str | None
) -> None:
    add_customer(sandbox, "lee", "+12125550142", address)

    Worker(app).sync()

    assert subscriber(session, "lee").state == state


def test_the_default_address_and_an_address_zone_are_read_too(
    app: Flask, sandbox: SandboxServer, session: Session
) -> None:
    state = make_purchase_state("lee", BILLING)
    state["custRel"]["phone"] = "+12125550142"
    state["custRel"]["defaultAddress"] = {"provinceCode": "MD", "timezone": "America/New_York"}
    sandbox.store.add(state)

    Worker(app).sync()

    lee = subscriber(session, "lee")
    assert (lee.state, lee.time_zone) == ("MD", "America/New_York")


def test_demo_subscribers_get_their_address_states(app: Flask, session: Session) -> None:
    Worker(app).sync()

    states = {
        name: state
        for name, state in session.execute(select(Subscriber.first_name, Subscriber.state))
    }
    assert states == {
        "Maya": "NY",
        "Marcus": "IL",
        "Sofia": "CO",
        "Dana": "AZ",
        "Kenji": "CA",
        "Ana": "FL",
    }


def test_a_subscription_no_longer_listed_is_cancelled_with_its_notice(
    app: Flask, sandbox: SandboxServer, session: Session
) -> None:
    bars = next(s for s in sandbox.store.states() if s["custRel"]["firstName"] == "Marcus")
    with freeze_time(SEED_NOW) as clock:
        worker = Worker(app)
        worker.sync()
        worker.plan()
        cancel = portal_body(sandbox.store, bars, "cancel")
        sandbox.store.act(bars["custRel"]["id"], bars["id"], "cancel", cancel)
        clock.tick(timedelta(minutes=15))

        assert worker.sync() == SyncResult(synced=6, gone=1)
        worker.plan()

    subscription = session.scalars(
        select(Subscription).where(Subscription.smartrr_id == bars["id"])
    ).one()
    assert subscription.status == "CANCELLED"
    notice = session.scalars(
        select(OutboundMessage).where(
            OutboundMessage.subscription_id == subscription.id, OutboundMessage.kind == "notice"
        )
    ).one()
    assert (notice.status, notice.status_at) == ("cancelled", SEED_NOW + timedelta(minutes=15))


def test_a_sync_failure_leaves_what_was_stored(
    app: Flask, sandbox: SandboxServer, session: Session
) -> None:
    worker = Worker(app)
    worker.sync()
    sandbox.store.fail_next(8, 503, retry_after="0")

    with pytest.raises(SmartrrUnavailable):
        worker.sync()

    statuses = session.scalars(select(Subscription.status)).all()
    assert sorted(statuses) == ["ACTIVE"] * 6 + ["PAUSED"]


def test_a_sync_over_many_pages_and_batches_stores_each_subscription_once(
    app: Flask, sandbox: SandboxServer, session: Session
) -> None:
    # 1,234 more: five pages of 250 and three write batches, read ahead while written.
    keys = [f"many-{n}" for n in range(1234)]
    for n, key in enumerate(keys):
        add_customer(sandbox, key, f"+1212555{n:04d}")

    states = sandbox.store.states()

    result = Worker(app).sync()

    assert result.synced == len(states) == 1234 + 7
    assert count(session, Subscription) == len(states)
    assert count(session, Subscriber) == len({state["custRel"]["id"] for state in states})


def test_on_sqlite_the_sync_writes_a_hundred_subscriptions_a_transaction(
    app: Flask, sandbox: SandboxServer
) -> None:
    # Each of its transactions holds SQLite's one write lock, which every webhook waits on.
    for n in range(300):
        add_customer(sandbox, f"batch-{n}", f"+1212555{n:04d}")
    database = get_db(app)
    subscriptions = select(func.count()).select_from(Subscription)

    with counted_at_each_commit(database, subscriptions) as seen:
        Worker(app).sync()

    steps = additions(seen)
    assert sum(steps) == 307
    # PostgreSQL locks rows, so its transactions keep the sync's batch of 500.
    assert max(steps) == (307 if database.is_postgres else 100)


def table_statistics(session: Session, table: str) -> int:
    """Rows the query planner believes ``table`` holds (0 before any ANALYZE)."""
    if session.get_bind().dialect.name == "postgresql":
        believed = session.scalar(
            text("SELECT reltuples FROM pg_class WHERE relname = :t"), {"t": table}
        )
        return max(0, int(believed or 0))
    exists = session.scalar(text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"))
    if not exists:
        return 0
    stat = session.scalar(
        text("SELECT stat FROM sqlite_stat1 WHERE tbl = :t LIMIT 1"), {"t": table}
    )
    return int(stat.split()[0]) if stat else 0


def test_a_large_sync_leaves_fresh_statistics_for_the_planner(
    app: Flask, sandbox: SandboxServer, session: Session
) -> None:
    for n in range(1100):
        add_customer(sandbox, f"bulk-{n}", f"+1312555{n:04d}")

    # Before the billing dates, so that the sync's plan has notices to write.
    with freeze_time(SEED_NOW):
        Worker(app).sync()

    assert table_statistics(session, "subscriptions") == 1100 + 7
    assert table_statistics(session, "outbound_messages") >= 1000


def test_a_small_sync_does_not_analyze(
    app: Flask, sandbox: SandboxServer, session: Session
) -> None:
    Worker(app).sync()

    assert table_statistics(session, "subscriptions") == 0
