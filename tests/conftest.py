"""Fixtures: an app per test on a fresh database, built through the real migrations,
wired to a Smartrr sandbox and a Twilio-like server over real HTTP."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_migrate import upgrade
from sqlalchemy import Select, create_engine, event, text
from sqlalchemy.orm import Session
from twilio_fake import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, TwilioFake, sign

from bot import create_app
from bot.smartrr.sandbox import SandboxServer, SandboxStore, demo_seed
from bot.storage.db import Database, get_db

PUBLIC_BASE_URL = "https://bot.example.com"
#: A Monday morning in New York; the demo seed's billing dates follow it.
SEED_NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


@contextmanager
def counted_at_each_commit(database: Database, count: Select[Any]) -> Iterator[list[int]]:
    """What ``count`` reads, from another session, after each commit inside the block."""
    seen: list[int] = []

    def read(_session: Session) -> None:
        with database.read() as reader:
            seen.append(reader.scalar(count) or 0)

    event.listen(database.sessions, "after_commit", read)
    try:
        yield seen
    finally:
        event.remove(database.sessions, "after_commit", read)


def additions(seen: list[int]) -> list[int]:
    """How much each commit added, of those that added any."""
    return [after - before for before, after in pairwise([0, *seen]) if after > before]


def product_name(item: dict[str, Any]) -> str:
    """A sandbox line item's product name, where Smartrr's document puts it."""
    return str(item["vnt"]["purchasable"]["purchasableName"])


def portal_body(store: Any, state: dict[str, Any], action: str, body: Any = None) -> Any:
    """The body Smartrr's own portal would send for ``action``, as the document has it.

    A bare date becomes 14:00 UTC that day; a pause without an end lasts 60 days; a
    resume keeps the paused order date; a cancel gives the merchant's first reason.
    """
    body = dict(body or {})
    if "nextBillingDate" in body and action == "next-billing-date":
        body = {"date": body["nextBillingDate"]}
    for key, value in body.items():
        if isinstance(value, str) and len(value) == 10:
            body[key] = f"{value}T14:00:00.000Z"
    if action == "pause":
        body.setdefault("unpauseDate", "2027-01-22T14:00:00.000Z")
    if action == "activate":
        body.setdefault("nextBillingDate", state["nextBillingDate"])
    if action == "cancel":
        body.setdefault("reasonId", store.cancellation_reasons()[0]["id"])
    return body


def pytest_report_header() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    return f"database: {url}" if url else "database: SQLite (TEST_DATABASE_URL unset)"


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        _reset_postgres(url)
        return url
    return f"sqlite:///{tmp_path / 'bot.sqlite3'}"


@pytest.fixture
def postgres_url() -> str:
    """The PostgreSQL URL, or a skip that says why."""
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL: set TEST_DATABASE_URL (.ci/run does)")
    return url


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    server = SandboxServer(SandboxStore(demo_seed(SEED_NOW)), token="sandbox-token").start()
    yield server
    server.stop()


@pytest.fixture
def twilio() -> Iterator[TwilioFake]:
    fake = TwilioFake().start()
    yield fake
    fake.stop()


@pytest.fixture
def config(
    database_url: str, sandbox: SandboxServer, twilio: TwilioFake, tmp_path: Path
) -> dict[str, Any]:
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SMARTRR_API_URL": sandbox.url,
        "SMARTRR_API_TOKEN": sandbox.token,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "TWILIO_API_URL": twilio.url,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "SHOP_NAME": "Bean Club",
        "SMS_RATE_PER_SECOND": 1000.0,
    }


@pytest.fixture
def app(config: dict[str, Any]) -> Iterator[Flask]:
    app = create_app(config)
    with app.app_context():
        upgrade()
    yield app
    get_db(app).dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """A read-only session for looking at what the code under test wrote.

    Its transaction starts at first use and sees the database as of then:
    read after the code under test has run (or call ``session.rollback()``).
    """
    with get_db(app).read() as session:
        yield session


class Phone:
    """Posts signed Twilio webhooks to the app, as Twilio would."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.count = 0

    def post(
        self,
        path: str,
        params: dict[str, str],
        *,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
        **options: Any,
    ) -> Any:
        """Post ``params`` signed (or with ``signature``); ``options`` go to the test client."""
        url = PUBLIC_BASE_URL + path
        signed = {"X-Twilio-Signature": signature if signature is not None else sign(url, params)}
        return self.client.post(path, data=params, headers={**signed, **(headers or {})}, **options)

    def text(self, from_number: str, body: str, sid: str | None = None, **extra: str) -> Any:
        """Send an inbound SMS webhook."""
        self.count += 1
        params = {
            "MessageSid": sid or f"SMin{self.count:030d}",
            "AccountSid": ACCOUNT_SID,
            "From": from_number,
            "To": FROM_NUMBER,
            "Body": body,
            "NumMedia": "0",
            **extra,
        }
        return self.post("/sms/inbound", params)


@pytest.fixture
def phone(client: FlaskClient) -> Phone:
    return Phone(client)
