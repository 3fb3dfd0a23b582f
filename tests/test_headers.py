from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from bot.headers import CONTENT_SECURITY_POLICY


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
