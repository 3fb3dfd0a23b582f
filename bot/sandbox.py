"""A Smartrr-like Vendor API server kept in memory, for the embedded demo and for tests."""

from __future__ import annotations

import copy
import hmac
import math
import threading
import time
import uuid
from calendar import monthrange
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

JSON = dict[str, Any]

TOKEN_HEADER = "x-smartrr-access-token"
MAX_PAGE_SIZE = 250
DEFAULT_PAGE_SIZE = 50
ACTIONS = ("skip", "unskip", "next-billing-date", "pause", "activate", "cancel")

_NAMESPACE = uuid.UUID("5d3c1f4e-8a51-4c7e-9a43-2b8f0e6d7c11")
_PRICES = {
    "House Blend Coffee": 1899,
    "Earl Grey Tea": 1450,
    "Protein Bars": 2999,
    "Vitamin Pack": 3499,
}


def utcnow() -> datetime:
    """The current moment, aware UTC."""
    return datetime.now(UTC)


class ActionRefused(Exception):
    """A request the sandbox answers with an error status and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SandboxStore:
    """Thread-safe in-memory purchase states, plus knobs to make the server misbehave."""

    def __init__(
        self, states: Iterable[JSON] = (), *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, JSON] = {}
        # Ids per listed status (None: all), kept until the next change: paging through
        # 100,000 states then costs a slice per page, not a scan of them all.
        self._listings: dict[str | None, list[str]] = {}
        # Billing moments that skips replaced, newest last, so unskip can restore them.
        self._skipped: dict[str, list[str]] = {}
        self._failures: list[tuple[int, str | None]] = []
        self.calls: list[tuple[str, str]] = []
        #: Requests being answered now, and the most there ever were at once.
        self.in_flight = self.most_in_flight = 0
        self.delay = 0.0
        self.clock = clock
        self.add(*states)

    def add(self, *states: JSON) -> None:
        """Store (or replace) purchase states, keyed by their id."""
        with self._lock:
            for state in states:
                self._states[state["id"]] = copy.deepcopy(state)
            self._listings.clear()

    def states(self) -> list[JSON]:
        """Copies of all purchase states, in insertion order."""
        with self._lock:
            return copy.deepcopy(list(self._states.values()))

    def purchase_state(self, state_id: str) -> JSON:
        """A copy of one purchase state; KeyError if unknown."""
        with self._lock:
            return copy.deepcopy(self._states[state_id])

    def fail_next(self, n: int, status: int = 500, retry_after: str | None = None) -> None:
        """Make the next `n` requests answer `status` (with Retry-After if given)."""
        with self._lock:
            self._failures.extend([(status, retry_after)] * n)

    def heal(self) -> None:
        """End every injected failure and delay: Smartrr is back."""
        with self._lock:
            self._failures.clear()
        self.delay = 0.0

    def record(self, method: str, path: str) -> tuple[int, str | None] | None:
        """Log a request; return the injected failure it must answer with, if any."""
        with self._lock:
            self.calls.append((method, path))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            return self._failures.pop(0) if self._failures else None

    def answered(self) -> None:
        """A request that `record` logged has been answered."""
        with self._lock:
            self.in_flight -= 1

    def page(self, status: str | None, number: int, size: int) -> tuple[list[JSON], int]:
        """One page of purchase states (optionally of one status) and the matching total."""
        with self._lock:
            listing = self._listings.get(status)
            if listing is None:
                listing = self._listings[status] = [
                    key
                    for key, state in self._states.items()
                    if status is None or state["purchaseStateStatus"] == status
                ]
            chosen = listing[number * size : (number + 1) * size]
            return copy.deepcopy([self._states[key] for key in chosen]), len(listing)

    def by_shopify_id(self, shopify_id: str) -> JSON | None:
        """The purchase state with this Shopify subscription id, if any."""
        with self._lock:
            for state in self._states.values():
                if state.get("shopifyId") == shopify_id:
                    return copy.deepcopy(state)
            return None

    def for_customer(self, customer_id: str) -> list[JSON]:
        """A customer's purchase states."""
        with self._lock:
            return copy.deepcopy(
                [s for s in self._states.values() if s["custRel"]["id"] == customer_id]
            )

    def act(self, customer_id: str, state_id: str, action: str, body: Any) -> JSON:
        """Apply an action like Smartrr would and return the updated purchase state."""
        with self._lock:
            state = self._states.get(state_id)
            if state is None or state["custRel"]["id"] != customer_id or action not in ACTIONS:
                raise ActionRefused(
                    404, f"No purchase state {state_id} for customer {customer_id}."
                )
            now = self.clock()
            handlers: dict[str, Callable[[JSON, Any, datetime], None]] = {
                "skip": self._skip,
                "unskip": self._unskip,
                "next-billing-date": self._next_billing_date,
                "pause": self._pause,
                "activate": self._activate,
                "cancel": self._cancel,
            }
            handlers[action](state, body, now)
            state["updatedDate"] = _iso(now)
            self._listings.clear()
            return copy.deepcopy(state)

    def _skip(self, state: JSON, body: Any, now: datetime) -> None:
        current = _billing(state)
        if state["purchaseStateStatus"] != "ACTIVE" or current is None:
            raise ActionRefused(422, "Only an active subscription with an upcoming order can skip.")
        self._skipped.setdefault(state["id"], []).append(state["nextBillingDate"])
        state["nextBillingDate"] = _iso(_after_interval(current, state))

    def _unskip(self, state: JSON, body: Any, now: datetime) -> None:
        skipped = self._skipped.get(state["id"])
        if state["purchaseStateStatus"] != "ACTIVE" or not skipped:
            raise ActionRefused(422, "There is no skipped order to restore.")
        state["nextBillingDate"] = skipped.pop()

    def _next_billing_date(self, state: JSON, body: Any, now: datetime) -> None:
        when = _body_date(body, "nextBillingDate", required=True)
        if state["purchaseStateStatus"] == "CANCELLED":
            raise ActionRefused(422, "A cancelled subscription has no next billing date.")
        if when is None or when < now.date():
            raise ActionRefused(422, "The next billing date cannot be in the past.")
        current = _billing(state)
        time_of_day = current.timetz() if current else datetime.min.time().replace(tzinfo=UTC)
        state["nextBillingDate"] = _iso(datetime.combine(when, time_of_day))
        self._skipped.pop(state["id"], None)

    def _pause(self, state: JSON, body: Any, now: datetime) -> None:
        unpause = _body_date(body, "unpauseDate", required=False)
        if state["purchaseStateStatus"] == "CANCELLED":
            raise ActionRefused(422, "A cancelled subscription cannot be paused.")
        if unpause is not None and unpause <= now.date():
            raise ActionRefused(422, "The unpause date must be in the future.")
        state["purchaseStateStatus"] = "PAUSED"
        state["unpauseDate"] = unpause.isoformat() if unpause else None

    def _activate(self, state: JSON, body: Any, now: datetime) -> None:
        if state["purchaseStateStatus"] != "PAUSED":
            raise ActionRefused(422, "Only a paused subscription can be activated.")
        state["purchaseStateStatus"] = "ACTIVE"
        state["unpauseDate"] = None
        current = _billing(state) or now
        if current < now:
            restart = datetime.combine(now.date(), current.timetz())
            state["nextBillingDate"] = _iso(_after_interval(restart, state))

    def _cancel(self, state: JSON, body: Any, now: datetime) -> None:
        state["purchaseStateStatus"] = "CANCELLED"
        state["unpauseDate"] = None
        self._skipped.pop(state["id"], None)


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
        number = _int_arg("pageNumber", 0)
        size = min(_int_arg("pageSize", DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE)
        if size < 1:
            raise ActionRefused(400, "pageSize must be at least 1.")
        status = request.args.get("filterEquals[purchaseStateStatus]")
        items, total = store.page(status.upper() if status else None, number, size)
        return jsonify(
            data=items,
            pageNumber=number,
            pageSize=size,
            totalCount=total,
            totalPages=math.ceil(total / size),
        )

    @app.get("/vendor/purchase-state/<shopify_id>")
    def get_purchase_state(shopify_id: str) -> Response:
        state = store.by_shopify_id(shopify_id)
        if state is None:
            raise ActionRefused(404, f"No purchase state with Shopify id {shopify_id}.")
        return jsonify(state)

    @app.get("/vendor/customer/<customer_id>/purchase-state/", strict_slashes=False)
    def customer_purchase_states(customer_id: str) -> Response:
        return jsonify(data=store.for_customer(customer_id))

    @app.put("/vendor/customer/<customer_id>/purchase-state/<state_id>/<action>")
    def act(customer_id: str, state_id: str, action: str) -> Response:
        body = request.get_json(force=True, silent=True) if request.get_data() else {}
        return jsonify(store.act(customer_id, state_id, action, body))

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


def make_customer(
    key: str,
    *,
    first_name: str | None = None,
    last_name: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    address: JSON | None = None,
) -> JSON:
    """A custRel object with ids derived from `key`."""
    customer: JSON = {
        "id": _uuid("customer", key),
        "shopifyId": _shopify_id("customer", key),
        "email": email,
        "phone": phone,
        "firstName": first_name,
        "lastName": last_name,
    }
    if address is not None:
        customer["shippingAddress"] = address
    return customer


def make_purchase_state(
    key: str,
    next_billing_at: datetime | None,
    *,
    customer: JSON | None = None,
    status: str = "ACTIVE",
    items: Sequence[tuple[str, str | None, int]] = (("House Blend Coffee", "12 oz bag", 1),),
    unit: str = "month",
    frequency: int = 1,
    unpause_date: date | None = None,
) -> JSON:
    """A purchase state shaped like Smartrr's, with ids derived from `key`."""
    return {
        "id": _uuid("purchase-state", key),
        "shopifyId": _shopify_id("contract", key),
        "purchaseStateStatus": status,
        "nextBillingDate": _iso(next_billing_at) if next_billing_at else None,
        "custRel": copy.deepcopy(customer) if customer is not None else make_customer(key),
        "stLineItems": [
            {
                "id": _uuid("line-item", f"{key}/{index}"),
                "productName": product,
                "variantName": variant,
                "quantity": quantity,
                "price": _PRICES.get(product, 1500),
            }
            for index, (product, variant, quantity) in enumerate(items)
        ],
        "schedule": {"unit": unit, "frequency": frequency},
        "unpauseDate": unpause_date.isoformat() if unpause_date else None,
        "currency": "USD",
    }


def demo_seed(now: datetime) -> list[JSON]:
    """Demo subscribers across US time zones, billing 2 to 10 days after `now`."""
    people = {
        key: make_customer(
            key,
            first_name=first,
            last_name=last,
            phone=phone,
            email=f"{first}.{last}@example.com".lower(),
            address={"city": city, "province": province, "zip": zip_code, "country": "US"},
        )
        for key, first, last, phone, city, province, zip_code in (
            ("maya", "Maya", "Chen", "+16465823017", "New York", "NY", "10003"),
            ("marcus", "Marcus", "Johnson", "+13125794420", "Chicago", "IL", "60614"),
            ("sofia", "Sofia", "Ramirez", "+13034512298", "Denver", "CO", "80205"),
            ("dana", "Dana", "Whitfield", "+16024817765", "Phoenix", "AZ", "85004"),
            ("kenji", "Kenji", "Watanabe", "+13105247391", "Los Angeles", "CA", "90025"),
            ("ana", "Ana", "Lopez", "+13056218854", "Miami", "FL", "33130"),
        )
    }

    def billing(days: int) -> datetime:
        day = now.astimezone(UTC).date() + timedelta(days=days)
        return datetime(day.year, day.month, day.day, 14, tzinfo=UTC)

    coffee = ("House Blend Coffee", "12 oz bag, whole bean", 2)
    tea = ("Earl Grey Tea", "Loose leaf, 100 g", 1)
    bars = ("Protein Bars", "Peanut butter, box of 12", 1)
    vitamins = ("Vitamin Pack", "30-day supply", 1)
    return [
        make_purchase_state(
            "maya-coffee",
            billing(2),
            customer=people["maya"],
            items=[coffee],
            unit="week",
            frequency=2,
        ),
        make_purchase_state("maya-tea", billing(5), customer=people["maya"], items=[tea]),
        make_purchase_state("marcus-bars", billing(3), customer=people["marcus"], items=[bars]),
        make_purchase_state(
            "sofia-vitamins", billing(4), customer=people["sofia"], items=[vitamins]
        ),
        make_purchase_state(
            "dana-coffee",
            billing(6),
            customer=people["dana"],
            items=[coffee],
            unit="week",
            frequency=4,
            status="PAUSED",
            unpause_date=now.date() + timedelta(days=30),
        ),
        make_purchase_state(
            "kenji-fuel", billing(8), customer=people["kenji"], items=[bars, vitamins]
        ),
        make_purchase_state(
            "ana-tea", billing(10), customer=people["ana"], items=[tea], frequency=2
        ),
    ]


def _error(status: int, message: str) -> Response:
    response = jsonify(statusCode=status, message=message)
    response.status_code = status
    return response


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise ActionRefused(400, f"{name} must be a non-negative integer.")
    return int(raw)


def _body_date(body: Any, key: str, *, required: bool) -> date | None:
    if not isinstance(body, dict):
        raise ActionRefused(400, "The request body must be a JSON object.")
    raw = body.get(key)
    if raw is None and not required:
        return None
    if not isinstance(raw, str):
        raise ActionRefused(400, f"{key} must be a date (YYYY-MM-DD).")
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        raise ActionRefused(400, f"{key} must be a date (YYYY-MM-DD).") from None


def _billing(state: JSON) -> datetime | None:
    raw = state.get("nextBillingDate")
    return datetime.fromisoformat(raw) if raw else None


def _after_interval(moment: datetime, state: JSON) -> datetime:
    schedule = state.get("schedule") or {}
    unit = schedule.get("unit", "month")
    count = int(schedule.get("frequency", 1))
    if unit == "day":
        return moment + timedelta(days=count)
    if unit == "week":
        return moment + timedelta(weeks=count)
    months = count * 12 if unit == "year" else count
    years, month_index = divmod(moment.month - 1 + months, 12)
    year, month = moment.year + years, month_index + 1
    return moment.replace(year=year, month=month, day=min(moment.day, monthrange(year, month)[1]))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _uuid(kind: str, key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{kind}/{key}"))


def _shopify_id(kind: str, key: str) -> str:
    # Shopify ids are large integers; derive a stable one from the key.
    return str(10**12 + uuid.uuid5(_NAMESPACE, f"shopify-{kind}/{key}").int % 10**12)
