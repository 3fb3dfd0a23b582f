"""Console settings: the shop row with validation, the cancellation reason from Smartrr, and
the connection tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session
from test_console_support import Console, signed_in

from bot import create_app
from bot.config import Settings
from bot.console.settings import pause_days
from bot.smartrr.client import SmartrrClient
from bot.smartrr.records import CancellationReason
from bot.smartrr.sandbox import SandboxServer
from bot.storage.db import get_db
from bot.storage.models import Shop
from bot.storage.shop import SHOP_ID, effective_settings, ensure_shop

VALID = {
    "name": "Bean Club Roasters",
    "account_page_url": "https://beanclub.example/account",
    "time_zone": "America/Denver",
    "window_start": "10:00",
    "window_end": "20:30",
    "notice_days_before": "2",
    "max_delay_days": "45",
    "pause_options": "2 weeks,1 month ,  6 weeks",
    "max_pause_days": "60",
    "sending_enabled": "on",
}


@pytest.fixture
def console(app: Flask) -> Console:
    return signed_in(app)


def listed_reasons(sandbox: SandboxServer) -> list[CancellationReason]:
    """The cancellation reasons as Smartrr lists them, archived ones too."""
    with SmartrrClient(sandbox.url, sandbox.token or "") as client:
        return client.cancellation_reasons()


def offered(sandbox: SandboxServer) -> list[CancellationReason]:
    reasons = [reason for reason in listed_reasons(sandbox) if not reason.archived]
    assert reasons, "the sandbox offers no cancellation reason"
    return reasons


def stored_shop(app: Flask) -> Shop:
    with get_db(app).read() as db:
        shop = db.get_one(Shop, SHOP_ID)
        db.expunge(shop)
        return shop


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
    assert 'value="1 month, 2 months, 3 months"' in page
    assert 'value="92"' in page
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
    assert effective.pause_options == ("2 weeks", "1 month", "6 weeks")
    assert effective.max_pause_days == 60
    assert 'value="2 weeks, 1 month, 6 weeks"' in console.text("/console/settings")


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
        ("max_pause_days", "367", "Longest pause must be a whole number from 1 to 366"),
        ("pause_options", " , ", "Give at least one pause length, like 1 month."),
        ("pause_options", "1 month, forever", "“forever” is not a length of time"),
        ("pause_options", "2 weeks, March 3", "“March 3” is not a length of time"),
        ("pause_options", "0 days", "“0 days” is not a length of time"),
        ("pause_options", "1 month, 9 weeks", "“9 weeks” is longer than the longest pause (60"),
        ("pause_options", "2 years", "“2 years” is longer than the longest pause (60 days)"),
        ("pause_options", ", ".join(f"{n} days" for n in range(1, 11)), "at most 9 pause lengths"),
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


def test_an_invalid_pause_option_is_marked_on_its_field(console: Console) -> None:
    response = console.post("/console/settings", {**VALID, "pause_options": "until I say so"})

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'id="pause_options" name="pause_options" value="until I say so"' in page
    assert 'aria-describedby="pause_options-error"' in page
    assert '<p class="field-error" id="pause_options-error">' in page


@pytest.mark.parametrize(
    ("option", "today", "days"),
    [
        ("2 weeks", date(2026, 12, 4), 14),
        ("1 month", date(2026, 1, 31), 28),  # a month keeps the day where it can
        ("3 months", date(2026, 5, 31), 92),
        ("3 mos", date(2026, 12, 4), 90),
        ("ten days", date(2026, 12, 4), 10),
        ("June 1", date(2026, 12, 4), None),  # a date is no length
        ("for a while", date(2026, 12, 4), None),
    ],
)
def test_a_pause_option_is_read_as_a_subscribers_pause_would_be(
    option: str, today: date, days: int | None
) -> None:
    assert pause_days(option, today) == days


def test_the_default_pause_options_fit_the_default_longest_pause_on_any_day() -> None:
    for start in (date(2026, month, 28 + extra) for month in (1, 5, 7, 12) for extra in (0, 3)):
        assert all(
            (pause_days(option, start) or 0) <= 92 for option in ("1 month", "2 months", "3 months")
        )


def test_cancelling_by_text_needs_a_cancellation_reason(app: Flask, console: Console) -> None:
    response = console.post("/console/settings", {**VALID, "cancel_by_text": "on"})

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Pick the cancellation reason Smartrr should record." in page
    assert 'aria-describedby="cancel_reason-error"' in page
    assert stored_shop(app).cancel_by_text is False


def test_the_reason_list_comes_from_smartrr_and_the_choice_is_saved(
    app: Flask, console: Console, sandbox: SandboxServer
) -> None:
    page = console.text("/console/settings")
    for reason in listed_reasons(sandbox):
        assert (f'<option value="{reason.id}"' in page) is not reason.archived
    chosen = offered(sandbox)[-1]

    response = console.post(
        "/console/settings", {**VALID, "cancel_by_text": "on", "cancel_reason_id": chosen.id}
    )

    assert response.status_code == 302
    shop = stored_shop(app)
    assert (shop.cancel_by_text, shop.cancel_reason_id) == (True, chosen.id)
    assert f'<option value="{chosen.id}" selected>' in console.text("/console/settings")


def test_a_reason_smartrr_does_not_offer_is_refused(app: Flask, console: Console) -> None:
    response = console.post(
        "/console/settings",
        {**VALID, "cancel_by_text": "on", "cancel_reason_id": "no-such-reason"},
    )

    assert response.status_code == 400
    assert "Pick a reason from the list" in response.get_data(as_text=True)
    assert stored_shop(app).cancel_reason_id is None


def test_without_smartrr_the_page_says_why_and_keeps_the_saved_reason(
    app: Flask, console: Console, sandbox: SandboxServer
) -> None:
    with get_db(app).begin() as db:
        ensure_shop(db, app.extensions["settings"]).cancel_reason_id = "reason-saved-before"

    sandbox.store.fail_next(1, status=401)
    page = console.text("/console/settings")
    assert "Smartrr could not list its cancellation reasons: Smartrr refused the API token" in page
    assert "The reason saved before stays." in page
    assert 'name="cancel_reason_id"' not in page

    sandbox.store.fail_next(1, status=401)
    response = console.post(
        "/console/settings", {**VALID, "cancel_by_text": "on", "cancel_reason_id": "another"}
    )

    assert response.status_code == 302
    shop = stored_shop(app)
    assert (shop.cancel_by_text, shop.cancel_reason_id) == (True, "reason-saved-before")


def test_a_saved_reason_smartrr_no_longer_offers_is_pointed_out(
    app: Flask, console: Console, sandbox: SandboxServer
) -> None:
    archived = [reason.id for reason in listed_reasons(sandbox) if reason.archived]
    with get_db(app).begin() as db:
        shop = ensure_shop(db, app.extensions["settings"])
        shop.cancel_reason_id = archived[0] if archived else "deleted-in-smartrr"

    page = console.text("/console/settings")

    assert "The reason saved before is archived or gone in Smartrr: choose another." in page
    assert " selected>" not in page.split('id="cancel_reason_id"', 1)[1].split("</select>")[0]
