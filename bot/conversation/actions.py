"""Changing a subscription at Smartrr without ever doing it twice.

Every change is written to `ActionLog` as "started" and committed before
Smartrr is called. If we die after Smartrr acted but before we noted it, the
retry finds the "started" entry, re-reads the subscription and only calls
again when the change did not land.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.rules.keywords import Delay
from bot.smartrr.client import SmartrrClient
from bot.smartrr.records import PurchaseState
from bot.smartrr.sync import apply_states
from bot.storage.models import ActionLog, ActionResult, Subscriber, Subscription, SubscriptionStatus

NOON = time(12)
#: UNDO's opposite of each action (a cancellation cannot be undone by text).
REVERSE = {"skip": "unskip", "delay": "delay", "pause": "activate", "activate": "pause"}
#: The template confirming each action.
CONFIRMATION = {
    "skip": "skip_confirmed",
    "unskip": "undo_confirmed",
    "delay": "delay_confirmed",
    "pause": "pause_confirmed",
    "activate": "resume_confirmed",
    "cancel": "cancel_confirmed",
}


@dataclass(frozen=True)
class Call:
    """A Smartrr action to make outside any transaction, already logged as started."""

    log_id: int
    action: str
    customer_id: str
    purchase_state_id: str
    old_billing_at: datetime | None
    argument_at: datetime | None
    reason_id: str | None = None
    resumed: bool = False


def start(
    session: Session,
    subscription: Subscription,
    *,
    action: str,
    inbound_id: int,
    notice_id: int | None,
    now: datetime,
    argument_at: datetime | None = None,
    reason_id: str | None = None,
    reverses: ActionLog | None = None,
) -> Call:
    """Log an action as started (the caller commits before calling Smartrr)."""
    entry = ActionLog(
        subscription_id=subscription.id,
        inbound_id=inbound_id,
        notice_id=notice_id,
        action=action,
        argument_at=argument_at,
        reason_id=reason_id,
        reverses_id=reverses.id if reverses else None,
        old_billing_at=subscription.next_billing_at,
        old_unpause_at=subscription.unpause_at,
        created_at=now,
    )
    session.add(entry)
    session.flush()
    return _call_for(entry, subscription, subscription.subscriber)


def interrupted(session: Session, inbound_id: int) -> Call | None:
    """The action an earlier attempt at this text started but did not finish, if any."""
    entry = session.scalar(
        select(ActionLog).where(
            ActionLog.inbound_id == inbound_id, ActionLog.result == ActionResult.STARTED
        )
    )
    if entry is None:
        return None
    subscription = session.get(Subscription, entry.subscription_id)
    assert subscription is not None
    return _call_for(entry, subscription, subscription.subscriber, resumed=True)


def _call_for(
    entry: ActionLog, subscription: Subscription, subscriber: Subscriber, resumed: bool = False
) -> Call:
    return Call(
        log_id=entry.id,
        action=entry.action,
        customer_id=subscriber.smartrr_customer_id,
        purchase_state_id=subscription.smartrr_id,
        old_billing_at=entry.old_billing_at,
        argument_at=entry.argument_at,
        reason_id=entry.reason_id,
        resumed=resumed,
    )


def perform(client: SmartrrClient, call: Call) -> PurchaseState:
    """Make the Smartrr call; after an interruption, first look whether it landed."""
    customer, state_id = call.customer_id, call.purchase_state_id
    if call.resumed:
        for state in client.customer_purchase_states(customer):
            if state.id == state_id and landed(call, state):
                return state
    if call.action == "cancel":
        assert call.reason_id is not None
        return client.cancel(customer, state_id, call.reason_id)
    moment = call.argument_at
    assert moment is not None, f"{call.action} needs its moment"
    if call.action == "skip":
        return client.skip(customer, state_id, moment)
    if call.action == "unskip":
        return client.unskip(customer, state_id, moment)
    if call.action == "delay":
        return client.set_next_billing_date(customer, state_id, moment)
    if call.action == "pause":
        return client.pause(customer, state_id, moment)
    if call.action == "activate":
        return client.activate(customer, state_id, moment)
    raise ValueError(f"unknown action {call.action!r}")


def landed(call: Call, state: PurchaseState) -> bool:
    """Did an interrupted action take effect? Judged from the state Smartrr shows now."""
    if call.action == "pause":
        return state.status == SubscriptionStatus.PAUSED
    if call.action == "activate":
        return state.status == SubscriptionStatus.ACTIVE
    if call.action == "cancel":
        return state.status == SubscriptionStatus.CANCELLED
    return state.next_billing_at is not None and state.next_billing_at != call.old_billing_at


def succeeded(session: Session, call: Call, state: PurchaseState, now: datetime) -> ActionLog:
    """Note what Smartrr now says, mark the action done (and what it undid, undone)."""
    apply_states(session, [state], now)
    entry = session.get(ActionLog, call.log_id)
    assert entry is not None
    entry.result, entry.new_billing_at = ActionResult.OK, state.next_billing_at
    # Smartrr's purchase state does not carry the resume date: we know it from our call.
    if call.action in ("pause", "activate"):
        subscription = session.get_one(Subscription, entry.subscription_id)
        subscription.unpause_at = call.argument_at if call.action == "pause" else None
    if entry.reverses_id is not None:
        undone = session.get(ActionLog, entry.reverses_id)
        if undone is not None:
            undone.undone_at = now
    return entry


def close(session: Session, log_id: int, result: str, detail: str) -> ActionLog:
    """End a started action as "rejected", "failed" or "refused" (Smartrr refused our request)."""
    entry = session.get(ActionLog, log_id)
    assert entry is not None
    entry.result, entry.detail = result, detail[:500]
    return entry


def already_skipped(session: Session, subscription: Subscription, notice_id: int | None) -> bool:
    """Was the order this SKIP is about skipped already (and not undone)?

    With a notice, "the order" is the notice's; without one, it is the order a
    skip of ours produced: a second bare SKIP is a repeat, not a new request.
    """
    about = (
        ActionLog.notice_id == notice_id
        if notice_id is not None
        else ActionLog.new_billing_at == subscription.next_billing_at
    )
    found = session.scalar(
        select(ActionLog.id)
        .where(
            ActionLog.subscription_id == subscription.id,
            ActionLog.action == "skip",
            ActionLog.result == ActionResult.OK,
            ActionLog.undone_at.is_(None),
            about,
        )
        .limit(1)
    )
    return found is not None


def last_undoable(session: Session, subscriber: Subscriber, since: datetime) -> ActionLog | None:
    """The subscriber's newest change since ``since`` that UNDO may reverse."""
    return session.scalar(
        select(ActionLog)
        .join(Subscription, ActionLog.subscription_id == Subscription.id)
        .where(
            Subscription.subscriber_id == subscriber.id,
            ActionLog.result == ActionResult.OK,
            ActionLog.undone_at.is_(None),
            ActionLog.reverses_id.is_(None),
            ActionLog.created_at >= since,
            ActionLog.action.in_(tuple(REVERSE)),
        )
        .order_by(ActionLog.created_at.desc(), ActionLog.id.desc())
        .limit(1)
    )


def at_local_time(day: date, like: datetime | None, zone: ZoneInfo) -> datetime:
    """``day`` at the local time of day of ``like`` (noon without one), as a UTC moment.

    A delay keeps the order's time of day in the subscriber's zone, across DST too.
    """
    clock = like.astimezone(zone).time() if like is not None else NOON
    return datetime.combine(day, clock, zone).astimezone(UTC)


def next_on_cadence(
    last: datetime | None, unit: str | None, count: int | None, now: datetime
) -> datetime:
    """The first billing moment after ``now`` on the cadence ``last`` was on.

    ``last`` itself when it is still ahead; one step from now when it is unknown;
    a month is the step when the cadence is unknown.
    """
    step = _cadence_step(unit, count or 1)
    start = last if last is not None else now
    times = 1 if last is None or last <= now else 0
    while (moment := _plus(start, step, times)) <= now:
        times += 1
    return moment


def _cadence_step(unit: str | None, count: int) -> Delay:
    if unit == "day":
        return Delay(days=count)
    if unit == "week":
        return Delay(days=7 * count)
    return Delay(months=count * (12 if unit == "year" else 1))


def _plus(start: datetime, step: Delay, times: int) -> datetime:
    """``start`` moved ``times`` steps, each month step keeping the day where it can."""
    moved = shifted(start.date(), Delay(days=step.days * times, months=step.months * times))
    return datetime.combine(moved, start.timetz())


def shifted(day: date, delay: Delay) -> date:
    """``day`` moved by ``delay`` (a date wins; months keep the day where they can)."""
    if delay.until is not None:
        return delay.until
    moved = day
    if delay.months:
        index = day.month - 1 + delay.months
        year, month = day.year + index // 12, index % 12 + 1
        moved = date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
    return moved + timedelta(days=delay.days)


def delay_to_json(delay: Delay | None) -> dict[str, Any] | None:
    """A delay as plain JSON for a question's payload."""
    if delay is None:
        return None
    until = delay.until.isoformat() if delay.until else None
    return {"days": delay.days, "months": delay.months, "until": until}


def delay_from_json(raw: object) -> Delay | None:
    """The delay stored by delay_to_json, or None."""
    if not isinstance(raw, dict):
        return None
    until = raw.get("until")
    return Delay(
        days=int(raw.get("days") or 0),
        months=int(raw.get("months") or 0),
        until=date.fromisoformat(until) if until else None,
    )
