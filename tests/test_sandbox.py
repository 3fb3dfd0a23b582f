from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import phonenumbers
import pytest
import requests
from phonenumbers import timezone as phone_timezone

from bot.sandbox import SandboxServer, SandboxStore, demo_seed, make_purchase_state

NOW = datetime(2025, 3, 10, 9, 30, tzinfo=UTC)
TOKEN = "sandbox-test-token"


@pytest.fixture
def store() -> SandboxStore:
    return SandboxStore(demo_seed(NOW), clock=lambda: NOW)


@pytest.fixture
def server(store: SandboxStore) -> Iterator[SandboxServer]:
    with SandboxServer(store, token=TOKEN) as running:
        yield running


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["x-smartrr-access-token"] = TOKEN
        yield session


def by_key(store: SandboxStore, product: str, first_name: str) -> dict[str, Any]:
    for state in store.states():
        if (
            state["custRel"]["firstName"] == first_name
            and state["stLineItems"][0]["productName"] == product
        ):
            return state
    raise AssertionError(f"no {product} for {first_name}")


def action_url(server: SandboxServer, state: dict[str, Any], action: str) -> str:
    customer_id = state["custRel"]["id"]
    return f"{server.url}/vendor/customer/{customer_id}/purchase-state/{state['id']}/{action}"


def test_list_pages_report_totals_and_cap_the_page_size(http: requests.Session) -> None:
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


def test_list_filters_on_status(server: SandboxServer, http: requests.Session) -> None:
    answer = http.get(
        f"{server.url}/vendor/purchase-state",
        params={"pageNumber": 0, "pageSize": 250, "filterEquals[purchaseStateStatus]": "PAUSED"},
    ).json()

    assert answer["totalCount"] == 1
    assert [s["purchaseStateStatus"] for s in answer["data"]] == ["PAUSED"]


def test_bad_paging_parameter_is_a_400(server: SandboxServer, http: requests.Session) -> None:
    answer = http.get(f"{server.url}/vendor/purchase-state", params={"pageNumber": "-1"})

    assert answer.status_code == 400
    assert "pageNumber" in answer.json()["message"]


def test_get_by_shopify_id_and_404_for_unknown(
    server: SandboxServer, store: SandboxStore, http: requests.Session
) -> None:
    state = store.states()[0]

    found = http.get(f"{server.url}/vendor/purchase-state/{state['shopifyId']}")
    missing = http.get(f"{server.url}/vendor/purchase-state/999")

    assert found.json()["id"] == state["id"]
    assert missing.status_code == 404
    assert "999" in missing.json()["message"]


@pytest.mark.parametrize("suffix", ["/", ""])
def test_customer_subscriptions_with_or_without_trailing_slash(
    server: SandboxServer, store: SandboxStore, http: requests.Session, suffix: str
) -> None:
    maya = by_key(store, "House Blend Coffee", "Maya")["custRel"]["id"]

    answer = http.get(f"{server.url}/vendor/customer/{maya}/purchase-state{suffix}")

    assert answer.status_code == 200
    products = sorted(s["stLineItems"][0]["productName"] for s in answer.json()["data"])
    assert products == ["Earl Grey Tea", "House Blend Coffee"]


def test_skip_moves_one_interval_and_unskip_restores(
    server: SandboxServer, store: SandboxStore, http: requests.Session
) -> None:
    coffee = by_key(store, "House Blend Coffee", "Maya")  # every 2 weeks
    before = coffee["nextBillingDate"]

    skipped = http.put(action_url(server, coffee, "skip")).json()
    restored = http.put(action_url(server, coffee, "unskip")).json()
    again = http.put(action_url(server, coffee, "unskip"))

    moved = datetime.fromisoformat(skipped["nextBillingDate"])
    assert moved - datetime.fromisoformat(before) == timedelta(weeks=2)
    assert restored["nextBillingDate"] == before
    assert store.purchase_state(coffee["id"])["nextBillingDate"] == before
    assert again.status_code == 422
    assert "skipped" in again.json()["message"]


def test_monthly_skip_keeps_the_day_within_shorter_months(http: requests.Session) -> None:
    state = make_purchase_state("jan31", datetime(2025, 1, 31, 14, tzinfo=UTC))
    with SandboxServer(SandboxStore([state]), token=TOKEN) as server:
        answer = http.put(action_url(server, state, "skip")).json()

    assert answer["nextBillingDate"] == "2025-02-28T14:00:00.000Z"


def test_invalid_actions_are_422_with_a_message(
    server: SandboxServer, store: SandboxStore, http: requests.Session
) -> None:
    paused = by_key(store, "House Blend Coffee", "Dana")
    active = by_key(store, "Protein Bars", "Marcus")
    yesterday = (NOW - timedelta(days=1)).date().isoformat()

    answers = [
        http.put(action_url(server, paused, "skip")),
        http.put(action_url(server, active, "activate")),
        http.put(
            action_url(server, active, "next-billing-date"), json={"nextBillingDate": yesterday}
        ),
    ]

    assert [a.status_code for a in answers] == [422, 422, 422]
    assert all(a.json()["message"] for a in answers)
    assert store.purchase_state(active["id"])["nextBillingDate"] == active["nextBillingDate"]


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"nextBillingDate": "soon"}', b"{}"])
def test_bad_next_billing_date_body_is_400(
    server: SandboxServer, store: SandboxStore, http: requests.Session, body: bytes
) -> None:
    active = by_key(store, "Protein Bars", "Marcus")

    answer = http.put(
        action_url(server, active, "next-billing-date"),
        data=body,
        headers={"Content-Type": "application/json"},
    )

    assert answer.status_code == 400


def test_next_billing_date_keeps_the_time_of_day(
    server: SandboxServer, store: SandboxStore, http: requests.Session
) -> None:
    active = by_key(store, "Protein Bars", "Marcus")

    answer = http.put(
        action_url(server, active, "next-billing-date"), json={"nextBillingDate": "2025-04-01"}
    ).json()

    assert answer["nextBillingDate"] == "2025-04-01T14:00:00.000Z"


def test_pause_then_activate(
    server: SandboxServer, store: SandboxStore, http: requests.Session
) -> None:
    active = by_key(store, "Vitamin Pack", "Sofia")

    paused = http.put(action_url(server, active, "pause"), json={"unpauseDate": "2025-05-01"})
    resumed = http.put(action_url(server, active, "activate"))

    assert (paused.json()["purchaseStateStatus"], paused.json()["unpauseDate"]) == (
        "PAUSED",
        "2025-05-01",
    )
    assert resumed.json()["purchaseStateStatus"] == "ACTIVE"
    assert resumed.json()["unpauseDate"] is None
    assert resumed.json()["nextBillingDate"] == active["nextBillingDate"]


def test_activate_with_a_past_billing_date_bills_one_interval_from_today(
    http: requests.Session,
) -> None:
    state = make_purchase_state(
        "late", NOW - timedelta(days=20), status="PAUSED", unit="week", frequency=1
    )
    with SandboxServer(SandboxStore([state], clock=lambda: NOW), token=TOKEN) as server:
        answer = http.put(action_url(server, state, "activate")).json()

    assert datetime.fromisoformat(answer["nextBillingDate"]) == NOW + timedelta(weeks=1)


def test_cancel_then_actions_are_refused(
    server: SandboxServer, store: SandboxStore, http: requests.Session
) -> None:
    tea = by_key(store, "Earl Grey Tea", "Ana")

    cancelled = http.put(action_url(server, tea, "cancel")).json()
    skip = http.put(action_url(server, tea, "skip"))

    assert cancelled["purchaseStateStatus"] == "CANCELLED"
    assert skip.status_code == 422


def test_action_for_another_customer_is_404(
    server: SandboxServer, store: SandboxStore, http: requests.Session
) -> None:
    tea = by_key(store, "Earl Grey Tea", "Ana")
    other = by_key(store, "Protein Bars", "Marcus")["custRel"]["id"]

    answer = http.put(f"{server.url}/vendor/customer/{other}/purchase-state/{tea['id']}/skip")

    assert answer.status_code == 404


@pytest.mark.parametrize("headers", [{}, {"x-smartrr-access-token": "wrong"}])
def test_requests_without_the_token_get_401(
    server: SandboxServer, store: SandboxStore, headers: dict[str, str]
) -> None:
    answer = requests.get(f"{server.url}/vendor/purchase-state", headers=headers, timeout=5)

    assert answer.status_code == 401
    assert store.calls == [("GET", "/vendor/purchase-state")]


def test_injected_failures_answer_then_clear(
    server: SandboxServer, store: SandboxStore, http: requests.Session
) -> None:
    store.fail_next(1, status=429, retry_after="7")
    url = f"{server.url}/vendor/purchase-state"

    first, second = http.get(url), http.get(url)

    assert (first.status_code, first.headers["Retry-After"]) == (429, "7")
    assert second.status_code == 200


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


def test_demo_seed_has_a_two_subscription_customer_and_one_paused() -> None:
    seed = demo_seed(NOW)
    active_by_customer: dict[str, list[str]] = {}
    for state in seed:
        if state["purchaseStateStatus"] == "ACTIVE":
            products = active_by_customer.setdefault(state["custRel"]["id"], [])
            products.append(state["stLineItems"][0]["productName"])

    assert ["House Blend Coffee", "Earl Grey Tea"] in active_by_customer.values()
    assert [s["purchaseStateStatus"] for s in seed].count("PAUSED") == 1


def test_demo_seed_bills_two_to_ten_days_ahead_and_is_deterministic() -> None:
    seed = demo_seed(NOW)
    billing = [datetime.fromisoformat(s["nextBillingDate"]) for s in seed]

    assert {(when.date() - NOW.date()).days for when in billing} <= set(range(2, 11))
    assert {(when.hour, when.minute) for when in billing} == {(14, 0)}
    assert demo_seed(NOW) == seed
    assert len({s["id"] for s in seed}) == len(seed)
