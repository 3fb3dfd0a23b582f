"""Console settings: the shop row with validation, and the connection tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session
from test_console_support import Console, signed_in

from bot import create_app
from bot.config import Settings
from bot.db import get_db
from bot.models import Shop
from bot.sandbox import SandboxServer
from bot.shop import SHOP_ID, effective_settings

VALID = {
    "name": "Bean Club Roasters",
    "account_page_url": "https://beanclub.example/account",
    "time_zone": "America/Denver",
    "window_start": "10:00",
    "window_end": "20:30",
    "notice_days_before": "2",
    "max_delay_days": "45",
    "cancel_by_text": "on",
    "sending_enabled": "on",
}


@pytest.fixture
def console(app: Flask) -> Console:
    return signed_in(app)


@pytest.fixture
def other_app(config: dict[str, Any], app: Flask) -> Iterator[Any]:
    """Build a second app on the same (migrated) database with some settings changed."""
    made: list[Flask] = []

    def build(**changes: Any) -> Flask:
        made.append(create_app({**config, **changes}))
        return made[-1]

    yield build
    for extra in made:
        get_db(extra).dispose()


def test_settings_page_starts_from_the_environment(console: Console) -> None:
    page = console.text("/console/settings")
    for value in ('value="Bean Club"', 'value="11:00"', 'value="21:00"', 'value="3"', 'value="60"'):
        assert value in page
    assert 'value="America/New_York"' in page


def test_saving_valid_settings_changes_what_the_bot_uses(
    app: Flask, console: Console, session: Session
) -> None:
    response = console.post("/console/settings", VALID)
    assert response.status_code == 302
    assert "Settings saved." in console.text("/console/settings")
    settings: Settings = app.extensions["settings"]
    effective = effective_settings(session, settings)
    assert effective.shop_name == "Bean Club Roasters"
    assert effective.shop_timezone == "America/Denver"
    assert str(effective.send_window) == "10:00-20:30"
    assert (effective.notice_days_before, effective.max_delay_days) == (2, 45)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "", "Give the shop a name"),
        ("account_page_url", "javascript:alert(1)", "full web address"),
        ("time_zone", "Mars/Olympus", "Pick a time zone"),
        ("window_end", "09:00", "Waking hours run from a start to a later end"),
        ("window_start", "25:00", "Waking hours run from a start to a later end"),
        ("notice_days_before", "99", "Days before must be a whole number from 0 to 30"),
        ("max_delay_days", "soon", "Longest delay must be a whole number from 1 to 365"),
    ],
)
def test_invalid_settings_are_refused_with_the_reason_and_nothing_is_stored(
    app: Flask, console: Console, field: str, value: str, message: str
) -> None:
    response = console.post("/console/settings", {**VALID, field: value})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page
    assert 'aria-invalid="true"' in page
    with get_db(app).begin() as db:
        assert effective_settings(db, app.extensions["settings"]).shop_name == "Bean Club"


def test_smartrr_connection_test_reports_success_and_failure(
    console: Console, sandbox: SandboxServer
) -> None:
    console.post("/console/settings/test-smartrr")
    assert "Connected to Smartrr." in console.text("/console/settings")
    sandbox.store.fail_next(1, status=401)
    console.post("/console/settings/test-smartrr")
    assert "Smartrr connection failed" in console.text("/console/settings")


def test_twilio_connection_test_fetches_the_account(console: Console) -> None:
    console.post("/console/settings/test-twilio")
    assert "Connected to Twilio account “Test account” (active)." in console.text(
        "/console/settings"
    )


def test_twilio_connection_test_reports_bad_credentials(other_app: Any) -> None:
    console = signed_in(other_app(TWILIO_AUTH_TOKEN="wrong-token"))
    console.post("/console/settings/test-twilio")
    assert "Twilio connection failed" in console.text("/console/settings")


def test_without_twilio_credentials_the_console_says_outbox_mode(other_app: Any) -> None:
    console = signed_in(other_app(TWILIO_ACCOUNT_SID=None, TWILIO_AUTH_TOKEN=None))
    page = console.text("/console/settings")
    assert "Outbox mode" in page
    console.post("/console/settings/test-twilio")
    assert "texts are recorded, not sent" in console.text("/console/settings")


def test_settings_can_switch_sending_off_but_only_the_checklist_switches_it_on(
    app: Flask, console: Console
) -> None:
    off = {key: value for key, value in VALID.items() if key != "sending_enabled"}
    assert console.post("/console/settings", off).status_code == 302
    page = console.text("/console/settings")
    assert "Sending is off (dry run)" in page
    assert 'name="sending_enabled"' not in page

    assert console.post("/console/settings", VALID).status_code == 302
    with get_db(app).read() as db:
        assert db.get(Shop, SHOP_ID).sending_enabled is False  # type: ignore[union-attr]
    assert "Dry run: sending is off." in console.text("/console/upcoming")
