"""The Smartrr webhooks the bot acts on: its URL, which are registered, registering the rest.

The Go live checklist and `flask --app wsgi smartrr-webhooks` both use this.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote_plus, urlencode, urlsplit

from bot.config import Settings
from bot.smartrr.client import SmartrrClient
from bot.smartrr.records import Webhook

#: Where Smartrr posts, and the query parameter that carries SMARTRR_WEBHOOK_SECRET.
PATH = "/smartrr/webhook"
SECRET_PARAMETER = "token"
#: What a page or a terminal shows instead of the secret.
HIDDEN = "••••"

#: The WebhookEventType names the bot acts on: each re-reads the subscription, re-plans
#: its notices and may send an event text (bot.smartrr.events, bot.outbound.event_texts.topic_kind).
#: SUBSCRIPTION_UPCOMING_ORDER is left out: the bot sends its own reminder, and that
#: event changes nothing it stores.
EVENT_TYPES: tuple[str, ...] = (
    "SUBSCRIPTION_CREATE",
    "SUBSCRIPTION_ACTIVATE",
    "SUBSCRIPTION_CANCEL",
    "SUBSCRIPTION_AUTO_CANCEL",
    "SUBSCRIPTION_PAUSE",
    "SUBSCRIPTION_AUTO_RESUME",
    "SUBSCRIPTION_SKIP",
    "SUBSCRIPTION_UNSKIP",
    "SUBSCRIPTION_SET_NEXT_DATE",
    "SUBSCRIPTION_SEND_NOW",
    "SUBSCRIPTION_LINE_UPDATE",
    "SUBSCRIPTION_FAILED_PAYMENT",
    "SUBSCRIPTION_SUCCESSFUL_PAYMENT",
    "PAYMENT_METHOD_UPDATE",
)


class NotConfigured(Exception):
    """Smartrr cannot be given a webhook URL yet; the message says what to set."""


def webhook_url(settings: Settings, reached_at: str | None = None) -> str:
    """Our webhook URL with the secret: PUBLIC_BASE_URL (else ``reached_at``) + PATH."""
    if not settings.smartrr_webhook_secret:
        raise NotConfigured(
            "Set SMARTRR_WEBHOOK_SECRET to a long random string: "
            "without it the bot refuses Smartrr's webhooks."
        )
    base = settings.public_base_url or reached_at
    if not base:
        raise NotConfigured(
            "Set PUBLIC_BASE_URL to the https:// address Smartrr reaches the bot at."
        )
    # The secret travels in the URL: over plain HTTP anyone on the way could read it.
    if urlsplit(base).scheme != "https":
        raise NotConfigured(
            f"Set PUBLIC_BASE_URL to the https:// address Smartrr reaches the bot at "
            f"(it is reached at {base} now)."
        )
    query = urlencode({SECRET_PARAMETER: settings.smartrr_webhook_secret})
    return f"{base.rstrip('/')}{PATH}?{query}"


def hide_secret(text: str, settings: Settings) -> str:
    """``text`` with SMARTRR_WEBHOOK_SECRET (as typed and as in a URL) replaced by HIDDEN."""
    secret = settings.smartrr_webhook_secret
    if not secret:
        return text
    for spelling in sorted({secret, quote_plus(secret)}, key=len, reverse=True):
        text = text.replace(spelling, HIDDEN)
    return text


def _endpoint(url: str) -> str:
    """A URL without its query: every secret's URL to our endpoint shares it."""
    return url.partition("?")[0].rstrip("/")


@dataclass(frozen=True)
class Survey:
    """The bot's webhooks in Smartrr, as they are now."""

    #: Registered to ``url``, one per event type.
    registered: dict[str, Webhook]
    #: The event types with none.
    missing: tuple[str, ...]
    #: To our endpoint with another secret (an old one): the bot refuses their deliveries.
    stale: tuple[Webhook, ...]


def survey(client: SmartrrClient, url: str) -> Survey:
    """Which of EVENT_TYPES Smartrr posts to ``url``, and what else it posts to our endpoint."""
    registered: dict[str, Webhook] = {}
    stale: list[Webhook] = []
    for hook in client.webhooks():
        if hook.url == url:
            registered.setdefault(hook.event_type, hook)
        elif _endpoint(hook.url) == _endpoint(url):
            stale.append(hook)
    missing = tuple(kind for kind in EVENT_TYPES if kind not in registered)
    return Survey(registered, missing, tuple(stale))


def register(client: SmartrrClient, url: str) -> tuple[list[Webhook], list[Webhook]]:
    """Create the missing webhooks to ``url``; return (created, already there).

    Reads the list first, so a second run creates nothing.
    """
    found = survey(client, url)
    existing = [found.registered[kind] for kind in EVENT_TYPES if kind in found.registered]
    created = [client.create_webhook(kind, url) for kind in found.missing]
    return created, existing
