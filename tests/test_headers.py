from __future__ import annotations

import pytest
from conftest import Phone
from flask import Flask, Response
from flask.testing import FlaskClient

from bot.ops.headers import CONTENT_SECURITY_POLICY


@pytest.mark.parametrize("path", ["/healthz", "/console/login", "/console/", "/nowhere"])
def test_every_response_forbids_framing_sniffing_and_inline_script(
    client: FlaskClient, path: str
) -> None:
    headers = client.get(path).headers
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_https_deployments_ask_browsers_to_stay_on_https(client: FlaskClient) -> None:
    # The test app's PUBLIC_BASE_URL is https://bot.example.com.
    assert client.get("/healthz").headers["Strict-Transport-Security"] == "max-age=31536000"


def test_a_webhook_answer_carries_them_too(phone: Phone) -> None:
    response = phone.text("+12025550143", "SKIP")

    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_a_header_a_view_set_itself_is_kept_and_not_doubled(app: Flask) -> None:
    app.add_url_rule(
        "/embeddable", view_func=lambda: Response("ok", headers={"X-Frame-Options": "SAMEORIGIN"})
    )

    headers = app.test_client().get("/embeddable").headers

    assert headers.getlist("X-Frame-Options") == ["SAMEORIGIN"]
    assert headers.getlist("X-Content-Type-Options") == ["nosniff"]
