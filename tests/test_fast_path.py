"""Inbound texts answered before Flask: the same answer, headers, logs and metrics as the
Flask view gives, and every request it does not take answered by the view."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlencode

import pytest
from conftest import PUBLIC_BASE_URL, Phone
from flask import Flask, request, request_started
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from twilio_fake import ACCOUNT_SID, FROM_NUMBER, sign

from bot import create_app
from bot.db import get_db
from bot.logs import ContextFilter
from bot.models import InboundMessage

STRANGER = "+12025550143"
#: What differs between two answers by nature, not by path.
PER_REQUEST = {"X-Request-Id", "Content-Length"}


def text_params(sid: str, **extra: str) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": STRANGER,
        "To": FROM_NUMBER,
        "Body": "SKIP",
        **extra,
    }


def sids(session: Session) -> list[str]:
    session.expire_all()
    return list(session.scalars(select(InboundMessage.message_sid).order_by(InboundMessage.id)))


def metric(client: FlaskClient, status: str) -> float:
    """How many inbound texts /metrics says were answered with ``status``."""
    body = client.get("/metrics").get_data(as_text=True)
    labels = f'endpoint="webhooks.inbound",method="POST",status="{status}"'
    found = re.search(rf"^bot_http_request_seconds_count\{{{labels}\}} (\S+)$", body, re.M)
    return float(found.group(1)) if found else 0.0


def test_a_text_is_answered_as_the_flask_view_answers_it(phone: Phone, session: Session) -> None:
    fast = phone.post("/sms/inbound", text_params("SMfast"))
    # A multipart body is the view's to parse: the same text, answered by Flask.
    slow = phone.post("/sms/inbound", text_params("SMslow"), content_type="multipart/form-data")

    assert fast.status_code == slow.status_code == 200
    assert fast.get_data() == slow.get_data()
    assert fast.headers["Content-Type"] == slow.headers["Content-Type"]
    assert {name for name, _ in fast.headers} == {name for name, _ in slow.headers}
    for name, value in fast.headers:
        if name not in PER_REQUEST:
            assert slow.headers[name] == value, name
    assert sids(session) == ["SMfast", "SMslow"]


def test_flask_sees_only_the_texts_the_fast_path_does_not_take(
    app: Flask, client: FlaskClient, phone: Phone
) -> None:
    seen: list[str] = []

    def started(sender: Flask, **extra: Any) -> None:
        seen.append(request.path)

    with request_started.connected_to(started, app):
        phone.post("/sms/inbound", text_params("SMfast"))
        phone.post("/sms/inbound", text_params("SMview"), content_type="multipart/form-data")
        client.post("/sms/inbound", data=text_params("SMforged"))

    assert seen == ["/sms/inbound", "/sms/inbound"]


def test_a_repeated_text_is_stored_once(phone: Phone, session: Session) -> None:
    first = phone.post("/sms/inbound", text_params("SMtwice"))
    again = phone.post("/sms/inbound", text_params("SMtwice"))

    assert first.status_code == again.status_code == 200
    assert sids(session) == ["SMtwice"]


def test_its_lines_carry_the_request_id_and_its_answer_echoes_it(
    phone: Phone, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.handler.addFilter(ContextFilter())
    with caplog.at_level(logging.INFO, logger="bot.webhooks"):
        response = phone.post(
            "/sms/inbound", text_params("SMtagged"), headers={"X-Request-Id": "edge-7"}
        )

    assert response.headers["X-Request-Id"] == "edge-7"
    [line] = [r for r in caplog.records if "SMtagged" in r.getMessage()]
    assert line.request_id == "edge-7"  # type: ignore[attr-defined]
    assert STRANGER not in line.getMessage()


def test_a_new_request_id_is_made_for_each_text(phone: Phone) -> None:
    first = phone.post("/sms/inbound", text_params("SMid1")).headers["X-Request-Id"]
    second = phone.post(
        "/sms/inbound", text_params("SMid2"), headers={"X-Request-Id": "bad id"}
    ).headers["X-Request-Id"]

    assert len(first) == len(second) == 32
    assert first != second


def test_its_answers_are_counted_in_the_request_metrics(client: FlaskClient, phone: Phone) -> None:
    before = metric(client, "200")
    phone.post("/sms/inbound", text_params("SMcounted"))

    assert metric(client, "200") == before + 1


@pytest.mark.parametrize(
    ("params", "change", "status"),
    [
        pytest.param(text_params("SMforged"), {"signature": "forged"}, 403, id="forged"),
        pytest.param(text_params("SMnone"), {"signature": ""}, 403, id="unsigned"),
        pytest.param({"MessageSid": "SMnofrom", "Body": "hi"}, {}, 400, id="no From"),
        pytest.param(text_params(""), {}, 400, id="empty MessageSid"),
        pytest.param(text_params("SMbig", Body="x" * 70_000), {}, 413, id="too large"),
    ],
)
def test_what_it_does_not_take_the_view_answers(
    phone: Phone,
    session: Session,
    params: dict[str, str],
    change: dict[str, str],
    status: int,
) -> None:
    response = phone.post("/sms/inbound", params, **change)

    assert response.status_code == status
    assert response.get_json()["error"]
    assert sids(session) == []


def test_a_body_that_is_not_utf8_is_refused_by_the_view(
    client: FlaskClient, session: Session
) -> None:
    body = b"MessageSid=SMlatin&From=%2B12025550143&Body=caf\xe9"
    response = client.post(
        "/sms/inbound",
        data=body,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": sign(PUBLIC_BASE_URL + "/sms/inbound", {})},
    )

    # Signed as the view reads it: an undecodable body is no fields at all.
    assert response.status_code == 400
    assert "MessageSid, From" in response.get_json()["detail"]
    assert sids(session) == []


def test_a_body_shorter_than_its_content_length_is_refused_by_the_view(
    phone: Phone, session: Session
) -> None:
    params = text_params("SMshort")
    claimed = len(urlencode(params)) + 10
    response = phone.post(
        "/sms/inbound", params, environ_overrides={"CONTENT_LENGTH": str(claimed)}
    )

    assert response.status_code == 400
    assert sids(session) == []


def test_a_nul_in_a_field_is_stored_as_a_replacement_character(
    phone: Phone, session: Session
) -> None:
    assert phone.post("/sms/inbound", text_params("SMnul", Body="ski\x00p")).status_code == 200

    session.expire_all()
    body = session.scalars(select(InboundMessage.body)).one()
    assert body == "ski\ufffdp"


def test_without_public_base_url_it_checks_the_url_it_was_reached_at(
    config: dict[str, Any], app: Flask, session: Session
) -> None:
    direct = create_app({**config, "PUBLIC_BASE_URL": None})
    client = direct.test_client()
    params = text_params("SMdirect")
    try:
        refused = Phone(client).post("/sms/inbound", params)
        accepted = client.post(
            "/sms/inbound?x=1",
            data=params,
            headers={"X-Twilio-Signature": sign("http://localhost/sms/inbound?x=1", params)},
        )
    finally:
        get_db(direct).dispose()
        direct.extensions["smartrr"].close()

    assert refused.status_code == 403
    assert accepted.status_code == 200
    assert sids(session) == ["SMdirect"]
