"""The go-live checklist in a real headless Chromium: from a dry run, through the webhooks,
Smartrr's own upcoming-order text and the acknowledgements, to sending and back (fixtures
of test_console_browser)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from test_console_browser import base_url as base_url
from test_console_browser import browser as browser
from test_console_browser import expect, shot, sign_in
from test_console_browser import page as page
from test_console_support import create_account, upcoming_text_in_smartrr

from bot import create_app
from bot.smartrr.sandbox import SandboxServer
from bot.smartrr.webhooks import EVENT_TYPES
from bot.storage.db import get_db
from bot.storage.models import Shop


@pytest.fixture
def live_app(app: Flask, config: dict[str, Any]) -> Iterator[Flask]:
    """The app with a Smartrr token (the sandbox's), a webhook secret and Twilio: both
    connections work."""
    connected = create_app({**config, "SMARTRR_WEBHOOK_SECRET": "browser-secret"})
    create_account(connected)
    connected.test_cli_runner().invoke(args=["sending", "off"])
    yield connected
    connected.extensions["smartrr"].close()
    get_db(connected).dispose()


def sending_enabled(app: Flask) -> bool:
    with get_db(app).read() as session:
        shop = session.get(Shop, 1)
        assert shop is not None
        return shop.sending_enabled


def test_the_checklist_leads_from_a_dry_run_to_sending_and_back(
    page: Any,
    live_app: Flask,
    sandbox: SandboxServer,
) -> None:
    upcoming_text_in_smartrr(sandbox, on=True)
    sign_in(page, "/console/setup")
    expect(page.get_by_role("heading", name="Go live")).to_be_visible()
    expect(page.get_by_role("link", name="Go live")).to_have_attribute("aria-current", "page")
    expect(page.locator("#sending-state")).to_contain_text("Dry run: sending is off.")
    expect(page.locator("#item-smartrr")).to_contain_text("Done")
    expect(page.locator("#item-twilio")).to_contain_text("Account “Test account”")
    enable = page.get_by_role("button", name="Enable sending")
    expect(enable).to_be_disabled()
    shot(page, "setup")

    page.get_by_role("button", name="Register the missing webhooks").click()
    expect(page.get_by_role("status")).to_contain_text(f"Registered {len(EVENT_TYPES)} webhooks")
    expect(page.locator("#item-webhooks")).to_contain_text("Done")
    page.get_by_role("button", name="I have reviewed the messages").click()
    expect(page.get_by_role("status")).to_contain_text("Noted.")
    expect(enable).to_be_disabled()
    notice = page.locator("#item-smartrr-notice")
    expect(notice).to_contain_text("Turn off Smartrr's upcoming-order text")
    expect(notice.get_by_role("button")).to_have_count(0)
    upcoming_text_in_smartrr(sandbox, on=False)  # as the merchant does in Smartrr
    page.reload()
    expect(notice).to_contain_text("Done")
    expect(enable).to_be_enabled()

    enable.click()
    expect(page.get_by_role("status")).to_contain_text("Sending is on")
    expect(page.locator("#sending-state")).to_contain_text("Sending is on:")
    assert sending_enabled(live_app)

    page.get_by_role("button", name="Disable sending").click()
    expect(page.locator("#sending-state")).to_contain_text("Dry run: sending is off.")
    assert not sending_enabled(live_app)


def test_an_event_text_is_switched_off_with_its_checkbox(page: Any) -> None:
    sign_in(page, "/console/setup")
    skipped = page.get_by_label("Order skipped")
    expect(skipped).to_be_checked()
    skipped.uncheck()
    page.get_by_role("button", name="Save event texts").click()
    expect(page.get_by_role("status")).to_contain_text("Event texts saved.")
    expect(page.get_by_label("Order skipped")).not_to_be_checked()
    expect(page.get_by_label("Welcome")).to_be_checked()


def test_the_checklist_fits_a_phone_screen(page: Any) -> None:
    sign_in(page, "/console/setup")
    page.set_viewport_size({"width": 390, "height": 844})
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the checklist scrolls sideways on a phone by {overflow}px"
