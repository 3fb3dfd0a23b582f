"""Logging: one line per event, JSON in production, with request ids and masked phones."""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

from flask import Flask, Response, g, has_request_context, request

from bot.rules.phones import mask

#: Anything that looks like an E.164 number is masked before a line is written.
PHONE = re.compile(r"\+\d{10,15}")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def redact(text: str) -> str:
    """Mask every phone number in ``text``."""
    return PHONE.sub(lambda match: mask(match.group()), text)


class ContextFilter(logging.Filter):
    """Adds the request id and masks phone numbers in every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        record.msg = redact(record.getMessage())
        record.args = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def request_id(given: str) -> str:
    """The id a proxy gave the request (X-Request-Id) when it is a sane one, else a new one."""
    return given if REQUEST_ID.match(given) else uuid.uuid4().hex


def init_app(app: Flask) -> None:
    """Configure the root logger once per process and tag requests with an id."""
    root = logging.getLogger()
    if not any(isinstance(f, ContextFilter) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler()
        json_logs = app.config["LOG_FORMAT"] == "json"
        handler.setFormatter(JsonFormatter() if json_logs else logging.Formatter(TEXT_FORMAT))
        handler.addFilter(ContextFilter())
        root.addHandler(handler)
        root.setLevel(app.config["LOG_LEVEL"])
        # The SDK logs every request at INFO; our own lines say what matters.
        logging.getLogger("twilio.http_client").setLevel(logging.WARNING)

    @app.before_request
    def assign_request_id() -> None:
        g.request_id = request_id(request.headers.get("X-Request-Id", ""))

    @app.after_request
    def echo_request_id(response: Response) -> Response:
        response.headers["X-Request-Id"] = g.get("request_id", "")
        return response
