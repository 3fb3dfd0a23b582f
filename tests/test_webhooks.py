"""Twilio's webhooks: signatures checked (behind a proxy too), bad input refused with a
4xx, and delivery receipts that arrive late, twice or out of order kept harmless."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import PUBLIC_BASE_URL, SEED_NOW, Phone
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session
from twilio_fake import ACCOUNT_SID, FROM_NUMBER, TwilioFake, sign

from bot import create_app
from bot.storage.db import get_db
from bot.storage.models import InboundMessage, OutboundMessage, Subscriber
from bot.worker import Worker

MARCUS = "+13125794420"  # Chicago; his notice leaves at 11:00 CST on SEED_NOW's day
STRANGER = "+12025550143"
SENT_AT = SEED_NOW + timedelta(hours=3)


@pytest.fixture
def notice(app: Flask, twilio: TwilioFake) -> dict[str, Any]:
    """Marcus's notice, sent through the fake Twilio: the message as Twilio holds it."""
    with freeze_time(SENT_AT):
        worker = Worker(app)
        worker.sync()
        worker.plan()
        worker.dispatch()
    [message] = [m for m in twilio.messages if m["to"] == MARCUS]
    return message


def receipt(phone: Phone, message: dict[str, Any], status: str, **extra: str) -> Any:
    """Post a status callback the way Twilio does: to the URL it was given, signed."""
    callback = urlsplit(message["status_callback"])
    params = {
        "MessageSid": message["sid"],
        "MessageStatus": status,
        "AccountSid": ACCOUNT_SID,
        "From": FROM_NUMBER,
        "To": message["to"],
        **extra,
    }
    return phone.post(f"{callback.path}?{callback.query}", params)


def outbound(session: Session, sid: str) -> OutboundMessage:
    session.expire_all()
    return session.scalars(select(OutboundMessage).where(OutboundMessage.provider_sid == sid)).one()


def status_params(sid: str = "SM" + "1" * 32, status: str = "delivered") -> dict[str, str]:
    return {"MessageSid": sid, "MessageStatus": status, "AccountSid": ACCOUNT_SID}


# --- signatures ---


@pytest.mark.parametrize("path", ["/sms/inbound", "/sms/status"])
@pytest.mark.parametrize("signature", ["", "forged", sign(PUBLIC_BASE_URL + "/x", {})])
def test_a_missing_or_forged_signature_is_a_403(
    client: FlaskClient, session: Session, path: str, signature: str
) -> None:
    params = {**status_params(), "From": STRANGER, "Body": "STOP"}
    headers = {"X-Twilio-Signature": signature} if signature else {}

    response = client.post(path, data=params, headers=headers)

    assert response.status_code == 403
    assert "X-Twilio-Signature" in response.get_json()["detail"]
    assert session.scalars(select(InboundMessage)).all() == []


def test_a_signature_over_other_parameters_is_a_403(phone: Phone) -> None:
    signature = sign(PUBLIC_BASE_URL + "/sms/status", status_params(status="sent"))

    response = phone.post("/sms/status", status_params(status="delivered"), signature=signature)

    assert response.status_code == 403


@pytest.mark.parametrize("signed_url", [PUBLIC_BASE_URL, PUBLIC_BASE_URL + ":443"])
def test_a_signature_over_the_url_with_or_without_its_port_is_accepted(
    phone: Phone, signed_url: str
) -> None:
    params = status_params()

    response = phone.post("/sms/status", params, signature=sign(signed_url + "/sms/status", params))

    assert response.status_code == 204


@pytest.mark.parametrize("signature", ["é" * 28, "\x00", "🙂"])
def test_a_signature_with_characters_no_signature_holds_is_a_403(
    phone: Phone, signature: str
) -> None:
    response = phone.post("/sms/status", status_params(), signature=signature)

    assert response.status_code == 403


def test_behind_a_proxy_the_public_url_is_what_was_signed(client: FlaskClient) -> None:
    # The app is reached as http://localhost/...; Twilio signed the public https URL.
    params = status_params()
    internal = sign("http://localhost/sms/status?m=1", params)
    public = sign(PUBLIC_BASE_URL + "/sms/status?m=1", params)

    refused = client.post("/sms/status?m=1", data=params, headers={"X-Twilio-Signature": internal})
    accepted = client.post("/sms/status?m=1", data=params, headers={"X-Twilio-Signature": public})

    assert refused.status_code == 403
    assert accepted.status_code == 204


@pytest.fixture
def direct_app(config: dict[str, Any], app: Flask) -> Iterator[Flask]:
    """The same database, reached without a proxy: PUBLIC_BASE_URL unset."""
    direct = create_app({**config, "PUBLIC_BASE_URL": None})
    yield direct
    get_db(direct).dispose()


def test_without_public_base_url_the_request_url_is_what_was_signed(direct_app: Flask) -> None:
    client = direct_app.test_client()
    params = status_params()

    accepted = client.post(
        "/sms/status?m=1",
        data=params,
        headers={"X-Twilio-Signature": sign("http://localhost/sms/status?m=1", params)},
    )
    refused = client.post(
        "/sms/status?m=1",
        data=params,
        headers={"X-Twilio-Signature": sign(PUBLIC_BASE_URL + "/sms/status?m=1", params)},
    )

    assert accepted.status_code == 204
    assert refused.status_code == 403


def test_without_an_auth_token_webhooks_are_refused(config: dict[str, Any], app: Flask) -> None:
    unverifiable = create_app({**config, "TWILIO_AUTH_TOKEN": None})
    try:
        response = unverifiable.test_client().post("/sms/status", data=status_params())
    finally:
        get_db(unverifiable).dispose()

    assert response.status_code == 403
    assert "TWILIO_AUTH_TOKEN is not configured" in response.get_json()["detail"]


# --- bad input ---


@pytest.mark.parametrize(
    ("path", "params", "missing"),
    [
        ("/sms/status", {"MessageStatus": "delivered"}, "MessageSid"),
        ("/sms/status", {"MessageSid": "SM1"}, "MessageStatus"),
        ("/sms/status", {"MessageSid": "", "MessageStatus": ""}, "MessageSid, MessageStatus"),
        ("/sms/inbound", {"From": STRANGER, "Body": "hi"}, "MessageSid"),
        ("/sms/inbound", {"MessageSid": "SMx", "Body": "hi"}, "From"),
    ],
)
def test_missing_fields_are_a_400_naming_them(
    phone: Phone, session: Session, path: str, params: dict[str, str], missing: str
) -> None:
    response = phone.post(path, params)

    assert response.status_code == 400
    assert response.get_json()["detail"] == f"missing field(s): {missing}"
    assert session.scalars(select(InboundMessage)).all() == []


@pytest.mark.parametrize("path", ["/sms/inbound", "/sms/status"])
def test_a_body_that_is_not_a_form_is_a_400(client: FlaskClient, path: str) -> None:
    # Signed as Twilio signs a request without form fields: the URL alone.
    response = client.post(
        path,
        json=status_params(),
        headers={"X-Twilio-Signature": sign(PUBLIC_BASE_URL + path, {})},
    )

    assert response.status_code == 400
    assert response.get_json()["detail"] == "expected a form-encoded body"


@pytest.mark.parametrize("path", ["/sms/inbound", "/sms/status"])
def test_an_oversized_body_is_a_413(phone: Phone, session: Session, path: str) -> None:
    params = {**status_params(), "From": STRANGER, "Body": "x" * 70_000}

    response = phone.post(path, params)

    assert response.status_code == 413
    assert session.scalars(select(InboundMessage)).all() == []


def test_an_overlong_message_sid_is_a_400(phone: Phone) -> None:
    response = phone.post("/sms/status?m=1", status_params(sid="SM" + "9" * 100))

    assert response.status_code == 400
    assert response.get_json()["detail"] == "MessageSid is too long"


# --- delivery receipts ---


def test_a_receipt_records_delivery(phone: Phone, notice: dict[str, Any], session: Session) -> None:
    with freeze_time(SENT_AT + timedelta(seconds=5)):
        response = receipt(phone, notice, "delivered")

    assert response.status_code == 204
    message = outbound(session, notice["sid"])
    assert (message.status, message.status_at) == ("delivered", SENT_AT + timedelta(seconds=5))


def test_a_repeated_receipt_changes_nothing(
    phone: Phone, notice: dict[str, Any], session: Session
) -> None:
    with freeze_time(SENT_AT + timedelta(seconds=5)):
        receipt(phone, notice, "delivered")
    with freeze_time(SENT_AT + timedelta(minutes=5)):
        for _ in range(3):
            assert receipt(phone, notice, "delivered").status_code == 204

    message = outbound(session, notice["sid"])
    assert (message.status, message.status_at) == ("delivered", SENT_AT + timedelta(seconds=5))


@pytest.mark.parametrize("final", ["delivered", "undelivered", "failed"])
@pytest.mark.parametrize("late", ["queued", "sending", "sent", "delivered", "failed"])
def test_a_late_receipt_never_moves_a_message_back_from_a_final_state(
    phone: Phone, notice: dict[str, Any], session: Session, final: str, late: str
) -> None:
    code = {} if final == "delivered" else {"ErrorCode": "30003"}
    assert receipt(phone, notice, final, **code).status_code == 204

    assert receipt(phone, notice, late).status_code == 204

    message = outbound(session, notice["sid"])
    assert message.status == final
    assert message.error_code == code.get("ErrorCode")


def test_receipts_out_of_order_end_at_the_furthest_state(
    phone: Phone, notice: dict[str, Any], session: Session
) -> None:
    for status in ("sent", "queued", "delivered", "sent", "queued"):
        assert receipt(phone, notice, status).status_code == 204

    assert outbound(session, notice["sid"]).status == "delivered"


def test_an_unknown_status_is_ignored(
    phone: Phone, notice: dict[str, Any], session: Session
) -> None:
    assert receipt(phone, notice, "read").status_code == 204
    assert receipt(phone, notice, "DELIVERED").status_code == 204  # case does not matter

    assert outbound(session, notice["sid"]).status == "delivered"


def test_error_21610_marks_the_subscriber_opted_out(
    phone: Phone, notice: dict[str, Any], session: Session
) -> None:
    with freeze_time(SENT_AT + timedelta(seconds=5)):
        response = receipt(phone, notice, "undelivered", ErrorCode="21610")

    assert response.status_code == 204
    message = outbound(session, notice["sid"])
    assert (message.status, message.error_code) == ("undelivered", "21610")
    subscriber = session.scalars(select(Subscriber).where(Subscriber.phone == MARCUS)).one()
    assert subscriber.opted_out_at == SENT_AT + timedelta(seconds=5)


def test_a_receipt_for_an_unknown_message_or_number_is_harmless(
    phone: Phone, notice: dict[str, Any], session: Session
) -> None:
    stranger = {**notice, "sid": "SM" + "f" * 32, "to": STRANGER}

    assert receipt(phone, stranger, "failed", ErrorCode="21610").status_code == 204
    assert phone.post("/sms/status", status_params(sid="SMnobody")).status_code == 204

    assert outbound(session, notice["sid"]).status == "sent"
    assert (
        session.scalars(select(Subscriber).where(Subscriber.opted_out_at.is_not(None))).all() == []
    )


def test_a_receipt_naming_another_message_id_is_matched_by_its_sid(
    phone: Phone, notice: dict[str, Any], session: Session
) -> None:
    # ?m= points at some other row: the SID Twilio signed decides which message it is.
    other = {**notice, "status_callback": PUBLIC_BASE_URL + "/sms/status?m=999"}

    assert receipt(phone, other, "delivered").status_code == 204

    assert outbound(session, notice["sid"]).status == "delivered"


# --- inbound from strangers ---


def test_a_text_from_an_unknown_number_is_stored_and_answered_without_a_crash(
    app: Flask, phone: Phone, twilio: TwilioFake, session: Session
) -> None:
    with freeze_time(SENT_AT):
        response = phone.text(STRANGER, "SKIP")
        Worker(app).inbox()

    assert response.status_code == 200
    inbound = session.scalars(select(InboundMessage)).one()
    assert (inbound.status, inbound.outcome, inbound.subscriber_id) == (
        "handoff",
        "unknown_number",
        None,
    )
    assert len(twilio.state.bodies_to(STRANGER)) == 1


def test_nul_characters_in_a_text_are_stored_as_replacement_characters(
    phone: Phone, session: Session
) -> None:
    # PostgreSQL text cannot hold NUL: such a text must be kept, not lost to a 500.
    response = phone.text(STRANGER, "SK\x00IP", FromCity="NEW\x00YORK")

    assert response.status_code == 200
    inbound = session.scalars(select(InboundMessage)).one()
    assert (inbound.body, inbound.params["FromCity"]) == ("SK\ufffdIP", "NEW\ufffdYORK")


# --- the database out of reach ---

UNREACHABLE_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:1/none"


@pytest.fixture
def cut_off(config: dict[str, Any]) -> Iterator[FlaskClient]:
    """A client of the app whose database refuses every connection."""
    app = create_app(
        {**config, "DATABASE_URL": UNREACHABLE_DATABASE, "SMARTRR_WEBHOOK_SECRET": "s3cret"}
    )
    yield app.test_client()
    get_db(app).dispose()
    app.extensions["smartrr"].close()


def test_a_text_that_cannot_be_stored_is_a_503_asking_twilio_to_retry(
    cut_off: FlaskClient,
) -> None:
    response = Phone(cut_off).text(STRANGER, "SKIP")

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.get_json() == {
        "error": "Service Unavailable",
        "detail": "the database is unavailable; nothing was stored, try again",
    }


def test_a_receipt_or_a_smartrr_event_that_cannot_be_stored_is_a_503(
    cut_off: FlaskClient,
) -> None:
    receipt = Phone(cut_off).post("/sms/status", status_params())
    event = cut_off.post(
        "/smartrr/webhook",
        json={"id": "evt_1", "type": "subscription.updated"},
        headers={"X-Smartrr-Webhook-Secret": "s3cret"},
    )

    assert (receipt.status_code, event.status_code) == (503, 503)
    assert event.headers["Retry-After"] == "5"
