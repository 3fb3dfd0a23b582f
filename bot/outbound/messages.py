"""The copy a subscriber receives: templates rendered with a subscriber's details."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.rules.templates import TemplateError, default_source, render
from bot.rules.waking_hours import Locale, locale_for
from bot.storage.models import Subscriber, Subscription, TemplateVersion

log = logging.getLogger(__name__)


def template_source(session: Session, name: str) -> str:
    """The wording in force for ``name``: the newest saved version, else the default."""
    source = session.scalar(
        select(TemplateVersion.source)
        .where(TemplateVersion.name == name)
        .order_by(TemplateVersion.id.desc())
        .limit(1)
    )
    return source if source is not None else default_source(name)


def render_message(
    session: Session,
    name: str,
    variables: Mapping[str, object],
    sources: dict[str, str] | None = None,
) -> str:
    """Render ``name``; a merchant's broken edit falls back to the default wording.

    ``sources`` keeps the wording read for each name, for a caller rendering many
    texts in one transaction.
    """
    sources = {} if sources is None else sources
    if name not in sources:
        sources[name] = template_source(session, name)
    try:
        return render(sources[name], variables)
    except TemplateError:
        log.exception("template %s failed to render; using the default wording", name)
        return render(default_source(name), variables)


def subscriber_locale(subscriber: Subscriber | None, settings: Settings) -> Locale:
    """Where the subscriber is: their own zone, else their number's, else the shop's.

    The state comes from their address when Smartrr gives one, else from the number.
    """
    if subscriber is None:
        return locale_of(None, None, None, settings)
    return locale_of(subscriber.phone, subscriber.time_zone, subscriber.state, settings)


def locale_of(
    phone: str | None, time_zone: str | None, state: str | None, settings: Settings
) -> Locale:
    """`subscriber_locale` from the bare columns (for code reading rows, not objects)."""
    return locale_for(
        phone, known_zone=time_zone, fallback_zone=settings.shop_timezone, state=state
    )


def local_zone(subscriber: Subscriber | None, settings: Settings) -> ZoneInfo:
    """The zone dates are written in for this subscriber."""
    return ZoneInfo(subscriber_locale(subscriber, settings).zones[0])


def format_date(moment: datetime | None, zone: ZoneInfo) -> str:
    """'Dec 5' style, in the subscriber's zone; '' when unknown."""
    if moment is None:
        return ""
    local = moment.astimezone(zone)
    return f"{local:%b} {local.day}"


def base_variables(
    settings: Settings, subscriber: Subscriber | None, subscription: Subscription | None = None
) -> dict[str, object]:
    """The variables every template may use, plus the subscription's when given."""
    variables: dict[str, object] = {
        "shop_name": settings.shop_name,
        "first_name": (subscriber.first_name if subscriber else None) or "there",
        "account_page_link": settings.account_page_url,
    }
    if subscription is not None:
        zone = local_zone(subscriber, settings)
        variables["products"] = subscription.products
        variables["next_order_date"] = format_date(subscription.next_billing_at, zone)
        variables["status"] = subscription.status
    return variables
