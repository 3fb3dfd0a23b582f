"""Settings: the merchant's shop row, and the Smartrr and Twilio connections."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from flask import Blueprint, flash, redirect, render_template, request, url_for
from twilio.base.exceptions import TwilioException
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from bot.config import Settings
from bot.console.common import app_settings
from bot.db import get_db
from bot.models import Shop
from bot.shop import effective_settings, ensure_shop
from bot.smartrr import SmartrrError, get_client
from bot.sms import TwilioTransport, get_transport
from bot.waking_hours import parse_window

bp = Blueprint("settings", __name__, url_prefix="/settings")

US_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
)
DAYS_BEFORE = range(0, 31)
DELAY_DAYS = range(1, 366)


@dataclass(frozen=True)
class ShopForm:
    """The values the settings form edits."""

    name: str
    account_page_url: str
    time_zone: str
    window_start: str
    window_end: str
    notice_days_before: int
    max_delay_days: int
    cancel_by_text: bool
    sending_enabled: bool


def current_form(shop: Shop, settings: Settings) -> ShopForm:
    """The form filled from the shop row over the environment's settings."""
    return ShopForm(
        name=settings.shop_name,
        account_page_url=settings.account_page_url,
        time_zone=settings.shop_timezone,
        window_start=f"{settings.send_window.start:%H:%M}",
        window_end=f"{settings.send_window.end:%H:%M}",
        notice_days_before=settings.notice_days_before,
        max_delay_days=settings.max_delay_days,
        cancel_by_text=shop.cancel_by_text,
        sending_enabled=shop.sending_enabled,
    )


def _number(raw: str, allowed: range, label: str, errors: dict[str, str], key: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = allowed.start - 1
    if value not in allowed:
        errors[key] = f"{label} must be a whole number from {allowed.start} to {allowed[-1]}."
    return value


def parse_form(form: MultiDict[str, str]) -> tuple[ShopForm, dict[str, str]]:
    """Read and check the submitted settings; the errors are keyed by field name."""
    errors: dict[str, str] = {}
    values = ShopForm(
        name=form.get("name", "").strip(),
        account_page_url=form.get("account_page_url", "").strip(),
        time_zone=form.get("time_zone", "").strip(),
        window_start=form.get("window_start", "").strip(),
        window_end=form.get("window_end", "").strip(),
        notice_days_before=_number(
            form.get("notice_days_before", ""), DAYS_BEFORE, "Days before", errors, "days"
        ),
        max_delay_days=_number(
            form.get("max_delay_days", ""), DELAY_DAYS, "Longest delay", errors, "delay"
        ),
        cancel_by_text=form.get("cancel_by_text") == "on",
        sending_enabled=form.get("sending_enabled") == "on",
    )
    if not 1 <= len(values.name) <= 120:
        errors["name"] = "Give the shop a name of up to 120 characters."
    link = urlsplit(values.account_page_url)
    if link.scheme not in ("http", "https") or not link.netloc or len(link.geturl()) > 500:
        errors["account_page_url"] = "Enter a full web address, like https://shop.example/account."
    if values.time_zone not in available_timezones():
        errors["time_zone"] = "Pick a time zone from the list, like America/New_York."
    try:
        parse_window(f"{values.window_start}-{values.window_end}")
    except ValueError:
        errors["window"] = "Waking hours run from a start to a later end on the same day."
    return values, errors


def apply(shop: Shop, values: ShopForm) -> None:
    """Store the checked values on the shop row."""
    shop.name = values.name
    shop.account_page_url = values.account_page_url
    shop.time_zone = values.time_zone
    shop.send_window = f"{values.window_start}-{values.window_end}"
    shop.notice_days_before = values.notice_days_before
    shop.max_delay_days = values.max_delay_days
    shop.cancel_by_text = values.cancel_by_text
    # Sending may be switched off here; switching it on goes through the go-live checklist.
    shop.sending_enabled = shop.sending_enabled and values.sending_enabled


def _page(values: ShopForm, errors: dict[str, str], status: int = 200) -> tuple[str, int]:
    settings = app_settings()
    page = render_template(
        "console/settings.html",
        form=values,
        errors=errors,
        zones=US_ZONES,
        all_zones=sorted(available_timezones()),
        settings=settings,
    )
    return page, status


@bp.get("")
def index() -> tuple[str, int]:
    """The settings form and connection status."""
    with get_db().begin() as db:
        shop = ensure_shop(db, app_settings())
        values = current_form(shop, effective_settings(db, app_settings()))
    return _page(values, {})


@bp.post("")
def save() -> Response | tuple[str, int]:
    """Check and store the settings."""
    values, errors = parse_form(request.form)
    if errors:
        flash("Not saved: check the fields marked below.", "error")
        return _page(values, errors, 400)
    with get_db().begin() as db:
        apply(ensure_shop(db, app_settings()), values)
    flash("Settings saved.")
    return redirect(url_for(".index"))


@bp.post("/test-smartrr")
def test_smartrr() -> Response:
    """Make one harmless Smartrr call and say how it went."""
    try:
        get_client().check_connection()
    except SmartrrError as exc:
        flash(f"Smartrr connection failed: {exc}", "error")
    else:
        where = "the built-in sandbox" if app_settings().sandbox else "Smartrr"
        flash(f"Connected to {where}.")
    return redirect(url_for(".index"))


@bp.post("/test-twilio")
def test_twilio() -> Response:
    """Fetch the Twilio account through the SDK, or say texts go to the outbox."""
    settings = app_settings()
    transport = get_transport()
    if not isinstance(transport, TwilioTransport) or not settings.twilio_account_sid:
        flash("Outbox mode: no Twilio credentials are set, so texts are recorded, not sent.")
        return redirect(url_for(".index"))
    try:
        account = transport.client.api.v2010.accounts(settings.twilio_account_sid).fetch()
    except TwilioException as exc:
        flash(f"Twilio connection failed: {exc}", "error")
    else:
        flash(f"Connected to Twilio account “{account.friendly_name}” ({account.status}).")
    return redirect(url_for(".index"))
