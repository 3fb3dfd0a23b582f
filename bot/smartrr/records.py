"""What the Smartrr client returns: subscriptions, customers, line items, reasons, webhooks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


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
