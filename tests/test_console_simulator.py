"""Phone simulator: sandbox mode only; a text is stored as the webhook would, answered at once,
and the sandbox's subscription changes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session
from test_console_support import signed_in
from twilio_fake import TwilioFake

from bot import create_app
from bot.smartrr.sandbox import SandboxServer
from bot.storage.db import get_db
from bot.storage.models import InboundMessage, Subscriber

MARCUS = "+13125794420"


@pytest.fixture
def sandbox_app(app: Flask, config: dict[str, Any]) -> Iterator[Flask]:
    """The app in sandbox mode (no Smartrr token) on the migrated database."""
    sandboxed = create_app({**config, "SMARTRR_API_TOKEN": None})
    yield sandboxed
    sandboxed.extensions["smartrr"].close()
    get_db(sandboxed).dispose()


def built_in_sandbox(app: Flask) -> SandboxServer:
    sandbox: SandboxServer = app.extensions["smartrr"].sandbox
    return sandbox


def marcus_billing(app: Flask) -> str:
    store = built_in_sandbox(app).store
    state = next(s for s in store.states() if s["custRel"]["phone"] == MARCUS)
    return str(state["nextBillingDate"])


def test_simulator_is_not_there_outside_sandbox_mode(app: Flask) -> None:
    console = signed_in(app)
    assert console.get("/console/simulator").status_code == 404
    assert (
        console.post("/console/simulator", {"subscriber": "1", "body": "SKIP"}).status_code == 404
    )
    assert "Phone simulator" not in console.text("/console/")


def test_simulated_skip_is_answered_and_changes_the_sandbox_subscription(
    sandbox_app: Flask, twilio: TwilioFake, session: Session
) -> None:
    console = signed_in(sandbox_app)
    assert "No demo subscribers are loaded yet" in console.text("/console/simulator")
    console.post("/console/simulator/load")
    page = console.text("/console/simulator")
    assert "Loaded 7 demo subscriptions." in page
    marcus = re.search(r'<option value="(\d+)"[^>]*>Marcus Johnson', page)
    assert marcus is not None
    before = marcus_billing(sandbox_app)

    response = console.post("/console/simulator", {"subscriber": marcus.group(1), "body": "SKIP"})
    assert response.status_code == 302
    assert "#answer" in response.headers["Location"]
    page = console.text(response.headers["Location"])

    after = marcus_billing(sandbox_app)
    assert after != before
    [reply] = twilio.state.bodies_to(MARCUS)
    assert "skip" in reply.lower()
    assert "The bot answered" in page
    assert reply.replace("'", "&#39;") in page
    assert "Protein Bars</strong>: ACTIVE" in page
    inbound = session.scalars(select(InboundMessage)).one()
    assert inbound.message_sid.startswith("SIM")
    assert (inbound.from_number, inbound.status, inbound.intent) == (MARCUS, "done", "skip")
    assert inbound.lease_owner is None


def test_simulator_refuses_an_empty_text_and_an_unknown_subscriber(
    sandbox_app: Flask, session: Session
) -> None:
    console = signed_in(sandbox_app)
    console.post("/console/simulator/load")
    with get_db(sandbox_app).begin() as db:
        subscriber_id = db.scalars(select(Subscriber.id).limit(1)).one()
    console.post("/console/simulator", {"subscriber": str(subscriber_id), "body": "  "})
    assert "Type a text of 1 to 1,600 characters." in console.text("/console/simulator")
    assert (
        console.post("/console/simulator", {"subscriber": "999", "body": "hi"}).status_code == 400
    )
    assert session.scalars(select(InboundMessage)).all() == []
