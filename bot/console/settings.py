"""Settings: the merchant's shop row, and the Smartrr and Twilio connections."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from flask import Blueprint, flash, redirect, render_template, request, url_for
from twilio.base.exceptions import TwilioException
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from bot.config import Settings, split_options
from bot.console.common import app_settings
from bot.conversation.actions import shifted
from bot.conversation.choices import pause_span
from bot.outbound.sms import TwilioTransport, get_transport
from bot.rules.keywords import MAX_PAUSE_DAYS
from bot.rules.waking_hours import parse_window
from bot.smartrr.client import get_client
from bot.smartrr.errors import SmartrrError
from bot.smartrr.records import CancellationReason
from bot.storage.db import get_db
from bot.storage.models import Shop, utcnow
from bot.storage.shop import SHOP_ID, effective_settings, ensure_shop, new_shop

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
PAUSE_DAYS = range(1, MAX_PAUSE_DAYS + 1)
#: A subscriber picks a pause length with one digit.
MAX_PAUSE_OPTIONS = 9
#: The width of Shop.pause_options.
PAUSE_OPTIONS_WIDTH = 200


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
    pause_options: str
    max_pause_days: int
    cancel_by_text: bool
    cancel_reason_id: str | None
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
        pause_options=", ".join(settings.pause_options),
        max_pause_days=settings.max_pause_days,
        cancel_by_text=shop.cancel_by_text,
        cancel_reason_id=shop.cancel_reason_id,
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


def pause_days(option: str, today: date) -> int | None:
    """How many days a pause of ``option`` ("2 weeks", "1 month") from ``today`` lasts, read
    as a subscriber's "pause for …" would be; None when it is no length of time."""
    span = pause_span(option, today)
    return None if span is None else (shifted(today, span) - today).days


def _pause_problem(option: str, longest: int, today: date) -> str:
    days = pause_days(option, today)
    if days is None or days < 1:
        return f"“{option}” is not a length of time like 2 weeks or 1 month."
    if days > longest:
        return f"“{option}” is longer than the longest pause ({longest} days)."
    return ""


def _pause_options(raw: str, longest: int, today: date, errors: dict[str, str]) -> str:
    """The options, one ", " between each; what is wrong with them goes to errors."""
    options = split_options(raw)
    joined = ", ".join(options)
    # An invalid longest pause has its own error; the options are checked against the most.
    limit = longest if longest in PAUSE_DAYS else MAX_PAUSE_DAYS
    problems = [problem for option in options if (problem := _pause_problem(option, limit, today))]
    if not options:
        errors["pause_options"] = "Give at least one pause length, like 1 month."
    elif len(options) > MAX_PAUSE_OPTIONS:
        errors["pause_options"] = (
            f"Offer at most {MAX_PAUSE_OPTIONS} pause lengths: subscribers pick one by its digit."
        )
    elif problems:
        errors["pause_options"] = problems[0]
    elif len(joined) > PAUSE_OPTIONS_WIDTH:
        errors["pause_options"] = (
            f"Keep the pause lengths under {PAUSE_OPTIONS_WIDTH} characters in all."
        )
    return joined


def _reason(
    form: MultiDict[str, str],
    offered: list[CancellationReason] | None,
    saved: str | None,
    errors: dict[str, str],
) -> str | None:
    """The chosen cancellation reason; the saved one when Smartrr could not list them."""
    if offered is None:
        return saved
    chosen = form.get("cancel_reason_id", "").strip() or None
    if chosen is not None and chosen not in {reason.id for reason in offered}:
        errors["cancel_reason"] = "Pick a reason from the list: that one is not offered in Smartrr."
    return chosen


def parse_form(
    form: MultiDict[str, str],
    *,
    offered: list[CancellationReason] | None,
    saved_reason: str | None,
    today: date,
) -> tuple[ShopForm, dict[str, str]]:
    """Read and check the submitted settings; the errors are keyed by field name.

    ``offered`` are the cancellation reasons Smartrr lists (None: it could not say), and
    ``saved_reason`` the one stored.
    """
    errors: dict[str, str] = {}
    max_pause_days = _number(
        form.get("max_pause_days", ""), PAUSE_DAYS, "Longest pause", errors, "pause"
    )
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
        pause_options=_pause_options(form.get("pause_options", ""), max_pause_days, today, errors),
        max_pause_days=max_pause_days,
        cancel_by_text=form.get("cancel_by_text") == "on",
        cancel_reason_id=_reason(form, offered, saved_reason, errors),
        sending_enabled=form.get("sending_enabled") == "on",
    )
    # Smartrr's cancel call requires a reasonId.
    if values.cancel_by_text and values.cancel_reason_id is None and "cancel_reason" not in errors:
        errors["cancel_reason"] = "Pick the cancellation reason Smartrr should record."
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
    shop.pause_options = values.pause_options
    shop.max_pause_days = values.max_pause_days
    shop.cancel_by_text = values.cancel_by_text
    shop.cancel_reason_id = values.cancel_reason_id
    # Sending may be switched off here; switching it on goes through the go-live checklist.
    shop.sending_enabled = shop.sending_enabled and values.sending_enabled


@dataclass(frozen=True)
class Reasons:
    """The cancellation reasons Smartrr offers (not archived), or why it could not say."""

    offered: list[CancellationReason] | None
    problem: str = ""


def cancellation_reasons() -> Reasons:
    """Ask Smartrr for the cancellation reasons (call it outside any transaction)."""
    try:
        listed = get_client().cancellation_reasons()
    except SmartrrError as exc:
        return Reasons(None, str(exc))
    return Reasons([reason for reason in listed if not reason.archived])


def _page(
    values: ShopForm, errors: dict[str, str], reasons: Reasons, status: int = 200
) -> tuple[str, int]:
    settings = app_settings()
    saved, offered = values.cancel_reason_id, reasons.offered
    reason_gone = offered is not None and saved not in {None, *(r.id for r in offered)}
    page = render_template(
        "console/settings.html",
        form=values,
        errors=errors,
        zones=US_ZONES,
        all_zones=sorted(available_timezones()),
        settings=settings,
        reasons=reasons,
        reason_gone=reason_gone,
    )
    return page, status


@bp.get("")
def index() -> tuple[str, int]:
    """The settings form and connection status."""
    reasons = cancellation_reasons()
    with get_db().read() as db:
        # Before the first sync there is no shop row yet: the defaults it will get.
        shop = db.get(Shop, SHOP_ID) or new_shop(app_settings())
        values = current_form(shop, effective_settings(db, app_settings()))
    return _page(values, {}, reasons)


@bp.post("")
def save() -> Response | tuple[str, int]:
    """Check and store the settings."""
    reasons = cancellation_reasons()
    with get_db().begin() as db:
        shop = ensure_shop(db, app_settings())
        values, errors = parse_form(
            request.form,
            offered=reasons.offered,
            saved_reason=shop.cancel_reason_id,
            today=utcnow().date(),
        )
        if not errors:
            apply(shop, values)
    if errors:
        flash("Not saved: check the fields marked below.", "error")
        return _page(values, errors, reasons, 400)
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
