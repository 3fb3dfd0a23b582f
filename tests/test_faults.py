"""Faults: Smartrr down or slow for ten minutes, Twilio refusing for a while, the
database dropping every connection. Each ends with zero lost and zero doubled texts."""

from __future__ import annotations

import os
import shlex
import subprocess
import threading
import time
from collections import Counter
from datetime import timedelta
from subprocess import DEVNULL
from typing import Any

import pytest
from conftest import SEED_NOW, Phone
from flask import Flask
from freezegun import freeze_time
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session
from twilio_fake import TwilioFake

from bot.outbound.dispatcher import SENDING
from bot.smartrr.sandbox import SandboxServer
from bot.storage.db import get_db
from bot.storage.models import InboundMessage, OutboundMessage
from bot.worker import Worker

#: One subscription each, so every text has exactly one target.
REQUESTS = {
    "+13125794420": "SKIP",  # Marcus
    "+13034512298": "delay 2 weeks",  # Sofia
    "+13105247391": "skip please",  # Kenji
    "+13056218854": "pause for 2 months",  # Ana
}
#: PUTs per subscription: with errors, one refused while down and one after;
#: with timeouts, one that landed late and was found by re-reading.
PUTS_PER_ACTION = {"errors": 2, "timeouts": 1}


@pytest.fixture
def config(config: dict[str, Any]) -> dict[str, Any]:
    """Short Smartrr timeouts and backoff, so that minutes of outage run in seconds, and a
    sender slow enough (100 texts/s) that connections drop in the middle of a batch."""
    return {
        **config,
        "SMARTRR_TIMEOUT_SECONDS": 0.2,
        "SMARTRR_BACKOFF_SECONDS": 0.01,
        "SMS_RATE_PER_SECOND": 100.0,
    }


@pytest.mark.parametrize("fault", ["errors", "timeouts"])
def test_a_ten_minute_smartrr_outage_ends_with_each_action_once_and_one_answer_each(
    app: Flask,
    sandbox: SandboxServer,
    twilio: TwilioFake,
    phone: Phone,
    session: Session,
    fault: str,
) -> None:
    with freeze_time(SEED_NOW + timedelta(hours=3)) as clock:
        worker = Worker(app)
        worker.sync()
        if fault == "errors":
            sandbox.store.fail_next(10**6, status=500)
        else:
            sandbox.store.delay = 0.4  # Smartrr acts, but only after we stopped waiting
        for number, body in REQUESTS.items():
            assert phone.text(number, body).status_code == 200
        for _ in range(20):  # ten minutes, a run every 30 seconds
            worker.inbox()
            clock.tick(timedelta(seconds=30))
        assert all(twilio.state.bodies_to(number) == [] for number in REQUESTS)

        sandbox.store.heal()
        for _ in range(40):  # until the backoff brings every text round again
            worker.inbox()
            clock.tick(timedelta(seconds=30))

    for number in REQUESTS:
        answers = twilio.state.bodies_to(number)
        assert len(answers) == 1, (number, answers)
        assert "could not" not in answers[0]
    puts = Counter(path.split("/")[5] for method, path in sandbox.store.calls if method == "PUT")
    assert set(puts.values()) == {PUTS_PER_ACTION[fault]}
    assert len(puts) == len(REQUESTS)
    states = {s["custRel"]["phone"]: s for s in sandbox.store.states()}
    assert states["+13125794420"]["nextBillingDate"].startswith("2026-12-26")  # skipped once
    assert states["+13105247391"]["nextBillingDate"].startswith("2027-01-01")  # Dec 1 + 1 month
    assert states["+13034512298"]["nextBillingDate"].startswith("2026-12-11")  # Nov 27 + 14 days
    assert states["+13056218854"]["purchaseStateStatus"] == "PAUSED"
    inbound = session.scalars(select(InboundMessage)).all()
    assert {(m.status, m.outcome) for m in inbound} <= {
        ("done", "skip"),
        ("done", "delay"),
        ("done", "pause"),
    }


def test_slow_smartrr_answers_are_waited_for(
    app: Flask, sandbox: SandboxServer, twilio: TwilioFake, phone: Phone
) -> None:
    sandbox.store.delay = 0.1  # slower than usual, well inside the timeout
    with freeze_time(SEED_NOW + timedelta(hours=3)):
        worker = Worker(app)
        worker.sync()
        phone.text("+13125794420", "skip")
        worker.inbox()
    assert len(twilio.state.bodies_to("+13125794420")) == 1
    assert sum(1 for m, p in sandbox.store.calls if m == "PUT") == 1


def test_twilio_refusing_for_a_while_delays_notices_but_loses_and_doubles_none(
    app: Flask, twilio: TwilioFake, session: Session
) -> None:
    with freeze_time(SEED_NOW + timedelta(hours=3)) as clock:
        worker = Worker(app)
        worker.sync()
        twilio.fail_next(3, status=429, code=20429)
        twilio.fail_next(3, status=500, code=20500)
        for _ in range(12 * 24):  # a day of dispatch runs, five minutes apart
            worker.dispatch()
            clock.tick(timedelta(minutes=5))

    notices = session.scalars(select(OutboundMessage).where(OutboundMessage.kind == "notice"))
    sent = [n for n in notices if n.status == "sent"]
    assert sent, "some notices fall due within the day"
    received = twilio.state.counts()
    assert all(received[n.to_number] == 1 for n in sent)
    assert sum(received.values()) == len(sent)
    assert all(n.status in {"sent", "scheduled", "expired"} for n in notices)
    assert not [n for n in notices if n.status == "failed"]


def test_dropped_database_connections_mid_dispatch_lose_and_double_nothing(
    postgres_url: str, app: Flask, twilio: TwilioFake, session: Session
) -> None:
    with freeze_time(SEED_NOW + timedelta(hours=3)):
        worker = Worker(app)
        worker.sync()
    due = _copy_notices(app, copies=300)
    killer = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    stop = threading.Event()

    def drop_connections() -> None:
        # What a PostgreSQL restart does to a client: every session is cut.
        while not stop.wait(0.3):
            with killer.connect() as conn:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )

    cutter = threading.Thread(target=drop_connections)
    with freeze_time(SEED_NOW + timedelta(hours=3), tick=True) as clock:
        cutter.start()
        failed_runs = 0
        for _ in range(80):
            try:
                worker.dispatch()
            except Exception:  # the scheduler logs a failed run and runs the job again
                failed_runs += 1
        stop.set()
        cutter.join()
        clock.tick(SENDING.lease + timedelta(minutes=1))  # interrupted sends are settled
        for _ in range(20):
            worker.dispatch()
    killer.dispose()

    session.rollback()
    copies = session.scalars(
        select(OutboundMessage).where(OutboundMessage.dedupe_key.startswith("copy:"))
    ).all()
    received = twilio.state.counts()
    assert len(copies) == due
    assert Counter(m.status for m in copies) == {"sent": due}
    assert all(received[m.to_number] == 1 for m in copies)
    assert max(received.values()) == 1  # nobody, copied or not, got a text twice
    assert failed_runs >= 1, "the connections must have dropped in the middle of sending"


RESTART = os.environ.get("PG_RESTART_COMMAND")


@pytest.mark.skipif(
    not RESTART, reason="set PG_RESTART_COMMAND to restart PostgreSQL here (.ci/run does)"
)
def test_a_postgresql_restart_mid_dispatch_loses_and_doubles_nothing(
    postgres_url: str, app: Flask, twilio: TwilioFake, session: Session
) -> None:
    assert RESTART is not None
    with freeze_time(SEED_NOW + timedelta(hours=3)):
        worker = Worker(app)
        worker.sync()
    due = _copy_notices(app, copies=600)
    sent_before_restart: list[int] = []

    def restart_when_sending() -> None:
        while sum(twilio.state.counts().values()) < 50:
            time.sleep(0.01)
        sent_before_restart.append(sum(twilio.state.counts().values()))
        # The new server must not hold our pipes open: its output goes nowhere.
        subprocess.run(shlex.split(RESTART), check=True, stdout=DEVNULL, stderr=DEVNULL)

    restarter = threading.Thread(target=restart_when_sending)
    with freeze_time(SEED_NOW + timedelta(hours=3), tick=True) as clock:
        restarter.start()
        for _ in range(600):  # about a minute at most
            try:
                worker.dispatch()
            except Exception:  # the database is down: the scheduler runs the job again
                time.sleep(0.1)
                continue
            if not restarter.is_alive():
                break
        restarter.join()
        clock.tick(SENDING.lease + timedelta(minutes=1))  # interrupted sends are settled
        for _ in range(20):
            worker.dispatch()

    session.rollback()
    copies = session.scalars(
        select(OutboundMessage).where(OutboundMessage.dedupe_key.startswith("copy:"))
    ).all()
    received = twilio.state.counts()
    assert sent_before_restart and sent_before_restart[0] < due, "restarted mid-dispatch"
    assert Counter(m.status for m in copies) == {"sent": due}
    assert all(received[m.to_number] == 1 for m in copies)
    assert max(received.values()) == 1


def _copy_notices(app: Flask, copies: int) -> int:
    """Make ``copies`` due notices for distinct numbers of one zone; return how many."""
    with get_db(app).begin() as session:
        from bot.storage.models import Subscriber, Subscription

        template = session.scalars(select(Subscription)).first()
        assert template is not None
        for index in range(copies):
            person = Subscriber(
                shop_id=1,
                smartrr_customer_id=f"copy-{index}",
                phone=f"+1312555{index:04d}",
                time_zone="America/Chicago",
                failed_deliveries=0,
            )
            sub = Subscription(
                subscriber=person,
                smartrr_id=f"copy-sub-{index}",
                status="ACTIVE",
                next_billing_at=SEED_NOW + timedelta(days=2),
                products="Copy",
            )
            session.add_all([person, sub])
            session.flush()
            session.add(
                OutboundMessage(
                    kind="notice",
                    dedupe_key=f"copy:{index}",
                    subscriber_id=person.id,
                    subscription_id=sub.id,
                    to_number=person.phone,
                    template="upcoming_order",
                    billing_at=sub.next_billing_at,
                    due_at=SEED_NOW,
                    expires_at=sub.next_billing_at,
                )
            )
    return copies
