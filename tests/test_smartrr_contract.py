"""Every call the Smartrr client makes, held against Smartrr's published OpenAPI document.

The client talks to the sandbox over HTTP; a response hook checks each request it sent
(validated by openapi-core, and naming no key the request schema does not name) and
each answer it parsed (valid against the document's response schema).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from bot.smartrr.client import SmartrrClient
from bot.smartrr.contract import unknown_keys, validate_http_response, validate_request
from bot.smartrr.sandbox import SandboxServer, SandboxStore, make_customer, make_purchase_state

NOW = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
ORDER_AT = datetime(2026, 12, 8, 15, 37, tzinfo=UTC)
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@pytest.fixture
def store() -> SandboxStore:
    customer = make_customer("ada", first_name="Ada", phone="+13125794420")
    return SandboxStore(
        [make_purchase_state("ada-coffee", ORDER_AT, customer=customer, unit="week")],
        clock=lambda: NOW,
    )


@pytest.fixture
def checked() -> list[requests.Response]:
    return []


@pytest.fixture
def client(store: SandboxStore, checked: list[requests.Response]) -> Iterator[SmartrrClient]:
    with SandboxServer(store, token="t") as server, SmartrrClient(server.url, "t") as client:
        client.on_response(checked.append)
        yield client


def dates_in(body: Any) -> list[str]:
    """Every string in a request body under a key that names a date."""
    if not isinstance(body, dict):
        return []
    return [value for key, value in body.items() if "date" in key.lower()]


State = dict[str, Any]


def ids(state: State) -> tuple[str, str]:
    return state["custRel"]["id"], state["id"]


LATER = ORDER_AT + timedelta(days=30)
CALLS: dict[str, Callable[[SmartrrClient, State], object]] = {
    "list": lambda c, s: list(c.iter_purchase_states()),
    "one": lambda c, s: c.get_purchase_state(s["shopifyId"]),
    "customer": lambda c, s: c.customer_purchase_states(s["custRel"]["id"]),
    "skip": lambda c, s: c.skip(*ids(s), ORDER_AT),
    "unskip": lambda c, s: (c.skip(*ids(s), ORDER_AT), c.unskip(*ids(s), ORDER_AT)),
    "delay": lambda c, s: c.set_next_billing_date(*ids(s), ORDER_AT + timedelta(days=7)),
    "pause": lambda c, s: c.pause(*ids(s), LATER),
    "resume": lambda c, s: (c.pause(*ids(s), LATER), c.activate(*ids(s), LATER)),
    "cancel": lambda c, s: c.cancel(*ids(s), c.cancellation_reasons()[0].id),
    "reasons": lambda c, s: c.cancellation_reasons(),
    "webhooks": lambda c, s: (
        c.create_webhook("SUBSCRIPTION_SKIP", "https://bot.example.com/smartrr/webhook?s=1"),
        c.webhooks(),
    ),
    "phone": lambda c, s: c.upcoming_order_sms(),
    "connection": lambda c, s: c.check_connection(),
    "write access": lambda c, s: c.check_write_access(),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_client_call_is_one_the_document_allows(
    name: str, store: SandboxStore, client: SmartrrClient, checked: list[requests.Response]
) -> None:
    [state] = store.states()

    CALLS[name](client, state)

    assert checked, "the call sent nothing"
    for response in checked:
        request = response.request
        validate_request(request)
        body = json.loads(request.body) if request.body else None
        if body is not None:
            assert unknown_keys(request.method or "", request.url or "", body) == []
        assert all(ISO.match(value) for value in dates_in(body)), body
        if response.ok:
            validate_http_response(response)


def test_a_delay_keeps_the_time_of_day_in_the_request(
    store: SandboxStore, client: SmartrrClient, checked: list[requests.Response]
) -> None:
    [state] = store.states()

    client.set_next_billing_date(state["custRel"]["id"], state["id"], ORDER_AT + timedelta(7))

    assert json.loads(checked[-1].request.body or "{}") == {"date": "2026-12-15T15:37:00.000Z"}
