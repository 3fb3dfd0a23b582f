"""Malformed, oversized, wrongly encoded and forged requests against every public endpoint."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot import MAX_BODY_BYTES
from bot.storage.models import InboundMessage, OutboundMessage, SmartrrEvent

ENDPOINTS = ("/sms/inbound", "/sms/status", "/smartrr/webhook", "/healthz", "/metrics")
CONTENT_TYPES = (
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=latin-1",
    "multipart/form-data; boundary=xyz",
    "application/json",
    "text/plain",
    "application/octet-stream",
    "",
)
TWILIO_FIELDS = ("MessageSid", "From", "To", "Body", "MessageStatus", "ErrorCode", "OptOutType")
field_values = st.one_of(
    st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))
)
forms = st.dictionaries(
    st.sampled_from(TWILIO_FIELDS) | st.text(max_size=20), field_values, max_size=8
)
bodies = st.one_of(
    st.binary(max_size=2000),
    forms.map(
        lambda f: "&".join(f"{k}={v}" for k, v in f.items()).encode("utf-8", "surrogatepass")
    ),
    st.text(max_size=500).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.just(b'{"id": "evt_1", "purchaseStateId": "x"}'),
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "X-Twilio-Signature": st.text(
            alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=40
        ),
        "X-Smartrr-Webhook-Secret": st.text(
            alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=40
        ),
        "Content-Type": st.sampled_from(CONTENT_TYPES),
    },
)


WEBHOOK_SECRET = "fuzz-secret-value"


@pytest.fixture
def config(config: dict[str, Any]) -> dict[str, Any]:
    """The usual test app, with the Smartrr webhook switched on."""
    return {**config, "SMARTRR_WEBHOOK_SECRET": WEBHOOK_SECRET}


def count_rows(session: Session) -> int:
    return sum(
        session.scalar(select(func.count()).select_from(model)) or 0
        for model in (InboundMessage, OutboundMessage, SmartrrEvent)
    )


@settings(
    max_examples=10_000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(ENDPOINTS),
    method=st.sampled_from(("POST", "POST", "POST", "GET", "PUT", "DELETE")),
    body=bodies,
    sent_headers=headers,
    query=st.sampled_from(("", "?token=wrong", "?m=1", "?m=abc", "?token=")),
)
def test_no_request_gets_a_5xx_or_writes_a_row(
    client: FlaskClient,
    session: Session,
    path: str,
    method: str,
    body: bytes,
    sent_headers: dict[str, str],
    query: str,
) -> None:
    response = client.open(path + query, method=method, data=body, headers=sent_headers)
    assert response.status_code < 500, (path, method, body[:80], response.status_code)
    assert count_rows(session) == 0
    session.rollback()  # the next example must see a fresh snapshot


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/sms/inbound", "application/x-www-form-urlencoded"),
        ("/sms/status", "application/x-www-form-urlencoded"),
        ("/smartrr/webhook", "application/json"),
    ],
)
def test_oversized_bodies_are_refused_with_413(
    client: FlaskClient, path: str, content_type: str
) -> None:
    big = b"Body=" + b"a" * (MAX_BODY_BYTES + 1)
    headers = {"Content-Type": content_type, "X-Smartrr-Webhook-Secret": WEBHOOK_SECRET}
    assert client.post(path, data=big, headers=headers).status_code == 413
