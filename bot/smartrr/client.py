"""The Smartrr Vendor API client: a method per call the bot makes, and each app's connection."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote

import requests
from flask import Flask, current_app

from bot.config import Settings
from bot.ops.metrics import observe_smartrr
from bot.smartrr.errors import SmartrrDataError, SmartrrNotFound, SmartrrRejected
from bot.smartrr.parsing import (
    cancellation_reason,
    int_or_none,
    iso_moment,
    mapping,
    parse_purchase_state,
    readable,
    unwrap_list,
    unwrap_one,
    webhook,
)
from bot.smartrr.records import CancellationReason, PurchaseState, Webhook
from bot.smartrr.sandbox import SandboxServer, embedded
from bot.smartrr.transport import Transport
from bot.storage.db import Database
from bot.storage.models import SubscriptionStatus

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 250
ACTIONS_PATH = "/vendor/customer/{customer}/purchase-state/{state}/{action}"
#: An id no customer or subscription has, for the write-access check.
NO_ID = "00000000-0000-0000-0000-000000000000"


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
        self._transport = Transport(
            base_url,
            token,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_attempts=max_attempts,
            backoff=backoff,
            max_backoff=max_backoff,
            sleep=sleep,
        )
        self.base_url = self._transport.base_url
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
        self._transport.on_response(callback)

    def close(self) -> None:
        """Release the pooled connections."""
        self._transport.close()

    def iter_purchase_states(
        self,
        statuses: Iterable[str] = (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED),
        page_size: int = 250,
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
        body = self._transport.request("GET", f"/vendor/purchase-state/{_segment(bare_id)}")
        return parse_purchase_state(unwrap_one(body))

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
        body = self._transport.request("GET", "/vendor/cancellation-reasons")
        return readable(body, cancellation_reason, "the cancellation reasons")

    def webhooks(self) -> list[Webhook]:
        """The webhooks registered for this shop."""
        body = self._transport.request("GET", "/vendor/webhook")
        return readable(body, webhook, "the webhook list")

    def create_webhook(self, event_type: str, url: str) -> Webhook:
        """Register ``url`` for ``event_type`` (a WebhookEventType name)."""
        body = self._transport.request(
            "POST", "/vendor/webhook", json={"eventType": event_type, "url": url}, repeatable=False
        )
        hook = webhook(body)
        if hook is None:
            raise SmartrrDataError("Smartrr answered the new webhook with something unreadable.")
        return hook

    def upcoming_order_sms(self) -> bool | None:
        """Whether Smartrr sends its own upcoming-order text (None: Smartrr does not say)."""
        body = self._transport.request("GET", "/vendor/phone")
        value = mapping(body).get("sendUpcomingOrderSms")
        return value if isinstance(value, bool) else None

    def check_connection(self) -> None:
        """Make one harmless call; raise the typed error if the URL or token is wrong."""
        self._transport.request(
            "GET", "/vendor/purchase-state", params={"pageNumber": 0, "pageSize": 1}
        )

    def check_write_access(self) -> None:
        """Raise SmartrrAuthError unless the token may change subscriptions.

        A skip of a subscription that cannot exist (all-zero ids) changes nothing:
        Smartrr answers 404 (or refuses the body) when the token may write, 401/403
        when it lacks the write scope.
        """
        path = ACTIONS_PATH.format(customer=NO_ID, state=NO_ID, action="skip")
        try:
            self._transport.request("PUT", path, json={}, repeatable=False)
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
            body = self._transport.request("GET", path, params=params)
            items = unwrap_list(body)
            fresh = 0
            for state in _parse_items(items, fallback_customer_id=customer_id):
                if state.id not in seen:
                    seen.add(state.id)
                    fresh += 1
                    yield state
            paging = mapping(body)
            total_pages = int_or_none(paging.get("totalPages"))
            # A server may cap the page size below what we asked for; judge by what it used.
            served_size = int_or_none(paging.get("pageSize")) or size
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
        body = self._transport.request("PUT", path, json=payload, repeatable=False)
        if body is None:
            # No answer body: re-read rather than guess the new billing date.
            for state in self.customer_purchase_states(customer_id):
                if state.id == purchase_state_id:
                    return state
            raise SmartrrDataError(f"Smartrr did not return subscription {purchase_state_id}.")
        # pause, activate and cancel wrap the state: {"newCustomerPurchaseState": {...}}.
        wrapped = mapping(body).get("newCustomerPurchaseState")
        raw = wrapped if isinstance(wrapped, dict) else unwrap_one(body)
        return parse_purchase_state(raw, fallback_customer_id=customer_id)


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


def _segment(value: str) -> str:
    return quote(str(value), safe="")


def _parse_items(
    items: list[Any], fallback_customer_id: str | None = None
) -> Iterator[PurchaseState]:
    """Each readable purchase state of ``items``; a warning names each one skipped."""
    for item in items:
        try:
            yield parse_purchase_state(item, fallback_customer_id)
        except SmartrrDataError as exc:
            item_id = item.get("id") if isinstance(item, dict) else None
            log.warning("Skipping unreadable Smartrr purchase state %r: %s", item_id, exc)
