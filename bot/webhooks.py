"""Webhooks from Twilio and Smartrr: authenticate, validate, store, answer.

Nothing here waits on Smartrr or Twilio: the worker applies what is stored.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any, NoReturn

from flask import Blueprint, Flask, Response, abort, current_app, jsonify, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from werkzeug.wrappers import Request

from bot.config import Settings
from bot.outbound.receipts import record_status
from bot.rules.phones import mask
from bot.smartrr.events import describe
from bot.smartrr.webhooks import PATH as SMARTRR_WEBHOOK_PATH
from bot.smartrr.webhooks import SECRET_PARAMETER
from bot.storage.db import get_db, insert_new
from bot.storage.models import InboundMessage, SmartrrEvent
from bot.storage.wakeups import announce

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__)

URLENCODED = "application/x-www-form-urlencoded"
FORM_TYPES = (URLENCODED, "multipart/form-data")
#: Twilio SIDs are 34 characters; the column holds 64.
MAX_SID = 64
SMARTRR_SECRET_HEADER = "X-Smartrr-Webhook-Secret"
#: The answer to every inbound text: nothing (replies go out through the API).
EMPTY_TWIML = str(MessagingResponse())
#: Fields an inbound text must have to be stored.
INBOUND_REQUIRED = ("MessageSid", "From")


def init_app(app: Flask) -> None:
    """Register the webhooks."""
    app.register_blueprint(bp)


def public_url(settings: Settings, reached: Request) -> str:
    """The URL Twilio signed: PUBLIC_BASE_URL plus path and query when set (TLS proxies)."""
    if not settings.public_base_url:
        return reached.url
    query = reached.query_string.decode("latin-1")
    return settings.public_base_url.rstrip("/") + reached.path + (f"?{query}" if query else "")


def _require_twilio_signature() -> dict[str, str]:
    """Abort 403 unless X-Twilio-Signature matches; return the form fields."""
    settings: Settings = current_app.extensions["settings"]
    if not settings.twilio_auth_token:
        abort(403, "TWILIO_AUTH_TOKEN is not configured: webhooks cannot be verified")
    signature = request.headers.get("X-Twilio-Signature", "")
    form = request.form.to_dict() if request.mimetype in FORM_TYPES else {}
    validator = RequestValidator(settings.twilio_auth_token)
    # `validate` also tries the URL with and without its port: Twilio is inconsistent there.
    if not signature or not validator.validate(public_url(settings, request), form, signature):
        abort(403, "invalid X-Twilio-Signature")
    if request.mimetype not in FORM_TYPES:
        abort(400, "expected a form-encoded body")
    return storable(form)


def storable(form: dict[str, str]) -> dict[str, str]:
    """The signed form fields, fit to store (no NUL in keys or values)."""
    return {_no_nul(key): _no_nul(value) for key, value in form.items()}


def _required(form: dict[str, str], *names: str) -> None:
    missing = [name for name in names if not form.get(name)]
    if missing:
        abort(400, f"missing field(s): {', '.join(missing)}")


@bp.post("/sms/inbound")
def inbound() -> Response:
    """Store an inbound text keyed by MessageSid, once, wake the inbox, answer empty TwiML."""
    form = _require_twilio_signature()
    _required(form, *INBOUND_REQUIRED)
    sid = form["MessageSid"]
    message = {
        "message_sid": sid[:64],
        "from_number": form["From"][:32],
        "to_number": form.get("To", "")[:32],
        "body": form.get("Body", "")[:2000],
        "params": _params(form),
    }
    if stored(InboundMessage, message, key="message_sid", job="inbox"):
        log.info("inbound %s from %s stored", sid, mask(form["From"]))
    else:
        log.info("inbound %s from %s already stored", sid, mask(form["From"]))
    return Response(EMPTY_TWIML, status=200, mimetype="text/xml")


def stored(
    model: type[InboundMessage | SmartrrEvent], row: dict[str, Any], *, key: str, job: str
) -> bool:
    """Insert ``row`` unless its ``key`` is taken (a repeated delivery), and wake the worker
    ``job`` that handles it, in this process and (on PostgreSQL) every other; True when it
    went in."""
    with get_db().begin() as session:
        if insert_new(session, model, [row], key=key) != 1:
            return False
        announce(session, job)
    wake = current_app.extensions.get("wake")
    if wake is not None:  # a worker in this process: the embedded default
        wake(job)
    return True


def _params(form: dict[str, str]) -> dict[str, Any]:
    # Keep what the conversation may need (OptOutType, media count); bodies
    # are bounded by MAX_CONTENT_LENGTH already.
    return {key: value[:500] for key, value in form.items() if key != "Body"}


@bp.post("/sms/status")
def status() -> Response:
    """Record a delivery receipt; repeats and out-of-order receipts are harmless."""
    form = _require_twilio_signature()
    _required(form, "MessageSid", "MessageStatus")
    if len(form["MessageSid"]) > MAX_SID:
        abort(400, "MessageSid is too long")
    with get_db().begin() as session:
        record_status(
            session,
            provider_sid=form["MessageSid"],
            message_id=request.args.get("m", type=int),
            status=form["MessageStatus"].lower(),
            error_code=form.get("ErrorCode") or None,
        )
    return Response("", status=204)


@bp.post(SMARTRR_WEBHOOK_PATH)
def smartrr_webhook() -> tuple[Response, int]:
    """Store a Smartrr event once (by its id, else a hash of its body) and answer at once."""
    _require_smartrr_secret()
    payload = _json_object()
    info = describe(payload, dict(request.headers))
    event = {
        "event_key": info.key,
        "topic": info.topic,
        "payload": payload,
        "purchase_state_id": info.purchase_state_id,
        "customer_id": info.customer_id,
    }
    if not stored(SmartrrEvent, event, key="event_key", job="events"):
        log.info("Smartrr event %s already stored", info.key)
        return jsonify(status="duplicate"), 200
    log.info("Smartrr event %s (%s) stored", info.key, info.topic or "no topic")
    return jsonify(status="stored"), 200


def _require_smartrr_secret() -> None:
    """Abort 403 unless the request carries SMARTRR_WEBHOOK_SECRET (header or ?token=)."""
    settings: Settings = current_app.extensions["settings"]
    secret = settings.smartrr_webhook_secret
    if not secret:
        abort(403, "SMARTRR_WEBHOOK_SECRET is not configured: Smartrr webhooks are refused")
    scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
    offered = [
        request.headers.get(SMARTRR_SECRET_HEADER, ""),
        bearer.strip() if scheme.lower() == "bearer" else "",
        request.args.get(SECRET_PARAMETER, ""),
    ]
    expected = secret.encode()
    # Every candidate is compared, in constant time, so timing says nothing.
    matches = [hmac.compare_digest(value.encode(), expected) for value in offered]
    if not any(matches):
        abort(403, "missing or wrong Smartrr webhook secret")


def _json_object() -> dict[str, Any]:
    """The body as a JSON object, or abort 400 (413 comes from MAX_CONTENT_LENGTH)."""
    body = request.get_data(cache=False)
    try:
        payload = json.loads(body, parse_constant=_no_constant)
        if b"\\u0000" in body:
            payload = _json_no_nul(payload)
    except (ValueError, RecursionError):
        abort(400, "expected a JSON object")
    if not isinstance(payload, dict):
        abort(400, "expected a JSON object")
    return payload


def _no_nul(text: str) -> str:
    # PostgreSQL text cannot hold NUL: it becomes U+FFFD, as any undecodable character does.
    return text.replace("\x00", "\ufffd")


def _json_no_nul(value: Any) -> Any:
    """``value`` with every NUL in its strings (keys too) made U+FFFD."""
    if isinstance(value, str):
        return _no_nul(value)
    if isinstance(value, dict):
        return {_no_nul(key): _json_no_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_no_nul(item) for item in value]
    return value


def _no_constant(name: str) -> NoReturn:
    # NaN and Infinity are not JSON, and PostgreSQL refuses to store them.
    raise ValueError(f"{name} is not allowed")
