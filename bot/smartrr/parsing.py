"""Reading Smartrr's JSON into records; anything unreadable raises SmartrrDataError."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from bot.rules.phones import state_code
from bot.smartrr.errors import SmartrrDataError
from bot.smartrr.records import CancellationReason, Customer, LineItem, PurchaseState, Webhook

T = TypeVar("T")

#: How addresses spell the US; a province elsewhere (Western Australia: "WA") is no state.
_US_NAMES = frozenset({"US", "USA", "UNITED STATES", "UNITED STATES OF AMERICA"})
_RRULE_UNITS = {"DAILY": "day", "WEEKLY": "week", "MONTHLY": "month", "YEARLY": "year"}


def unwrap_one(body: Any) -> Any:
    """The object of a one-item answer, unwrapped from ``{"data": {...}}`` if need be."""
    if isinstance(body, dict) and "id" not in body and isinstance(body.get("data"), dict):
        return body["data"]
    return body


def unwrap_list(body: Any) -> list[Any]:
    """The items of a list answer, bare or wrapped in ``{"data": [...]}``."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        return list(body["data"])
    raise SmartrrDataError("Smartrr answered a list call without a list of subscriptions.")


def parse_purchase_state(raw: Any, fallback_customer_id: str | None = None) -> PurchaseState:
    """A purchase state from its JSON; ``fallback_customer_id`` fills a missing customer id."""
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
        variant = mapping(entry.get("vnt"))
        product = mapping(variant.get("purchasable"))
        variant_name = _text(variant.get("purchasableVariantName"))
        title = _text(product.get("purchasableName")) or variant_name
        if title is None:
            continue
        quantity = int_or_none(entry.get("quantity"))
        yield LineItem(
            product_title=title,
            variant_title=variant_name if variant_name != title else None,
            quantity=quantity if quantity is not None and quantity > 0 else 1,
            id=_text(entry.get("id")),
            is_add_on=entry.get("isAddOn") is True,
        )


def _schedule(raw: dict[str, Any]) -> tuple[str | None, int | None]:
    """The cadence from the schedule's RRULE ("FREQ=WEEKLY;INTERVAL=2" → week, 2)."""
    rule = _text(mapping(raw.get("schedule")).get("deliveryRRuleString"))
    if rule is None:
        return None, None
    parts = dict(
        part.split("=", 1) for part in rule.upper().removeprefix("RRULE:").split(";") if "=" in part
    )
    unit = _RRULE_UNITS.get(parts.get("FREQ", ""))
    if unit is None:
        return None, None
    count = int_or_none(parts.get("INTERVAL", "1"))
    return unit, count if count is not None and count > 0 else 1


def readable(body: Any, read: Callable[[Any], T | None], what: str) -> list[T]:
    """The items of a list answer that ``read`` makes sense of; the rest are left out."""
    if not isinstance(body, list):
        raise SmartrrDataError(f"Smartrr answered {what} without a list.")
    return [item for raw in body if (item := read(raw)) is not None]


def cancellation_reason(raw: Any) -> CancellationReason | None:
    """A cancellation reason from its JSON, or None unless it is an object with an id."""
    if not isinstance(raw, dict) or _text(raw.get("id")) is None:
        return None
    text = raw.get("text")
    # The document types the text as an object of translations; take English or the first.
    if isinstance(text, dict):
        text = text.get("en") or next((v for v in text.values() if isinstance(v, str)), None)
    label = _text(text) or _text(raw.get("reasonType")) or str(raw["id"])
    return CancellationReason(id=str(raw["id"]), text=label, archived=raw.get("isArchived") is True)


def webhook(raw: Any) -> Webhook | None:
    """A webhook from its JSON, or None when it lacks an id, event type or URL."""
    hook = mapping(raw)
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


def mapping(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def int_or_none(value: Any) -> int | None:
    """``value`` as a whole number (from an int, a whole float or digits), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None
