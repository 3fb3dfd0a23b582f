from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask, Response, jsonify, request
from flask_migrate import upgrade
from sqlalchemy import func, select
from werkzeug.serving import make_server

from bot import create_app
from bot.config import Settings, from_environ
from bot.smartrr.client import SmartrrClient, get_client, init_app
from bot.smartrr.errors import (
    SmartrrAuthError,
    SmartrrBadRequest,
    SmartrrDataError,
    SmartrrError,
    SmartrrNotFound,
    SmartrrRejected,
    SmartrrUnavailable,
)
from bot.smartrr.parsing import iso_moment
from bot.smartrr.records import Customer, LineItem, PurchaseState
from bot.smartrr.sandbox import SandboxServer, SandboxStore, make_customer, make_purchase_state
from bot.storage.db import Database, get_db
from bot.storage.models import OutboundMessage, Subscription
from bot.worker import Worker

TOKEN = "s3cret-merchant-token"
SOON = datetime.now(UTC).replace(microsecond=0) + timedelta(days=5)


class CannedServer:
    """A tiny Smartrr look-alike answering what a test scripts, to probe odd-but-legal shapes."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.answers: dict[tuple[str, str], list[tuple[int, Any, dict[str, str]]]] = {}
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        app = Flask(__name__)
        app.add_url_rule(
            "/<path:path>", view_func=self._answer, methods=["GET", "PUT", "POST", "DELETE"]
        )
        self._server = make_server(host, 0, app, threaded=True)
        self.url = f"http://{host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,))
        self._thread.start()

    def answer(
        self, method: str, path: str, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> None:
        """Queue an answer; the last one queued for a path repeats forever."""
        self.answers.setdefault((method, path), []).append((status, body, headers or {}))

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _answer(self, path: str) -> Response:
        self.requests.append(
            (request.method, request.path, dict(request.headers), request.get_json(silent=True))
        )
        queue = self.answers.get((request.method, request.path))
        if not queue:
            return Response("no canned answer", status=599)
        status, body, headers = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(body, bytes):
            response = Response(body, status=status)
        else:
            response = jsonify(body)
            response.status_code = status
        response.headers.update(headers)
        return response


@pytest.fixture
def store() -> SandboxStore:
    return SandboxStore()


@pytest.fixture
def server(store: SandboxStore) -> Iterator[SandboxServer]:
    with SandboxServer(store, token=TOKEN) as running:
        yield running


@pytest.fixture
def canned() -> Iterator[CannedServer]:
    running = CannedServer()
    yield running
    running.stop()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def connect(sleeps: list[float]) -> Iterator[Callable[..., SmartrrClient]]:
    clients: list[SmartrrClient] = []

    def make(url: str, token: str = TOKEN, **options: Any) -> SmartrrClient:
        client = SmartrrClient(url, token, sleep=sleeps.append, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(server: SandboxServer, connect: Callable[..., SmartrrClient]) -> SmartrrClient:
    return connect(server.url)


def seed(store: SandboxStore, count: int, status: str = "ACTIVE", prefix: str = "s") -> None:
    store.add(*(make_purchase_state(f"{prefix}{i}", SOON, status=status) for i in range(count)))


def raw_state(**overrides: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "id": "ps-1",
        "purchaseStateStatus": "ACTIVE",
        "nextBillingDate": "2025-06-01T14:00:00.000Z",
        "custRel": {"id": "cust-1"},
    }
    state.update(overrides)
    return state


def test_iter_reads_every_page_once(store: SandboxStore, client: SmartrrClient) -> None:
    seed(store, 600)

    ids = [state.id for state in client.iter_purchase_states(("ACTIVE",), page_size=250)]

    assert sorted(ids) == sorted(state["id"] for state in store.states())
    assert len(set(ids)) == 600
    assert store.calls == [("GET", "/vendor/purchase-state")] * 3


def test_iter_stops_at_total_pages_without_asking_for_an_empty_page(
    store: SandboxStore, client: SmartrrClient
) -> None:
    seed(store, 500)

    assert len(list(client.iter_purchase_states(("ACTIVE",), page_size=250))) == 500
    assert len(store.calls) == 2


def test_iter_filters_on_status_one_pass_each(store: SandboxStore, client: SmartrrClient) -> None:
    seed(store, 3, "ACTIVE", "a")
    seed(store, 2, "PAUSED", "p")
    seed(store, 2, "CANCELLED", "c")

    statuses = sorted(state.status for state in client.iter_purchase_states())

    assert statuses == ["ACTIVE"] * 3 + ["PAUSED"] * 2
    assert len(store.calls) == 2


def test_iter_drops_statuses_a_server_failed_to_filter(
    canned: CannedServer, connect: Callable[..., SmartrrClient]
) -> None:
    cancelled = raw_state(id="ps-2", purchaseStateStatus="CANCELLED")
    canned.answer("GET", "/vendor/purchase-state", 200, [raw_state(), cancelled])

    states = list(connect(canned.url).iter_purchase_states(("ACTIVE",), page_size=250))

    assert [state.id for state in states] == ["ps-1"]


def test_iter_stops_when_a_server_ignores_paging(
    canned: CannedServer, connect: Callable[..., SmartrrClient]
) -> None:
    page = [raw_state(id="ps-1"), raw_state(id="ps-2")]
    canned.answer("GET", "/vendor/purchase-state", 200, page)

    states = list(connect(canned.url).iter_purchase_states(("ACTIVE",), page_size=2))

    assert [state.id for state in states] == ["ps-1", "ps-2"]
    assert len(canned.requests) == 2


def test_iter_follows_a_server_that_caps_the_page_size(
    canned: CannedServer, connect: Callable[..., SmartrrClient]
) -> None:
    path = "/vendor/purchase-state"
    canned.answer("GET", path, 200, {"data": [raw_state(id="a"), raw_state(id="b")], "pageSize": 2})
    canned.answer("GET", path, 200, {"data": [raw_state(id="c")], "pageSize": 2})

    states = list(connect(canned.url).iter_purchase_states(("ACTIVE",), page_size=250))

    assert [state.id for state in states] == ["a", "b", "c"]


def test_reads_one_subscription_and_a_customers_subscriptions(
    store: SandboxStore, client: SmartrrClient
) -> None:
    customer = make_customer("c1", first_name="Ada", phone="+13125794420")
    coffee = make_purchase_state("coffee", SOON, customer=customer)
    tea = make_purchase_state("tea", SOON, customer=customer, items=[("Earl Grey Tea", None, 3)])
    store.add(coffee, tea)

    one = client.get_purchase_state(coffee["shopifyId"])
    both = client.customer_purchase_states(customer["id"])

    assert (one.id, one.customer.first_name, one.customer.phone) == (
        coffee["id"],
        "Ada",
        "+13125794420",
    )
    assert one.next_billing_at == SOON
    assert (one.interval_unit, one.interval_count) == ("month", 1)
    assert sorted(state.products for state in both) == ["Earl Grey Tea x3", "House Blend Coffee"]


def test_get_accepts_a_shopify_gid(store: SandboxStore, client: SmartrrClient) -> None:
    state = make_purchase_state("gid", SOON)
    store.add(state)

    found = client.get_purchase_state(f"gid://shopify/SubscriptionContract/{state['shopifyId']}")

    assert found.id == state["id"]


def test_reads_odd_but_legal_shapes(
    canned: CannedServer, connect: Callable[..., SmartrrClient]
) -> None:
    canned.answer(
        "GET",
        "/vendor/customer/cust-1/purchase-state/",
        200,
        {
            "data": [
                raw_state(
                    id="date-only",
                    purchaseStateStatus="paused",
                    nextBillingDate="2025-06-01",
                    custRel={"id": 42, "phone": "", "inferredPhone": "+13125550100"},
                    stLineItems=[
                        {
                            "id": "li-1",
                            "quantity": 1,
                            "vnt": {
                                "purchasableVariantName": "Blue",
                                "purchasable": {"purchasableName": "Mug"},
                            },
                        },
                        {"quantity": "2", "vnt": {"purchasableVariantName": "Beans"}},
                        {"basePrice": "100"},
                    ],
                    schedule={"deliveryRRuleString": "FREQ=WEEKLY;INTERVAL=2"},
                    somethingNew=True,
                ),
                raw_state(
                    id="naive",
                    nextBillingDate="2025-06-01T09:00:00",
                    schedule={"deliveryRRuleString": "RRULE:FREQ=MONTHLY"},
                ),
                raw_state(id="offset", nextBillingDate="2025-06-01T09:00:00-05:00", stLineItems=[]),
                raw_state(id="null-date", nextBillingDate=None, schedule={"anchor": {}}),
            ],
            "totalCount": 4,
            "totalPages": 1,
            "pageSize": 250,
            "pageNumber": 0,
        },
    )

    states = {s.id: s for s in connect(canned.url).customer_purchase_states("cust-1")}

    odd = states["date-only"]
    assert odd.status == "PAUSED"
    assert odd.next_billing_at == datetime(2025, 6, 1, tzinfo=UTC)
    assert odd.customer == Customer("42", None, None, "+13125550100", None, None, None)
    assert odd.line_items == (
        LineItem("Mug", "Blue", 1, id="li-1"),
        LineItem("Beans", None, 2),
    )
    assert odd.products == "Mug, Beans x2"
    assert (odd.interval_unit, odd.interval_count) == ("week", 2)
    assert states["naive"].next_billing_at == datetime(2025, 6, 1, 9, tzinfo=UTC)
    assert (states["naive"].interval_unit, states["naive"].interval_count) == ("month", 1)
    assert states["offset"].next_billing_at == datetime(2025, 6, 1, 14, tzinfo=UTC)
    assert states["offset"].products == "your subscription"
    assert states["null-date"].next_billing_at is None
    assert states["null-date"].interval_unit is None


def test_list_skips_malformed_items_with_a_warning(
    canned: CannedServer, connect: Callable[..., SmartrrClient], caplog: pytest.LogCaptureFixture
) -> None:
    canned.answer(
        "GET",
        "/vendor/purchase-state",
        200,
        {
            "data": [
                raw_state(id="good"),
                raw_state(id="no-status", purchaseStateStatus=None),
                raw_state(id="no-customer", custRel={"email": "a@example.com"}),
                raw_state(id="bad-date", nextBillingDate="next tuesday"),
                {"purchaseStateStatus": "ACTIVE"},
                "junk",
            ],
            "totalPages": 1,
        },
    )

    with caplog.at_level(logging.WARNING, logger="bot.smartrr.client"):
        states = list(connect(canned.url).iter_purchase_states(("ACTIVE",)))

    assert [state.id for state in states] == ["good"]
    assert len(caplog.records) == 5
    assert "no-status" in caplog.text


@pytest.mark.parametrize(
    "body",
    [
        raw_state(purchaseStateStatus=None),
        raw_state(custRel=None),
        raw_state(id=None),
        ["not", "an", "object"],
        b"<html>maintenance</html>",
    ],
)
def test_single_answer_without_a_required_field_is_a_data_error(
    canned: CannedServer, connect: Callable[..., SmartrrClient], body: Any
) -> None:
    canned.answer("GET", "/vendor/purchase-state/123", 200, body)

    with pytest.raises(SmartrrDataError):
        connect(canned.url).get_purchase_state("123")


def test_action_answer_may_be_wrapped_and_lack_the_customer(
    canned: CannedServer, connect: Callable[..., SmartrrClient]
) -> None:
    path = "/vendor/customer/cust-9/purchase-state/ps-1/pause"
    answer = raw_state(purchaseStateStatus="PAUSED", nextBillingDate="2025-06-15T14:00:00Z")
    del answer["custRel"]
    canned.answer("PUT", path, 200, {"newCustomerPurchaseState": answer})

    state = connect(canned.url).pause("cust-9", "ps-1", datetime(2025, 7, 1, 14, tzinfo=UTC))

    assert state.customer.id == "cust-9"
    assert state.next_billing_at == datetime(2025, 6, 15, 14, tzinfo=UTC)


def test_action_with_an_empty_answer_rereads_the_subscription(
    canned: CannedServer, connect: Callable[..., SmartrrClient]
) -> None:
    canned.answer("PUT", "/vendor/customer/cust-1/purchase-state/ps-1/cancel", 204, b"")
    listing = {"data": [raw_state(purchaseStateStatus="CANCELLED")], "totalPages": 1}
    canned.answer("GET", "/vendor/customer/cust-1/purchase-state/", 200, listing)

    state = connect(canned.url).cancel("cust-1", "ps-1", "reason-1")

    assert state.status == "CANCELLED"


def test_sends_the_token_and_json_headers_with_a_trailing_slash_base_url(
    canned: CannedServer, connect: Callable[..., SmartrrClient]
) -> None:
    canned.answer("GET", "/vendor/purchase-state", 200, {"data": []})

    connect(canned.url + "/").check_connection()

    method, path, headers, _ = canned.requests[0]
    assert (method, path) == ("GET", "/vendor/purchase-state")
    assert headers["X-Smartrr-Access-Token"] == TOKEN
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"].startswith("smartrr-sms-bot")


def test_token_follows_same_host_redirects_but_not_others(
    canned: CannedServer, connect: Callable[..., SmartrrClient]
) -> None:
    other = CannedServer(host="localhost")
    try:
        elsewhere = f"{other.url}/vendor/purchase-state"
        other.answer("GET", "/vendor/purchase-state", 200, {"data": []})
        canned.answer("GET", "/v1/vendor/purchase-state", 200, {"data": []})
        canned.answer(
            "GET", "/vendor/purchase-state", 301, {}, {"Location": "/v1/vendor/purchase-state"}
        )
        connect(canned.url).check_connection()
        canned.answers[("GET", "/vendor/purchase-state")] = [(301, {}, {"Location": elsewhere})]
        connect(canned.url).check_connection()
    finally:
        other.stop()

    assert canned.requests[1][2]["X-Smartrr-Access-Token"] == TOKEN
    assert "X-Smartrr-Access-Token" not in other.requests[0][2]


def test_bad_token_is_an_auth_error_without_retry(
    server: SandboxServer,
    store: SandboxStore,
    connect: Callable[..., SmartrrClient],
    sleeps: list[float],
) -> None:
    with pytest.raises(SmartrrAuthError) as caught:
        connect(server.url, token="wrong-token").check_connection()

    assert len(store.calls) == 1
    assert sleeps == []
    assert caught.value.status == 401


def test_check_connection_passes_with_the_right_token(
    store: SandboxStore, client: SmartrrClient
) -> None:
    client.check_connection()

    assert store.calls == [("GET", "/vendor/purchase-state")]


def test_server_errors_are_retried_until_success(
    store: SandboxStore, client: SmartrrClient, sleeps: list[float]
) -> None:
    seed(store, 1)
    store.fail_next(2, status=500)

    states = list(client.iter_purchase_states(("ACTIVE",)))

    assert len(states) == 1
    assert len(store.calls) == 3
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.5
    assert 0 <= sleeps[1] <= 1.0


def test_retry_after_seconds_is_honoured(
    store: SandboxStore, client: SmartrrClient, sleeps: list[float]
) -> None:
    store.fail_next(1, status=429, retry_after="2")

    client.check_connection()

    assert sleeps[0] >= 2
    assert len(store.calls) == 2


def test_retry_after_http_date_is_honoured(
    store: SandboxStore, client: SmartrrClient, sleeps: list[float]
) -> None:
    later = datetime.now(UTC) + timedelta(seconds=20)
    store.fail_next(1, status=503, retry_after=format_datetime(later, usegmt=True))

    client.check_connection()

    assert 5 <= sleeps[0] <= 20


def test_retry_after_beyond_max_backoff_gives_up_at_once(
    store: SandboxStore, server: SandboxServer, connect: Callable[..., SmartrrClient]
) -> None:
    store.fail_next(1, status=429, retry_after="3600")

    with pytest.raises(SmartrrUnavailable):
        connect(server.url, max_backoff=30).check_connection()

    assert len(store.calls) == 1


def test_persistent_503_is_unavailable_after_max_attempts(
    store: SandboxStore,
    server: SandboxServer,
    connect: Callable[..., SmartrrClient],
    sleeps: list[float],
) -> None:
    store.fail_next(10, status=503)

    with pytest.raises(SmartrrUnavailable) as caught:
        connect(server.url, max_attempts=4, backoff=0.5, max_backoff=1.0).check_connection()

    assert len(store.calls) == 4
    assert len(sleeps) == 3
    assert all(0 <= s <= 1.0 for s in sleeps)
    assert caught.value.status == 503


def test_an_action_is_not_repeated_after_a_server_error_it_may_have_acted_on(
    store: SandboxStore, client: SmartrrClient, sleeps: list[float]
) -> None:
    state = make_purchase_state("retry", SOON)
    store.add(state)
    store.fail_next(1, status=502)

    with pytest.raises(SmartrrUnavailable, match="502"):
        client.skip(state["custRel"]["id"], state["id"], SOON)

    assert [method for method, _ in store.calls] == ["PUT"]


def test_an_action_is_retried_after_a_429_which_says_nothing_was_done(
    store: SandboxStore, client: SmartrrClient, sleeps: list[float]
) -> None:
    state = make_purchase_state("limited", SOON)
    store.add(state)
    store.fail_next(1, status=429, retry_after="1")

    client.skip(state["custRel"]["id"], state["id"], SOON)

    assert [method for method, _ in store.calls] == ["PUT", "PUT"]
    assert sleeps == [1.0]


def test_an_action_that_timed_out_is_not_repeated(
    store: SandboxStore, server: SandboxServer, connect: Callable[..., SmartrrClient]
) -> None:
    state = make_purchase_state("slow", SOON)
    store.add(state)
    store.delay = 0.5

    with pytest.raises(SmartrrUnavailable, match="may have acted"):
        connect(server.url, read_timeout=0.1, max_attempts=3).skip(
            state["custRel"]["id"], state["id"], SOON
        )

    assert [method for method, _ in store.calls] == ["PUT"]


def test_slow_server_times_out_as_unavailable(
    store: SandboxStore, server: SandboxServer, connect: Callable[..., SmartrrClient]
) -> None:
    store.delay = 0.5

    with pytest.raises(SmartrrUnavailable, match="timed out"):
        connect(server.url, read_timeout=0.1, max_attempts=2).check_connection()

    assert len(store.calls) == 2


def test_unreachable_server_is_unavailable(connect: Callable[..., SmartrrClient]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(SmartrrUnavailable, match="unreachable"):
        connect(f"http://127.0.0.1:{port}", max_attempts=2).check_connection()


def test_not_allowed_action_is_rejected_with_the_servers_message(
    store: SandboxStore, client: SmartrrClient
) -> None:
    state = make_purchase_state("paused", SOON, status="PAUSED")
    store.add(state)

    with pytest.raises(SmartrrRejected) as caught:
        client.skip(state["custRel"]["id"], state["id"], SOON)

    assert caught.value.status == 422
    assert "active subscription" in caught.value.detail
    assert caught.value.detail in str(caught.value)
    assert len(store.calls) == 1


def test_unknown_subscription_is_not_found(client: SmartrrClient) -> None:
    with pytest.raises(SmartrrNotFound):
        client.get_purchase_state("404404")


def test_actions_return_the_new_billing_date_from_the_answer(
    store: SandboxStore, client: SmartrrClient
) -> None:
    state = make_purchase_state("acts", SOON, unit="week", frequency=1)
    store.add(state)
    ids = (state["custRel"]["id"], state["id"])
    moved_to = SOON + timedelta(days=3)
    restart = SOON + timedelta(days=40)
    reason = client.cancellation_reasons()[0]

    skipped = client.skip(*ids, SOON)
    unskipped = client.unskip(*ids, SOON)
    moved = client.set_next_billing_date(*ids, moved_to)
    paused = client.pause(*ids, datetime(2099, 1, 1, 14, tzinfo=UTC))
    activated = client.activate(*ids, restart)
    cancelled = client.cancel(*ids, reason.id)

    assert skipped.next_billing_at == SOON + timedelta(weeks=1)
    assert unskipped.next_billing_at == SOON
    assert moved.next_billing_at == moved_to
    assert paused.status == "PAUSED"
    assert (activated.status, activated.next_billing_at) == ("ACTIVE", restart)
    assert cancelled.status == "CANCELLED"
    assert store.purchase_state(state["id"])["purchaseStateStatus"] == "CANCELLED"


def test_action_bodies_are_the_documents_with_full_utc_timestamps(
    canned: CannedServer, connect: Callable[..., SmartrrClient]
) -> None:
    base = "/vendor/customer/cust-1/purchase-state/ps-1/"
    for action in ("skip", "unskip", "next-billing-date"):
        canned.answer("PUT", base + action, 200, raw_state())
    for action in ("pause", "activate", "cancel"):
        canned.answer("PUT", base + action, 200, {"newCustomerPurchaseState": raw_state()})
    client = connect(canned.url)
    # 10:37 in New York, as an aware moment in another zone: sent as UTC with milliseconds.
    moment = datetime(2026, 12, 21, 15, 37, tzinfo=UTC).astimezone(ZoneInfo("America/New_York"))

    client.skip("cust-1", "ps-1", moment)
    client.unskip("cust-1", "ps-1", moment)
    client.set_next_billing_date("cust-1", "ps-1", moment)
    client.pause("cust-1", "ps-1", moment)
    client.activate("cust-1", "ps-1", moment)
    client.cancel("cust-1", "ps-1", "reason-7")

    stamp = "2026-12-21T15:37:00.000Z"
    assert [(path.rsplit("/", 1)[-1], body) for _, path, _, body in canned.requests] == [
        ("skip", {"date": stamp}),
        ("unskip", {"date": stamp}),
        ("next-billing-date", {"date": stamp}),
        ("pause", {"unpauseDate": stamp}),
        ("activate", {"nextBillingDate": stamp}),
        ("cancel", {"reasonId": "reason-7"}),
    ]


def test_a_malformed_request_of_ours_is_told_apart_from_a_refusal(
    canned: CannedServer, connect: Callable[..., SmartrrClient]
) -> None:
    base = "/vendor/customer/cust-1/purchase-state/ps-1/"
    canned.answer("PUT", base + "skip", 422, {"message": "No order on that date."})
    canned.answer("PUT", base + "pause", 400, {"message": "unpauseDate is required"})
    client = connect(canned.url)

    with pytest.raises(SmartrrRejected) as refused:
        client.skip("cust-1", "ps-1", SOON)
    with pytest.raises(SmartrrBadRequest) as ours:
        client.pause("cust-1", "ps-1", SOON)

    assert not isinstance(refused.value, SmartrrBadRequest)
    assert ours.value.status == 400
    assert json.loads(ours.value.sent) == {"unpauseDate": iso_moment(SOON)}


def test_the_token_never_appears_in_errors(
    canned: CannedServer, connect: Callable[..., SmartrrClient]
) -> None:
    canned.answer("GET", "/vendor/purchase-state/1", 400, {"message": f"bad token {TOKEN}"})
    canned.answer("GET", "/vendor/purchase-state/2", 403, {"message": f"token {TOKEN} lacks scope"})
    canned.answer("GET", "/vendor/purchase-state/3", 500, {"message": TOKEN})
    canned.answer("GET", "/vendor/purchase-state/4", 200, TOKEN.encode())
    client = connect(canned.url, max_attempts=1)

    errors: list[SmartrrError] = []
    for shopify_id in "1234":
        with pytest.raises(SmartrrError) as caught:
            client.get_purchase_state(shopify_id)
        errors.append(caught.value)

    assert [type(e) for e in errors] == [
        SmartrrBadRequest,
        SmartrrAuthError,
        SmartrrUnavailable,
        SmartrrDataError,
    ]
    assert all(TOKEN not in str(error) for error in errors)
    assert isinstance(errors[0], SmartrrRejected)
    assert TOKEN not in errors[0].detail


def test_products_summarises_line_items() -> None:
    customer = Customer("c", None, None, None, None, None, None)

    def state(*items: LineItem) -> PurchaseState:
        return PurchaseState("p", "ACTIVE", None, customer, None, items, None, None)

    assert state().products == "your subscription"
    assert state(LineItem("Coffee Beans", None, 1)).products == "Coffee Beans"
    assert state(LineItem("Coffee Beans", "Default Title", 1)).products == "Coffee Beans"
    assert (
        state(LineItem("Coffee Beans", "1 kg", 2), LineItem("Mug", None, 1)).products
        == "Coffee Beans x2, Mug"
    )
    assert (
        state(LineItem("Coffee", "Decaf", 1), LineItem("Coffee", "Dark Roast", 1)).products
        == "Coffee (Decaf), Coffee (Dark Roast)"
    )


def settings_for(instance_path: str, **overrides: str) -> Settings:
    config = from_environ({}, instance_path)
    config.update(overrides)
    return Settings.from_config(config)


def sandboxed_app(tmp_path: Path) -> Flask:
    """An app with no Smartrr token on the SQLite file in ``tmp_path``, schema built."""
    app = create_app(
        {"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}"}
        | {"SMARTRR_API_TOKEN": None, "TWILIO_ACCOUNT_SID": None, "TWILIO_AUTH_TOKEN": None}
    )
    with app.app_context():
        upgrade()
    return app


def test_without_a_token_every_app_on_one_database_shares_one_sandbox(tmp_path: Path) -> None:
    first, second = sandboxed_app(tmp_path), sandboxed_app(tmp_path)
    try:
        client = get_client(first)
        states = list(client.iter_purchase_states())
        assert first.extensions["smartrr"].sandbox.url == client.base_url
        assert sorted(s.status for s in states).count("PAUSED") == 1
        active = next(s for s in states if s.status == "ACTIVE")
        assert active.next_billing_at is not None
        skipped = client.skip(active.customer.id, active.id, active.next_billing_at)

        # Another process (a worker, `flask sync` in another shell) sees the same data.
        seen = {s.id: s for s in get_client(second).iter_purchase_states()}

        assert seen[active.id].next_billing_at == skipped.next_billing_at
        assert skipped.next_billing_at != active.next_billing_at
        assert len(seen) == len(states)
    finally:
        for app in (first, second):
            app.extensions["smartrr"].close()
            get_db(app).dispose()


def test_a_second_sync_of_the_embedded_sandbox_changes_nothing(tmp_path: Path) -> None:
    first, second = sandboxed_app(tmp_path), sandboxed_app(tmp_path)
    billing = select(Subscription.smartrr_id, Subscription.next_billing_at)
    try:
        Worker(first).sync()
        with get_db(first).read() as session:
            dates = {key: moment for key, moment in session.execute(billing)}
            texts = session.scalar(select(func.count(OutboundMessage.id)))

        Worker(second).sync()  # `flask --app wsgi sync` while `make run` is up

        with get_db(first).read() as session:
            assert {key: moment for key, moment in session.execute(billing)} == dates
            assert session.scalar(select(func.count(OutboundMessage.id))) == texts
    finally:
        for app in (first, second):
            app.extensions["smartrr"].close()
            get_db(app).dispose()


def test_with_a_token_the_app_talks_to_the_configured_api(
    server: SandboxServer, store: SandboxStore, tmp_path: Path
) -> None:
    app = Flask("configured")
    settings = settings_for(str(tmp_path), SMARTRR_API_URL=server.url, SMARTRR_API_TOKEN=TOKEN)
    connection = init_app(app, settings, Database(settings.database_url))
    try:
        with app.app_context():
            get_client().check_connection()

        assert connection.sandbox is None
        assert store.calls == [("GET", "/vendor/purchase-state")]
    finally:
        connection.close()
