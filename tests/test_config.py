from __future__ import annotations

from datetime import time

import pytest

from bot.config import DEFAULTS, Settings, from_environ


def test_defaults_give_the_embedded_mode(tmp_path: object) -> None:
    config = from_environ({}, "/srv/bot/instance")
    assert config["DATABASE_URL"] == "sqlite:////srv/bot/instance/bot.sqlite3"
    settings = Settings.from_config(config)
    assert settings.sandbox and not settings.twilio_configured
    assert (settings.send_window.start, settings.send_window.end) == (time(11), time(21))
    assert settings.notice_days_before == 3
    assert settings.shop_timezone == "America/New_York"
    assert settings.sms_rate_per_second == 1.0
    assert settings.smartrr_api_url == "https://api.smartrr.com"
    assert settings.inbox_concurrency == 1  # SQLite: its one write lock serves webhooks too


def test_environment_values_are_read_and_typed() -> None:
    config = from_environ(
        {
            "DATABASE_URL": "postgresql+psycopg://db/bot",
            "SMARTRR_API_TOKEN": "tok",
            "TWILIO_ACCOUNT_SID": "AC1",
            "TWILIO_AUTH_TOKEN": "secret",
            "SEND_WINDOW": "09:30-20:00",
            "NOTICE_DAYS_BEFORE": "2",
            "SMS_RATE_PER_SECOND": "2.5",
            "INBOX_CONCURRENCY": "8",
        },
        "/x",
    )
    settings = Settings.from_config(config)
    assert settings.database_url == "postgresql+psycopg://db/bot"
    assert not settings.sandbox and settings.twilio_configured
    assert settings.send_window.start == time(9, 30)
    assert settings.notice_days_before == 2
    assert settings.sms_rate_per_second == 2.5
    assert settings.inbox_concurrency == 8


def test_a_worker_on_postgresql_answers_four_texts_at_once_unless_told() -> None:
    postgres = {"DATABASE_URL": "postgresql+psycopg://db/bot"}
    assert Settings.from_config(from_environ(postgres, "/x")).inbox_concurrency == 4
    told = {**postgres, "INBOX_CONCURRENCY": "2"}
    assert Settings.from_config(from_environ(told, "/x")).inbox_concurrency == 2


def test_blank_values_fall_back_to_defaults() -> None:
    config = from_environ({"SEND_WINDOW": "  ", "SMARTRR_API_TOKEN": ""}, "/x")
    assert config["SEND_WINDOW"] == DEFAULTS["SEND_WINDOW"]
    assert config["SMARTRR_API_TOKEN"] is None


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("NOTICE_DAYS_BEFORE", "three", "NOTICE_DAYS_BEFORE must be a number"),
        ("SMS_RATE_PER_SECOND", "fast", "SMS_RATE_PER_SECOND must be a number"),
    ],
)
def test_malformed_numbers_are_named(name: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_environ({name: value}, "/x")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SMS_RATE_PER_SECOND", "0"),
        ("NOTICE_DAYS_BEFORE", "-1"),
        ("SEND_WINDOW", "21:00-11:00"),
        ("INBOX_CONCURRENCY", "0"),
    ],
)
def test_impossible_settings_are_refused(name: str, value: str) -> None:
    with pytest.raises(ValueError):
        Settings.from_config(from_environ({name: value}, "/x"))


def test_values_layered_later_are_read_and_checked_like_the_environment_s() -> None:
    settings = Settings.from_config(from_environ({}, "/x"))
    edited = settings.with_values(
        {"send_window": "08:00-20:00", "pause_options": "1 week, 2 weeks", "notice_days_before": 0}
    )
    assert edited.send_window.start == time(8)
    assert edited.pause_options == ("1 week", "2 weeks")
    assert edited.notice_days_before == 0
    assert edited.shop_name == settings.shop_name
    with pytest.raises(ValueError, match="NOTICE_DAYS_BEFORE must not be negative"):
        settings.with_values({"notice_days_before": -1})
