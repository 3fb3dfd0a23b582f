from __future__ import annotations

import json
import logging

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bot.ops.logs import ContextFilter, JsonFormatter, redact
from bot.worker import Worker


def test_every_response_carries_a_request_id(client: FlaskClient) -> None:
    first = client.get("/healthz").headers["X-Request-Id"]
    second = client.get("/healthz").headers["X-Request-Id"]
    assert len(first) == 32 and first != second


def test_a_proxy_request_id_is_kept_and_a_malformed_one_replaced(client: FlaskClient) -> None:
    kept = client.get("/healthz", headers={"X-Request-Id": "edge-42.a_b"})
    assert kept.headers["X-Request-Id"] == "edge-42.a_b"
    replaced = client.get("/healthz", headers={"X-Request-Id": "bad id; drop"})
    assert replaced.headers["X-Request-Id"] != "bad id; drop"
    assert len(replaced.headers["X-Request-Id"]) == 32


def test_phone_numbers_are_masked_wherever_they_appear() -> None:
    assert redact("from +13125794420 to +16465823017") == "from +1 ••• ••• 4420 to +1 ••• ••• 3017"
    assert redact("order 12345 for $20") == "order 12345 for $20"


def test_json_lines_carry_level_logger_request_id_and_a_masked_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    record = logging.LogRecord(
        "bot.test", logging.INFO, __file__, 1, "text from %s", ("+13125794420",), None
    )
    ContextFilter().filter(record)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "INFO"
    assert entry["logger"] == "bot.test"
    assert entry["message"] == "text from +1 ••• ••• 4420"
    assert entry["request_id"] == "-"


def test_metrics_expose_request_latency_and_queue_depths(client: FlaskClient) -> None:
    client.get("/healthz")
    body = client.get("/metrics").get_data(as_text=True)
    assert (
        'bot_http_request_seconds_count{endpoint="pages.healthz",method="GET",status="200"}' in body
    )
    assert "# TYPE bot_outbound_messages gauge" in body
    assert "# TYPE bot_inbound_messages gauge" in body


def test_metrics_time_every_smartrr_call(app: Flask, client: FlaskClient) -> None:
    Worker(app).sync()
    body = client.get("/metrics").get_data(as_text=True)
    assert 'bot_smartrr_request_seconds_count{method="GET",status="200"}' in body
