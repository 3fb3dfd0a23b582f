"""The shared send gate: one row that hands out send slots at the provider's rate,
fleet-wide, whichever worker sends."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.storage.db import insert_new
from bot.storage.models import SendGate

#: The gate spaces sends for 97% of the configured rate. The 3% absorbs the
#: jitter between a slot and the moment the provider sees the request, so no
#: one-second window at the provider holds more than the rate.
RATE_HEADROOM = 0.97
#: A send later than this after its slot could land in the same second as other
#: workers' on-time sends and break the rate: it takes the next free slot instead.
MAX_LATENESS = timedelta(seconds=1 - RATE_HEADROOM)
GATE_ID = 1
#: An idle gate's first slot lies this far ahead: the time to re-check the burst's
#: rows and commit them, so its first text is not late for its slot already.
SETTLE = timedelta(milliseconds=50)
#: More than this between now and the gate's next slot cannot come from queuing.
MAX_GATE_LEAD = timedelta(minutes=1)


def reserve_slots(session: Session, now: datetime, count: int, rate: float) -> list[datetime]:
    """Take the gate's next ``count`` slots at ``rate`` texts a second (the row stays
    locked until the caller's transaction ends)."""
    if not count:
        return []
    interval = timedelta(seconds=1 / (rate * RATE_HEADROOM))
    gate = session.get(SendGate, GATE_ID, with_for_update=True)
    if gate is None:
        insert_new(session, SendGate, [{"id": GATE_ID, "next_at": now}], key="id")
        gate = session.get(SendGate, GATE_ID, with_for_update=True, populate_existing=True)
        assert gate is not None
    # A gate far ahead of this clock means a clock was set back (or hosts
    # disagree): waiting for it would stall every worker, so start afresh.
    ahead = gate.next_at - now
    first = max(gate.next_at, now + SETTLE) if ahead < MAX_GATE_LEAD else now + SETTLE
    gate.next_at = first + count * interval
    return [first + n * interval for n in range(count)]
