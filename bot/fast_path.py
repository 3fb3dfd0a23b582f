"""Inbound texts answered before Flask: the webhook's one busy path, at WSGI level.

Twilio posts every reply a subscriber sends, and a burst of them arrives minutes after
the morning's notices. Flask's request cycle (context, routing, form parser, hooks)
cost more per text than checking, storing and answering it (docs/benchmarks.md), so a
signed, form-encoded text with the fields it needs is stored and answered here, with
the headers, request id, log lines and metrics Flask would give it. Everything else
goes on to the Flask view (`bot.webhooks.inbound`) with its body untouched: a missing
or forged signature, another content type, a body that is too large, not UTF-8 or
missing a field, and a text the database did not take. The view then answers it with
the error it deserves (403, 400, 413, 503), through the app's usual handlers.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from flask import Flask
from twilio.request_validator import RequestValidator
from werkzeug.wrappers import Request

from bot import logs, webhooks
from bot.config import Settings
from bot.headers import security_headers
from bot.metrics import REQUEST_SECONDS

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

PATH = "/sms/inbound"


class InboundFastPath:
    """WSGI middleware: store and acknowledge a well-formed signed text, pass on the rest."""

    def __init__(self, app: Flask, settings: Settings) -> None:
        self.next: WSGIApplication = app.wsgi_app
        self.extensions = app.extensions
        self.settings = settings
        self.most = int(app.config["MAX_CONTENT_LENGTH"])
        token = settings.twilio_auth_token
        self.validator = RequestValidator(token) if token else None
        body = webhooks.EMPTY_TWIML.encode()
        self.body = [body]
        self.headers = [
            ("Content-Type", "text/xml; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *security_headers(settings),
        ]
        self.timer = REQUEST_SECONDS.labels("webhooks.inbound", "POST", "200")

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.next(environ, start_response)
        started = time.perf_counter()
        length = self._length(environ)
        if length is None:
            return self.next(environ, start_response)
        body: bytes = environ["wsgi.input"].read(length)
        # Whatever happens next, the view must find the body as it came.
        environ["wsgi.input"] = io.BytesIO(body)
        form = self._verified_form(environ, body) if len(body) == length else None
        if form is None:
            # Short (a client that has gone: the view's 400), or not ours to answer.
            return self.next(environ, start_response)
        request_id = logs.request_id(environ.get("HTTP_X_REQUEST_ID", ""))
        with logs.tagged(request_id):
            try:
                webhooks.store_inbound(self.extensions, form)
            except Exception:
                # Not stored: the view tries once more and, if the database still
                # refuses, answers as the app's error handlers say (503 when it is down).
                return self.next(environ, start_response)
        start_response("200 OK", [*self.headers, ("X-Request-Id", request_id)])
        self.timer.observe(time.perf_counter() - started)
        return self.body

    def _length(self, environ: WSGIEnvironment) -> int | None:
        """The length of a form-encoded body to read here; None when the view is to."""
        length = environ.get("CONTENT_LENGTH", "")
        mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        if self.validator is None or mimetype != webhooks.URLENCODED:
            return None
        if not (length.isascii() and length.isdigit()) or int(length) > self.most:
            return None  # chunked or unreadable: the view's; too large: its 413
        if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
            return None
        return int(length)

    def _verified_form(self, environ: WSGIEnvironment, body: bytes) -> dict[str, str] | None:
        """The form when the signature holds and the text has what it must; else None."""
        assert self.validator is not None
        signature = environ.get("HTTP_X_TWILIO_SIGNATURE", "")
        if not signature:
            return None
        try:
            pairs = parse_qsl(body.decode(), keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            return None
        form: dict[str, str] = {}
        for key, value in pairs:
            form.setdefault(key, value)  # the first of repeated fields, as the view takes
        url = webhooks.public_url(self.settings, Request(environ, populate_request=False))
        if not webhooks.signed(self.validator, url, form, signature):
            return None
        form = webhooks.storable(form)
        if not all(form.get(name) for name in webhooks.INBOUND_REQUIRED):
            return None
        return form


def init_app(app: Flask, settings: Settings) -> None:
    """Put the fast path in front of Flask (and inside any proxy fix, which wraps it)."""
    app.wsgi_app = InboundFastPath(app, settings)  # type: ignore[method-assign]
