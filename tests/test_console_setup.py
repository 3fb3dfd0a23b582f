"""The go-live checklist at /console/setup: live connection checks, the Smartrr webhooks,
Smartrr's own upcoming-order text, acknowledgements, the sending switch that only opens with
every item done, and the event-text switches."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session
from test_console_support import Console, signed_in, upcoming_text_in_smartrr
from twilio_fake import TwilioFake

from bot import create_app
from bot.console.setup import Item, upcoming_text_item
from bot.smartrr.client import NO_ID, SmartrrClient
from bot.smartrr.errors import SmartrrAuthError
from bot.smartrr.records import Webhook
from bot.smartrr.sandbox import SandboxServer
from bot.smartrr.webhooks import EVENT_TYPES
from bot.storage.db import get_db
from bot.storage.models import Shop

READY_TO_ACKNOWLEDGE = ("templates", "smartrr-notice")
SECRET = "s3cret+with/odd&chars"
WEBHOOK_URL = "https://bot.example.com/smartrr/webhook?token=s3cret%2Bwith%2Fodd%26chars"
SHOWN_URL = "https://bot.example.com/smartrr/webhook?token=••••"


@pytest.fixture
def config(config: dict[str, Any]) -> dict[str, Any]:
    return {**config, "SMARTRR_WEBHOOK_SECRET": SECRET}


def registered(sandbox: SandboxServer) -> list[Webhook]:
    with SmartrrClient(sandbox.url, sandbox.token or "") as client:
        return client.webhooks()


def item(page: str, key: str) -> str:
    """The text of one checklist item, tags stripped."""
    match = re.search(rf'<li class="card" id="item-{key}".*?(?=<li class="card"|</ol>)', page, re.S)
    assert match, f"no item {key}"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match.group(0))).split())


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


def test_sending_turns_on_only_with_every_item_done(
    console: Console, session: Session, sandbox: SandboxServer
) -> None:
    console.post("/console/setup/sending", {"sending": "off"})
    page = console.text("/console/setup")
    assert "Dry run: sending is off." in page
    assert re.search(r'<button type="submit" disabled[^>]*>Enable sending', page)

    refused = console.post("/console/setup/sending", {"sending": "on"}, follow_redirects=True)
    assert "Not yet: finish “Smartrr webhooks”, “Messages reviewed”, “" in refused.text
    assert shop(session).sending_enabled is False

    console.post("/console/setup/webhooks")
    upcoming_text_in_smartrr(sandbox, on=False)
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


def test_the_webhooks_item_lists_what_is_missing_without_the_secret(console: Console) -> None:
    page = console.text("/console/setup")

    webhooks = item(page, "webhooks")
    assert "To do" in webhooks
    assert f"{len(EVENT_TYPES)} of the {len(EVENT_TYPES)} event types" in webhooks
    assert SHOWN_URL in webhooks
    for kind in EVENT_TYPES:
        assert f"{kind}: missing" in webhooks
    assert "Register the missing webhooks" in webhooks
    assert "s3cret" not in page


def test_registering_creates_each_missing_webhook_once(
    console: Console, sandbox: SandboxServer
) -> None:
    first = console.post("/console/setup/webhooks", follow_redirects=True)
    assert f"Registered {len(EVENT_TYPES)} webhooks (0 already registered)." in first.text
    hooks = registered(sandbox)
    assert sorted(hook.event_type for hook in hooks) == sorted(EVENT_TYPES)
    assert {hook.url for hook in hooks} == {WEBHOOK_URL}

    again = console.post("/console/setup/webhooks", follow_redirects=True)
    assert f"Registered 0 webhooks ({len(EVENT_TYPES)} already registered)." in again.text
    assert len(registered(sandbox)) == len(EVENT_TYPES)
    webhooks = item(again.text, "webhooks")
    assert "To do" not in webhooks
    assert "Register the missing webhooks" not in webhooks
    assert "s3cret" not in again.text


def test_the_registered_url_is_one_the_bot_accepts(app: Flask, console: Console) -> None:
    path, _, query = WEBHOOK_URL.removeprefix("https://bot.example.com").partition("?")

    answer = app.test_client().post(f"{path}?{query}", json={"eventId": "evt-1"})

    assert answer.status_code == 200
    assert answer.get_json() == {"status": "stored"}


def test_a_webhook_with_an_old_secret_is_named(console: Console, sandbox: SandboxServer) -> None:
    with SmartrrClient(sandbox.url, sandbox.token or "") as client:
        client.create_webhook(
            "SUBSCRIPTION_SKIP", "https://bot.example.com/smartrr/webhook?token=old"
        )
        client.create_webhook("SUBSCRIPTION_SKIP", "https://elsewhere.example/hook")

    webhooks = item(console.text("/console/setup"), "webhooks")

    assert "SUBSCRIPTION_SKIP: missing" in webhooks
    assert "SUBSCRIPTION_SKIP to https://bot.example.com/smartrr/webhook?token=old" in webhooks
    assert "an old secret" in webhooks
    assert "elsewhere.example" not in webhooks


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"SMARTRR_WEBHOOK_SECRET": None}, "Set SMARTRR_WEBHOOK_SECRET"),
        ({"PUBLIC_BASE_URL": None}, "Set PUBLIC_BASE_URL to the https:// address"),
        ({"PUBLIC_BASE_URL": "http://bot.example.com"}, "(it is reached at http://bot.example"),
    ],
    ids=["no-secret", "no-public-url", "plain-http"],
)
def test_without_a_secret_or_an_https_address_the_item_says_what_to_set(
    app: Flask, config: dict[str, Any], overrides: dict[str, Any], words: str
) -> None:
    other = create_app({**config, **overrides})
    try:
        console = signed_in(other)
        page = console.text("/console/setup")
        refused = console.post("/console/setup/webhooks", follow_redirects=True)
    finally:
        other.extensions["smartrr"].close()
        get_db(other).dispose()

    assert "To do" in item(page, "webhooks")
    assert words in item(page, "webhooks")
    assert "Register the missing webhooks" not in page
    assert words in refused.text


def test_smartrr_refusing_the_registration_is_said(
    console: Console, sandbox: SandboxServer
) -> None:
    sandbox.store.fail_next(1, status=403)

    refused = console.post("/console/setup/webhooks", follow_redirects=True)

    assert "Webhooks not registered: Smartrr refused the API token (403)" in refused.text


MANUAL = Item("smartrr-notice", "I have turned off …", False, "Otherwise …", manual=True)


def test_smartrrs_own_upcoming_text_is_checked_in_smartrr_when_it_says() -> None:
    still_on = upcoming_text_item(True, MANUAL)
    assert not still_on.done and not still_on.manual
    assert "Turn off Smartrr's upcoming-order text in Smartrr → Settings → SMS" in still_on.detail
    assert "or subscribers get two" in still_on.detail

    off = upcoming_text_item(False, MANUAL)
    assert off.done and not off.manual
    assert off.key == "smartrr-notice"


def test_when_smartrr_does_not_say_the_merchant_confirms_the_upcoming_text() -> None:
    assert upcoming_text_item(None, MANUAL) is MANUAL


def test_smartrrs_upcoming_text_is_read_from_smartrr_not_acknowledged(
    console: Console, sandbox: SandboxServer
) -> None:
    upcoming_text_in_smartrr(sandbox, on=True)
    still_on = item(console.text("/console/setup"), "smartrr-notice")
    assert "To do" in still_on
    assert "Turn off Smartrr's upcoming-order text in Smartrr → Settings → SMS" in still_on
    assert "I have turned it off" not in still_on

    upcoming_text_in_smartrr(sandbox, on=False)
    off = item(console.text("/console/setup"), "smartrr-notice")
    assert "To do" not in off
    assert "Checked in Smartrr just now." in off
