"""The whole loop over real joints: sandbox Smartrr over HTTP, the twilio SDK against
a Twilio-like server, the real database and the worker's jobs, with time frozen."""

from __future__ import annotations

from datetime import timedelta

from conftest import SEED_NOW, Phone
from flask import Flask
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session
from twilio_fake import TwilioFake

from bot.smartrr.sandbox import SandboxServer
from bot.storage.models import InboundMessage, OutboundMessage
from bot.worker import Worker

MARCUS = "+13125794420"  # Chicago; Protein Bars bill 2026-11-26 14:00 UTC (08:00 CST)


def marcus_state_id(sandbox: SandboxServer) -> str:
    return next(s["id"] for s in sandbox.store.states() if s["custRel"]["phone"] == MARCUS)


def test_notice_waits_for_waking_hours_then_skip_is_confirmed_with_new_date(
    app: Flask, sandbox: SandboxServer, twilio: TwilioFake, phone: Phone, session: Session
) -> None:
    with freeze_time(SEED_NOW) as clock:
        worker = Worker(app)
        worker.sync()
        worker.plan()
        worker.dispatch()
        # Due 3 days before billing is 08:00 in Chicago: too early.
        assert twilio.state.bodies_to(MARCUS) == []

        clock.move_to(SEED_NOW + timedelta(hours=2, minutes=59))  # 10:59 CST
        worker.dispatch()
        assert twilio.state.bodies_to(MARCUS) == []

        clock.move_to(SEED_NOW + timedelta(hours=3))  # 11:00 CST
        worker.dispatch()
        [notice] = twilio.state.bodies_to(MARCUS)
        assert notice.startswith("Bean Club: Heads up: your upcoming subscription (Protein Bars)")
        assert "3 days, on Nov 26" in notice

        clock.move_to(SEED_NOW + timedelta(hours=3, minutes=5))
        response = phone.text(MARCUS, "SKIP")
        assert response.status_code == 200
        assert response.mimetype == "text/xml"
        assert "<Response" in response.get_data(as_text=True)
        worker.inbox()

    state_id = marcus_state_id(sandbox)
    customer_id = sandbox.store.purchase_state(state_id)["custRel"]["id"]
    skips = [c for c in sandbox.store.calls if c[0] == "PUT" and c[1].endswith("/skip")]
    assert skips == [("PUT", f"/vendor/customer/{customer_id}/purchase-state/{state_id}/skip")]
    confirmation = twilio.state.bodies_to(MARCUS)[-1]
    assert "Dec 26" in confirmation
    assert "skip" in confirmation.lower()
    inbound = session.scalars(select(InboundMessage)).one()
    assert (inbound.status, inbound.intent, inbound.outcome) == ("done", "skip", "skip")


def test_repeated_webhook_delivery_is_stored_and_acted_on_once(
    app: Flask, sandbox: SandboxServer, twilio: TwilioFake, phone: Phone, session: Session
) -> None:
    with freeze_time(SEED_NOW + timedelta(hours=3)):
        worker = Worker(app)
        worker.sync()
        worker.plan()
        worker.dispatch()
        for _ in range(3):
            assert phone.text(MARCUS, "skip please", sid="SMrepeat0001").status_code == 200
        worker.inbox()
        worker.inbox()

    assert len([c for c in sandbox.store.calls if c[1].endswith("/skip")]) == 1
    assert len(session.scalars(select(InboundMessage)).all()) == 1
    replies = session.scalars(select(OutboundMessage).where(OutboundMessage.kind == "reply"))
    assert len(replies.all()) == 1


def test_bare_delay_asks_and_a_number_answers(
    app: Flask, sandbox: SandboxServer, twilio: TwilioFake, phone: Phone
) -> None:
    with freeze_time(SEED_NOW + timedelta(hours=3)):
        worker = Worker(app)
        worker.sync()
        worker.plan()
        worker.dispatch()
        phone.text(MARCUS, "DELAY")
        worker.inbox()
        question = twilio.state.bodies_to(MARCUS)[-1]
        assert "1 for 1 week, 2 for 2 weeks, 3 for 1 month" in question
        assert not [c for c in sandbox.store.calls if c[1].endswith("/next-billing-date")]

        phone.text(MARCUS, "2")
        worker.inbox()

    state = sandbox.store.purchase_state(marcus_state_id(sandbox))
    assert state["nextBillingDate"].startswith("2026-12-10")
    assert "Dec 10" in twilio.state.bodies_to(MARCUS)[-1]


def test_delay_with_a_duration_acts_at_once(
    app: Flask, sandbox: SandboxServer, twilio: TwilioFake, phone: Phone
) -> None:
    with freeze_time(SEED_NOW + timedelta(hours=3)):
        worker = Worker(app)
        worker.sync()
        worker.plan()
        worker.dispatch()
        phone.text(MARCUS, "DELAY 2 weeks")
        worker.inbox()

    state = sandbox.store.purchase_state(marcus_state_id(sandbox))
    assert state["nextBillingDate"].startswith("2026-12-10")
    assert "Dec 10" in twilio.state.bodies_to(MARCUS)[-1]
