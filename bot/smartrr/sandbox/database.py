"""The sandbox's data in the bot's own database: one Smartrr for every process of the bot.

Each action is a read-modify-write inside one transaction: the row is read with
``SELECT … FOR UPDATE`` on PostgreSQL, and on SQLite the transaction holds the write lock
from its start (`bot.storage.db.Database.begin`), so two processes never lose an update.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.smartrr.sandbox import actions
from bot.smartrr.sandbox.actions import ActionRefused
from bot.smartrr.sandbox.fixtures import CANCELLATION_REASONS, PHONE, demo_seed, iso
from bot.smartrr.sandbox.store import SandboxStore, split_notes, utcnow, webhook_id
from bot.storage.db import Database, upsert
from bot.storage.models import SandboxRecord

JSON = dict[str, Any]

PURCHASE_STATE = "purchase-state"
WEBHOOK = "webhook"
REASON = "cancellation-reason"
SMS_SETTINGS = "phone"
#: The marker that the demo data went in: a merchant who emptied the sandbox keeps it empty.
SEEDED = "seeded"


class DatabaseSandboxStore(SandboxStore):
    """A `SandboxStore` whose data lives in ``database`` (the knobs stay per process)."""

    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.database = database
        super().__init__(clock=clock)

    def seed_once(self) -> bool:
        """Put the demo data in unless it ever went in; True if it went in now."""
        now = self.clock()
        with self.database.begin() as session:
            # A second process's marker waits for this transaction, then is dropped.
            if not _insert_new(session, SEEDED, "demo", {"seededAt": iso(now)}):
                return False
            _seed(session, now)
        return True

    def reset(self) -> int:
        """Replace all data with fresh demo data; return how many purchase states it has."""
        now = self.clock()
        with self.database.begin() as session:
            session.execute(delete(SandboxRecord))
            _insert_new(session, SEEDED, "demo", {"seededAt": iso(now)})
            return _seed(session, now)

    def add(self, *states: JSON) -> None:
        """Store (or replace) purchase states, keyed by their id."""
        if not states:
            return
        with self.database.begin() as session:
            _put_states(session, states)

    def states(self) -> list[JSON]:
        """All purchase states, in insertion order."""
        return [state for state, _ in self._entries()]

    def purchase_state(self, state_id: str) -> JSON:
        """One purchase state; KeyError if unknown."""
        return self._entry(state_id)[0]

    def unpause_date(self, state_id: str) -> datetime | None:
        """When a paused state resumes by itself, if it does; KeyError if unknown."""
        until = self._entry(state_id)[1].get("unpauseDate")
        return datetime.fromisoformat(until) if until else None

    def page(self, status: str | None, number: int, size: int) -> tuple[list[JSON], int]:
        """One page of purchase states (optionally of one status) and the matching total."""
        listing = [s for s, _ in self._entries() if status in (None, s["purchaseStateStatus"])]
        return listing[number * size : (number + 1) * size], len(listing)

    def by_shopify_id(self, shopify_id: str) -> JSON | None:
        """The purchase state with this Shopify subscription id, if any."""
        return next((s for s, _ in self._entries() if s.get("shopifyId") == shopify_id), None)

    def for_customer(self, customer_id: str) -> list[JSON]:
        """A customer's purchase states."""
        return [s for s, _ in self._entries() if s["custRel"]["id"] == customer_id]

    def act(self, customer_id: str, state_id: str, action: str, body: JSON) -> JSON:
        """Apply an action like Smartrr would and return the updated purchase state."""
        with self.database.begin() as session:
            row = session.scalars(
                _of(PURCHASE_STATE).where(SandboxRecord.key == state_id).with_for_update()
            ).one_or_none()
            if row is None or row.body["custRel"]["id"] != customer_id:
                raise ActionRefused(
                    404, f"No purchase state {state_id} for customer {customer_id}."
                )
            state: JSON = copy.deepcopy(row.body)
            notes: JSON = copy.deepcopy(row.notes)
            now = self.clock()
            actions.resume_if_due(state, notes, now)
            reasons = set(session.scalars(select(SandboxRecord.key).where(_kind(REASON))))
            actions.act(action, state, notes, body, now, reasons)
            row.body, row.notes = state, notes
        return state

    def cancellation_reasons(self) -> list[JSON]:
        """The reasons a cancellation may give (``ICancellationReason``)."""
        return self._bodies(REASON)

    def webhooks(self) -> list[JSON]:
        """The webhooks registered (``IWebhook``)."""
        return self._bodies(WEBHOOK)

    def add_webhook(self, event_type: str, url: str) -> JSON:
        """Register a webhook; the same event type and URL again give the existing one."""
        key, now = webhook_id(event_type, url), iso(self.clock())
        body = {
            "id": key,
            "createdDate": now,
            "updatedDate": now,
            "eventType": event_type,
            "url": url,
        }
        with self.database.begin() as session:
            _insert_new(session, WEBHOOK, key, body)
            return _one(session, WEBHOOK, key).body

    def delete_webhook(self, webhook_id: str) -> bool:
        """Remove a webhook; False if there was none with this id."""
        with self.database.begin() as session:
            row = session.scalars(_of(WEBHOOK).where(SandboxRecord.key == webhook_id)).first()
            if row is not None:
                session.delete(row)
            return row is not None

    def phone(self) -> JSON:
        """Smartrr's SMS settings (``IPhoneDB``)."""
        return next(iter(self._bodies(SMS_SETTINGS)), dict(PHONE))

    def set_phone(self, changes: JSON) -> JSON:
        """Change the SMS settings with an ``IPhone`` body; return them."""
        with self.database.begin() as session:
            _insert_new(session, SMS_SETTINGS, SMS_SETTINGS, dict(PHONE))
            row = _one(session, SMS_SETTINGS, SMS_SETTINGS, for_update=True)
            row.body = {**row.body, **changes, "updatedDate": iso(self.clock())}
            return row.body

    def _entries(self) -> list[tuple[JSON, JSON]]:
        """Every purchase state with its notes, as of now (due pauses resumed)."""
        now = self.clock()
        with self.database.read() as session:
            rows = session.scalars(_of(PURCHASE_STATE).order_by(SandboxRecord.id)).all()
            entries = [(dict(row.body), dict(row.notes)) for row in rows]
        for state, notes in entries:
            actions.resume_if_due(state, notes, now)
        return entries

    def _entry(self, state_id: str) -> tuple[JSON, JSON]:
        for state, notes in self._entries():
            if state["id"] == state_id:
                return state, notes
        raise KeyError(state_id)

    def _bodies(self, kind: str) -> list[JSON]:
        with self.database.read() as session:
            return list(
                session.scalars(
                    select(SandboxRecord.body).where(_kind(kind)).order_by(SandboxRecord.id)
                )
            )


def _kind(kind: str) -> Any:
    return SandboxRecord.kind == kind


def _of(kind: str) -> Any:
    return select(SandboxRecord).where(_kind(kind))


def _one(session: Session, kind: str, key: str, *, for_update: bool = False) -> SandboxRecord:
    statement = _of(kind).where(SandboxRecord.key == key)
    row: SandboxRecord = session.scalars(
        statement.with_for_update() if for_update else statement
    ).one()
    return row


def _insert_new(session: Session, kind: str, key: str, body: JSON) -> bool:
    """Insert a record unless one with this kind and key exists; True if it went in."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(SandboxRecord)
        .values(kind=kind, key=key, body=body, notes={}, updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["kind", "key"])
        .returning(SandboxRecord.id)  # the driver's rowcount is -1 here on PostgreSQL
    )
    return session.execute(statement).first() is not None


def _put_states(session: Session, states: tuple[JSON, ...] | list[JSON]) -> None:
    rows = []
    for given in states:
        state, notes = split_notes(given)
        rows.append({"kind": PURCHASE_STATE, "key": state["id"], "body": state, "notes": notes})
    upsert(session, SandboxRecord, rows, keys=("kind", "key"), returning="key")


def _seed(session: Session, now: datetime) -> int:
    """Write the demo data (states, cancellation reasons, SMS settings); return the count."""
    states = demo_seed(now)
    _put_states(session, states)
    others = [(REASON, reason["id"], reason) for reason in CANCELLATION_REASONS]
    for kind, key, body in [*others, (SMS_SETTINGS, SMS_SETTINGS, dict(PHONE))]:
        _insert_new(session, kind, key, body)
    return len(states)
