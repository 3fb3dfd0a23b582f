"""The shop row: the merchant's own settings layered over the environment's."""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.config import Settings
from bot.storage.db import insert_new
from bot.storage.models import Shop

SHOP_ID = 1


def ensure_shop(session: Session, settings: Settings) -> Shop:
    """The shop row, created from the environment's settings on first use."""
    shop = session.get(Shop, SHOP_ID)
    if shop is not None:
        return shop
    # Processes that start together race to create it: the first one's row stands.
    insert_new(session, Shop, [_shop_row(settings)], key="id")
    return session.get_one(Shop, SHOP_ID)


def new_shop(settings: Settings) -> Shop:
    """The shop row as `ensure_shop` would create it, not stored (for a page that reads)."""
    return Shop(**_shop_row(settings))


def _shop_row(settings: Settings) -> dict[str, object]:
    return {
        "id": SHOP_ID,
        "name": settings.shop_name,
        "time_zone": settings.shop_timezone,
        "account_page_url": settings.account_page_url,
        "sending_enabled": sending_default(settings),
        "cancel_by_text": False,
        "event_texts": {},
    }


def sending_default(settings: Settings) -> bool:
    """Whether a new shop sends bot-initiated texts: not when they would reach real phones.

    With Twilio credentials and no TWILIO_API_URL (a test server) the shop starts in a
    dry run until the merchant goes through the console's setup checklist; the sandbox,
    the outbox and a test server start sending at once.
    """
    return not settings.twilio_configured or settings.twilio_api_url is not None


def effective_settings(session: Session, settings: Settings) -> Settings:
    """The environment's settings with the merchant's console edits applied."""
    shop = session.get(Shop, SHOP_ID)
    if shop is None:
        return settings
    edits = {
        "shop_name": shop.name,
        "shop_timezone": shop.time_zone,
        "account_page_url": shop.account_page_url,
        "send_window": shop.send_window,
        "notice_days_before": shop.notice_days_before,
        "max_delay_days": shop.max_delay_days,
        "pause_options": shop.pause_options,
        "max_pause_days": shop.max_pause_days,
    }
    # An override left None (or blank) keeps the environment's value.
    return settings.with_values(
        {name: value for name, value in edits.items() if value not in (None, "")}
    )
