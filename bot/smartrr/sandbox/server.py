"""The sandbox's HTTP face: the Vendor API paths Smartrr's OpenAPI document names.

Every request is checked against the document (`bot.smartrr.contract`) before a view sees it, and
one the document refuses is answered 400, as the real API does; views then only apply
what the document cannot say (a date in the past, a state that cannot pause).
"""

from __future__ import annotations

import hmac
import math
import threading
import time
from functools import partial
from types import TracebackType
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from bot.smartrr.contract import ContractViolation, validate_flask_request
from bot.smartrr.sandbox.actions import ACTIONS, WRAPPED, ActionRefused
from bot.smartrr.sandbox.fixtures import demo_seed
from bot.smartrr.sandbox.store import SandboxStore, utcnow

TOKEN_HEADER = "x-smartrr-access-token"
MAX_PAGE_SIZE = 250
DEFAULT_PAGE_SIZE = 50
JSON = dict[str, Any]
STATE_PATH = "/vendor/customer/<customerRelationshipId>/purchase-state/<customerPurchaseStateId>"


def create_sandbox_app(store: SandboxStore, token: str | None = None) -> Flask:
    """A WSGI app serving the documented Vendor API paths from `store`."""
    app = Flask(__name__)

    @app.before_request
    def gate() -> Response | None:
        failure = store.record(request.method, request.path)
        if store.delay:
            time.sleep(store.delay)
        if failure is not None:
            status, retry_after = failure
            response = _error(status, "Injected sandbox failure.")
            if retry_after is not None:
                response.headers["Retry-After"] = retry_after
            return response
        sent = request.headers.get(TOKEN_HEADER, "").encode()
        if token is not None and not hmac.compare_digest(sent, token.encode()):
            return _error(401, f"Missing or invalid {TOKEN_HEADER}.")
        if request.url_rule is not None:  # else Flask answers 404 or 405 itself
            try:
                validate_flask_request(request)
            except ContractViolation as exc:
                return _error(exc.status, str(exc))
        return None

    @app.teardown_request
    def answered(_exc: BaseException | None) -> None:
        store.answered()

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return _error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(ActionRefused)
    def refused(exc: ActionRefused) -> Response:
        return _error(exc.status, exc.message)

    @app.get("/vendor/purchase-state")
    def list_purchase_states() -> Response:
        number, size = _paging()
        status = request.args.get("filterEquals[purchaseStateStatus]")
        items, total = store.page(status.upper() if status else None, number, size)
        return _page(items, total, number, size)

    @app.get("/vendor/purchase-state/<shopifySubscriptionId>")
    def get_purchase_state(shopifySubscriptionId: str) -> Response:
        state = store.by_shopify_id(shopifySubscriptionId)
        if state is None:
            raise ActionRefused(404, f"No purchase state with Shopify id {shopifySubscriptionId}.")
        return jsonify(state)

    # Express, which serves the real API, matches a route with or without its final slash.
    @app.get("/vendor/customer/<customerRelationshipId>/purchase-state/", strict_slashes=False)
    def customer_purchase_states(customerRelationshipId: str) -> Response:
        number, size = _paging()
        states = store.for_customer(customerRelationshipId)
        return _page(states[number * size : (number + 1) * size], len(states), number, size)

    def act(action: str, customerRelationshipId: str, customerPurchaseStateId: str) -> Response:
        body = request.get_json(silent=True) or {}
        state = store.act(customerRelationshipId, customerPurchaseStateId, action, body)
        return jsonify(newCustomerPurchaseState=state) if action in WRAPPED else jsonify(state)

    for action in ACTIONS:
        app.add_url_rule(f"{STATE_PATH}/{action}", action, partial(act, action), methods=["PUT"])

    @app.get("/vendor/cancellation-reasons")
    def cancellation_reasons() -> Response:
        return jsonify(store.cancellation_reasons())

    @app.get("/vendor/webhook")
    def webhooks() -> Response:
        return jsonify(store.webhooks())

    @app.post("/vendor/webhook")
    def add_webhook() -> Response:
        body = request.get_json()
        return jsonify(store.add_webhook(body["eventType"], body["url"]))

    @app.delete("/vendor/webhook/<webhookId>")
    def delete_webhook(webhookId: str) -> Response:
        if not store.delete_webhook(webhookId):
            raise ActionRefused(404, f"No webhook {webhookId}.")
        return Response(status=200)

    @app.get("/vendor/phone")
    def phone() -> Response:
        return jsonify(store.phone())

    @app.post("/vendor/phone")
    def set_phone() -> Response:
        return jsonify(store.set_phone(request.get_json()))

    return app


class _QuietHandler(WSGIRequestHandler):
    """Keeps the demo's console free of one access-log line per request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class SandboxServer:
    """The sandbox app served from a daemon thread on a free local port."""

    def __init__(
        self,
        store: SandboxStore | None = None,
        token: str | None = "sandbox-token",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.store = store if store is not None else SandboxStore(demo_seed(utcnow()))
        self.token = token
        self._host = host
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL of the running server, e.g. "http://127.0.0.1:50123"."""
        if self._server is None:
            raise RuntimeError("The sandbox server is not running.")
        return f"http://{self._host}:{self._server.server_port}"

    def start(self) -> SandboxServer:
        """Start serving in the background; returns self."""
        app = create_sandbox_app(self.store, self.token)
        self._server = make_server(
            self._host, self._port, app, threaded=True, request_handler=_QuietHandler
        )
        # A short poll interval keeps stop() quick; idle polling costs next to nothing.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="smartrr-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _paging() -> tuple[int, int]:
    """``pageNumber`` (from 0) and ``pageSize`` (at most 250): strings, in the document."""
    number = _int_arg("pageNumber", 0)
    size = min(_int_arg("pageSize", DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE)
    if size < 1:
        raise ActionRefused(400, "pageSize must be at least 1.")
    return number, size


def _page(items: list[JSON], total: int, number: int, size: int) -> Response:
    return jsonify(
        data=items,
        pageNumber=number,
        pageSize=size,
        totalCount=total,
        totalPages=math.ceil(total / size),
    )


def _error(status: int, message: str) -> Response:
    """An answer in the document's ``ErrorResponse`` shape."""
    response = jsonify(status=status, message=message)
    response.status_code = status
    return response


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise ActionRefused(400, f"{name} must be a non-negative integer.")
    return int(raw)
