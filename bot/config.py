"""Settings from the environment, with defaults for the embedded mode."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.rules.waking_hours import Window, parse_window

#: Every environment variable the bot reads, with its default. The names in
#: the first block are a stable interface (see docs/architecture.md).
DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": None,  # None: a SQLite file under the instance folder
    "SMARTRR_API_TOKEN": None,  # None: the built-in sandbox
    "SMARTRR_API_URL": "https://api.smartrr.com",
    "TWILIO_ACCOUNT_SID": None,
    "TWILIO_AUTH_TOKEN": None,  # both None: the outbox transport
    "TWILIO_FROM_NUMBER": None,
    "TWILIO_MESSAGING_SERVICE_SID": None,
    "TWILIO_API_URL": None,
    "PUBLIC_BASE_URL": None,
    "SEND_WINDOW": "11:00-21:00",
    "NOTICE_DAYS_BEFORE": 3,
    "SHOP_TIMEZONE": "America/New_York",
    "SMARTRR_WEBHOOK_SECRET": None,
    "SMS_RATE_PER_SECOND": 1.0,
    # Additions of our own.
    "SECRET_KEY": None,  # None: a random key per process (sessions do not survive restarts)
    "SHOP_NAME": "Our Shop",
    "ACCOUNT_PAGE_URL": "https://example.com/account",
    "MAX_DELAY_DAYS": 60,
    "PAUSE_OPTIONS": "1 month, 2 months, 3 months",  # what a bare PAUSE offers
    "MAX_PAUSE_DAYS": 92,  # the longest pause a subscriber may ask for (3 months)
    "QUESTION_TTL_HOURS": 24,
    "UNDO_WINDOW_HOURS": 24,
    "SYNC_INTERVAL_SECONDS": 900,
    "INBOX_POLL_SECONDS": 1.0,
    "DISPATCH_POLL_SECONDS": 5.0,
    "PLAN_INTERVAL_SECONDS": 60,
    "SMARTRR_TIMEOUT_SECONDS": 15.0,  # read timeout of one Smartrr call
    "SMARTRR_BACKOFF_SECONDS": 0.5,  # first wait between retries of a Smartrr read
    "BOT_TEXTS_PER_DAY": 3,  # bot-initiated texts per subscriber per rolling 24 hours
    # Inbound texts a worker answers at once (each waits on Smartrr); None: by database.
    "INBOX_CONCURRENCY": None,
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "text",  # or "json": one JSON object per line
    "PROXY_FIX_HOPS": 0,  # proxies in front of the app whose X-Forwarded-* we trust
}

_INTS = {
    "NOTICE_DAYS_BEFORE",
    "MAX_DELAY_DAYS",
    "MAX_PAUSE_DAYS",
    "QUESTION_TTL_HOURS",
    "UNDO_WINDOW_HOURS",
    "SYNC_INTERVAL_SECONDS",
    "PLAN_INTERVAL_SECONDS",
    "PROXY_FIX_HOPS",
    "BOT_TEXTS_PER_DAY",
    "INBOX_CONCURRENCY",
}
_FLOATS = {
    "SMS_RATE_PER_SECOND",
    "INBOX_POLL_SECONDS",
    "DISPATCH_POLL_SECONDS",
    "SMARTRR_TIMEOUT_SECONDS",
    "SMARTRR_BACKOFF_SECONDS",
}


def from_environ(environ: Mapping[str, str], instance_path: str) -> dict[str, Any]:
    """Read every known variable from ``environ``, falling back to the defaults."""
    config: dict[str, Any] = {}
    for name, default in DEFAULTS.items():
        raw = environ.get(name, "").strip()
        config[name] = _coerce(name, raw) if raw else default
    if not config["DATABASE_URL"]:
        config["DATABASE_URL"] = f"sqlite:///{Path(instance_path) / 'bot.sqlite3'}"
    return config


def _coerce(name: str, raw: str) -> Any:
    try:
        if name in _INTS:
            return int(raw)
        if name in _FLOATS:
            return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc
    return raw


@dataclass(frozen=True)
class Settings:
    """The typed view of the configuration that the services use."""

    database_url: str
    smartrr_api_url: str
    smartrr_api_token: str | None
    twilio_account_sid: str | None
    twilio_auth_token: str | None
    twilio_from_number: str | None
    twilio_messaging_service_sid: str | None
    twilio_api_url: str | None
    public_base_url: str | None
    send_window: Window
    notice_days_before: int
    shop_timezone: str
    smartrr_webhook_secret: str | None
    sms_rate_per_second: float
    shop_name: str
    account_page_url: str
    max_delay_days: int
    question_ttl_hours: int
    undo_window_hours: int
    smartrr_timeout_seconds: float = 15.0
    smartrr_backoff_seconds: float = 0.5
    bot_texts_per_day: int = 3
    inbox_concurrency: int = 1
    pause_options: tuple[str, ...] = ("1 month", "2 months", "3 months")
    max_pause_days: int = 92

    @property
    def sandbox(self) -> bool:
        """True when no Smartrr token is set: the built-in sandbox stands in."""
        return not self.smartrr_api_token

    @property
    def twilio_configured(self) -> bool:
        """True when Twilio credentials are set: real texts go out."""
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """Build and validate settings from a Flask config mapping."""
        rate = float(config["SMS_RATE_PER_SECOND"])
        if rate <= 0:
            raise ValueError("SMS_RATE_PER_SECOND must be positive")
        days = int(config["NOTICE_DAYS_BEFORE"])
        if days < 0:
            raise ValueError("NOTICE_DAYS_BEFORE must not be negative")
        texts_per_day = int(config["BOT_TEXTS_PER_DAY"])
        if texts_per_day < 1:
            raise ValueError("BOT_TEXTS_PER_DAY must be at least 1")
        database_url = str(config["DATABASE_URL"])
        chosen = config.get("INBOX_CONCURRENCY")
        inbox_concurrency = (
            default_inbox_concurrency(database_url) if chosen is None else int(chosen)
        )
        if inbox_concurrency < 1:
            raise ValueError("INBOX_CONCURRENCY must be at least 1")
        return cls(
            database_url=database_url,
            smartrr_api_url=str(config["SMARTRR_API_URL"]),
            smartrr_api_token=config.get("SMARTRR_API_TOKEN") or None,
            twilio_account_sid=config.get("TWILIO_ACCOUNT_SID") or None,
            twilio_auth_token=config.get("TWILIO_AUTH_TOKEN") or None,
            twilio_from_number=config.get("TWILIO_FROM_NUMBER") or None,
            twilio_messaging_service_sid=config.get("TWILIO_MESSAGING_SERVICE_SID") or None,
            twilio_api_url=config.get("TWILIO_API_URL") or None,
            public_base_url=config.get("PUBLIC_BASE_URL") or None,
            send_window=parse_window(str(config["SEND_WINDOW"])),
            notice_days_before=days,
            shop_timezone=str(config["SHOP_TIMEZONE"]),
            smartrr_webhook_secret=config.get("SMARTRR_WEBHOOK_SECRET") or None,
            sms_rate_per_second=rate,
            shop_name=str(config["SHOP_NAME"]),
            account_page_url=str(config["ACCOUNT_PAGE_URL"]),
            max_delay_days=int(config["MAX_DELAY_DAYS"]),
            question_ttl_hours=int(config["QUESTION_TTL_HOURS"]),
            undo_window_hours=int(config["UNDO_WINDOW_HOURS"]),
            smartrr_timeout_seconds=float(config["SMARTRR_TIMEOUT_SECONDS"]),
            smartrr_backoff_seconds=float(config["SMARTRR_BACKOFF_SECONDS"]),
            bot_texts_per_day=texts_per_day,
            inbox_concurrency=inbox_concurrency,
            pause_options=split_options(str(config["PAUSE_OPTIONS"])),
            max_pause_days=int(config["MAX_PAUSE_DAYS"]),
        )


def split_options(text: str) -> tuple[str, ...]:
    """ "1 month, 2 months" → ("1 month", "2 months")."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def default_inbox_concurrency(database_url: str) -> int:
    """Texts a worker answers at once unless INBOX_CONCURRENCY says: 4 on PostgreSQL.

    On SQLite one write lock serves the webhooks too, and four texts at once raised
    their p99 while Smartrr was slow (docs/benchmarks.md): there, one at a time.
    """
    return 1 if database_url.startswith("sqlite") else 4


def secret_key(config: Mapping[str, Any]) -> str:
    """The configured secret key, or a fresh random one for this process."""
    return str(config.get("SECRET_KEY") or secrets.token_hex(32))


def load_environ() -> dict[str, str]:
    """A copy of the process environment (one place that reads it)."""
    return dict(os.environ)
