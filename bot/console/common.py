"""What every console view shares: the signed-in account, settings, the shop's zone, times."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import current_app, g, redirect, request, session, url_for
from sqlalchemy import ColumnElement, or_
from sqlalchemy.orm import InstrumentedAttribute
from werkzeug.wrappers import Response

from bot.config import Settings
from bot.rules.phones import mask
from bot.storage.db import get_db
from bot.storage.models import Subscriber, User
from bot.storage.shop import effective_settings

#: Endpoints reachable without signing in.
PUBLIC_ENDPOINTS = frozenset({"console.auth.login", "console.static"})


@dataclass(frozen=True)
class Account:
    """The signed-in merchant, detached from any database session."""

    id: int
    email: str


def app_settings() -> Settings:
    """The environment's settings."""
    settings: Settings = current_app.extensions["settings"]
    return settings


def account() -> Account:
    """The signed-in account of this request (the guard has run)."""
    user: Account = g.account
    return user


def shop_zone() -> ZoneInfo:
    """The shop's zone, in which the console shows times."""
    zone: ZoneInfo = g.shop_zone
    return zone


def require_account() -> Response | None:
    """Send anyone not signed in to the sign-in page; load the account and the shop's zone."""
    user_id = session.get("user_id")
    with get_db().read() as db:
        user = db.get(User, user_id) if isinstance(user_id, int) else None
        g.account = Account(user.id, user.email) if user is not None else None
        shop = effective_settings(db, app_settings())
        g.shop_zone, g.shop_name = ZoneInfo(shop.shop_timezone), shop.shop_name
    if g.account is None and request.endpoint not in PUBLIC_ENDPOINTS:
        session.clear()
        return redirect(url_for("console.auth.login", next=request.full_path.rstrip("?")))
    return None


def safe_next(target: str | None) -> str:
    """Where to go after signing in: only a path inside the console, never another site."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and parts.path.startswith("/console/"):
            return target
    return url_for("console.overview.index")


def when(moment: datetime | None, zone: ZoneInfo | None = None) -> str:
    """'Nov 23, 09:00 EST' in ``zone`` (default: the shop's); '' when unknown."""
    if moment is None:
        return ""
    local = moment.astimezone(zone or shop_zone())
    return f"{local:%b} {local.day}, {local:%H:%M %Z}"


def display_name(subscriber: Subscriber) -> str:
    """First and last name, else the email, else the masked phone."""
    name = " ".join(filter(None, (subscriber.first_name, subscriber.last_name)))
    return name or subscriber.email or mask(subscriber.phone)


def word_filters(
    query: str, columns: Sequence[InstrumentedAttribute[Any]]
) -> list[ColumnElement[bool]]:
    """One condition per word of ``query``: each word must appear in one of ``columns``."""
    conditions: list[ColumnElement[bool]] = []
    for word in query.split():
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        conditions.append(or_(*(column.ilike(pattern, escape="\\") for column in columns)))
    return conditions
