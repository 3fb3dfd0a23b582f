"""bot.smartrr.contract: Smartrr's OpenAPI document, normalised, as openapi-core checks it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from bot.smartrr import contract
from bot.smartrr.contract import ContractViolation
from bot.smartrr.sandbox import make_purchase_state

STATE = "/vendor/customer/{customerRelationshipId}/purchase-state/{customerPurchaseStateId}"
ACTION = "https://api.smartrr.com/vendor/customer/c1/purchase-state/s1"
ONE_STATE = "/vendor/purchase-state/1234"
SOON = datetime(2026, 12, 8, 15, 37, tzinfo=UTC)


def prepared(method: str, url: str, body: Any = None, token: str | None = "t") -> Any:
    headers = {"x-smartrr-access-token": token} if token is not None else {}
    return requests.Request(method, url, json=body, headers=headers).prepare()


def state(**changes: Any) -> dict[str, Any]:
    return {**make_purchase_state("s1", SOON), **changes}


def test_a_fixture_purchase_state_is_what_the_document_describes() -> None:
    contract.validate_response("GET", ONE_STATE, 200, state())


def test_allof_parts_are_merged_into_one_closed_object() -> None:
    schema = contract.document()["components"]["schemas"]["IPurchaseStateWithCustomerRelationship"]

    assert "allOf" not in schema
    assert schema["additionalProperties"] is False
    assert {"id", "custRel", "nextBillingDate", "stLineItems"} <= set(schema["properties"])
    assert {"id", "createdDate", "schedule", "shippingAddress"} <= set(schema["required"])


def test_a_purchase_state_with_a_field_the_document_does_not_name_is_refused() -> None:
    with pytest.raises(ContractViolation, match="unpauseDate"):
        contract.validate_response("GET", ONE_STATE, 200, state(unpauseDate=None))


def test_a_customer_with_a_time_zone_is_refused() -> None:
    custom = state()
    custom["custRel"]["timezone"] = "America/Denver"

    with pytest.raises(ContractViolation, match="timezone"):
        contract.validate_response("GET", ONE_STATE, 200, custom)


@pytest.mark.parametrize("field", ["createdDate", "pausedAt", "schedule", "pmtMth"])
def test_a_purchase_state_without_a_required_field_is_refused(field: str) -> None:
    incomplete = state()
    del incomplete[field]

    with pytest.raises(ContractViolation, match=field):
        contract.validate_response("GET", ONE_STATE, 200, incomplete)


def test_merged_nullable_dates_accept_null() -> None:
    contract.validate_response(
        "GET", ONE_STATE, 200, state(nextBillingDate=None, pausedAt=None, cancelledAt=None)
    )


@pytest.mark.parametrize(
    "moment", ["2026-12-21", "2026-12-21T15:37:00Z", "2026-12-21T15:37:00.000+00:00", "soon"]
)
def test_iso_date_string_is_a_full_utc_timestamp_with_milliseconds(moment: str) -> None:
    with pytest.raises(ContractViolation, match="ISODateString"):
        contract.validate_response("GET", ONE_STATE, 200, state(nextBillingDate=moment))
    with pytest.raises(ContractViolation, match="ISODateString"):
        contract.validate_request(prepared("PUT", f"{ACTION}/pause", {"unpauseDate": moment}))


def test_a_complete_timestamp_is_accepted_at_any_host() -> None:
    body = {"unpauseDate": "2026-12-21T15:37:00.000Z"}
    for base in ("https://api.smartrr.com", "http://127.0.0.1:5123", "https://api.smartrr.com:443"):
        url = f"{base}/vendor/customer/c1/purchase-state/s1/pause"
        contract.validate_request(prepared("PUT", url, body))


def test_activate_with_a_null_date_is_refused_as_a_strict_server_reads_it() -> None:
    with pytest.raises(ContractViolation, match="nextBillingDate") as refused:
        contract.validate_request(prepared("PUT", f"{ACTION}/activate", {"nextBillingDate": None}))

    assert refused.value.status == 400
    assert isinstance(refused.value, ValueError)


@pytest.mark.parametrize(
    ("method", "url", "body", "status"),
    [
        ("PUT", f"{ACTION}/pause", {}, 400),
        ("PUT", f"{ACTION}/skip", None, 400),
        ("POST", "https://api.smartrr.com/vendor/webhook", {"eventType": "NEW", "url": "u"}, 400),
        ("GET", "https://api.smartrr.com/vendor/no-such-thing", None, 404),
        ("DELETE", "https://api.smartrr.com/vendor/purchase-state", None, 405),
    ],
)
def test_refused_requests_carry_the_status_a_server_answers(
    method: str, url: str, body: Any, status: int
) -> None:
    with pytest.raises(ContractViolation) as refused:
        contract.validate_request(prepared(method, url, body))

    assert refused.value.status == status


def test_a_request_without_the_token_is_a_401() -> None:
    with pytest.raises(ContractViolation) as refused:
        url = "https://api.smartrr.com/vendor/purchase-state"
        contract.validate_request(prepared("GET", url, token=None))

    assert refused.value.status == 401


def test_the_request_schema_is_the_documents_body() -> None:
    pause = contract.request_schema("PUT", f"{STATE}/pause")
    cancel = contract.request_schema("put", f"{STATE}/cancel")

    assert (pause["required"], cancel["required"]) == (["unpauseDate"], ["reasonId"])
    with pytest.raises(LookupError):
        contract.request_schema("GET", "/vendor/purchase-state")


def test_unknown_keys_names_what_an_open_schema_would_let_through() -> None:
    skip = {"date": "2026-12-08T15:37:00.000Z", "reason": "travel"}
    script = {"condition": {"orderNumber": 1, "colour": "red"}, "extra": True}

    contract.validate_request(prepared("PUT", f"{ACTION}/skip", skip))  # the document allows it
    assert contract.unknown_keys("PUT", f"{ACTION}/skip", skip) == ["reason"]
    assert contract.unknown_keys("PUT", f"{ACTION}/pause", {"unpauseDate": "x"}) == []
    assert contract.unknown_keys(
        "POST", "https://api.smartrr.com/vendor/smartrr-script", script
    ) == ["condition.colour", "extra"]


def test_path_template_names_the_documents_path() -> None:
    assert contract.path_template("PUT", f"{ACTION}/skip") == f"{STATE}/skip"
    assert contract.path_template("GET", ONE_STATE) == (
        "/vendor/purchase-state/{shopifySubscriptionId}"
    )


def test_an_error_the_operation_does_not_list_must_be_an_error_response() -> None:
    contract.validate_response("GET", ONE_STATE, 404, {"message": "No such state", "status": 404})

    with pytest.raises(ContractViolation, match="message"):
        contract.validate_response("GET", ONE_STATE, 422, {"message": 5})
    with pytest.raises(ContractViolation, match="no such answer"):
        contract.validate_response("GET", ONE_STATE, 201, state())


def test_the_published_document_is_left_as_it_is() -> None:
    raw = contract.raw_document()

    assert raw["servers"] == [{"url": "https://smartrr-dev.local.com"}]
    assert "allOf" in raw["components"]["schemas"]["IPurchaseStateWithCustomerRelationship"]
    assert "pattern" not in raw["components"]["schemas"]["ISODateString"]
