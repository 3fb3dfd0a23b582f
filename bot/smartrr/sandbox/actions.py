"""What each purchase-state action does, as Smartrr does it; plain values, no storage.

A state travels with the sandbox's notes on it, which the document's purchase state has
no field for: ``skipped`` (the billing moments skips replaced, newest last) and
``unpauseDate`` (when a pause ends).
"""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Callable, Collection
from datetime import date, datetime, timedelta
from typing import Any

from bot.smartrr.sandbox.fixtures import iso

JSON = dict[str, Any]

#: The actions the sandbox answers (``PUT …/purchase-state/{id}/<action>``).
ACTIONS = ("skip", "unskip", "next-billing-date", "pause", "activate", "cancel")
#: The actions whose answer is ``{"newCustomerPurchaseState": …}``, as the document says.
WRAPPED = frozenset({"pause", "activate", "cancel"})


class ActionRefused(Exception):
    """A request the sandbox answers with an error status and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def act(
    action: str, state: JSON, notes: JSON, body: JSON, now: datetime, reasons: Collection[str]
) -> None:
    """Apply ``action`` to ``state`` and ``notes`` in place; ``reasons`` are the reason ids."""
    status = state["purchaseStateStatus"]
    if status in ("EXPIRED", "FAILED"):
        raise ActionRefused(422, f"An {status.lower()} subscription cannot be changed.")
    _ACTIONS[action](state, notes, body, now, reasons)
    state["updatedDate"] = iso(now)


def resume_if_due(state: JSON, notes: JSON, now: datetime) -> bool:
    """Resume a paused state whose unpause date has come, as Smartrr does; True if it did."""
    until = _moment(notes.get("unpauseDate"))
    if state["purchaseStateStatus"] != "PAUSED" or until is None or until > now:
        return False
    state.update(purchaseStateStatus="ACTIVE", pausedAt=None, updatedDate=iso(until))
    billing = _moment(state.get("nextBillingDate"))
    if billing is None or billing < until:
        state["nextBillingDate"] = iso(until)
    notes.pop("unpauseDate")
    return True


def _skip(state: JSON, notes: JSON, body: JSON, now: datetime, _: Collection[str]) -> None:
    current = _moment(state["nextBillingDate"])
    if state["purchaseStateStatus"] != "ACTIVE" or current is None:
        raise ActionRefused(422, "Only an active subscription with an upcoming order can skip.")
    wanted = _date(body, "date")
    if wanted is not None and wanted.date() != current.date():
        raise ActionRefused(422, f"There is no order on {wanted.date()} to skip.")
    notes.setdefault("skipped", []).append(state["nextBillingDate"])
    state["nextBillingDate"] = iso(step(current, state["schedule"]["deliveryRRuleString"]))


def _unskip(state: JSON, notes: JSON, body: JSON, now: datetime, _: Collection[str]) -> None:
    skipped: list[str] = notes.get("skipped", [])
    if state["purchaseStateStatus"] != "ACTIVE" or not skipped:
        raise ActionRefused(422, "There is no skipped order to restore.")
    wanted = _date(body, "date")
    if wanted is None:
        restored = skipped[-1]
    else:
        matching = [moment for moment in skipped if _day(moment) == wanted.date()]
        if not matching:
            raise ActionRefused(422, f"No order on {wanted.date()} was skipped.")
        restored = matching[-1]
    skipped.remove(restored)
    current = state["nextBillingDate"]
    state["nextBillingDate"] = restored if current is None else min(restored, current)


def _next_billing_date(
    state: JSON, notes: JSON, body: JSON, now: datetime, _: Collection[str]
) -> None:
    _refuse_if_cancelled(state, "has no next billing date")
    when = _date(body, "date")
    if when is None:
        raise ActionRefused(400, "date is required: the moment of the next order.")
    if when <= now:
        raise ActionRefused(422, "The next billing date must be in the future.")
    state["nextBillingDate"] = iso(when)
    notes.pop("skipped", None)


def _pause(state: JSON, notes: JSON, body: JSON, now: datetime, _: Collection[str]) -> None:
    _refuse_if_cancelled(state, "cannot be paused")
    until = _date(body, "unpauseDate")
    if until is None or until <= now:
        raise ActionRefused(422, "The unpause date must be in the future.")
    if state["purchaseStateStatus"] != "PAUSED":
        state.update(purchaseStateStatus="PAUSED", pausedAt=iso(now))
    notes["unpauseDate"] = iso(until)


def _activate(state: JSON, notes: JSON, body: JSON, now: datetime, _: Collection[str]) -> None:
    if state["purchaseStateStatus"] != "PAUSED":
        raise ActionRefused(422, "Only a paused subscription can be activated.")
    when = _date(body, "nextBillingDate")
    if when is None or when <= now:
        raise ActionRefused(422, "The next billing date must be in the future.")
    state.update(purchaseStateStatus="ACTIVE", pausedAt=None, nextBillingDate=iso(when))
    notes.pop("unpauseDate", None)


def _cancel(state: JSON, notes: JSON, body: JSON, now: datetime, reasons: Collection[str]) -> None:
    _refuse_if_cancelled(state, "is cancelled already")
    if body.get("reasonId") not in reasons:
        raise ActionRefused(422, f"There is no cancellation reason {body.get('reasonId')!r}.")
    state.update(purchaseStateStatus="CANCELLED", cancelledAt=iso(now))
    notes.clear()


_ACTIONS: dict[str, Callable[[JSON, JSON, JSON, datetime, Collection[str]], None]] = {
    "skip": _skip,
    "unskip": _unskip,
    "next-billing-date": _next_billing_date,
    "pause": _pause,
    "activate": _activate,
    "cancel": _cancel,
}


def _refuse_if_cancelled(state: JSON, what: str) -> None:
    if state["purchaseStateStatus"] == "CANCELLED":
        raise ActionRefused(422, f"A cancelled subscription {what}.")


def step(moment: datetime, rrule: str) -> datetime:
    """The billing moment one cadence step after ``moment`` (``FREQ=MONTHLY;INTERVAL=1``)."""
    parts = dict(part.split("=", 1) for part in rrule.split(";") if "=" in part)
    count = int(parts.get("INTERVAL", "1"))
    frequency = parts.get("FREQ", "MONTHLY")
    if frequency == "DAILY":
        return moment + timedelta(days=count)
    if frequency == "WEEKLY":
        return moment + timedelta(weeks=count)
    months = count * 12 if frequency == "YEARLY" else count
    years, month_index = divmod(moment.month - 1 + months, 12)
    year, month = moment.year + years, month_index + 1
    return moment.replace(year=year, month=month, day=min(moment.day, monthrange(year, month)[1]))


def _date(body: JSON, key: str) -> datetime | None:
    """A date from a body the document has already checked (an ISODateString or absent)."""
    raw = body.get(key)
    try:
        return _moment(raw)
    except ValueError:
        raise ActionRefused(400, f"{key} is not a date: {raw!r}.") from None


def _moment(raw: Any) -> datetime | None:
    return datetime.fromisoformat(raw) if isinstance(raw, str) else None


def _day(raw: str) -> date | None:
    moment = _moment(raw)
    return moment.date() if moment else None
