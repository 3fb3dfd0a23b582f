"""Client for the Smartrr Vendor API: typed purchase states, typed errors, polite retries."""

from __future__ import annotations

import email.utils
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import requests
from flask import Flask, current_app
from urllib3.exceptions import NewConnectionError

from bot.config import Settings
from bot.ops.metrics import count_bad_request, observe_smartrr
from bot.rules.phones import state_code
from bot.smartrr.sandbox import SandboxServer, embedded
from bot.storage.db import Database

log = logging.getLogger(__name__)
T = TypeVar("T")

TOKEN_HEADER = "x-smartrr-access-token"
USER_AGENT = "smartrr-sms-bot/0.1"
MAX_PAGE_SIZE = 250
ACTIONS_PATH = "/vendor/customer/{customer}/purchase-state/{state}/{action}"
#: An id no customer or subscription has, for the write-access check.
NO_ID = "00000000-0000-0000-0000-000000000000"

_RETRYABLE_STATUSES = frozenset({408, 429})
#: Smartrr's word that the change cannot be made to this subscription now; any other
#: 4xx to a request we built means we built it wrong.
_REFUSALS = frozenset({409, 422})
_TRANSIENT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
#: How addresses spell the US; a province elsewhere (Western Australia: "WA") is no state.
_US_NAMES = frozenset({"US", "USA", "UNITED STATES", "UNITED STATES OF AMERICA"})
_RRULE_UNITS = {"DAILY": "day", "WEEKLY": "week", "MONTHLY": "month", "YEARLY": "year"}


@dataclass(frozen=True)
class Customer:
    id: str
    shopify_id: str | None
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    time_zone: str | None
    #: US state (postal code) of the customer's address, for the stricter state windows.
    state: str | None = None


#: Shopify's name for the only variant of a product that has none.
DEFAULT_VARIANT = "Default Title"


@dataclass(frozen=True)
class LineItem:
    product_title: str
    variant_title: str | None
    quantity: int
    id: str | None = None
    is_add_on: bool = False

    @property
    def full_name(self) -> str:
        """The product's name with the variant's, where the variant's adds something."""
        variant = self.variant_title
        if not variant or variant == DEFAULT_VARIANT or variant == self.product_title:
            return self.product_title
        return f"{self.product_title} ({variant})"


@dataclass(frozen=True)
class PurchaseState:
    id: str
    status: str
    next_billing_at: datetime | None
    customer: Customer
    shopify_id: str | None
    line_items: tuple[LineItem, ...]
    interval_unit: str | None
    interval_count: int | None

    @property
    def products(self) -> str:
        """Human summary of the line items, e.g. "Coffee Beans x2, Mug".

        Products go by their own names; a variant's name is added only to tell two
        items of one product apart ("Coffee (Decaf), Coffee (Dark Roast)").
        """
        if not self.line_items:
            return "your subscription"
        titles = [item.product_title for item in self.line_items]
        names = [
            item.full_name if titles.count(item.product_title) > 1 else item.product_title
            for item in self.line_items
        ]
        return ", ".join(
            name if item.quantity == 1 else f"{name} x{item.quantity}"
            for name, item in zip(names, self.line_items, strict=True)
        )


@dataclass(frozen=True)
class CancellationReason:
    """One of the merchant's cancellation reasons in Smartrr."""

    id: str
    text: str
    archived: bool = False


@dataclass(frozen=True)
class Webhook:
    """A webhook registered with Smartrr."""

    id: str
    event_type: str
    url: str


class SmartrrError(Exception):
    """Base error; its message is safe to show a merchant."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SmartrrAuthError(SmartrrError):
    """Smartrr refused the access token (401/403)."""


class SmartrrNotFound(SmartrrError):
    """Smartrr has no such subscription or customer (404)."""


class SmartrrRejected(SmartrrError):
    """Smartrr refused the request for good (a 4xx other than 401/403/404/408/429)."""

    status: int

    def __init__(self, message: str, status: int, detail: str) -> None:
        super().__init__(message, status)
        self.detail = detail


class SmartrrBadRequest(SmartrrRejected):
    """Smartrr refused a request we built (a 4xx other than 401/403/404/409/422): our bug.

    ``sent`` is the body we sent, for the log; the subscriber is never told their order
    "can no longer be changed" for it.
    """

    def __init__(self, message: str, status: int, detail: str, sent: str) -> None:
        super().__init__(message, status, detail)
        self.sent = sent


class SmartrrUnavailable(SmartrrError):
    """Smartrr could not be reached or stayed overloaded through every retry."""


class SmartrrDataError(SmartrrError):
    """Smartrr answered 2xx with something we cannot read."""


class _TokenSession(requests.Session):
    """A session that, like requests does for Authorization, drops the token on cross-host
    redirects so it never reaches another server."""

    def rebuild_auth(
        self, prepared_request: requests.PreparedRequest, response: requests.Response
    ) -> None:
        super().rebuild_auth(prepared_request, response)  # type: ignore[no-untyped-call]
        old_host = urlsplit(response.request.url or "").hostname
        if urlsplit(prepared_request.url or "").hostname != old_host:
            prepared_request.headers.pop(TOKEN_HEADER, None)


class SmartrrClient:
    """One merchant's connection to the Smartrr Vendor API."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        connect_timeout: float = 3.05,
        read_timeout: float = 15.0,
        max_attempts: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        observe: Callable[[str, int, float], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = (connect_timeout, read_timeout)
        self._max_attempts = max(1, max_attempts)
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._sleep = sleep
        self._session = _TokenSession()
        self._session.headers.update(
            {TOKEN_HEADER: token, "Accept": "application/json", "User-Agent": USER_AGENT}
        )
        if observe is not None:
            # Every answer, retries included: (method, status, seconds).
            self.on_response(
                lambda response: observe(
                    response.request.method or "",
                    response.status_code,
                    response.elapsed.total_seconds(),
                )
            )

    def __enter__(self) -> SmartrrClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def on_response(self, callback: Callable[[requests.Response], None]) -> None:
        """Call ``callback`` with every answer Smartrr gives, retries included."""
        self._session.hooks["response"].append(lambda response, **_: callback(response))

    def close(self) -> None:
        """Release the pooled connections."""
        self._session.close()

    def iter_purchase_states(
        self, statuses: Iterable[str] = ("ACTIVE", "PAUSED"), page_size: int = 250
    ) -> Iterator[PurchaseState]:
        """Yield each purchase state with one of `statuses` (any status if empty), page by page."""
        wanted = [status.upper() for status in statuses]
        size = min(max(1, page_size), MAX_PAGE_SIZE)
        seen: set[str] = set()
        passes: list[str | None] = list(wanted) or [None]
        for status in passes:
            query = {"filterEquals[purchaseStateStatus]": status} if status else {}
            for state in self._iter_pages("/vendor/purchase-state", query, size, seen):
                # A server that ignores the filter must not leak other statuses to the caller.
                if not wanted or state.status in wanted:
                    yield state

    def get_purchase_state(self, shopify_subscription_id: str) -> PurchaseState:
        """Read one subscription by its Shopify subscription contract id."""
        # Callers may hold the Admin API gid; the path wants the bare number.
        bare_id = shopify_subscription_id.rsplit("/", 1)[-1]
        body = self._request("GET", f"/vendor/purchase-state/{_segment(bare_id)}")
        return _parse_purchase_state(_unwrap_one(body))

    def customer_purchase_states(self, customer_id: str) -> list[PurchaseState]:
        """List one customer's subscriptions, skipping any item we cannot read."""
        path = f"/vendor/customer/{_segment(customer_id)}/purchase-state/"
        return list(self._iter_pages(path, {}, MAX_PAGE_SIZE, set(), customer_id))

    def skip(self, customer_id: str, purchase_state_id: str, order_at: datetime) -> PurchaseState:
        """Skip the order billed at ``order_at`` (never a later one)."""
        return self._act(customer_id, purchase_state_id, "skip", {"date": iso_moment(order_at)})

    def unskip(self, customer_id: str, purchase_state_id: str, order_at: datetime) -> PurchaseState:
        """Restore the skipped order that was billed at ``order_at``."""
        body = {"date": iso_moment(order_at)}
        return self._act(customer_id, purchase_state_id, "unskip", body)

    def set_next_billing_date(
        self, customer_id: str, purchase_state_id: str, when: datetime
    ) -> PurchaseState:
        """Move the next charge to the moment ``when``."""
        body = {"date": iso_moment(when)}
        return self._act(customer_id, purchase_state_id, "next-billing-date", body)

    def pause(self, customer_id: str, purchase_state_id: str, until: datetime) -> PurchaseState:
        """Pause until ``until``, when Smartrr resumes the subscription by itself."""
        body = {"unpauseDate": iso_moment(until)}
        return self._act(customer_id, purchase_state_id, "pause", body)

    def activate(
        self, customer_id: str, purchase_state_id: str, next_billing_at: datetime
    ) -> PurchaseState:
        """Resume a paused subscription, its next order billed at ``next_billing_at``."""
        body = {"nextBillingDate": iso_moment(next_billing_at)}
        return self._act(customer_id, purchase_state_id, "activate", body)

    def cancel(self, customer_id: str, purchase_state_id: str, reason_id: str) -> PurchaseState:
        """Cancel the subscription, for the merchant's cancellation reason ``reason_id``."""
        return self._act(customer_id, purchase_state_id, "cancel", {"reasonId": reason_id})

    def cancellation_reasons(self) -> list[CancellationReason]:
        """The merchant's cancellation reasons, as Smartrr lists them."""
        body = self._request("GET", "/vendor/cancellation-reasons")
        return _readable(body, _cancellation_reason, "the cancellation reasons")

    def webhooks(self) -> list[Webhook]:
        """The webhooks registered for this shop."""
        body = self._request("GET", "/vendor/webhook")
        return _readable(body, _webhook, "the webhook list")

    def create_webhook(self, event_type: str, url: str) -> Webhook:
        """Register ``url`` for ``event_type`` (a WebhookEventType name)."""
        body = self._request(
            "POST", "/vendor/webhook", json={"eventType": event_type, "url": url}, repeatable=False
        )
        hook = _webhook(body)
        if hook is None:
            raise SmartrrDataError("Smartrr answered the new webhook with something unreadable.")
        return hook

    def upcoming_order_sms(self) -> bool | None:
        """Whether Smartrr sends its own upcoming-order text (None: Smartrr does not say)."""
        body = self._request("GET", "/vendor/phone")
        value = _mapping(body).get("sendUpcomingOrderSms")
        return value if isinstance(value, bool) else None

    def check_connection(self) -> None:
        """Make one harmless call; raise the typed error if the URL or token is wrong."""
        self._request("GET", "/vendor/purchase-state", params={"pageNumber": 0, "pageSize": 1})

    def check_write_access(self) -> None:
        """Raise SmartrrAuthError unless the token may change subscriptions.

        A skip of a subscription that cannot exist (all-zero ids) changes nothing:
        Smartrr answers 404 (or refuses the body) when the token may write, 401/403
        when it lacks the write scope.
        """
        path = ACTIONS_PATH.format(customer=NO_ID, state=NO_ID, action="skip")
        try:
            self._request("PUT", path, json={}, repeatable=False)
        except (SmartrrNotFound, SmartrrRejected):
            return

    def _iter_pages(
        self,
        path: str,
        query: Mapping[str, str],
        size: int,
        seen: set[str],
        customer_id: str | None = None,
    ) -> Iterator[PurchaseState]:
        """Each purchase state of a paginated list, page by page, each once."""
        page = 0
        while True:
            params: dict[str, str | int] = {"pageNumber": page, "pageSize": size, **query}
            body = self._request("GET", path, params=params)
            items = _unwrap_list(body)
            fresh = 0
            for state in _parse_items(items, fallback_customer_id=customer_id):
                if state.id not in seen:
                    seen.add(state.id)
                    fresh += 1
                    yield state
            paging = _mapping(body)
            total_pages = _int_or_none(paging.get("totalPages"))
            # A server may cap the page size below what we asked for; judge by what it used.
            served_size = _int_or_none(paging.get("pageSize")) or size
            # fresh == 0 guards against a server that ignores pageNumber and repeats itself.
            if len(items) < served_size or fresh == 0:
                return
            if total_pages is not None and page + 1 >= total_pages:
                return
            page += 1

    def _act(
        self, customer_id: str, purchase_state_id: str, action: str, payload: dict[str, str]
    ) -> PurchaseState:
        path = ACTIONS_PATH.format(
            customer=_segment(customer_id), state=_segment(purchase_state_id), action=action
        )
        body = self._request("PUT", path, json=payload, repeatable=False)
        if body is None:
            # No answer body: re-read rather than guess the new billing date.
            for state in self.customer_purchase_states(customer_id):
                if state.id == purchase_state_id:
                    return state
            raise SmartrrDataError(f"Smartrr did not return subscription {purchase_state_id}.")
        # pause, activate and cancel wrap the state: {"newCustomerPurchaseState": {...}}.
        wrapped = _mapping(body).get("newCustomerPurchaseState")
        raw = wrapped if isinstance(wrapped, dict) else _unwrap_one(body)
        return _parse_purchase_state(raw, fallback_customer_id=customer_id)

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Mapping[str, str] | None = None,
        repeatable: bool = True,
    ) -> Any:
        """Send one call with retries; return the decoded JSON body, or None when it is empty.

        A call that is not ``repeatable`` (an action: SKIP twice skips two
        orders) is retried only when Smartrr surely did not act on it: a
        refused connection or a 429. After a timeout or a 5xx it may have
        acted, so SmartrrUnavailable goes up at once and the caller re-reads
        the subscription before trying again.
        """
        what = f"{method} {path}"
        for attempt in range(self._max_attempts):
            last = attempt + 1 == self._max_attempts
            try:
                response = self._session.request(
                    method, self.base_url + path, params=params, json=json, timeout=self._timeout
                )
            except _TRANSIENT_ERRORS as exc:
                reason = "timed out" if isinstance(exc, requests.Timeout) else "is unreachable"
                if not repeatable and not _never_sent(exc):
                    raise SmartrrUnavailable(
                        f"Smartrr {reason} ({what}); it may have acted, so not repeated."
                    ) from None
                if last:
                    raise SmartrrUnavailable(
                        f"Smartrr {reason} ({what}) after {self._max_attempts} attempts."
                    ) from None
                self._sleep(self._backoff_delay(attempt))
                continue
            except requests.RequestException as exc:
                message = self._scrub(f"Could not call Smartrr ({what}): {type(exc).__name__}.")
                raise SmartrrError(message) from None
            with response:
                status = response.status_code
                if status in _RETRYABLE_STATUSES or status >= 500:
                    wait = _retry_after(response.headers.get("Retry-After"))
                    unsure = not repeatable and status != 429
                    if last or unsure or (wait is not None and wait > self._max_backoff):
                        raise SmartrrUnavailable(
                            f"Smartrr is unavailable ({what} answered {status}) "
                            f"after {attempt + 1} attempts.",
                            status,
                        )
                    self._sleep(wait if wait is not None else self._backoff_delay(attempt))
                    continue
                if status >= 300:
                    raise self._final_error(what, response)
                return self._decode(what, response)
        raise AssertionError("unreachable: the last attempt always returns or raises")

    def _backoff_delay(self, attempt: int) -> float:
        # Full jitter spreads retries from many workers instead of stampeding together.
        return random.uniform(0, min(self._max_backoff, self._backoff * 2**attempt))

    def _final_error(self, what: str, response: requests.Response) -> SmartrrError:
        status = response.status_code
        detail = self._scrub(_error_detail(response))
        if status in (401, 403):
            return SmartrrAuthError(
                f"Smartrr refused the API token ({status}). Create a token with Read & Write "
                "access to Subscriptions, Customers and Webhooks.",
                status,
            )
        if status == 404:
            return SmartrrNotFound(f"Smartrr found nothing at {what} (404).", status)
        suffix = f": {detail}" if detail else "."
        message = f"Smartrr rejected {what} ({status}){suffix}"
        if status in _REFUSALS:
            return SmartrrRejected(message, status, detail)
        sent = response.request.body or b""
        count_bad_request(what)
        return SmartrrBadRequest(
            message,
            status,
            detail,
            self._scrub(sent.decode(errors="replace") if isinstance(sent, bytes) else sent),
        )

    def _decode(self, what: str, response: requests.Response) -> Any:
        if not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError:
            raise SmartrrDataError(
                f"Smartrr answered {what} with something other than JSON."
            ) from None

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text


class SmartrrConnection:
    """How an app reaches Smartrr: the real API when a token is set, else the built-in sandbox.

    The client (and the sandbox, which binds a port and starts a thread) is only made on first
    use, so building an app stays free of side effects.
    """

    def __init__(self, settings: Settings, database: Database) -> None:
        self._settings = settings
        self._database = database
        self._lock = threading.Lock()
        self._client: SmartrrClient | None = None
        self.sandbox: SandboxServer | None = None

    def client(self) -> SmartrrClient:
        """The shared client, made on first call."""
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def close(self) -> None:
        """Close the client and stop the sandbox if one was started."""
        with self._lock:
            if self._client is not None:
                self._client.close()
            if self.sandbox is not None:
                self.sandbox.stop()
            self._client, self.sandbox = None, None

    def _connect(self) -> SmartrrClient:
        settings = self._settings
        if settings.smartrr_api_token:
            url, token = settings.smartrr_api_url, settings.smartrr_api_token
        else:
            # Its data lives in our database: every process shares one sandbox.
            self.sandbox = embedded(self._database).start()
            log.info(
                "No SMARTRR_API_TOKEN: using the built-in Smartrr sandbox at %s", self.sandbox.url
            )
            url, token = self.sandbox.url, self.sandbox.token or ""
        return SmartrrClient(
            url,
            token,
            read_timeout=settings.smartrr_timeout_seconds,
            backoff=settings.smartrr_backoff_seconds,
            observe=observe_smartrr,
        )


def init_app(app: Flask, settings: Settings, database: Database) -> SmartrrConnection:
    """Register the app's Smartrr connection in ``app.extensions["smartrr"]``."""
    connection = SmartrrConnection(settings, database)
    app.extensions["smartrr"] = connection
    return connection


def get_client(app: Flask | None = None) -> SmartrrClient:
    """The Smartrr client of ``app`` (or of the current app)."""
    target = app if app is not None else current_app
    connection: SmartrrConnection = target.extensions["smartrr"]
    return connection.client()


def _never_sent(exc: Exception) -> bool:
    """True when the request surely never reached Smartrr (no connection was made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def _segment(value: str) -> str:
    return quote(str(value), safe="")


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _error_detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200]
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            if isinstance(body.get(key), str):
                return str(body[key])[:200]
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            first = errors[0]
            if isinstance(first, dict) and isinstance(first.get("message"), str):
                return str(first["message"])[:200]
            return str(first)[:200]
    return ""


def _unwrap_one(body: Any) -> Any:
    if isinstance(body, dict) and "id" not in body and isinstance(body.get("data"), dict):
        return body["data"]
    return body


def _unwrap_list(body: Any) -> list[Any]:
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        return list(body["data"])
    raise SmartrrDataError("Smartrr answered a list call without a list of subscriptions.")


def _parse_items(
    items: list[Any], fallback_customer_id: str | None = None
) -> Iterator[PurchaseState]:
    for item in items:
        try:
            yield _parse_purchase_state(item, fallback_customer_id)
        except SmartrrDataError as exc:
            item_id = item.get("id") if isinstance(item, dict) else None
            log.warning("Skipping unreadable Smartrr purchase state %r: %s", item_id, exc)


def _parse_purchase_state(raw: Any, fallback_customer_id: str | None = None) -> PurchaseState:
    if not isinstance(raw, dict):
        raise SmartrrDataError("Smartrr sent a subscription that is not an object.")
    state_id = _required_id(raw, "id", "subscription")
    status = _text(raw.get("purchaseStateStatus"))
    if status is None:
        raise SmartrrDataError(f"Smartrr subscription {state_id} has no purchaseStateStatus.")
    unit, count = _schedule(raw)
    return PurchaseState(
        id=state_id,
        status=status.upper(),
        next_billing_at=_moment(raw.get("nextBillingDate"), state_id),
        customer=_customer(raw, state_id, fallback_customer_id),
        shopify_id=_text(raw.get("shopifyId")),
        line_items=tuple(_line_items(raw.get("stLineItems"))),
        interval_unit=unit,
        interval_count=count,
    )


def _customer(raw: dict[str, Any], state_id: str, fallback_id: str | None) -> Customer:
    cust = raw.get("custRel")
    if not isinstance(cust, dict):
        if fallback_id is None:
            raise SmartrrDataError(f"Smartrr subscription {state_id} has no custRel.")
        cust = {"id": fallback_id}
    if cust.get("id") in (None, "") and fallback_id is not None:
        cust = {**cust, "id": fallback_id}
    addresses = [
        address
        for address in (
            cust.get("shippingAddress"),
            raw.get("shippingAddress"),
            cust.get("defaultAddress"),
            cust.get("address"),
        )
        if isinstance(address, dict)
    ]
    return Customer(
        id=_required_id(cust, "id", f"subscription {state_id} customer"),
        shopify_id=_text(cust.get("shopifyId")),
        email=_text(cust.get("email")),
        # A customer with no phone of their own may still have one Smartrr inferred.
        phone=_first_text(
            (cust, "phone"),
            (cust, "inferredPhone"),
            *((address, "phone") for address in addresses),
        ),
        first_name=_text(cust.get("firstName")),
        last_name=_text(cust.get("lastName")),
        time_zone=_time_zone([cust, *addresses]),
        state=_us_state(addresses),
    )


def _us_state(addresses: list[dict[str, Any]]) -> str | None:
    """The state of the first US address that names one ("FL", "Florida")."""
    for address in addresses:
        country = _first_text((address, "countryCode"), (address, "country"))
        if country is not None and country.upper() not in _US_NAMES:
            continue
        state = state_code(_first_text((address, "provinceCode"), (address, "province")))
        if state is not None:
            return state
    return None


def _time_zone(sources: list[Any]) -> str | None:
    keys = ("timezone", "timeZone", "ianaTimezone")
    name = _first_text(*((source, key) for source in sources for key in keys))
    if name is None:
        return None
    try:
        ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return None
    return name


def _line_items(raw: Any) -> Iterator[LineItem]:
    """Line items as the document names them: the variant at ``vnt``, its product at
    ``vnt.purchasable`` where the answer carries it."""
    if not isinstance(raw, list):
        return
    for entry in raw:
        if not isinstance(entry, dict):
            continue
        variant = _mapping(entry.get("vnt"))
        product = _mapping(variant.get("purchasable"))
        variant_name = _text(variant.get("purchasableVariantName"))
        title = _text(product.get("purchasableName")) or variant_name
        if title is None:
            continue
        quantity = _int_or_none(entry.get("quantity"))
        yield LineItem(
            product_title=title,
            variant_title=variant_name if variant_name != title else None,
            quantity=quantity if quantity is not None and quantity > 0 else 1,
            id=_text(entry.get("id")),
            is_add_on=entry.get("isAddOn") is True,
        )


def _schedule(raw: dict[str, Any]) -> tuple[str | None, int | None]:
    """The cadence from the schedule's RRULE ("FREQ=WEEKLY;INTERVAL=2" → week, 2)."""
    rule = _text(_mapping(raw.get("schedule")).get("deliveryRRuleString"))
    if rule is None:
        return None, None
    parts = dict(
        part.split("=", 1) for part in rule.upper().removeprefix("RRULE:").split(";") if "=" in part
    )
    unit = _RRULE_UNITS.get(parts.get("FREQ", ""))
    if unit is None:
        return None, None
    count = _int_or_none(parts.get("INTERVAL", "1"))
    return unit, count if count is not None and count > 0 else 1


def _readable(body: Any, read: Callable[[Any], T | None], what: str) -> list[T]:
    """The items of a list answer that ``read`` makes sense of; the rest are left out."""
    if not isinstance(body, list):
        raise SmartrrDataError(f"Smartrr answered {what} without a list.")
    return [item for raw in body if (item := read(raw)) is not None]


def _cancellation_reason(raw: Any) -> CancellationReason | None:
    if not isinstance(raw, dict) or _text(raw.get("id")) is None:
        return None
    text = raw.get("text")
    # The document types the text as an object of translations; take English or the first.
    if isinstance(text, dict):
        text = text.get("en") or next((v for v in text.values() if isinstance(v, str)), None)
    label = _text(text) or _text(raw.get("reasonType")) or str(raw["id"])
    return CancellationReason(id=str(raw["id"]), text=label, archived=raw.get("isArchived") is True)


def _webhook(raw: Any) -> Webhook | None:
    hook = _mapping(raw)
    id_, event_type, url = (_text(hook.get(key)) for key in ("id", "eventType", "url"))
    if id_ is None or event_type is None or url is None:
        return None
    return Webhook(id=id_, event_type=event_type, url=url)


def iso_moment(moment: datetime) -> str:
    """A moment as the document's ISODateString: ``YYYY-MM-DDTHH:mm:ss.sssZ`` in UTC."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to Smartrr")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _moment(value: Any, state_id: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SmartrrDataError(f"Smartrr subscription {state_id} has an unreadable date {value!r}.")
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise SmartrrDataError(
            f"Smartrr subscription {state_id} has an unreadable date {value!r}."
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _required_id(raw: dict[str, Any], key: str, what: str) -> str:
    value = _text(raw.get(key))
    if value is None:
        raise SmartrrDataError(f"Smartrr sent a {what} without {key!r}.")
    return value


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text or None


def _first_text(*candidates: tuple[Any, str]) -> str | None:
    """The first non-empty text among (object, key) pairs, in order of preference."""
    for source, key in candidates:
        text = _text(source.get(key)) if isinstance(source, dict) else None
        if text is not None:
            return text
    return None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None
