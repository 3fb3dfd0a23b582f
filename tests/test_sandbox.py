"""The sandbox over HTTP: it refuses what Smartrr's document refuses, and every answer it
gives is one the document describes (checked with bot.smartrr.contract)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import phonenumbers
import pytest
import requests
from flask import Flask
from flask.testing import FlaskCliRunner
from flask_migrate import upgrade
from freezegun import freeze_time
from phonenumbers import timezone as phone_timezone
from sqlalchemy import delete

from bot import create_app
from bot.smartrr.contract import validate_http_response
from bot.smartrr.sandbox import (
    DatabaseSandboxStore,
    SandboxServer,
    SandboxStore,
    demo_seed,
    embedded,
    make_customer,
    make_purchase_state,
)
from bot.smartrr.sandbox.actions import step
from bot.smartrr.sandbox.fixtures import iso
from bot.storage.db import get_db
from bot.storage.models import SandboxRecord

NOW = datetime(2025, 3, 10, 9, 30, tzinfo=UTC)
TOKEN = "sandbox-test-token"
JSON = dict[str, Any]


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def store(clock: Clock) -> SandboxStore:
    return SandboxStore(demo_seed(NOW), clock=clock)


@pytest.fixture
def server(store: SandboxStore) -> Iterator[SandboxServer]:
    with SandboxServer(store, token=TOKEN) as running:
        yield running


class Http:
    """A session with the token whose every answer must be one the document describes."""

    def __init__(self) -> None:
        self.session = requests.Session()
        self.session.headers["x-smartrr-access-token"] = TOKEN

    def __call__(self, method: str, url: str, **options: Any) -> requests.Response:
        answer = self.session.request(method, url, timeout=5, **options)
        validate_http_response(answer)
        return answer

    def get(self, url: str, **options: Any) -> requests.Response:
        return self("GET", url, **options)

    def put(self, url: str, **options: Any) -> requests.Response:
        return self("PUT", url, **options)

    def post(self, url: str, **options: Any) -> requests.Response:
        return self("POST", url, **options)

    def delete(self, url: str, **options: Any) -> requests.Response:
        return self("DELETE", url, **options)


@pytest.fixture
def http() -> Iterator[Http]:
    client = Http()
    yield client
    client.session.close()


def product(state: JSON) -> str:
    name: str = state["stLineItems"][0]["vnt"]["purchasable"]["purchasableName"]
    return name


def by_key(store: SandboxStore, name: str, first_name: str) -> JSON:
    for state in store.states():
        if state["custRel"]["firstName"] == first_name and product(state) == name:
            return state
    raise AssertionError(f"no {name} for {first_name}")


def action_url(server: SandboxServer, state: JSON, action: str) -> str:
    customer_id = state["custRel"]["id"]
    return f"{server.url}/vendor/customer/{customer_id}/purchase-state/{state['id']}/{action}"


def moment(raw: str) -> datetime:
    return datetime.fromisoformat(raw)


def reason_id(server: SandboxServer, http: Http) -> str:
    reasons = http.get(f"{server.url}/vendor/cancellation-reasons").json()
    first: str = reasons[0]["id"]
    return first


# Reads.


def test_list_pages_report_totals_and_cap_the_page_size(http: Http) -> None:
    states = [make_purchase_state(f"s{i}", NOW + timedelta(days=3)) for i in range(120)]
    with SandboxServer(SandboxStore(states), token=TOKEN) as server:
        url = f"{server.url}/vendor/purchase-state"
        pages = [http.get(url, params={"pageNumber": n, "pageSize": 50}).json() for n in range(3)]
        capped = http.get(url, params={"pageNumber": 0, "pageSize": 1000}).json()

    assert [len(page["data"]) for page in pages] == [50, 50, 20]
    assert {(p["totalCount"], p["totalPages"], p["pageSize"]) for p in pages} == {(120, 3, 50)}
    assert [page["pageNumber"] for page in pages] == [0, 1, 2]
    ids = [state["id"] for page in pages for state in page["data"]]
    assert len(set(ids)) == 120
    assert capped["pageSize"] == 250
    assert len(capped["data"]) == 120


def test_list_filters_on_status(server: SandboxServer, http: Http) -> None:
    answer = http.get(
        f"{server.url}/vendor/purchase-state",
        params={"pageNumber": 0, "pageSize": 250, "filterEquals[purchaseStateStatus]": "PAUSED"},
    ).json()

    assert answer["totalCount"] == 1
    assert [s["purchaseStateStatus"] for s in answer["data"]] == ["PAUSED"]


def test_bad_paging_parameter_is_a_400(server: SandboxServer, http: Http) -> None:
    answer = http.get(f"{server.url}/vendor/purchase-state", params={"pageNumber": "-1"})

    assert answer.status_code == 400
    assert "pageNumber" in answer.json()["message"]


def test_get_by_shopify_id_and_404_for_unknown(
    server: SandboxServer, store: SandboxStore, http: Http
) -> None:
    state = store.states()[0]

    found = http.get(f"{server.url}/vendor/purchase-state/{state['shopifyId']}")
    missing = http.get(f"{server.url}/vendor/purchase-state/999")

    assert found.json() == state
    assert missing.status_code == 404
    assert "999" in missing.json()["message"]


def test_customer_subscriptions_are_a_page(
    server: SandboxServer, store: SandboxStore, http: Http
) -> None:
    maya = by_key(store, "House Blend Coffee", "Maya")["custRel"]["id"]

    answer = http.get(f"{server.url}/vendor/customer/{maya}/purchase-state/").json()
    second = http.get(
        f"{server.url}/vendor/customer/{maya}/purchase-state/",
        params={"pageNumber": 1, "pageSize": 1},
    ).json()

    assert sorted(product(s) for s in answer["data"]) == ["Earl Grey Tea", "House Blend Coffee"]
    assert (answer["totalCount"], answer["totalPages"], answer["pageNumber"]) == (2, 1, 0)
    assert (len(second["data"]), second["totalPages"]) == (1, 2)


def test_customer_subscriptions_without_the_trailing_slash_as_express_allows(
    server: SandboxServer, store: SandboxStore
) -> None:
    maya = by_key(store, "House Blend Coffee", "Maya")["custRel"]["id"]

    answer = requests.get(
        f"{server.url}/vendor/customer/{maya}/purchase-state",
        headers={"x-smartrr-access-token": TOKEN},
        timeout=5,
    )

    assert answer.status_code == 200
    assert answer.json()["totalCount"] == 2


def test_cancellation_reasons_are_listed(server: SandboxServer, http: Http) -> None:
    reasons = http.get(f"{server.url}/vendor/cancellation-reasons").json()

    assert len(reasons) >= 2
    assert len({reason["id"] for reason in reasons}) == len(reasons)


# Actions.


def test_skip_moves_one_cadence_step_and_unskip_restores(
    server: SandboxServer, store: SandboxStore, http: Http
) -> None:
    coffee = by_key(store, "House Blend Coffee", "Maya")  # every 2 weeks
    before = coffee["nextBillingDate"]

    skipped = http.put(action_url(server, coffee, "skip"), json={}).json()
    restored = http.put(action_url(server, coffee, "unskip"), json={}).json()
    again = http.put(action_url(server, coffee, "unskip"), json={})

    assert coffee["schedule"]["deliveryRRuleString"] == "FREQ=WEEKLY;INTERVAL=2"
    assert moment(skipped["nextBillingDate"]) - moment(before) == timedelta(weeks=2)
    assert restored["nextBillingDate"] == before
    assert store.purchase_state(coffee["id"])["nextBillingDate"] == before
    assert again.status_code == 422
    assert "skipped" in again.json()["message"]


def test_a_repeated_skip_of_the_noticed_date_never_skips_a_later_order(
    server: SandboxServer, store: SandboxStore, http: Http
) -> None:
    bars = by_key(store, "Protein Bars", "Marcus")
    noticed = bars["nextBillingDate"]

    first = http.put(action_url(server, bars, "skip"), json={"date": noticed})
    second = http.put(action_url(server, bars, "skip"), json={"date": noticed})

    assert first.status_code == 200
    assert second.status_code == 422
    assert "no order on" in second.json()["message"]
    assert store.purchase_state(bars["id"])["nextBillingDate"] == first.json()["nextBillingDate"]


def test_unskip_with_a_date_restores_that_order(
    server: SandboxServer, store: SandboxStore, http: Http
) -> None:
    bars = by_key(store, "Protein Bars", "Marcus")  # monthly
    first = bars["nextBillingDate"]
    second = http.put(action_url(server, bars, "skip"), json={}).json()["nextBillingDate"]
    http.put(action_url(server, bars, "skip"), json={})

    unknown = http.put(action_url(server, bars, "unskip"), json={"date": iso(NOW)})
    restored = http.put(action_url(server, bars, "unskip"), json={"date": first}).json()

    assert unknown.status_code == 422
    assert restored["nextBillingDate"] == first
    latest = http.put(action_url(server, bars, "unskip"), json={}).json()
    assert latest["nextBillingDate"] == first  # the other skipped order was later
    assert second > first


def test_monthly_skip_keeps_the_day_within_shorter_months(http: Http) -> None:
    state = make_purchase_state("jan31", datetime(2025, 1, 31, 14, tzinfo=UTC))
    with SandboxServer(SandboxStore([state]), token=TOKEN) as server:
        answer = http.put(action_url(server, state, "skip"), json={}).json()

    assert answer["nextBillingDate"] == "2025-02-28T14:00:00.000Z"


def test_next_billing_date_is_set_to_exactly_the_moment_sent(
    server: SandboxServer, store: SandboxStore, http: Http
) -> None:
    bars = by_key(store, "Protein Bars", "Marcus")

    answer = http.put(
        action_url(server, bars, "next-billing-date"),
        params={"sendNow": "false"},
        json={"date": "2025-04-01T15:37:00.000Z"},
    ).json()

    assert answer["nextBillingDate"] == "2025-04-01T15:37:00.000Z"
    assert answer["updatedDate"] == iso(NOW)


def test_pause_then_activate(server: SandboxServer, store: SandboxStore, http: Http) -> None:
    vitamins = by_key(store, "Vitamin Pack", "Sofia")
    until = "2025-05-01T14:00:00.000Z"
    resume_at = "2025-05-02T14:00:00.000Z"

    paused = http.put(action_url(server, vitamins, "pause"), json={"unpauseDate": until})
    unpause = store.unpause_date(vitamins["id"])
    resumed = http.put(
        action_url(server, vitamins, "activate"), json={"nextBillingDate": resume_at}
    )

    paused_state = paused.json()["newCustomerPurchaseState"]
    assert (paused_state["purchaseStateStatus"], paused_state["pausedAt"]) == ("PAUSED", iso(NOW))
    assert unpause == moment(until)
    resumed_state = resumed.json()["newCustomerPurchaseState"]
    assert resumed_state["purchaseStateStatus"] == "ACTIVE"
    assert (resumed_state["pausedAt"], resumed_state["nextBillingDate"]) == (None, resume_at)
    assert store.unpause_date(vitamins["id"]) is None


def test_a_pause_ends_by_itself_on_its_unpause_date(
    server: SandboxServer, store: SandboxStore, clock: Clock, http: Http
) -> None:
    dana = by_key(store, "House Blend Coffee", "Dana")
    until = store.unpause_date(dana["id"])
    assert until is not None

    clock.now = until + timedelta(minutes=1)
    state = http.get(f"{server.url}/vendor/purchase-state/{dana['shopifyId']}").json()
    active = http.get(
        f"{server.url}/vendor/purchase-state",
        params={"filterEquals[purchaseStateStatus]": "PAUSED"},
    ).json()

    assert (state["purchaseStateStatus"], state["pausedAt"]) == ("ACTIVE", None)
    assert moment(state["nextBillingDate"]) >= until
    assert active["totalCount"] == 0
    assert store.unpause_date(dana["id"]) is None


def test_cancel_with_a_reason_then_actions_are_refused(
    server: SandboxServer, store: SandboxStore, http: Http
) -> None:
    tea = by_key(store, "Earl Grey Tea", "Ana")

    cancelled = http.put(
        action_url(server, tea, "cancel"), json={"reasonId": reason_id(server, http)}
    ).json()["newCustomerPurchaseState"]
    skip = http.put(action_url(server, tea, "skip"), json={})
    pause = http.put(
        action_url(server, tea, "pause"), json={"unpauseDate": "2025-05-01T14:00:00.000Z"}
    )

    assert (cancelled["purchaseStateStatus"], cancelled["cancelledAt"]) == ("CANCELLED", iso(NOW))
    assert (skip.status_code, pause.status_code) == (422, 422)


def test_cancel_with_an_unknown_reason_is_refused(
    server: SandboxServer, store: SandboxStore, http: Http
) -> None:
    tea = by_key(store, "Earl Grey Tea", "Ana")

    answer = http.put(action_url(server, tea, "cancel"), json={"reasonId": "moving house"})

    assert answer.status_code == 422
    assert store.purchase_state(tea["id"])["purchaseStateStatus"] == "ACTIVE"


def test_semantic_refusals_are_422_and_change_nothing(
    server: SandboxServer, store: SandboxStore, http: Http
) -> None:
    paused = by_key(store, "House Blend Coffee", "Dana")
    active = by_key(store, "Protein Bars", "Marcus")
    past = iso(NOW - timedelta(days=1))

    answers = [
        http.put(action_url(server, paused, "skip"), json={}),
        http.put(action_url(server, active, "activate"), json={"nextBillingDate": iso(NOW)}),
        http.put(action_url(server, active, "next-billing-date"), json={"date": past}),
        http.put(action_url(server, active, "pause"), json={"unpauseDate": past}),
        http.put(action_url(server, paused, "activate"), json={"nextBillingDate": past}),
        http.put(action_url(server, active, "skip"), json={"date": iso(NOW)}),
    ]

    assert [a.status_code for a in answers] == [422] * 6
    assert all(a.json()["message"] for a in answers)
    assert store.purchase_state(active["id"]) == active
    assert store.purchase_state(paused["id"]) == paused


def test_next_billing_date_without_a_date_is_a_400(
    server: SandboxServer, store: SandboxStore, http: Http
) -> None:
    active = by_key(store, "Protein Bars", "Marcus")

    answer = http.put(action_url(server, active, "next-billing-date"), json={})

    assert answer.status_code == 400
    assert "date" in answer.json()["message"]


@pytest.mark.parametrize("status", ["EXPIRED", "FAILED"])
def test_expired_and_failed_states_cannot_be_changed(status: str, http: Http) -> None:
    state = make_purchase_state("old", NOW + timedelta(days=3), status=status)
    with SandboxServer(SandboxStore([state], clock=lambda: NOW), token=TOKEN) as server:
        listed = http.get(f"{server.url}/vendor/purchase-state").json()
        skip = http.put(action_url(server, state, "skip"), json={})
        delay = http.put(
            action_url(server, state, "next-billing-date"), json={"date": iso(NOW + timedelta(9))}
        )

    assert [s["purchaseStateStatus"] for s in listed["data"]] == [status]
    assert (skip.status_code, delay.status_code) == (422, 422)


def test_action_for_another_customer_is_404(
    server: SandboxServer, store: SandboxStore, http: Http
) -> None:
    tea = by_key(store, "Earl Grey Tea", "Maya")
    other = by_key(store, "Protein Bars", "Marcus")["custRel"]["id"]

    answer = http.put(
        f"{server.url}/vendor/customer/{other}/purchase-state/{tea['id']}/skip", json={}
    )

    assert answer.status_code == 404


# Requests the document refuses.


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("pause", {}),
        ("pause", {"unpauseDate": "2025-05-01"}),
        ("activate", {}),
        ("activate", {"nextBillingDate": None}),
        ("skip", {"date": 5}),
        ("skip", {"date": "2025-03-13"}),
        ("skip", None),
        ("unskip", None),
        ("next-billing-date", {"date": "soon"}),
        ("next-billing-date", b"not json"),
        ("next-billing-date", b"[]"),
        ("cancel", {}),
        ("cancel", {"reasonId": 7}),
    ],
)
def test_bodies_the_document_refuses_are_400(
    server: SandboxServer, store: SandboxStore, http: Http, action: str, body: Any
) -> None:
    bars = by_key(store, "Protein Bars", "Marcus")
    options: dict[str, Any] = {"json": body} if not isinstance(body, bytes) else {"data": body}
    if isinstance(body, bytes):
        options["headers"] = {"Content-Type": "application/json"}

    answer = http.put(action_url(server, bars, action), **options)

    assert answer.status_code == 400, answer.text
    assert answer.json()["message"]
    assert store.purchase_state(bars["id"]) == bars


@pytest.mark.parametrize(
    "body",
    [
        {"eventType": "SUBSCRIPTION_SKIPPED", "url": "https://bot.example.com/smartrr/webhook"},
        {"eventType": "SUBSCRIPTION_SKIP"},
        {"eventType": "SUBSCRIPTION_SKIP", "url": "https://bot.example.com/h", "secret": "x"},
    ],
)
def test_webhook_bodies_the_document_refuses_are_400(
    server: SandboxServer, http: Http, body: JSON
) -> None:
    answer = http.post(f"{server.url}/vendor/webhook", json=body)

    assert answer.status_code == 400
    assert http.get(f"{server.url}/vendor/webhook").json() == []


def test_a_path_the_sandbox_does_not_serve_is_404(server: SandboxServer, http: Http) -> None:
    assert http.get(f"{server.url}/vendor/no-such-thing").status_code == 404
    assert http.get(f"{server.url}/vendor/order").status_code == 404  # documented, not served


# Webhooks and Smartrr's SMS settings.


def test_webhooks_are_created_once_listed_and_deleted(server: SandboxServer, http: Http) -> None:
    url = f"{server.url}/vendor/webhook"
    body = {"eventType": "SUBSCRIPTION_SKIP", "url": "https://bot.example.com/smartrr/webhook"}

    created = http.post(url, json=body).json()
    again = http.post(url, json=body).json()
    other = http.post(url, json={**body, "eventType": "SUBSCRIPTION_PAUSE"}).json()
    listed = http.get(url).json()
    deleted = http.delete(f"{url}/{created['id']}")
    missing = http.delete(f"{url}/{created['id']}")

    assert again == created
    assert (created["eventType"], created["url"]) == (body["eventType"], body["url"])
    assert [hook["id"] for hook in listed] == [created["id"], other["id"]]
    assert (deleted.status_code, missing.status_code) == (200, 404)
    assert [hook["id"] for hook in http.get(url).json()] == [other["id"]]


def test_smartrrs_upcoming_order_sms_is_on_until_switched_off(
    server: SandboxServer, http: Http
) -> None:
    url = f"{server.url}/vendor/phone"
    before = http.get(url).json()

    changed = http.post(
        url,
        json={
            "phoneNumber": before["phoneNumber"],
            "twilioAccountSid": before["twilioAccountSid"],
            "sendUpcomingOrderSms": False,
        },
    ).json()
    partial = http.post(url, json={"sendUpcomingOrderSms": True})

    assert before["sendUpcomingOrderSms"] is True
    assert changed["sendUpcomingOrderSms"] is False
    assert partial.status_code == 400  # IPhone requires phoneNumber and twilioAccountSid
    assert http.get(url).json()["sendUpcomingOrderSms"] is False


# Knobs.


@pytest.mark.parametrize("headers", [{}, {"x-smartrr-access-token": "wrong"}])
def test_requests_without_the_token_get_401(
    server: SandboxServer, store: SandboxStore, headers: dict[str, str]
) -> None:
    answer = requests.get(f"{server.url}/vendor/purchase-state", headers=headers, timeout=5)

    validate_http_response(answer)
    assert answer.status_code == 401
    assert store.calls == [("GET", "/vendor/purchase-state")]


def test_injected_failures_answer_then_clear(
    server: SandboxServer, store: SandboxStore, http: Http
) -> None:
    store.fail_next(1, status=429, retry_after="7")
    url = f"{server.url}/vendor/purchase-state"

    first, second = http.get(url), http.get(url)

    assert (first.status_code, first.headers["Retry-After"]) == (429, "7")
    assert second.status_code == 200


# Fixtures.


def test_make_customer_puts_the_address_on_the_purchase_state() -> None:
    address = {"city": "Tampa", "provinceCode": "FL", "zip": "33602", "countryCode": "US"}
    customer = make_customer("c", phone=None, inferred_phone="+18135550100", address=address)

    state = make_purchase_state("s", NOW, customer=customer, items=[("Tea", None, 2)])

    assert state["shippingAddress"] == address
    assert "shippingAddress" not in state["custRel"]
    assert ("phone" in state["custRel"], state["custRel"]["inferredPhone"]) == (
        False,
        "+18135550100",
    )
    line = state["stLineItems"][0]
    assert (line["vnt"]["purchasableVariantName"], line["quantity"]) == ("Default Title", 2)


def test_demo_seed_numbers_are_valid_and_span_us_zones() -> None:
    zones = set()
    for state in demo_seed(NOW):
        number = phonenumbers.parse(state["custRel"]["phone"])
        assert phonenumbers.is_valid_number(number), state["custRel"]["phone"]
        zones.update(phone_timezone.time_zones_for_number(number))

    assert zones >= {
        "America/New_York",
        "America/Chicago",
        "America/Denver",
        "America/Phoenix",
        "America/Los_Angeles",
    }


def test_demo_seed_has_the_cases_a_conversation_must_tell_apart(store: SandboxStore) -> None:
    seed = demo_seed(NOW)
    active: dict[str, list[tuple[str, str]]] = {}
    for state in seed:
        if state["purchaseStateStatus"] == "ACTIVE":
            products = active.setdefault(state["custRel"]["firstName"], [])
            products.append((product(state), state["nextBillingDate"][:10]))

    assert [name for name, _ in active["Maya"]] == ["House Blend Coffee", "Earl Grey Tea"]
    [kenji] = [s for s in seed if s["custRel"]["firstName"] == "Kenji"]
    assert [item["vnt"]["purchasable"]["purchasableName"] for item in kenji["stLineItems"]] == [
        "Protein Bars",
        "Vitamin Pack",
    ]
    [paused] = [s for s in seed if s["purchaseStateStatus"] == "PAUSED"]
    assert store.unpause_date(paused["id"]) == datetime(2025, 4, 9, tzinfo=UTC)


def test_demo_seed_bills_two_to_ten_days_ahead_and_is_deterministic() -> None:
    seed = demo_seed(NOW)
    billing = [moment(s["nextBillingDate"]) for s in seed]

    assert {(when.date() - NOW.date()).days for when in billing} <= set(range(2, 11))
    assert {(when.hour, when.minute) for when in billing} == {(14, 0)}
    assert demo_seed(NOW) == seed
    assert len({s["id"] for s in seed}) == len(seed)
    assert {s["shippingAddress"]["countryCode"] for s in seed} == {"US"}


# One sandbox per database (the embedded default).


def test_two_stores_on_one_database_see_each_others_changes(app: Flask, clock: Clock) -> None:
    first = DatabaseSandboxStore(get_db(app), clock=clock)
    second = DatabaseSandboxStore(get_db(app), clock=clock)
    first.seed_once()
    bars = by_key(second, "Protein Bars", "Marcus")

    skipped = first.act(bars["custRel"]["id"], bars["id"], "skip", {})
    second.add(make_purchase_state("lena", NOW + timedelta(days=4)))
    hook = second.add_webhook("SUBSCRIPTION_SKIP", "https://bot.example.com/smartrr/webhook")

    assert second.purchase_state(bars["id"]) == skipped
    assert skipped["nextBillingDate"] != bars["nextBillingDate"]
    assert len(first.states()) == len(demo_seed(NOW)) + 1
    assert first.webhooks() == [hook]


def test_actions_from_two_processes_lose_no_update(app: Flask, clock: Clock) -> None:
    stores = [DatabaseSandboxStore(get_db(app), clock=clock) for _ in range(2)]
    stores[0].seed_once()
    bars = by_key(stores[0], "Protein Bars", "Marcus")  # monthly
    expected = moment(bars["nextBillingDate"])
    for _ in range(8):
        expected = step(expected, "FREQ=MONTHLY;INTERVAL=1")

    def skip(store: SandboxStore) -> None:
        store.act(bars["custRel"]["id"], bars["id"], "skip", {})

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(skip, stores * 4))

    assert stores[1].purchase_state(bars["id"])["nextBillingDate"] == iso(expected)


def test_the_demo_data_goes_in_once_and_an_emptied_sandbox_stays_empty(
    app: Flask, clock: Clock
) -> None:
    store = DatabaseSandboxStore(get_db(app), clock=clock)

    seeded = [store.seed_once(), store.seed_once()]
    with get_db(app).begin() as session:
        session.execute(delete(SandboxRecord).where(SandboxRecord.kind == "purchase-state"))
    later = DatabaseSandboxStore(get_db(app), clock=clock).seed_once()

    assert seeded == [True, False]
    assert later is False
    assert store.states() == []


def test_reset_replaces_everything_with_fresh_demo_data(app: Flask, clock: Clock) -> None:
    store = DatabaseSandboxStore(get_db(app), clock=clock)
    store.seed_once()
    bars = by_key(store, "Protein Bars", "Marcus")
    store.act(bars["custRel"]["id"], bars["id"], "skip", {})
    store.add_webhook("SUBSCRIPTION_SKIP", "https://bot.example.com/smartrr/webhook")
    store.set_phone(
        {"phoneNumber": "+18885550123", "twilioAccountSid": "", "sendUpcomingOrderSms": False}
    )
    clock.now = NOW + timedelta(days=1)

    count = store.reset()

    fresh = demo_seed(clock.now)
    assert count == len(fresh)
    assert [(s["id"], s["nextBillingDate"]) for s in store.states()] == [
        (s["id"], s["nextBillingDate"]) for s in fresh
    ]
    assert store.webhooks() == []
    assert store.phone()["sendUpcomingOrderSms"] is True
    paused = next(s for s in fresh if s["purchaseStateStatus"] == "PAUSED")
    assert store.unpause_date(paused["id"]) == datetime(2025, 4, 10, tzinfo=UTC)


def test_embedded_sandboxes_on_one_database_serve_the_same_data(app: Flask, http: Http) -> None:
    with freeze_time(NOW):
        first, second = embedded(get_db(app)), embedded(get_db(app))
        first.token = second.token = TOKEN
        with first, second:
            bars = by_key(first.store, "Protein Bars", "Marcus")
            skipped = http.put(action_url(first, bars, "skip"), json={}).json()
            seen = http.get(f"{second.url}/vendor/purchase-state/{bars['shopifyId']}").json()
            reasons = http.get(f"{second.url}/vendor/cancellation-reasons").json()
            cancelled = http.put(
                action_url(second, bars, "cancel"), json={"reasonId": reasons[0]["id"]}
            ).json()["newCustomerPurchaseState"]

    assert seen == skipped
    assert cancelled["nextBillingDate"] == skipped["nextBillingDate"]
    assert len(first.store.states()) == len(demo_seed(NOW))


def test_the_sandbox_reset_command_reseeds_the_database(config: dict[str, Any]) -> None:
    app = create_app({**config, "SMARTRR_API_TOKEN": None})
    with app.app_context():
        upgrade()
    store = DatabaseSandboxStore(get_db(app))
    with freeze_time(NOW):
        store.add(make_purchase_state("stray", NOW + timedelta(days=3)))

        result = app.test_cli_runner().invoke(args=["sandbox", "reset"])

        states = store.states()
    get_db(app).dispose()
    assert result.exit_code == 0, result.output
    assert f"reset to {len(demo_seed(NOW))} demo subscriptions" in result.output
    assert [s["id"] for s in states] == [s["id"] for s in demo_seed(NOW)]


def test_the_sandbox_reset_command_refuses_when_a_smartrr_token_is_set(
    app: Flask, runner: FlaskCliRunner
) -> None:
    store = DatabaseSandboxStore(get_db(app))
    store.add(make_purchase_state("kept", NOW + timedelta(days=3)))

    result = runner.invoke(args=["sandbox", "reset"])

    assert result.exit_code == 1
    assert "SMARTRR_API_TOKEN is set" in result.output
    assert len(store.states()) == 1
