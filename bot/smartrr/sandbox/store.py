"""The sandbox's data kept in memory, plus knobs that make the server misbehave (for tests)."""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from bot.smartrr.sandbox import actions
from bot.smartrr.sandbox.actions import ActionRefused
from bot.smartrr.sandbox.fixtures import CANCELLATION_REASONS, PHONE, UNPAUSE_KEY, iso

JSON = dict[str, Any]


def utcnow() -> datetime:
    """The current moment, aware UTC."""
    return datetime.now(UTC)


def webhook_id(event_type: str, url: str) -> str:
    """A webhook's id: the same event type and URL make the same webhook."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{event_type} {url}"))


def split_notes(state: JSON) -> tuple[JSON, JSON]:
    """A fixture state without the unpause date it carries, and the notes to keep it in."""
    state = dict(state)
    until = state.pop(UNPAUSE_KEY, None)
    return state, ({"unpauseDate": until} if until else {})


class SandboxStore:
    """Thread-safe in-memory purchase states, webhooks and settings, plus failure knobs."""

    def __init__(
        self, states: Iterable[JSON] = (), *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, JSON] = {}
        #: The sandbox's notes on states (see `bot.smartrr.sandbox.actions`), for those with any.
        self._notes: dict[str, JSON] = {}
        # Ids per listed status (None: all), kept until the next change: paging through
        # 100,000 states then costs a slice per page, not a scan of them all.
        self._listings: dict[str | None, list[str]] = {}
        self._webhooks: dict[str, JSON] = {}
        self._phone = dict(PHONE)
        self._reasons = copy.deepcopy(CANCELLATION_REASONS)
        self._failures: list[tuple[int, str | None]] = []
        self.calls: list[tuple[str, str]] = []
        #: Requests being answered now, and the most there ever were at once.
        self.in_flight = self.most_in_flight = 0
        self.delay = 0.0
        self.clock = clock
        self.add(*states)

    # Knobs and bookkeeping, the same for every store.

    def fail_next(self, n: int, status: int = 500, retry_after: str | None = None) -> None:
        """Make the next `n` requests answer `status` (with Retry-After if given)."""
        with self._lock:
            self._failures.extend([(status, retry_after)] * n)

    def heal(self) -> None:
        """End every injected failure and delay: Smartrr is back."""
        with self._lock:
            self._failures.clear()
        self.delay = 0.0

    def record(self, method: str, path: str) -> tuple[int, str | None] | None:
        """Log a request; return the injected failure it must answer with, if any."""
        with self._lock:
            self.calls.append((method, path))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            return self._failures.pop(0) if self._failures else None

    def answered(self) -> None:
        """A request that `record` logged has been answered."""
        with self._lock:
            self.in_flight -= 1

    # Purchase states.

    def add(self, *states: JSON) -> None:
        """Store (or replace) purchase states, keyed by their id."""
        # One memo for the call: the organization all states share is copied once.
        memo: dict[int, Any] = {}
        with self._lock:
            for given in states:
                state, notes = split_notes(given)
                self._states[state["id"]] = copy.deepcopy(state, memo)
                self._set_notes(state["id"], notes)
            self._listings.clear()

    def states(self) -> list[JSON]:
        """Copies of all purchase states, in insertion order."""
        with self._lock:
            self._settle()
            return copy.deepcopy(list(self._states.values()))

    def purchase_state(self, state_id: str) -> JSON:
        """A copy of one purchase state; KeyError if unknown."""
        with self._lock:
            self._settle()
            return copy.deepcopy(self._states[state_id])

    def unpause_date(self, state_id: str) -> datetime | None:
        """When a paused state resumes by itself, if it does; KeyError if unknown."""
        with self._lock:
            self._settle()
            if state_id not in self._states:
                raise KeyError(state_id)
            until = self._notes.get(state_id, {}).get("unpauseDate")
            return datetime.fromisoformat(until) if until else None

    def page(self, status: str | None, number: int, size: int) -> tuple[list[JSON], int]:
        """One page of purchase states (optionally of one status) and the matching total."""
        with self._lock:
            self._settle()
            listing = self._listings.get(status)
            if listing is None:
                listing = self._listings[status] = [
                    key
                    for key, state in self._states.items()
                    if status is None or state["purchaseStateStatus"] == status
                ]
            chosen = listing[number * size : (number + 1) * size]
            return copy.deepcopy([self._states[key] for key in chosen]), len(listing)

    def by_shopify_id(self, shopify_id: str) -> JSON | None:
        """The purchase state with this Shopify subscription id, if any."""
        with self._lock:
            self._settle()
            for state in self._states.values():
                if state.get("shopifyId") == shopify_id:
                    return copy.deepcopy(state)
            return None

    def for_customer(self, customer_id: str) -> list[JSON]:
        """A customer's purchase states."""
        with self._lock:
            self._settle()
            return copy.deepcopy(
                [s for s in self._states.values() if s["custRel"]["id"] == customer_id]
            )

    def act(self, customer_id: str, state_id: str, action: str, body: JSON) -> JSON:
        """Apply an action like Smartrr would and return the updated purchase state."""
        with self._lock:
            self._settle()
            stored = self._states.get(state_id)
            if stored is None or stored["custRel"]["id"] != customer_id:
                raise ActionRefused(
                    404, f"No purchase state {state_id} for customer {customer_id}."
                )
            # Changed on copies, so a refused action leaves nothing half done.
            state, notes = copy.copy(stored), copy.deepcopy(self._notes.get(state_id, {}))
            reasons = {reason["id"] for reason in self._reasons}
            actions.act(action, state, notes, body, self.clock(), reasons)
            self._states[state_id] = state
            self._set_notes(state_id, notes)
            self._listings.clear()
            return copy.deepcopy(state)

    def _set_notes(self, state_id: str, notes: JSON) -> None:
        if notes:
            self._notes[state_id] = notes
        else:
            self._notes.pop(state_id, None)

    def _settle(self) -> None:
        """Resume the paused states whose unpause date has passed (under the lock)."""
        now = self.clock()
        for state_id, notes in list(self._notes.items()):
            if actions.resume_if_due(self._states[state_id], notes, now):
                self._set_notes(state_id, notes)
                self._listings.clear()

    # Cancellation reasons, webhooks and the SMS settings.

    def cancellation_reasons(self) -> list[JSON]:
        """The reasons a cancellation may give (``ICancellationReason``)."""
        with self._lock:
            return copy.deepcopy(self._reasons)

    def webhooks(self) -> list[JSON]:
        """The webhooks registered (``IWebhook``)."""
        with self._lock:
            return copy.deepcopy(list(self._webhooks.values()))

    def add_webhook(self, event_type: str, url: str) -> JSON:
        """Register a webhook; the same event type and URL again give the existing one."""
        key = webhook_id(event_type, url)
        with self._lock:
            if key not in self._webhooks:
                now = iso(self.clock())
                self._webhooks[key] = {
                    "id": key,
                    "createdDate": now,
                    "updatedDate": now,
                    "eventType": event_type,
                    "url": url,
                }
            return dict(self._webhooks[key])

    def delete_webhook(self, webhook_id: str) -> bool:
        """Remove a webhook; False if there was none with this id."""
        with self._lock:
            return self._webhooks.pop(webhook_id, None) is not None

    def phone(self) -> JSON:
        """Smartrr's SMS settings (``IPhoneDB``)."""
        with self._lock:
            return dict(self._phone)

    def set_phone(self, changes: JSON) -> JSON:
        """Change the SMS settings with an ``IPhone`` body; return them."""
        with self._lock:
            self._phone.update(changes, updatedDate=iso(self.clock()))
            return dict(self._phone)
