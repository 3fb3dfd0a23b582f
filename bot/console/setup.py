"""Setup: the go-live checklist (connections and Smartrr's settings checked live, what only
the merchant can confirm), the sending switch and the event-text switches.

Bot-initiated texts may be turned on only once every item is done; turning them off
always works and takes effect at once (the dispatcher reads the switch before each send).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import requests
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from twilio.base.exceptions import TwilioException
from werkzeug.wrappers import Response

from bot.config import Settings
from bot.console.common import app_settings
from bot.outbound.event_texts import KINDS, TEMPLATE_PREFIX, enabled
from bot.outbound.sms import Transport, TwilioTransport, get_transport
from bot.rules.catalog import CATALOG, TemplateSpec
from bot.smartrr.client import SmartrrClient, get_client
from bot.smartrr.errors import SmartrrError
from bot.smartrr.webhooks import EVENT_TYPES, NotConfigured, hide_secret, register, survey
from bot.smartrr.webhooks import webhook_url as smartrr_webhook_url
from bot.storage.db import get_db
from bot.storage.models import Shop, utcnow
from bot.storage.shop import ensure_shop

bp = Blueprint("setup", __name__, url_prefix="/setup")

#: What the merchant acknowledges, by the Shop column that records when.
ACKNOWLEDGEMENTS = {
    "templates": "templates_reviewed_at",
    "smartrr-notice": "smartrr_notice_off_at",
}


@dataclass(frozen=True)
class Item:
    """One line of the checklist."""

    key: str
    title: str
    done: bool
    detail: str
    done_at: datetime | None = None
    #: Done by the merchant saying so (a button records it).
    manual: bool = False
    #: More lines under the detail (the webhooks, one a line).
    lines: tuple[str, ...] = ()
    #: The page has a button that does it.
    fixable: bool = False


def smartrr_item(settings: Settings, client: SmartrrClient) -> Item:
    """Smartrr: a real token that reads and may write (checked with a harmless call)."""
    title = "Smartrr connected"
    if settings.sandbox:
        return Item(
            "smartrr", title, False, "Sandbox mode: set SMARTRR_API_TOKEN to your Smartrr key."
        )
    try:
        client.check_connection()
        client.check_write_access()
    except SmartrrError as exc:
        return Item("smartrr", title, False, str(exc))
    return Item("smartrr", title, True, "The API token reads and may change subscriptions.")


def twilio_item(settings: Settings, transport: Transport) -> Item:
    """Twilio: the credentials open an active account and the sender belongs to it."""
    title = "Twilio connected"
    if not isinstance(transport, TwilioTransport) or not settings.twilio_account_sid:
        return Item(
            "twilio",
            title,
            False,
            "Outbox mode: set the TWILIO_ variables; until then texts are only recorded.",
        )
    client = transport.client
    try:
        found = client.api.v2010.accounts(settings.twilio_account_sid).fetch()
        if found.status != "active":
            return Item("twilio", title, False, f"The Twilio account is {found.status}.")
        if settings.twilio_from_number:
            sender = settings.twilio_from_number
            if not client.incoming_phone_numbers.list(phone_number=sender, limit=1):
                return Item("twilio", title, False, f"{sender} is not a number of this account.")
        else:
            service = settings.twilio_messaging_service_sid or ""
            sender = f"messaging service {client.messaging.v1.services(service).fetch().sid}"
    except TwilioException as exc:
        return Item("twilio", title, False, f"Twilio refused: {exc}")
    except requests.RequestException as exc:
        return Item("twilio", title, False, f"Twilio is unreachable: {type(exc).__name__}.")
    return Item("twilio", title, True, f"Account “{found.friendly_name}”, sending from {sender}.")


def webhooks_item(settings: Settings, client: SmartrrClient, reached_at: str) -> Item:
    """Smartrr webhooks: one to our URL for each event type the bot acts on."""
    title = "Smartrr webhooks"
    try:
        url = smartrr_webhook_url(settings, reached_at)
    except NotConfigured as exc:
        return Item("webhooks", title, False, str(exc))
    shown = hide_secret(url, settings)
    try:
        found = survey(client, url)
    except SmartrrError as exc:
        return Item("webhooks", title, False, hide_secret(str(exc), settings))
    lines = tuple(
        f"{kind}: {'registered' if kind in found.registered else 'missing'}" for kind in EVENT_TYPES
    ) + tuple(
        f"{hook.event_type} to {hide_secret(hook.url, settings)}: an old secret, so the bot "
        "refuses what it posts; delete it in Smartrr."
        for hook in found.stale
    )
    if found.missing:
        detail = (
            f"{len(found.missing)} of the {len(EVENT_TYPES)} event types the bot acts on are "
            f"not sent to {shown} yet, so changes made in Smartrr reach the bot only at the "
            "next sync."
        )
        return Item("webhooks", title, False, detail, lines=lines, fixable=True)
    detail = f"Smartrr sends every event type the bot acts on to {shown}."
    return Item("webhooks", title, True, detail, lines=lines)


def acknowledgement_items(shop: Shop) -> list[Item]:
    """The two things the merchant says are done (unless Smartrr can tell)."""
    reviewed, notice_off = shop.templates_reviewed_at, shop.smartrr_notice_off_at
    return [
        Item(
            "templates",
            "Messages reviewed",
            reviewed is not None,
            "Read every message under Messages and make the wording yours.",
            reviewed,
            manual=True,
        ),
        Item(
            "smartrr-notice",
            "I have turned off Smartrr's own upcoming-subscription notification",
            notice_off is not None,
            "Otherwise subscribers get two reminders for every order.",
            notice_off,
            manual=True,
        ),
    ]


def upcoming_text_item(sends: bool | None, acknowledged: Item) -> Item:
    """Smartrr's own upcoming-order text, as Smartrr says (None: the merchant's word)."""
    if sends is None:
        return acknowledged
    title = "Smartrr's own upcoming-order text turned off"
    if sends:
        detail = (
            "Turn off Smartrr's upcoming-order text in Smartrr → Settings → SMS, "
            "or subscribers get two."
        )
        return Item(acknowledged.key, title, False, detail)
    return Item(acknowledged.key, title, True, "Checked in Smartrr just now.")


def _sends_upcoming_text(client: SmartrrClient) -> bool | None:
    try:
        return client.upcoming_order_sms()
    except SmartrrError:
        return None  # the merchant's acknowledgement stands in, as when Smartrr does not say


def checklist(acknowledged: list[Item], settings: Settings, reached_at: str) -> list[Item]:
    """Every item, with the connections checked now (outside any transaction).

    ``reached_at`` is the address this request came to, for the webhook URL when
    PUBLIC_BASE_URL is not set.
    """
    client = get_client()
    reviewed, notice = acknowledged
    return [
        smartrr_item(settings, client),
        twilio_item(settings, get_transport()),
        webhooks_item(settings, client, reached_at),
        reviewed,
        upcoming_text_item(_sends_upcoming_text(client), notice),
    ]


@dataclass(frozen=True)
class ShopState:
    """What the page reads from the shop row."""

    acknowledged: list[Item]
    sending: bool
    switches: list[tuple[str, TemplateSpec, bool]]


def shop_state(settings: Settings) -> ShopState:
    """The acknowledgements and switches, read in a short read-only transaction."""
    with get_db().read() as db:
        shop = ensure_shop(db, settings)  # a fresh install has no row yet: its defaults
        return ShopState(
            acknowledged=acknowledgement_items(shop),
            sending=shop.sending_enabled,
            switches=[
                (kind, CATALOG[TEMPLATE_PREFIX + kind], enabled(shop, kind)) for kind in KINDS
            ],
        )


@bp.get("")
def index() -> str:
    """The checklist, the sending switch and the event-text switches."""
    settings = app_settings()
    state = shop_state(settings)
    items = checklist(state.acknowledged, settings, request.url_root)
    return render_template(
        "console/setup.html",
        items=items,
        ready=all(item.done for item in items),
        sending=state.sending,
        switches=state.switches,
    )


@bp.post("/acknowledge/<key>")
def acknowledge(key: str) -> Response:
    """Record that the merchant has done one of the things only they can do."""
    column = ACKNOWLEDGEMENTS.get(key)
    if column is None:
        abort(404)
    with get_db().begin() as db:
        shop = ensure_shop(db, app_settings())
        if getattr(shop, column) is None:
            setattr(shop, column, utcnow())
    flash("Noted.")
    return redirect(url_for(".index"))


@bp.post("/webhooks")
def webhooks() -> Response:
    """Register the missing Smartrr webhooks (a second click creates nothing)."""
    settings = app_settings()
    try:
        created, existing = register(get_client(), smartrr_webhook_url(settings, request.url_root))
    except NotConfigured as exc:
        flash(str(exc), "error")
    except SmartrrError as exc:
        flash(f"Webhooks not registered: {hide_secret(str(exc), settings)}", "error")
    else:
        flash(f"Registered {len(created)} webhooks ({len(existing)} already registered).")
    return redirect(url_for(".index"))


@bp.post("/sending")
def sending() -> Response:
    """Turn bot-initiated texts on (only with every item done) or off (always, at once)."""
    settings = app_settings()
    turn_on = request.form.get("sending") == "on"
    if not turn_on:
        with get_db().begin() as db:
            ensure_shop(db, settings).sending_enabled = False
        flash("Sending is off: reminders and event texts wait as a dry run. Replies still go.")
        return redirect(url_for(".index"))
    items = checklist(shop_state(settings).acknowledged, settings, request.url_root)
    missing = [item.title for item in items if not item.done]
    if missing:
        flash(f"Not yet: finish “{'”, “'.join(missing)}” first.", "error")
        return redirect(url_for(".index"))
    with get_db().begin() as db:
        ensure_shop(db, settings).sending_enabled = True
    flash("Sending is on: reminders and event texts go out.")
    return redirect(url_for(".index"))


@bp.post("/event-texts")
def event_texts() -> Response:
    """Store which event texts go out."""
    chosen = {kind: request.form.get(kind) == "on" for kind in KINDS}
    with get_db().begin() as db:
        ensure_shop(db, app_settings()).event_texts = chosen
    flash("Event texts saved.")
    return redirect(url_for(".index"))
