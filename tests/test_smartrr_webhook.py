"""POST /smartrr/webhook and the events job: authenticated, stored once, applied by
re-reading Smartrr, so the pending notice follows the subscription."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import SEED_NOW, product_name
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session
from test_planner import act, notices

from bot import create_app
from bot.smartrr.sandbox import JSON, SandboxServer
from bot.storage.db import get_db
from bot.storage.models import SmartrrEvent, Subscription
from bot.worker import Worker

SECRET = "whsec_3f9a1c0b7d2e4f6a8b9c0d1e2f3a4b5c"
MARCUS = "+13125794420"  # Chicago; Protein Bars bill 2026-11-26 14:00 UTC
MAYA = "+16465823017"  # New York; Coffee bills 2026-11-25, Tea 2026-11-28


@pytest.fixture
def config(config: dict[str, Any]) -> dict[str, Any]:
    return {**config, "SMARTRR_WEBHOOK_SECRET": SECRET}


def post(client: FlaskClient, payload: Any, **headers: str) -> Any:
    headers.setdefault("X-Smartrr-Webhook-Secret", SECRET)
    return client.post(
        "/smartrr/webhook",
        data=payload if isinstance(payload, str | bytes) else json.dumps(payload),
        content_type="application/json",
        headers=headers,
    )


def events(session: Session) -> list[SmartrrEvent]:
    """The stored events, read in a transaction that is closed again (SQLite locks)."""
    rows = list(session.scalars(select(SmartrrEvent).order_by(SmartrrEvent.id)))
    session.expunge_all()
    session.rollback()
    return rows


def state_of(sandbox: SandboxServer, phone: str, product: str) -> JSON:
    return next(
        s
        for s in sandbox.store.states()
        if s["custRel"]["phone"] == phone and product_name(s["stLineItems"][0]) == product
    )


# --- authentication ---


def test_refused_when_no_secret_is_configured(config: dict[str, Any], session: Session) -> None:
    app = create_app({**config, "SMARTRR_WEBHOOK_SECRET": None})
    try:
        response = post(app.test_client(), {"eventId": "e1"})
    finally:
        get_db(app).dispose()

    assert response.status_code == 403
    assert "SMARTRR_WEBHOOK_SECRET is not configured" in response.get_json()["detail"]
    assert events(session) == []


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Smartrr-Webhook-Secret": SECRET},
        {"X-Smartrr-Webhook-Secret": "", "Authorization": f"Bearer {SECRET}"},
        {"X-Smartrr-Webhook-Secret": "", "Authorization": f"bearer  {SECRET}"},
    ],
    ids=["header", "bearer", "bearer-lowercase"],
)
def test_a_secret_in_a_header_is_accepted(
    client: FlaskClient, session: Session, headers: dict[str, str]
) -> None:
    response = post(client, {"eventId": "e1"}, **headers)

    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"status": "stored"}
    assert [e.event_key for e in events(session)] == ["id:e1"]


def test_a_secret_in_the_url_is_accepted(client: FlaskClient, session: Session) -> None:
    response = client.post(
        "/smartrr/webhook",
        query_string={"token": SECRET},
        json={"eventId": "e1"},
    )

    assert response.status_code == 200
    assert len(events(session)) == 1


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({"X-Smartrr-Webhook-Secret": ""}, {}),
        ({"X-Smartrr-Webhook-Secret": SECRET[:-1]}, {}),
        ({"X-Smartrr-Webhook-Secret": SECRET + "x"}, {}),
        ({"X-Smartrr-Webhook-Secret": "", "Authorization": f"Basic {SECRET}"}, {}),
        ({"X-Smartrr-Webhook-Secret": "", "Authorization": "Bearer nope"}, {}),
        ({"X-Smartrr-Webhook-Secret": ""}, {"token": "nope"}),
        ({"X-Smartrr-Webhook-Secret": ""}, {"token": "ünïcode"}),
        ({"X-Smartrr-Webhook-Secret": "ünïcode"}, {}),
    ],
    ids=["missing", "short", "long", "basic", "bearer", "token", "unicode-token", "unicode"],
)
def test_a_missing_or_wrong_secret_is_refused_and_nothing_is_stored(
    client: FlaskClient, session: Session, headers: dict[str, str], query: dict[str, str]
) -> None:
    response = client.post(
        "/smartrr/webhook", json={"eventId": "e1"}, headers=headers, query_string=query
    )

    assert response.status_code == 403
    assert "secret" in response.get_json()["detail"]
    assert events(session) == []


# --- bad bodies ---


@pytest.mark.parametrize(
    "body",
    [
        "",
        "[]",
        "42",
        '"text"',
        "null",
        "not json",
        '{"eventId": "e1"',
        '{"amount": NaN}',
        '{"amount": Infinity}',
        b"\xff\xfe{}",
        "[" * 5000 + "]" * 5000,
    ],
    ids=[
        "empty",
        "list",
        "number",
        "string",
        "null",
        "text",
        "truncated",
        "nan",
        "infinity",
        "bad-utf8",
        "deep",
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_400(
    client: FlaskClient, session: Session, body: str | bytes
) -> None:
    response = post(client, body)

    assert response.status_code == 400
    assert response.get_json()["detail"] == "expected a JSON object"
    assert events(session) == []


def test_an_oversized_body_is_a_413(client: FlaskClient, session: Session) -> None:
    response = post(client, {"eventId": "big", "padding": "x" * 70_000})

    assert response.status_code == 413
    assert events(session) == []


def test_a_json_object_is_read_whatever_its_content_type(
    client: FlaskClient, session: Session
) -> None:
    response = client.post(
        "/smartrr/webhook",
        data=json.dumps({"eventId": "e1"}),
        content_type="text/plain",
        headers={"X-Smartrr-Webhook-Secret": SECRET},
    )

    assert response.status_code == 200
    assert len(events(session)) == 1


# --- stored raw and once ---


def test_a_repeated_delivery_is_stored_once(client: FlaskClient, session: Session) -> None:
    payload = {"eventId": "evt-1", "topic": "purchase_state.updated", "purchaseStateId": "ps-1"}

    first = post(client, payload)
    second = post(client, payload)

    assert (first.status_code, first.get_json()) == (200, {"status": "stored"})
    assert (second.status_code, second.get_json()) == (200, {"status": "duplicate"})
    [event] = events(session)
    assert event.payload == payload
    assert (event.topic, event.purchase_state_id, event.status) == (
        "purchase_state.updated",
        "ps-1",
        "pending",
    )


def test_nul_characters_are_stored_as_replacement_characters(
    client: FlaskClient, session: Session
) -> None:
    # PostgreSQL text cannot hold NUL: such an event must not become a 500.
    payload = {"eventId": "evt\u00001", "topic": "a\u0000b", "data": {"notes": ["\u0000"]}}

    response = post(client, payload)

    assert (response.status_code, response.get_json()) == (200, {"status": "stored"})
    [event] = events(session)
    assert (event.event_key, event.topic) == ("id:evt\ufffd1", "a\ufffdb")
    assert event.payload["data"] == {"notes": ["\ufffd"]}


def test_without_an_event_id_the_canonical_body_is_the_key(
    client: FlaskClient, session: Session
) -> None:
    post(client, {"purchaseStateId": "ps-1", "topic": "updated"})
    post(client, json.loads('{"topic": "updated", "purchaseStateId": "ps-1"}'))  # reordered
    post(client, {"purchaseStateId": "ps-2", "topic": "updated"})

    keys = [e.event_key for e in events(session)]
    assert len(keys) == 2
    assert all(key.startswith("sha256:") for key in keys)


def test_a_body_that_is_a_purchase_state_is_not_keyed_by_the_subscription_id(
    client: FlaskClient, session: Session
) -> None:
    # Its "id" names the subscription, so two changes of it are two events.
    state = {"id": "ps-1", "purchaseStateStatus": "ACTIVE", "custRel": {"id": "c-1"}}
    post(client, {**state, "nextBillingDate": "2026-12-01"})
    post(client, {**state, "nextBillingDate": "2026-12-08"})

    stored = events(session)
    assert len(stored) == 2
    assert {(e.purchase_state_id, e.customer_id) for e in stored} == {("ps-1", "c-1")}


def test_the_webhook_id_and_timestamp_key_a_delivery(client: FlaskClient, session: Session) -> None:
    post(client, {"webhookId": "wh-9", "timestamp": "2026-11-23T14:00:00Z", "data": {"id": "a"}})
    post(client, {"webhookId": "wh-9", "timestamp": "2026-11-23T14:00:00Z", "data": {"id": "b"}})
    post(client, {"webhookId": "wh-9", "timestamp": "2026-11-23T14:00:05Z", "data": {"id": "a"}})

    assert [e.event_key for e in events(session)] == [
        "wh:wh-9:2026-11-23T14:00:00Z",
        "wh:wh-9:2026-11-23T14:00:05Z",
    ]


@pytest.mark.parametrize(
    ("payload", "headers", "expected"),
    [
        (
            {"event": "subscription_skipped", "purchaseStateId": "ps-1", "customerId": "c-1"},
            {},
            ("subscription_skipped", "ps-1", "c-1"),
        ),
        (
            {"type": "x", "purchaseState": {"id": "ps-2", "custRel": {"id": "c-2"}}},
            {},
            ("x", "ps-2", "c-2"),
        ),
        (
            {"data": {"id": "ps-3", "customerRelationshipId": "c-3"}},
            {"X-Smartrr-Topic": "purchase_state/updated"},
            ("purchase_state/updated", "ps-3", "c-3"),
        ),
        (
            {"payload": {"purchaseStateStatus": "PAUSED", "id": "ps-4", "custRel": {"id": 44}}},
            {},
            (None, "ps-4", "44"),
        ),
        (
            {"data": {"object": {"purchaseStateId": "ps-5"}}, "topic": ["not", "text"]},
            {},
            (None, "ps-5", None),
        ),
        ({"hello": "world", "id": True, "purchaseStateId": "x" * 65}, {}, (None, None, None)),
    ],
    ids=["flat", "purchase-state", "data-and-header", "payload", "nested", "nothing"],
)
def test_what_an_event_names_is_read_liberally(
    client: FlaskClient,
    session: Session,
    payload: dict[str, Any],
    headers: dict[str, str],
    expected: tuple[str | None, str | None, str | None],
) -> None:
    assert post(client, payload, **headers).status_code == 200

    [event] = events(session)
    assert (event.topic, event.purchase_state_id, event.customer_id) == expected


def test_the_webhook_never_calls_smartrr(client: FlaskClient, sandbox: SandboxServer) -> None:
    post(client, {"purchaseStateId": "ps-1", "custRel": {"id": "c-1"}})

    assert sandbox.store.calls == []


# --- applying events ---


def test_a_skip_in_smartrr_moves_the_pending_notice(
    app: Flask, client: FlaskClient, sandbox: SandboxServer, session: Session
) -> None:
    bars = state_of(sandbox, MARCUS, "Protein Bars")
    with freeze_time(SEED_NOW):
        worker = Worker(app)
        worker.sync()
        worker.plan()
        act(sandbox, bars, "skip")
        post(client, {"eventId": "skip-1", "purchaseStateId": bars["id"]})
        assert worker.events() == 1

    # 3 days before each billing moment (14:00 UTC) is 08:00 in Chicago: 11:00 opens.
    assert notices(session, bars) == [
        ("2026-11-26", "cancelled", "2026-11-23T17:00:00+00:00"),
        ("2026-12-26", "scheduled", "2026-12-23T17:00:00+00:00"),
    ]
    [event] = events(session)
    assert (event.status, event.error, event.applied_at) == ("applied", None, SEED_NOW)
    customer_id = bars["custRel"]["id"]
    assert ("GET", f"/vendor/customer/{customer_id}/purchase-state/") in sandbox.store.calls


@pytest.mark.parametrize(("action", "status"), [("pause", "PAUSED"), ("cancel", "CANCELLED")])
def test_a_pause_or_cancel_in_smartrr_cancels_the_notice(
    app: Flask,
    client: FlaskClient,
    sandbox: SandboxServer,
    session: Session,
    action: str,
    status: str,
) -> None:
    bars = state_of(sandbox, MARCUS, "Protein Bars")
    with freeze_time(SEED_NOW):
        worker = Worker(app)
        worker.sync()
        worker.plan()
        act(sandbox, bars, action)
        # Only the customer is named: all of their subscriptions are re-read.
        post(client, {"eventId": action, "custRel": {"id": bars["custRel"]["id"]}})
        worker.events()

    assert [status for _, status, _ in notices(session, bars)] == ["cancelled"]
    session.expire_all()
    subscription = session.scalars(
        select(Subscription).where(Subscription.smartrr_id == bars["id"])
    ).one()
    assert subscription.status == status


def test_a_date_change_in_the_portal_for_an_unknown_subscription_is_read_by_shopify_id(
    app: Flask, client: FlaskClient, sandbox: SandboxServer, session: Session
) -> None:
    tea = state_of(sandbox, MAYA, "Earl Grey Tea")
    with freeze_time(SEED_NOW):
        worker = Worker(app)
        act(sandbox, tea, "next-billing-date", {"nextBillingDate": "2026-12-04"})
        # Never synced: only the Shopify contract id leads to it.
        post(client, {"eventId": "portal-1", "shopifySubscriptionId": tea["shopifyId"]})
        worker.events()

    # Dec 4 14:00 UTC is 09:00 in New York; Dec 1 09:00 moves to 11:00 (16:00 UTC).
    assert notices(session, tea) == [("2026-12-04", "scheduled", "2026-12-01T16:00:00+00:00")]
    assert ("GET", f"/vendor/purchase-state/{tea['shopifyId']}") in sandbox.store.calls


def test_late_deliveries_cannot_bring_back_an_old_date(
    app: Flask, client: FlaskClient, sandbox: SandboxServer, session: Session
) -> None:
    bars = state_of(sandbox, MARCUS, "Protein Bars")
    with freeze_time(SEED_NOW):
        worker = Worker(app)
        worker.sync()
        worker.plan()
        old = sandbox.store.purchase_state(bars["id"])
        act(sandbox, bars, "skip")
        new = sandbox.store.purchase_state(bars["id"])
        # The newer change arrives first, then the older one: the payloads are only
        # pointers, Smartrr's answer now is what counts.
        post(client, new)
        worker.events()
        post(client, old)
        worker.events()

    assert [(day, status) for day, status, _ in notices(session, bars)] == [
        ("2026-11-26", "cancelled"),
        ("2026-12-26", "scheduled"),
    ]
    assert [e.status for e in events(session)] == ["applied", "applied"]


def test_an_event_is_applied_once(
    app: Flask, client: FlaskClient, sandbox: SandboxServer, session: Session
) -> None:
    bars = state_of(sandbox, MARCUS, "Protein Bars")
    with freeze_time(SEED_NOW):
        worker = Worker(app)
        worker.sync()
        post(client, {"eventId": "once", "purchaseStateId": bars["id"]})
        assert worker.events() == 1
        assert worker.events() == 0

    reads = [c for c in sandbox.store.calls if c[1].startswith("/vendor/customer/")]
    assert len(reads) == 1


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"eventId": "e", "topic": "ping"}, "names no subscription, customer"),
        ({"eventId": "e", "purchaseStateId": "ps-unknown"}, "periodic sync will pick it up"),
    ],
)
def test_an_event_that_names_nothing_usable_fails_with_a_clear_error(
    app: Flask,
    client: FlaskClient,
    sandbox: SandboxServer,
    session: Session,
    payload: JSON,
    error: str,
) -> None:
    post(client, payload)
    Worker(app).events()

    [event] = events(session)
    assert event.status == "failed"
    assert error in (event.error or "")
    assert event.payload == payload  # kept for the console
    assert sandbox.store.calls == []


def test_a_subscription_smartrr_does_not_know_fails_with_smartrrs_answer(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    post(client, {"eventId": "e", "shopifySubscriptionId": "999"})
    Worker(app).events()

    [event] = events(session)
    assert event.status == "failed"
    assert event.error == "Smartrr found nothing at GET /vendor/purchase-state/999 (404)."


def test_smartrr_unavailable_retries_later_with_backoff(
    app: Flask, client: FlaskClient, sandbox: SandboxServer, session: Session
) -> None:
    bars = state_of(sandbox, MARCUS, "Protein Bars")
    with freeze_time(SEED_NOW) as clock:
        worker = Worker(app)
        worker.sync()
        worker.plan()
        act(sandbox, bars, "skip")
        post(client, {"eventId": "later", "purchaseStateId": bars["id"]})
        sandbox.store.fail_next(4, 503, retry_after="0")  # every retry of the client
        worker.events()

        [event] = events(session)
        assert (event.status, event.attempts) == ("pending", 1)
        assert event.next_attempt_at == SEED_NOW + timedelta(seconds=15)
        assert "unavailable" in (event.error or "")
        assert worker.events() == 0  # not before its time

        clock.move_to(SEED_NOW + timedelta(seconds=15))
        assert worker.events() == 1

    [event] = events(session)
    assert (event.status, event.error, event.attempts) == ("applied", None, 2)
    assert [day for day, status, _ in notices(session, bars) if status == "scheduled"] == [
        "2026-12-26"
    ]


def test_smartrr_unavailable_for_long_fails_the_event_for_the_sync_to_catch_up(
    app: Flask, client: FlaskClient, sandbox: SandboxServer, session: Session
) -> None:
    bars = state_of(sandbox, MARCUS, "Protein Bars")
    with freeze_time(SEED_NOW) as clock:
        worker = Worker(app)
        worker.sync()
        post(client, {"eventId": "down", "purchaseStateId": bars["id"]})
        for _ in range(8):
            sandbox.store.fail_next(4, 503, retry_after="0")
            worker.events()
            clock.tick(timedelta(minutes=15))

    [event] = events(session)
    assert (event.status, event.attempts) == ("failed", 8)
    assert "periodic sync will catch up" in (event.error or "")


def test_received_at_is_stored_in_utc(client: FlaskClient, session: Session) -> None:
    moment = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    with freeze_time(moment):
        post(client, {"eventId": "t"})

    [event] = events(session)
    assert (event.received_at, event.next_attempt_at) == (moment, moment)
