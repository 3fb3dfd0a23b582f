"""Purchase states shaped as Smartrr's OpenAPI document has them, and the demo shop's data.

Where things live (as in the document): the cadence in ``schedule.deliveryRRuleString``
(``FREQ=WEEKLY;INTERVAL=2``), the product's name in ``vnt.purchasable.purchasableName``
and the variant's in ``vnt.purchasableVariantName``, the address in the purchase state's
``shippingAddress``, the phone in ``custRel.phone`` or ``custRel.inferredPhone``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

JSON = dict[str, Any]

#: When the demo shop's records were made (created, updated and Shopify dates).
CREATED = "2024-01-02T15:00:00.000Z"
#: Shopify's name for the only variant of a product without variants.
DEFAULT_VARIANT = "Default Title"
#: Where `make_purchase_state` hands the store an unpause date: the document's purchase
#: state has none, so `SandboxStore.add` takes it off and keeps it aside.
UNPAUSE_KEY = "sandbox:unpauseDate"
#: Where `make_customer` keeps the address until `make_purchase_state` puts it on the
#: purchase state, where the document has it (``custRel`` has no address).
ADDRESS_KEY = "shippingAddress"

_NAMESPACE = uuid.UUID("5d3c1f4e-8a51-4c7e-9a43-2b8f0e6d7c11")
_FREQUENCIES = {"day": "DAILY", "week": "WEEKLY", "month": "MONTHLY", "year": "YEARLY"}
_PRICES = {
    "House Blend Coffee": 1899,
    "Swiss Water Decaf": 1999,
    "Earl Grey Tea": 1450,
    "Protein Bars": 2999,
    "Vitamin Pack": 3499,
}


def iso(moment: datetime) -> str:
    """``moment`` as the document writes dates: ``YYYY-MM-DDTHH:mm:ss.sssZ``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _uuid(kind: str, key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{kind}/{key}"))


def _record(kind: str, key: str) -> JSON:
    """The fields every stored Smartrr object has."""
    return {"id": _uuid(kind, key), "createdDate": CREATED, "updatedDate": CREATED}


def _shopify(kind: str, key: str) -> JSON:
    """The fields every object mirrored from Shopify has; its ids derive from ``key``."""
    derived = uuid.uuid5(_NAMESPACE, f"{kind}/{key}")
    return {
        "id": str(derived),
        "createdDate": CREATED,
        "updatedDate": CREATED,
        # Shopify ids are large integers.
        "shopifyId": str(10**12 + derived.int % 10**12),
        "shopifyUpdateDate": CREATED,
    }


#: The merchant, shared by every purchase state (a store of 100,000 holds it once).
SELLING_ORGANIZATION: JSON = {
    **_record("organization", "bean-club"),
    "orgName": "Bean Club",
    "initialSubscriptionImportComplete": True,
    "billingTime": "14:00:00",
    "billingTimezone": "America/New_York",
    "account": {},
}
ORGANIZATION: JSON = {**SELLING_ORGANIZATION, "vendorUsers": [], "sts": []}

#: The reasons a subscriber may give for cancelling (``ICancellationReason``).
CANCELLATION_REASONS: list[JSON] = [
    {
        "id": _uuid("cancellation-reason", reason),
        "reasonType": reason,
        "text": {"en": text},
        "action": "CANCEL",
        "uiIdx": index,
        "hasCustomerPrompt": False,
        "isArchived": False,
    }
    for index, (reason, text) in enumerate(
        (
            ("TOO_MUCH_PRODUCT", "I have more than I need"),
            ("TOO_EXPENSIVE", "It costs too much"),
            ("OTHER", "Something else"),
        )
    )
]

#: Smartrr's own SMS settings (``IPhoneDB``): its upcoming-order text is on by default.
PHONE: JSON = {
    **_record("phone", "bean-club"),
    "phoneNumber": "+18885550123",
    "twilioAccountSid": "",
    "sendUpcomingOrderSms": True,
}


def make_customer(
    key: str,
    *,
    first_name: str | None = None,
    last_name: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    address: JSON | None = None,
    inferred_phone: str | None = None,
) -> JSON:
    """A ``custRel`` with ids derived from `key`; fields given as None are left out.

    The address waits under `ADDRESS_KEY` for `make_purchase_state`, which moves it to the
    purchase state's ``shippingAddress``.
    """
    customer: JSON = {
        **_shopify("customer", key),
        "role": "individualCustomer",
        "customerCurrency": "USD",
        "orderCount": 0,
        "totalSpent": "0",
        "sellingOrganization": SELLING_ORGANIZATION,
    }
    optional = {
        "email": email,
        "phone": phone,
        "inferredPhone": inferred_phone,
        "firstName": first_name,
        "lastName": last_name,
        ADDRESS_KEY: address,
    }
    customer.update({name: value for name, value in optional.items() if value is not None})
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
    unpause_date: date | datetime | None = None,
) -> JSON:
    """A purchase state (``IPurchaseStateWithCustomerRelationship``) with ids from `key`.

    ``items`` are (product, variant or None, quantity); ``unit`` and ``frequency`` make the
    schedule's RRULE. A PAUSED or CANCELLED state is so since `CREATED`. An unpause date
    (a date means midnight UTC) rides along under `UNPAUSE_KEY` for the store.
    """
    cust = dict(customer) if customer is not None else make_customer(key)
    lines = [_line_item(f"{key}/{index}", *item) for index, item in enumerate(items)]
    total = str(sum(int(line["basePrice"]) * line["quantity"] for line in lines))
    state: JSON = {
        **_shopify("purchase-state", key),
        "totalFromLineItems": total,
        "totalLineItemsDiscount": "0",
        "totalLineItemsAfterDiscount": total,
        "totalShipping": "0",
        "totalDiscount": "0",
        "totalEstimatedNet": total,
        "purchaseStateStatus": status,
        "createdViaCustomerPortal": False,
        "initialSubmissionDate": CREATED,
        "isRepeatCustomer": False,
        "currency": "USD",
        "discounts": [],
        "shippingAddress": cust.pop(ADDRESS_KEY, None) or {},
        "nextBillingDate": iso(next_billing_at) if next_billing_at else None,
        "pausedAt": CREATED if status == "PAUSED" else None,
        "cancelledAt": CREATED if status == "CANCELLED" else None,
        "externalSubscriptionCancelledAt": None,
        "externalSubscriptionCreatedDate": None,
        "schedule": _schedule(f"FREQ={_FREQUENCIES[unit]};INTERVAL={frequency}"),
        "organization": ORGANIZATION,
        "pmtMth": {
            **_shopify("payment-method", key),
            "__paymentMethodKey__": "shopify",
            "paymentMethodInternalCustomerId": cust["shopifyId"],
        },
        "stLineItems": lines,
        "custRel": cust,
    }
    if unpause_date is not None:
        if not isinstance(unpause_date, datetime):
            unpause_date = datetime(*unpause_date.timetuple()[:3], tzinfo=UTC)
        state[UNPAUSE_KEY] = iso(unpause_date)
    return state


def _line_item(key: str, product: str, variant: str | None, quantity: int) -> JSON:
    price = _price(product)
    return {
        **_shopify("line-item", key),
        "discounts": [],
        "basePrice": price,
        "priceAfterDiscounts": price,
        "priceCurrency": "USD",
        "quantity": quantity,
        "isAddOn": False,
        "vnt": _variant(product, variant),
    }


def _price(product: str) -> str:
    return str(_PRICES.get(product, 1500))


# Variants and schedules are shared by the states that have them: a benchmark's store
# of 100,000 states holds each once.


@cache
def _variant(product: str, variant: str | None) -> JSON:
    """A variant with its product (``IPurchasableVariantWithPurchasable``)."""
    return {
        **_shopify("variant", f"{product}/{variant}"),
        "purchasableVariantName": variant or DEFAULT_VARIANT,
        "isActiveInShopify": True,
        "requiresShipping": True,
        "presentmentPrices": [{"price": _price(product), "priceCurrency": "USD"}],
        "purchasable": {
            **_shopify("product", product),
            "purchasableName": product,
            "description": "",
            "isActiveInShopify": True,
        },
    }


@cache
def _schedule(rrule: str) -> JSON:
    """A schedule (``ISchedule``) whose cadence is ``rrule``."""
    return {
        **_record("schedule", rrule),
        "anchor": {},
        "extendOnUserSkip": True,
        "extendOnHiddenSkip": True,
        "ignorePastIndicesWhenExtending": True,
        "initialSequenceStartDate": CREATED,
        "deliveryFrequencyMultiple": 1,
        "paymentFrequencyMultiple": 1,
        "skips": [],
        "deliveryRRuleString": rrule,
    }


def demo_seed(now: datetime) -> list[JSON]:
    """Demo subscribers across US time zones, billing 2 to 10 days after `now`.

    Maya has two subscriptions on different days, Kenji two on the same day, Ana a coffee
    and a decaf; Dana's is paused for 30 days.
    """
    people = {
        key: make_customer(
            key,
            first_name=first,
            last_name=last,
            phone=phone,
            email=f"{first}.{last}@example.com".lower(),
            address={"city": city, "provinceCode": state, "zip": zip_code, "countryCode": "US"},
        )
        for key, first, last, phone, city, state, zip_code in (
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
    vitamins = ("Vitamin Pack", None, 1)
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
