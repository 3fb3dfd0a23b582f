"""A local server that answers like Twilio's Messages API, for tests and benchmarks.

It speaks the real REST shapes (Basic auth, form-encoded create, JSON list
pages with Twilio's meta keys, Twilio-style error bodies), so our code talks
to it through the real twilio SDK with only the base URL changed.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from flask import Flask, Response, jsonify, request
from twilio.request_validator import RequestValidator
from werkzeug.serving import WSGIRequestHandler, make_server

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "test-auth-token"
FROM_NUMBER = "+15005550006"


@dataclass
class Failure:
    status: int
    code: int
    remaining: int


@dataclass
class TwilioState:
    messages: list[dict[str, Any]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    opted_out: set[str] = field(default_factory=set)
    #: The account's own numbers (IncomingPhoneNumbers).
    numbers: list[str] = field(default_factory=lambda: [FROM_NUMBER])
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies_to(self, number: str) -> list[str]:
        """Bodies of every accepted message to ``number``, oldest first."""
        with self.lock:
            return [m["body"] for m in self.messages if m["to"] == number]

    def counts(self) -> Counter[str]:
        """How many messages each number received."""
        with self.lock:
            return Counter(m["to"] for m in self.messages)


def _error(status: int, code: int, message: str) -> Response:
    response = jsonify(
        code=code,
        message=message,
        more_info=f"https://www.twilio.com/docs/errors/{code}",
        status=status,
    )
    response.status_code = status
    return response


def _page(key: str, items: list[dict[str, Any]]) -> Response:
    """One page of a Twilio list resource: the items under ``key`` and Twilio's meta keys."""
    size = int(request.args.get("PageSize", 50))
    return jsonify(
        {
            key: items[:size],
            "page": 0,
            "page_size": size,
            "start": 0,
            "end": min(size, len(items)) - 1,
            "first_page_uri": request.full_path,
            "next_page_uri": None,
            "previous_page_uri": None,
            "uri": request.full_path,
        }
    )


def create_twilio_app(state: TwilioState) -> Flask:
    """The Messages API subset the bot uses."""
    app = Flask("twilio_fake")
    base = "/2010-04-01/Accounts/<account_sid>/Messages.json"

    @app.before_request
    def authenticate() -> Response | None:
        auth = request.authorization
        if auth is None or auth.username != ACCOUNT_SID or auth.password != AUTH_TOKEN:
            return _error(401, 20003, "Authenticate")
        return None

    @app.post(base)
    def create(account_sid: str) -> Response:
        form = request.form
        with state.lock:
            for failure in state.failures:
                if failure.remaining > 0:
                    failure.remaining -= 1
                    return _error(failure.status, failure.code, "injected failure")
            to, body = form.get("To", ""), form.get("Body", "")
            if not to:
                return _error(400, 21604, "A 'To' phone number is required.")
            if not body:
                return _error(400, 21602, "Message body is required.")
            if not (form.get("From") or form.get("MessagingServiceSid")):
                return _error(400, 21603, "A 'From' phone number is required.")
            if to in state.opted_out:
                return _error(400, 21610, "Attempt to send to unsubscribed recipient")
            now = datetime.now(UTC)
            message = {
                "sid": "SM" + uuid.uuid4().hex,
                "account_sid": account_sid,
                "to": to,
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "body": body,
                "status": "queued",
                "direction": "outbound-api",
                "num_segments": "1",
                "date_created": format_datetime(now, usegmt=True),
                "date_sent": format_datetime(now, usegmt=True),
                "date_updated": format_datetime(now, usegmt=True),
                "status_callback": form.get("StatusCallback"),
                "error_code": None,
                "error_message": None,
                "price": None,
                "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/x.json",
                "_sent": now,
            }
            state.messages.append(message)
        response = jsonify({k: v for k, v in message.items() if not k.startswith("_")})
        response.status_code = 201
        return response

    @app.get(base)
    def listing(account_sid: str) -> Response:
        to = request.args.get("To")
        after = request.args.get("DateSent>")
        since = datetime.fromisoformat(after.replace("Z", "+00:00")) if after else None
        with state.lock:
            found = [
                {k: v for k, v in m.items() if not k.startswith("_")}
                for m in reversed(state.messages)
                if (to is None or m["to"] == to) and (since is None or m["_sent"] >= since)
            ]
        return _page("messages", found)

    @app.get("/2010-04-01/Accounts/<account_sid>.json")
    def account(account_sid: str) -> Response:
        # What the console's "test connection" button fetches.
        if account_sid != ACCOUNT_SID:
            return _error(404, 20404, "The requested resource was not found")
        return jsonify(
            sid=account_sid,
            friendly_name="Test account",
            status="active",
            type="Full",
            uri=f"/2010-04-01/Accounts/{account_sid}.json",
        )

    @app.get("/2010-04-01/Accounts/<account_sid>/IncomingPhoneNumbers.json")
    def incoming_numbers(account_sid: str) -> Response:
        # What the console's setup checklist asks to verify the sender.
        wanted = request.args.get("PhoneNumber")
        owned = [
            {
                "sid": "PN" + "0" * 32,
                "account_sid": account_sid,
                "phone_number": number,
                "friendly_name": number,
                "capabilities": {"sms": True, "mms": False, "voice": True},
            }
            for number in state.numbers
            if wanted is None or number == wanted
        ]
        return _page("incoming_phone_numbers", owned)

    return app


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class TwilioFake:
    """Runs the fake on a free loopback port in a daemon thread."""

    def __init__(self) -> None:
        self.state = TwilioState()
        self._server = make_server(
            "127.0.0.1", 0, create_twilio_app(self.state), threaded=True, request_handler=_Quiet
        )
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        # A short poll lets stop() return at once instead of after half a second.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    def start(self) -> TwilioFake:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, count: int, status: int = 500, code: int = 20500) -> None:
        """Answer the next ``count`` creates with an error."""
        with self.state.lock:
            self.state.failures.append(Failure(status, code, count))

    @property
    def messages(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return list(self.state.messages)


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """The X-Twilio-Signature Twilio would send for a POST of ``params`` to ``url``."""
    return str(RequestValidator(token).compute_signature(url, params))
