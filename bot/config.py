"""Settings from the environment, with defaults for the embedded mode."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, get_type_hints

from bot.rules.waking_hours import Window, parse_window


@dataclass(frozen=True)
class _Check:
    """A rule a setting's value must pass, and what the error says of it otherwise."""

    passes: Callable[[Any], bool]
    complaint: str


_POSITIVE = _Check(lambda value: value > 0, "must be positive")
_NOT_NEGATIVE = _Check(lambda value: value >= 0, "must not be negative")
_AT_LEAST_ONE = _Check(lambda value: value >= 1, "must be at least 1")


@dataclass(frozen=True)
class _Spec:
    env: str
    default: Any
    check: _Check | None
    #: Works the value out from the fields declared before it when the config gives None.
    when_none: Callable[[Mapping[str, Any]], Any] | None


def _setting(
    env: str,
    default: Any,
    *,
    check: _Check | None = None,
    when_none: Callable[[Mapping[str, Any]], Any] | None = None,
) -> Any:
    """A field read from the environment variable ``env``, which is ``default`` when unset."""
    return field(metadata={"setting": _Spec(env, default, check, when_none)})


@dataclass(frozen=True)
class Settings:
    """The typed view of the configuration that the services use."""

    # These environment names are a stable interface (see docs/architecture.md).
    database_url: str = _setting("DATABASE_URL", None)  # None: a SQLite file under instance/
    smartrr_api_token: str | None = _setting("SMARTRR_API_TOKEN", None)  # None: the sandbox
    smartrr_api_url: str = _setting("SMARTRR_API_URL", "https://api.smartrr.com")
    twilio_account_sid: str | None = _setting("TWILIO_ACCOUNT_SID", None)
    twilio_auth_token: str | None = _setting("TWILIO_AUTH_TOKEN", None)  # both None: the outbox
    twilio_from_number: str | None = _setting("TWILIO_FROM_NUMBER", None)
    twilio_messaging_service_sid: str | None = _setting("TWILIO_MESSAGING_SERVICE_SID", None)
    twilio_api_url: str | None = _setting("TWILIO_API_URL", None)
    public_base_url: str | None = _setting("PUBLIC_BASE_URL", None)
    send_window: Window = _setting("SEND_WINDOW", "11:00-21:00")  # noqa: RUF009 (a field())
    notice_days_before: int = _setting("NOTICE_DAYS_BEFORE", 3, check=_NOT_NEGATIVE)
    shop_timezone: str = _setting("SHOP_TIMEZONE", "America/New_York")
    smartrr_webhook_secret: str | None = _setting("SMARTRR_WEBHOOK_SECRET", None)
    sms_rate_per_second: float = _setting("SMS_RATE_PER_SECOND", 1.0, check=_POSITIVE)
    # Additions of our own.
    shop_name: str = _setting("SHOP_NAME", "Our Shop")
    account_page_url: str = _setting("ACCOUNT_PAGE_URL", "https://example.com/account")
    max_delay_days: int = _setting("MAX_DELAY_DAYS", 60)
    #: What a bare PAUSE offers.
    pause_options: tuple[str, ...] = _setting("PAUSE_OPTIONS", "1 month, 2 months, 3 months")
    #: The longest pause a subscriber may ask for (3 months).
    max_pause_days: int = _setting("MAX_PAUSE_DAYS", 92)
    question_ttl_hours: int = _setting("QUESTION_TTL_HOURS", 24)
    undo_window_hours: int = _setting("UNDO_WINDOW_HOURS", 24)
    #: Read timeout of one Smartrr call.
    smartrr_timeout_seconds: float = _setting("SMARTRR_TIMEOUT_SECONDS", 15.0)
    #: First wait between retries of a Smartrr read.
    smartrr_backoff_seconds: float = _setting("SMARTRR_BACKOFF_SECONDS", 0.5)
    #: Bot-initiated texts per subscriber per rolling 24 hours.
    bot_texts_per_day: int = _setting("BOT_TEXTS_PER_DAY", 3, check=_AT_LEAST_ONE)
    #: Inbound texts a worker answers at once (each waits on Smartrr); None: by database.
    inbox_concurrency: int = _setting(
        "INBOX_CONCURRENCY",
        None,
        check=_AT_LEAST_ONE,
        when_none=lambda values: default_inbox_concurrency(values["database_url"]),
    )

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
        given = {name: config.get(spec.env, spec.default) for name, _, spec in _SETTINGS}
        return cls(**_typed(given))

    def with_values(self, values: Mapping[str, Any]) -> Settings:
        """These settings with some fields replaced, read and checked as `from_config` does."""
        return replace(self, **_typed(values))


@dataclass(frozen=True)
class _AppSettings:
    """Settings the app factory, the worker and logging read from app.config themselves."""

    #: None: a random key per process (sessions do not survive restarts).
    secret_key: str | None = _setting("SECRET_KEY", None)
    sync_interval_seconds: int = _setting("SYNC_INTERVAL_SECONDS", 900)
    inbox_poll_seconds: float = _setting("INBOX_POLL_SECONDS", 1.0)
    dispatch_poll_seconds: float = _setting("DISPATCH_POLL_SECONDS", 5.0)
    plan_interval_seconds: int = _setting("PLAN_INTERVAL_SECONDS", 60)
    log_level: str = _setting("LOG_LEVEL", "INFO")
    #: Or "json": one JSON object per line.
    log_format: str = _setting("LOG_FORMAT", "text")
    #: Proxies in front of the app whose X-Forwarded-* we trust.
    proxy_fix_hops: int = _setting("PROXY_FIX_HOPS", 0)


def _specs(cls: type) -> tuple[tuple[str, object, _Spec], ...]:
    """(field name, declared type, spec) of each of ``cls``'s settings, in order."""
    hints = get_type_hints(cls)
    return tuple((each.name, hints[each.name], each.metadata["setting"]) for each in fields(cls))


_SETTINGS = _specs(Settings)
_BY_NAME = {name: (kind, spec) for name, kind, spec in _SETTINGS}
_ALL = _SETTINGS + _specs(_AppSettings)

#: Every environment variable the bot reads, with its default.
DEFAULTS: dict[str, Any] = {spec.env: spec.default for _, _, spec in _ALL}

#: How a config value, text from the environment or a typed test_config value, becomes
#: its field's type.
_CONVERT: dict[object, Callable[[Any], Any]] = {
    str: str,
    str | None: lambda value: str(value) if value else None,  # blank: not set
    int: int,
    float: float,
    Window: lambda value: parse_window(str(value)),
    tuple[str, ...]: lambda value: split_options(str(value)),
}
_NUMBERS: tuple[object, ...] = (int, float)


def from_environ(environ: Mapping[str, str], instance_path: str) -> dict[str, Any]:
    """Read every known variable from ``environ``, falling back to the defaults."""
    config: dict[str, Any] = {}
    for _, kind, spec in _ALL:
        raw = environ.get(spec.env, "").strip()
        if not raw:
            config[spec.env] = spec.default
        else:
            # Numbers are parsed here so a typo names its variable at startup; the other
            # values stay text, as a test_config may give them.
            config[spec.env] = _convert(spec.env, kind, raw) if kind in _NUMBERS else raw
    if not config["DATABASE_URL"]:
        config["DATABASE_URL"] = f"sqlite:///{Path(instance_path) / 'bot.sqlite3'}"
    return config


def _typed(given: Mapping[str, Any]) -> dict[str, Any]:
    """The given fields' config values converted to their types and checked, in order."""
    values: dict[str, Any] = {}
    for name, raw in given.items():
        kind, spec = _BY_NAME[name]
        if raw is None and spec.when_none is not None:
            value = spec.when_none(values)
        else:
            value = _convert(spec.env, kind, raw)
        if spec.check is not None and not spec.check.passes(value):
            raise ValueError(f"{spec.env} {spec.check.complaint}")
        values[name] = value
    return values


def _convert(env: str, kind: object, value: Any) -> Any:
    try:
        return _CONVERT[kind](value)
    except ValueError as exc:
        if kind not in _NUMBERS:
            raise  # parse_window's message names the problem
        raise ValueError(f"{env} must be a number, got {value!r}") from exc


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
