"""Claiming due texts and handing them to the provider, exactly once, at its rate.

A text's row moves scheduled → sending → sent → delivered/undelivered/failed, or
to cancelled/expired when a send-time check says it is no longer right.

Claiming a row only leases it: it stays 'scheduled' until, right before the
provider call, it is checked again, given a slot of the shared send gate and
committed as 'sending' with its body. 'sending' therefore means "the provider
may have it": a row found there after its lease ran out (its worker died, or
the call ended in a timeout or a 5xx) is settled by asking the provider's log,
never by sending it blindly again. docs/delivery.md states the guarantee and
its limits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, case, func, select, update
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.outbound.checks import (
    ON_REQUEST,
    Hold,
    apply,
    check,
    close,
    policy,
    recheck,
    related,
    render,
)
from bot.outbound.gate import MAX_LATENESS, reserve_slots
from bot.outbound.receipts import opt_out
from bot.outbound.sms import OPTED_OUT_CODES, SmsError, Transport
from bot.rules.phones import mask
from bot.rules.templates import TemplateError
from bot.storage.claims import RetryPolicy, claim, release, renew
from bot.storage.db import Database
from bot.storage.models import OutboundMessage, SendStatus, Subscriber, Subscription, utcnow

log = logging.getLogger(__name__)

#: A claim or a send holds its row for the lease: a live worker renews it; a dead one's
#: runs out, and then its rows are claimed (or settled) by others. A send that failed
#: in a way that may be retried waits 10 s, 20 s, 40 s... (at most 5 minutes) each time.
SENDING = RetryPolicy(
    lease=timedelta(seconds=30),
    max_attempts=6,
    first_delay=timedelta(seconds=10),
    max_delay=timedelta(minutes=5),
)
#: How far before a send the provider's log is searched: room for clock skew.
LOOKBACK = timedelta(minutes=5)


@dataclass
class Dispatcher:
    """Sends due rows of `OutboundMessage`; safe to run in many processes at once."""

    database: Database
    transport: Transport
    settings: Settings
    owner: str
    clock: Callable[[], datetime] = utcnow
    sleep: Callable[[float], None] = time.sleep
    batch: int = 0
    burst: int = 0
    _stopping: threading.Event = field(default_factory=threading.Event, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.batch:
            # About five seconds of sending per claim: a crash strands few rows
            # (for one lease), and claiming stays cheap next to sending.
            self.batch = max(1, min(100, round(self.settings.sms_rate_per_second * 5)))
        if not self.burst:
            # Rows are committed 'sending' (and recorded 'sent') a burst at a
            # time: a fifth of a second of sending, so the send-time checks stay
            # fresh while the database work per text shrinks.
            self.burst = max(1, min(20, round(self.settings.sms_rate_per_second / 5)))

    def run_once(self, *, kinds: Sequence[str] | None = None) -> int:
        """Send due texts until none is left (or stop() is called); return how many went."""
        sent = 0
        while not self._stopping.is_set():
            self.resolve_interrupted()
            taken, ready = self._claim(kinds)
            if not taken:
                break
            sent += self._send_claimed(ready)
        return sent

    def stop(self) -> None:
        """Make a running run_once() return once the burst in hand is sent (clean shutdown)."""
        self._stopping.set()

    def _claim(self, kinds: Sequence[str] | None) -> tuple[int, list[int]]:
        """Lease a batch of due rows; close or postpone those that must not go, render the rest."""
        now = self.clock()
        with self.database.begin() as session:
            settings, sending_enabled = policy(session, self.settings)
            where: list[ColumnElement[bool]] = [
                OutboundMessage.status == SendStatus.SCHEDULED,
                OutboundMessage.due_at <= now,
            ]
            if kinds:
                where.append(OutboundMessage.kind.in_(kinds))
            if not sending_enabled:
                # A dry run: bot-initiated texts stay scheduled, untouched.
                where.append(OutboundMessage.kind.in_(ON_REQUEST))
            rows = claim(
                session,
                OutboundMessage,
                where,
                (OutboundMessage.due_at, OutboundMessage.id),
                limit=self.batch,
                owner=self.owner,
                lease=SENDING.lease,
                now=now,
            )
            subscribers, subscriptions = related(session, rows)
            sources: dict[str, str] = {}  # each template's wording, read once per claim
            ready = []
            for message in rows:
                subscriber = subscribers.get(message.subscriber_id)
                subscription = subscriptions.get(message.subscription_id)
                hold = check(message, subscriber, subscription, settings, now)
                if hold is not None:
                    apply(message, hold, now)
                    continue
                if not message.body:
                    try:
                        message.body = render(
                            session, message, subscriber, subscription, settings, now, sources
                        )
                    except TemplateError as exc:
                        # One text that cannot be written must not hold up the queue.
                        apply(message, Hold(SendStatus.FAILED, f"cannot render: {exc}"), now)
                        continue
                ready.append(message.id)
            return len(rows), ready

    def _send_claimed(self, ids: list[int]) -> int:
        sent = 0
        renewed_at = self.clock()
        for start in range(0, len(ids), self.burst):
            now = self.clock()
            if self._stopping.is_set():
                with self.database.begin() as session:
                    release(session, OutboundMessage, ids[start:], owner=self.owner)
                break
            if now - renewed_at > SENDING.lease / 2:
                with self.database.begin() as session:
                    rest = ids[start:]
                    renew(
                        session,
                        OutboundMessage,
                        rest,
                        owner=self.owner,
                        lease=SENDING.lease,
                        now=now,
                    )
                renewed_at = now
            sent += self._send_burst(ids[start : start + self.burst])
        return sent

    def _send_burst(self, ids: list[int]) -> int:
        """Send a few claimed rows, each at its own slot, and record the outcomes together."""
        outcomes: list[tuple[int, str | SmsError | None]] = []
        try:
            for message_id, to, body, slot in self._begin_sends(ids):
                if self.clock() >= slot + SENDING.lease / 2:
                    # Slow calls ate into this row's lease: handing it over now
                    # could race the resolver, so it goes back to the queue.
                    outcomes.append((message_id, None))
                    continue
                wait = (slot - self.clock()).total_seconds()
                if -wait > MAX_LATENESS.total_seconds():
                    wait = (self._next_free_slot() - self.clock()).total_seconds()
                if wait > 0:
                    self.sleep(wait)
                try:
                    result = self.transport.send(
                        to, body, status_callback=self._callback(message_id)
                    )
                except SmsError as exc:
                    outcomes.append((message_id, exc))
                    continue
                outcomes.append((message_id, result.sid))
                log.info("sent message %s to %s (%s)", message_id, mask(to), result.sid)
        finally:
            # Even when this worker is going down: what is not recorded here
            # stays 'sending' and is settled from the provider's log.
            if outcomes:
                self._record(outcomes)
        return sum(isinstance(outcome, str) for _, outcome in outcomes)

    def _begin_sends(self, ids: list[int]) -> list[tuple[int, str, str, datetime]]:
        """Re-check claimed rows, give each a send slot and commit them as 'sending'."""
        now = self.clock()
        with self.database.begin() as session:
            # One query locks the rows and loads what the checks read; rows
            # settled meanwhile (a receipt, a cancel) or no longer ours are skipped.
            found = session.execute(
                select(OutboundMessage, Subscriber, Subscription)
                .outerjoin(Subscriber, OutboundMessage.subscriber_id == Subscriber.id)
                .outerjoin(Subscription, OutboundMessage.subscription_id == Subscription.id)
                .where(
                    OutboundMessage.id.in_(ids),
                    OutboundMessage.status == SendStatus.SCHEDULED,
                    OutboundMessage.lease_owner == self.owner,
                )
                .order_by(OutboundMessage.due_at, OutboundMessage.id)
                .with_for_update(of=OutboundMessage)
            ).all()
            settings, sending_enabled = policy(session, self.settings)
            going = []
            for message, subscriber, subscription in found:
                if not sending_enabled and message.kind not in ON_REQUEST:
                    hold: Hold | None = Hold()
                else:
                    hold = check(message, subscriber, subscription, settings, now)
                if hold is not None:
                    apply(message, hold, now)
                else:
                    going.append((message, subscriber, subscription))
            begun = []
            for (message, subscriber, subscription), slot in zip(
                going,
                reserve_slots(session, now, len(going), self.settings.sms_rate_per_second),
                strict=True,
            ):
                # What was true when the slot was taken must still be true when it comes.
                hold = check(message, subscriber, subscription, settings, slot) or recheck(
                    session, message, settings, slot
                )
                if hold is not None:
                    apply(message, hold, now)
                    continue
                message.status = SendStatus.SENDING
                message.claimed_at = slot
                message.status_at = now
                message.attempts += 1
                message.lease_until = slot + SENDING.lease
                begun.append((message.id, message.to_number, message.body, slot))
            return begun

    def _next_free_slot(self) -> datetime:
        """One fresh slot of the shared gate, for a row whose own slot has passed."""
        with self.database.begin() as session:
            return reserve_slots(session, self.clock(), 1, self.settings.sms_rate_per_second)[0]

    def _callback(self, message_id: int) -> str | None:
        base = self.settings.public_base_url
        return f"{base.rstrip('/')}/sms/status?m={message_id}" if base else None

    def _record(self, outcomes: list[tuple[int, str | SmsError | None]]) -> None:
        now = self.clock()
        with self.database.begin() as session:
            for message_id, outcome in outcomes:
                if isinstance(outcome, str):
                    _record_sent(session, message_id, outcome, now)
                elif isinstance(outcome, SmsError):
                    _record_failure(session, message_id, outcome, now)
                else:
                    self._record_unsent(session, message_id)

    def _record_unsent(self, session: Session, message_id: int) -> None:
        """Put back a row that was never handed to the provider (unless it is no longer ours)."""
        row = OutboundMessage
        session.execute(
            update(row)
            .where(
                row.id == message_id,
                row.status == SendStatus.SENDING,
                row.lease_owner == self.owner,
            )
            .values(
                status=SendStatus.SCHEDULED,
                attempts=row.attempts - 1,
                lease_owner=None,
                lease_until=None,
            )
        )

    def resolve_interrupted(self) -> int:
        """Settle rows left in 'sending' past their lease: ask the provider whether they went."""
        now = self.clock()
        with self.database.begin() as session:
            stuck = claim(
                session,
                OutboundMessage,
                (OutboundMessage.status == SendStatus.SENDING,),
                (OutboundMessage.id,),
                limit=self.batch,
                owner=self.owner,
                lease=SENDING.lease,
                now=now,
            )
            work = [(m.id, m.to_number, m.body, m.claimed_at or now) for m in stuck]
        for message_id, to, body, began in work:
            try:
                sid = self.transport.find_sent(to, body, began - LOOKBACK)
            except SmsError as exc:
                log.warning("cannot settle interrupted send %s yet: %s", message_id, exc)
                continue
            self._settle(message_id, sid)
        return len(work)

    def _settle(self, message_id: int, sid: str | None) -> None:
        now = self.clock()
        with self.database.begin() as session:
            message = session.get(OutboundMessage, message_id, with_for_update=True)
            if (
                message is None
                or message.status != SendStatus.SENDING
                or message.lease_owner != self.owner
            ):
                return
            message.lease_owner = message.lease_until = None
            if sid is not None:
                message.status, message.sent_at, message.status_at = SendStatus.SENT, now, now
                if session.scalar(
                    select(OutboundMessage.id).where(OutboundMessage.provider_sid == sid)
                ):
                    # The provider shows an identical text that another row owns; a
                    # second copy would read as a duplicate, so this one counts as sent.
                    message.error_message = f"an identical text ({sid}) had gone out"
                else:
                    message.provider_sid = sid
                log.info("interrupted send %s had gone out (%s)", message_id, sid)
            elif message.attempts >= SENDING.max_attempts:
                close(message, SendStatus.FAILED, message.error_message or "gave up", now)
                log.error(
                    "send of %s failed for good after %d attempts", message_id, message.attempts
                )
            else:
                # Still due (its due moment is unchanged, so it keeps its place in line).
                message.status = SendStatus.SCHEDULED
                log.info("interrupted send %s had not gone out; queued again", message_id)


def _record_sent(session: Session, message_id: int, sid: str, now: datetime) -> None:
    row = OutboundMessage
    # A receipt may have got here first: it then set the status and the SID.
    moving = row.status.in_((SendStatus.SCHEDULED, SendStatus.SENDING))
    session.execute(
        update(row)
        .where(row.id == message_id)
        .values(
            status=case((moving, SendStatus.SENT), else_=row.status),
            status_at=case((moving, now), else_=row.status_at),
            provider_sid=func.coalesce(row.provider_sid, sid),
            sent_at=func.coalesce(row.sent_at, now),
            lease_owner=None,
            lease_until=None,
        )
    )


def _record_failure(session: Session, message_id: int, exc: SmsError, now: datetime) -> None:
    message = session.get(OutboundMessage, message_id, with_for_update=True)
    if message is None or message.status != SendStatus.SENDING:
        return
    message.error_code = exc.code
    message.error_message = str(exc)[:500]
    if exc.retryable:
        # A timeout or a 5xx does not prove the text did not go: it stays
        # 'sending' and resolve_interrupted asks the provider once the backoff
        # has passed (a 429 takes the same way, for simplicity).
        message.lease_until = now + SENDING.delay(message.attempts)
        log.warning("send of %s failed, will check and retry: %s", message_id, exc)
        return
    message.lease_owner = message.lease_until = None
    close(message, SendStatus.FAILED, str(exc), now)
    if exc.code in OPTED_OUT_CODES and message.subscriber_id:
        subscriber = session.get(Subscriber, message.subscriber_id)
        if subscriber is not None:
            opt_out(subscriber, now)
    log.error("send of %s failed for good: %s", message_id, exc)
