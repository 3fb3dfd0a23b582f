"""The go-live checklist at /console/setup: live connection checks, acknowledgements, the
sending switch that only opens with every item done, and the event-text switches."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session
from test_console_support import Console, signed_in
from twilio_fake import TwilioFake

from bot import create_app
from bot.db import get_db
from bot.models import Shop
from bot.sandbox import SandboxServer
from bot.smartrr import NO_ID, SmartrrAuthError, SmartrrClient

READY_TO_ACKNOWLEDGE = ("templates", "smartrr-notice")


def item(page: str, key: str) -> str:
    """The text of one checklist item, tags stripped."""
    match = re.search(rf'<li class="card" id="item-{key}".*?</li>', page, re.S)
    assert match, f"no item {key}"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(0)).split())


def shop(session: Session) -> Shop:
    found = session.get(Shop, 1)
    assert found is not None
    session.expunge(found)
    session.rollback()
    return found


@pytest.fixture
def console(app: Flask) -> Console:
    return signed_in(app)


def test_the_checklist_checks_both_connections_live(console: Console) -> None:
    page = console.text("/console/setup")

    assert "To do" not in item(page, "smartrr")
    assert "The API token reads and may change subscriptions." in item(page, "smartrr")
    assert "Account “Test account”, sending from +15005550006." in item(page, "twilio")
    for key in READY_TO_ACKNOWLEDGE:
        assert "To do" in item(page, key)


def test_sending_turns_on_only_with_every_item_done(console: Console, session: Session) -> None:
    console.post("/console/setup/sending", {"sending": "off"})
    page = console.text("/console/setup")
    assert "Dry run: sending is off." in page
    assert re.search(r'<button type="submit" disabled[^>]*>Enable sending', page)

    refused = console.post("/console/setup/sending", {"sending": "on"}, follow_redirects=True)
    assert "Not yet: finish “Messages reviewed”, “I have turned off Smartrr" in refused.text
    assert shop(session).sending_enabled is False

    for key in READY_TO_ACKNOWLEDGE:
        console.post(f"/console/setup/acknowledge/{key}")
    page = console.text("/console/setup")
    assert "To do" not in page
    assert re.search(r'<button type="submit">Enable sending', page)

    done = console.post("/console/setup/sending", {"sending": "on"}, follow_redirects=True)
    assert "Sending is on: reminders and event texts go out." in done.text
    stored = shop(session)
    assert stored.sending_enabled is True
    assert stored.templates_reviewed_at is not None
    assert stored.smartrr_notice_off_at is not None


def test_turning_sending_off_needs_no_checklist(console: Console, session: Session) -> None:
    response = console.post("/console/setup/sending", {"sending": "off"}, follow_redirects=True)

    assert "Sending is off" in response.text
    assert shop(session).sending_enabled is False


def test_an_unknown_acknowledgement_is_a_404(console: Console) -> None:
    assert console.post("/console/setup/acknowledge/everything").status_code == 404


def test_the_event_text_switches_are_stored_per_kind(console: Console, session: Session) -> None:
    console.post("/console/setup/event-texts", {"welcome": "on", "payment_failed": "on"})

    switches = shop(session).event_texts
    assert switches["welcome"] is True
    assert switches["skipped"] is False
    page = console.text("/console/setup")
    assert 'name="welcome" value="on" checked' in page
    assert 'name="skipped" value="on">' in page


@pytest.mark.parametrize(
    ("overrides", "key", "words"),
    [
        ({"SMARTRR_API_TOKEN": "not-the-token"}, "smartrr", "Smartrr refused the API token (401)"),
        ({"SMARTRR_API_TOKEN": None}, "smartrr", "Sandbox mode"),
        ({"TWILIO_AUTH_TOKEN": "wrong"}, "twilio", "Twilio refused"),
        ({"TWILIO_FROM_NUMBER": "+15005550009"}, "twilio", "is not a number of this account"),
        ({"TWILIO_API_URL": "http://127.0.0.1:9"}, "twilio", "Twilio is unreachable"),
        ({"TWILIO_ACCOUNT_SID": None, "TWILIO_AUTH_TOKEN": None}, "twilio", "Outbox mode"),
    ],
    ids=[
        "smartrr-token",
        "smartrr-sandbox",
        "twilio-credentials",
        "twilio-sender",
        "twilio-down",
        "outbox",
    ],
)
def test_a_connection_that_does_not_work_is_to_do(
    app: Flask, config: dict[str, Any], overrides: dict[str, Any], key: str, words: str
) -> None:
    other = create_app({**config, **overrides})
    try:
        page = signed_in(other).text("/console/setup")
    finally:
        other.extensions["smartrr"].close()
        get_db(other).dispose()

    assert "To do" in item(page, key)
    assert words in item(page, key)


def test_the_write_check_changes_nothing_and_tells_a_missing_scope(
    sandbox: SandboxServer,
) -> None:
    before = sandbox.store.states()
    with SmartrrClient(sandbox.url, sandbox.token or "") as client:
        client.check_write_access()  # 404 for a subscription nobody has: allowed
        sandbox.store.fail_next(1, status=403)
        with pytest.raises(SmartrrAuthError):
            client.check_write_access()

    assert sandbox.store.states() == before
    assert ("PUT", f"/vendor/customer/{NO_ID}/purchase-state/{NO_ID}/skip") in sandbox.store.calls


def test_a_sender_owned_by_the_account_is_verified_by_number(
    console: Console, twilio: TwilioFake
) -> None:
    twilio.state.numbers = ["+15005550001"]

    page = console.text("/console/setup")

    assert "+15005550006 is not a number of this account." in item(page, "twilio")
