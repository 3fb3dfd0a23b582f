"""Generated Smartrr-like stores: many subscriptions across US zones and billing dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.smartrr.sandbox import make_customer, make_purchase_state

#: Area codes across every US zone (New York, Chicago, Denver, Phoenix, Los Angeles,
#: Anchorage, Honolulu, Indianapolis, Miami).
AREA_CODES = ("212", "312", "303", "602", "213", "907", "808", "317", "305")


def phone(n: int) -> str:
    """A distinct valid US number for subscriber ``n``."""
    return f"+1{AREA_CODES[n % len(AREA_CODES)]}{2000000 + n // len(AREA_CODES):07d}"


def toll_free(n: int) -> str:
    """A distinct valid toll-free number for subscriber ``n``: it has no zone of its own,
    so the bot places its texts in the shop's zone."""
    return f"+1800{2000000 + n:07d}"


def due_now_zone(now: datetime) -> str:
    """A zone where it is mid-afternoon at ``now``: the shop's, for ``generate(due_now=True)``."""
    offset = (16 - now.hour) % 24
    offset -= 24 if offset > 14 else 0
    return f"Etc/GMT{-offset:+d}"


def generate(count: int, now: datetime, *, due_now: bool = False) -> list[dict[str, Any]]:
    """``count`` active purchase states, one customer each.

    Billing dates spread over the next 30 days (so plans both schedule and
    expire), or, with ``due_now``, all fall so that every notice is due at once
    when the shop's zone is `due_now_zone` (Smartrr's purchase state names no
    zone: the numbers are toll-free, which the bot places in the shop's zone).
    """
    states = []
    for n in range(count):
        key = f"bench-{n}"
        number = toll_free(n) if due_now else phone(n)
        customer = make_customer(key, first_name=f"Sub{n}", phone=number)
        if due_now:
            billing = now + timedelta(days=3, minutes=-1)
        else:
            billing = now + timedelta(days=1 + n % 30, hours=n % 24)
        states.append(make_purchase_state(key, billing.astimezone(UTC), customer=customer))
    return states
