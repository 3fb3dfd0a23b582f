"""SMS transports: Twilio through its own SDK, or an outbox that only records."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import requests
from flask import Flask, current_app
from sqlalchemy import select
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from bot.config import Settings
from bot.rules.phones import mask
from bot.storage.db import Database, get_db
from bot.storage.models import OutboxMessage

log = logging.getLogger(__name__)

HTTP_TIMEOUT_SECONDS = 10
#: Twilio error codes that mean the recipient has opted out of this sender.
OPTED_OUT_CODES = frozenset({"21610"})


@dataclass(frozen=True)
class SendResult:
    sid: str
    status: str


class SmsError(Exception):
    """A send that did not go through; ``retryable`` says whether to try again."""

    def __init__(self, message: str, *, retryable: bool, code: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code


class Transport(Protocol):
    name: str

    def send(self, to: str, body: str, *, status_callback: str | None = None) -> SendResult:
        """Hand one text to the provider."""
        ...

    def find_sent(self, to: str, body: str, since: datetime) -> str | None:
        """The SID of a text with this body sent to ``to`` since ``since``, if any."""
        ...


class TwilioTransport:
    """Sends through the real Twilio REST API (or a server that speaks it)."""

    name = "twilio"

    def __init__(self, settings: Settings) -> None:
        if not (settings.twilio_from_number or settings.twilio_messaging_service_sid):
            raise ValueError("set TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
        # A bounded timeout keeps a send well inside the dispatcher's lease.
        http = TwilioHttpClient(timeout=HTTP_TIMEOUT_SECONDS)
        self.client = Client(
            settings.twilio_account_sid, settings.twilio_auth_token, http_client=http
        )
        if settings.twilio_api_url:
            self.client.api.base_url = settings.twilio_api_url.rstrip("/")
        self.from_number = settings.twilio_from_number
        self.messaging_service_sid = settings.twilio_messaging_service_sid

    def send(self, to: str, body: str, *, status_callback: str | None = None) -> SendResult:
        """Create a Message resource; map Twilio's errors to `SmsError`."""
        sender = (
            {"messaging_service_sid": self.messaging_service_sid}
            if self.messaging_service_sid
            else {"from_": self.from_number}
        )
        callback = {"status_callback": status_callback} if status_callback else {}
        try:
            message = self.client.messages.create(to=to, body=body, **sender, **callback)
        except TwilioRestException as exc:
            raise _sms_error(exc) from exc
        except (TwilioException, requests.RequestException) as exc:
            raise SmsError(f"Twilio unreachable: {exc}", retryable=True) from exc
        return SendResult(sid=str(message.sid), status=str(message.status or "queued"))

    def find_sent(self, to: str, body: str, since: datetime) -> str | None:
        """Look the text up in Twilio's message log (used after an interrupted send)."""
        try:
            for message in self.client.messages.list(to=to, date_sent_after=since, limit=100):
                if message.body == body:
                    return str(message.sid)
        except TwilioRestException as exc:
            raise _sms_error(exc) from exc
        except (TwilioException, requests.RequestException) as exc:
            raise SmsError(f"Twilio unreachable: {exc}", retryable=True) from exc
        return None


def _sms_error(exc: TwilioRestException) -> SmsError:
    retryable = exc.status == 429 or exc.status >= 500
    code = str(exc.code) if exc.code is not None else None
    return SmsError(f"Twilio {exc.status}: {exc.msg}", retryable=retryable, code=code)


class OutboxTransport:
    """Records texts in the database instead of sending them (no credentials set)."""

    name = "outbox"

    def __init__(self, database: Database) -> None:
        self.database = database

    def send(self, to: str, body: str, *, status_callback: str | None = None) -> SendResult:
        """Store the text in its own committed transaction and log it."""
        sid = "OB" + uuid.uuid4().hex
        with self.database.begin() as session:
            session.add(OutboxMessage(sid=sid, to_number=to, body=body))
        log.info("outbox: to %s: %s", mask(to), body)
        return SendResult(sid=sid, status="sent")

    def find_sent(self, to: str, body: str, since: datetime) -> str | None:
        """The outbox is exact: look for the row it wrote."""
        with self.database.begin() as session:
            sid = session.scalar(
                select(OutboxMessage.sid).where(
                    OutboxMessage.to_number == to,
                    OutboxMessage.body == body,
                    OutboxMessage.created_at >= since,
                )
            )
        return sid


def init_app(app: Flask, settings: Settings) -> Transport:
    """Pick the transport from the settings: Twilio when credentials are set."""
    transport: Transport = (
        TwilioTransport(settings) if settings.twilio_configured else OutboxTransport(get_db(app))
    )
    app.extensions["sms"] = transport
    return transport


def get_transport(app: Flask | None = None) -> Transport:
    """The app's SMS transport."""
    target = app if app is not None else current_app
    transport: Transport = target.extensions["sms"]
    return transport
