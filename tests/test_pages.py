from __future__ import annotations

import threading
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from freezegun import freeze_time

from bot import create_app
from bot.outbound.sms import get_transport
from bot.storage.db import get_db
from bot.worker import Worker


def test_healthz_reports_database_and_a_stale_scheduler_before_any_worker(
    client: FlaskClient,
) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {
        "status": "ok",
        "database": "ok",
        "scheduler": "stale",
        "scheduler_heartbeat_age_seconds": None,
    }


def test_healthz_reports_the_age_of_the_last_heartbeat(app: Flask, client: FlaskClient) -> None:
    with freeze_time("2026-11-23 14:00:00"):
        Worker(app).heartbeat()
    with freeze_time("2026-11-23 14:00:30"):
        body = client.get("/healthz").json
    assert body["scheduler"] == "ok"
    assert body["scheduler_heartbeat_age_seconds"] == 30.0


def test_healthz_is_503_when_the_database_is_unreachable(tmp_path: Any) -> None:
    app = create_app(
        {"DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/none", "TESTING": True}
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json == {"status": "error", "database": "unreachable"}


def test_outbox_page_is_hidden_when_twilio_is_configured(client: FlaskClient) -> None:
    assert client.get("/outbox").status_code == 404


def test_outbox_page_lists_what_the_outbox_transport_recorded(database_url: str) -> None:
    app = create_app({"DATABASE_URL": database_url, "TESTING": True, "SHOP_NAME": "Bean Club"})
    with app.app_context():
        upgrade()
    get_transport(app).send("+13125794420", "Bean Club: hello <there>")
    page = app.test_client().get("/outbox").get_data(as_text=True)
    assert "To +13125794420" in page
    assert "Bean Club: hello &lt;there&gt;" in page
    get_db(app).dispose()


def test_building_the_app_starts_nothing(database_url: str) -> None:
    before = threading.active_count()
    app = create_app({"DATABASE_URL": database_url, "TESTING": True})
    assert threading.active_count() == before
    assert "scheduler" not in app.extensions


def test_healthz_is_503_and_says_so_until_the_schema_is_migrated(database_url: str) -> None:
    app = create_app({"DATABASE_URL": database_url, "TESTING": True})
    client = app.test_client()
    before = client.get("/healthz")
    with app.app_context():
        upgrade()
    after = client.get("/healthz")
    get_db(app).dispose()
    app.extensions["smartrr"].close()

    assert before.status_code == 503
    assert before.json == {"status": "error", "database": "not migrated"}
    assert after.status_code == 200
