"""The console's main flows in a real headless Chromium (Debian's package) driven by Playwright,
against the app served over HTTP from a thread.

Set CONSOLE_SCREENSHOTS=docs/img to refresh the screenshots in docs/console.md.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Phone
from flask import Flask
from test_console_support import EMAIL, PASSWORD, create_account
from twilio_fake import TwilioFake
from werkzeug.serving import WSGIRequestHandler, make_server

from bot import create_app
from bot.outbound.messages import template_source
from bot.storage.db import get_db
from bot.worker import Worker

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = os.environ.get("CONSOLE_SCREENSHOTS")
STRANGER = "+12025550143"
PHONE_SCREEN = {"width": 390, "height": 844}

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
)
if not CHROMIUM.exists():
    pytest.skip(
        "Debian's chromium is not installed: `make browser` (apt-get install -y chromium)",
        allow_module_level=True,
    )
expect = sync_api.expect


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def _buffered(app: Flask) -> Any:
    """The app with each response read whole and closed before the server writes it.

    Werkzeug's development server leaves a streamed file (a static asset) open when the
    browser drops the connection mid-response, as it does on navigating away; the file's
    ResourceWarning then lands in whichever test runs next."""

    def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        response = app(environ, start_response)
        try:
            return [b"".join(response)]
        finally:
            if hasattr(response, "close"):
                response.close()

    return wsgi


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def live_app(app: Flask, config: dict[str, Any]) -> Iterator[Flask]:
    """The app in sandbox mode (with the phone simulator) on the migrated database."""
    sandboxed = create_app({**config, "SMARTRR_API_TOKEN": None})
    create_account(sandboxed)
    yield sandboxed
    sandboxed.extensions["smartrr"].close()
    get_db(sandboxed).dispose()


@pytest.fixture
def base_url(live_app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, _buffered(live_app), threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def page(browser: Any, base_url: str) -> Iterator[Any]:
    """A fresh page that fails the test on script errors and on failed assets or fetches
    (a page itself may answer 4xx on purpose, e.g. a refused sign-in)."""
    context = browser.new_context(base_url=base_url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def check(response: Any) -> None:
        if response.status >= 400 and response.request.resource_type != "document":
            errors.append(f"{response.status} for {response.url}")

    page.on("response", check)
    yield page
    context.close()
    assert errors == [], f"errors in the browser: {errors}"


def sign_in(page: Any, path: str = "/console/") -> None:
    page.goto(path)
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    # Signed in once the console's own page has loaded, its deferred scripts included:
    # callers may measure it and type into it at once.
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.wait_for_load_state("load")


def shot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / f"console-{name}.png"), full_page=True)


def test_sign_in_by_keyboard_lands_on_the_page_asked_for(page: Any) -> None:
    page.goto("/console/inbox")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shot(page, "login")
    # The skip link comes first, the form follows in reading order.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Email")).to_be_focused()
    page.keyboard.type(EMAIL)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    expect(page.get_by_role("link", name="Inbox")).to_have_attribute("aria-current", "page")


def test_wrong_password_is_announced(page: Any) -> None:
    page.goto("/console/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill("not it at all")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("do not match an account")


def test_live_preview_updates_while_typing_and_save_puts_the_wording_in_force(
    page: Any, live_app: Flask
) -> None:
    sign_in(page, "/console/messages/help")
    editor = page.get_by_label("Message text")
    editor.fill("{{ shop_name }}: reply SKIP, DELAY or PAUSE ☕")
    expect(page.locator("#preview-text")).to_have_text("Bean Box: reply SKIP, DELAY or PAUSE ☕")
    expect(page.locator("#preview-encoding")).to_have_text("UCS-2")
    expect(page.locator("#preview-ucs2")).to_contain_text("☕")
    editor.fill("{{ shop_nme }}: reply SKIP")
    expect(page.locator("#preview-problems")).to_contain_text("did you mean 'shop_name'")
    shot(page, "message-edit")
    editor.fill("{{ shop_name }}: reply SKIP, DELAY or PAUSE. STOP to opt out.")
    expect(page.locator("#preview-encoding")).to_have_text("GSM-7")
    expect(page.locator("#preview-problems li")).to_have_count(0)
    page.get_by_label("Note for the history (optional)").fill("shorter help")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Saved")
    with get_db(live_app).begin() as session:
        saved = template_source(session, "help")
    assert saved == "{{ shop_name }}: reply SKIP, DELAY or PAUSE. STOP to opt out."


def test_text_typed_before_the_preview_script_runs_is_previewed_when_it_does(page: Any) -> None:
    sign_in(page, "/console/messages")
    held: list[Any] = []
    page.route("**/preview.js", lambda route: held.append(route))
    page.goto("/console/messages/help", wait_until="commit")
    page.get_by_label("Message text").fill("{{ shop_name }}: typed early")
    for _ in range(100):  # the route handler runs while Playwright waits
        if held:
            break
        page.wait_for_timeout(50)
    assert len(held) == 1, "the preview script was not requested"
    expect(page.locator("#preview-text")).not_to_have_text("Bean Box: typed early")
    held[0].continue_()
    expect(page.locator("#preview-text")).to_have_text("Bean Box: typed early")


def test_restoring_a_version_brings_its_wording_back(page: Any) -> None:
    sign_in(page, "/console/messages/fallback")
    wordings = ("{{ shop_name }}: sorry, try HELP.", "{{ shop_name }}: reply HELP.")
    for version, wording in enumerate(wordings, 1):
        page.get_by_label("Message text").fill(wording)
        page.get_by_role("button", name="Save", exact=True).click()
        # The page after this save, not the one before it, which said "Saved" too.
        expect(page.get_by_role("rowheader", name=str(version), exact=True)).to_be_visible()
        expect(page.get_by_role("status")).to_contain_text("Saved")
    page.get_by_role("button", name="Restore version 1").click()
    expect(page.get_by_role("status")).to_contain_text("Version 1 restored.")
    expect(page.get_by_label("Message text")).to_have_value("{{ shop_name }}: sorry, try HELP.")
    newest = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="3", exact=True))
    expect(newest).to_contain_text("restored version 1")
    page.get_by_role("button", name="Reset to default").click()
    expect(page.get_by_role("status")).to_contain_text("Reset to the default wording.")
    expect(page.get_by_role("button", name="Reset to default")).to_be_disabled()


def test_inbox_item_is_answered_and_leaves_the_inbox(
    page: Any, live_app: Flask, phone: Phone, twilio: TwilioFake
) -> None:
    phone.text(STRANGER, "hi, who is this?")
    Worker(live_app).inbox()
    sign_in(page, "/console/inbox")
    item = page.locator(".inbox-item")
    expect(item).to_contain_text("Unknown number +1 ••• ••• 0143")
    expect(item).to_contain_text("hi, who is this?")
    shot(page, "inbox")
    item.get_by_label("Reply by text").fill("Hi! This is Bean Club's team.")
    item.get_by_role("button", name="Send reply").click()
    expect(page.get_by_role("status")).to_contain_text("Reply sent.")
    expect(page.locator(".inbox-item")).to_have_count(0)
    assert twilio.state.bodies_to(STRANGER)[-1] == "Hi! This is Bean Club's team."


def test_phone_simulator_shows_the_answer_and_the_sandbox_change(page: Any) -> None:
    sign_in(page, "/console/simulator")
    page.get_by_role("button", name="Load the demo subscribers").click()
    expect(page.get_by_role("status")).to_contain_text("Loaded 7 demo subscriptions.")
    page.get_by_label("Subscriber").select_option(label="Marcus Johnson (+1 ••• ••• 4420)")
    page.get_by_role("button", name="Show").click()
    state = page.locator("#sandbox-state")
    before = state.inner_text()
    page.get_by_label("Text the bot").fill("skip")
    page.get_by_role("button", name="Send", exact=True).click()
    answer = page.locator("#answer")
    expect(answer).to_contain_text("The bot answered")
    expect(answer).to_contain_text("skip", ignore_case=True)
    expect(state).not_to_have_text(before)
    shot(page, "simulator")


PAGES = {
    "overview": "/console/",
    "messages": "/console/messages",
    "upcoming": "/console/upcoming",
    "conversations": "/console/conversations",
    "settings": "/console/settings",
}


def test_every_page_fits_a_phone_screen(page: Any, live_app: Flask, phone: Phone) -> None:
    worker = Worker(live_app)
    worker.sync()
    worker.plan()
    phone.text("+13125794420", "NEXT")
    phone.text("+13125794420", "can you call me?")
    worker.inbox()
    sign_in(page)
    for name, path in PAGES.items():
        page.goto(path)
        shot(page, name)
    page.goto("/console/conversations")
    page.get_by_role("link", name="Marcus Johnson").click()
    shot(page, "conversation")
    page.set_viewport_size(PHONE_SCREEN)
    for path in [*PAGES.values(), "/console/inbox", "/console/messages/upcoming_order"]:
        page.goto(path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways on a phone by {overflow}px"
    page.goto("/console/messages/upcoming_order")
    shot(page, "phone")
