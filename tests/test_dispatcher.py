"""The dispatcher: send-time checks with the merchant's settings, receipts that stop
texts to dead numbers, retries that never double a text, interrupted sends settled
by the provider's log, and a send gate that holds the rate."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from conftest import SEED_NOW, Phone
from flask import Flask
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from sqlalchemy import select
from twilio_fake import ACCOUNT_SID, FROM_NUMBER, TwilioFake

from bot.outbound.dispatcher import SENDING, Dispatcher
from bot.outbound.sms import SendResult, Transport, TwilioTransport
from bot.storage.db import get_db
from bot.storage.models import (
    OutboundMessage,
    Shop,
    Subscriber,
    Subscription,
    TemplateVersion,
    utcnow,
)
from bot.storage.shop import SHOP_ID
from bot.worker import Worker

MAYA = "+16465823017"  # New York; her coffee notice has been due since 11:00 EST yesterday
MARCUS = "+13125794420"  # Chicago; his notice is due at 11:00 CST (SEED_NOW + 3 h)
MARCUS_DUE = SEED_NOW + timedelta(hours=3)


class WorkerDied(BaseException):
    """Stands for a SIGKILL: nothing after it runs, no handler catches it."""


class Dies:
    """A transport that kills its worker just before or just after the real call."""

    name = "dies"

    def __init__(self, real: Transport, *, after_the_call: bool) -> None:
        self.real = real
        self.after_the_call = after_the_call

    def send(self, to: str, body: str, *, status_callback: str | None = None) -> SendResult:
        if self.after_the_call:
            self.real.send(to, body, status_callback=status_callback)
        raise WorkerDied

    def find_sent(self, to: str, body: str, since: datetime) -> str | None:
        return self.real.find_sent(to, body, since)


class Spy:
    """A transport that runs ``during`` inside each call, then makes the real one."""

    name = "spy"

    def __init__(self, real: Transport, during: Any) -> None:
        self.real = real
        self.during = during

    def send(self, to: str, body: str, *, status_callback: str | None = None) -> SendResult:
        self.during()
        return self.real.send(to, body, status_callback=status_callback)

    def find_sent(self, to: str, body: str, since: datetime) -> str | None:
        return self.real.find_sent(to, body, since)


def dispatcher(
    app: Flask, owner: str, transport: Transport | None = None, **extra: Any
) -> Dispatcher:
    settings = app.extensions["settings"]
    return Dispatcher(get_db(app), transport or TwilioTransport(settings), settings, owner, **extra)


@pytest.fixture
def clock(app: Flask) -> Iterator[FrozenDateTimeFactory]:
    """Time frozen at Marcus's notice's due moment, with the demo synced and planned."""
    with freeze_time(MARCUS_DUE) as frozen:
        worker = Worker(app)
        worker.sync()
        worker.plan()
        yield frozen


def notice_of(app: Flask, number: str) -> OutboundMessage:
    with get_db(app).begin() as session:
        return session.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.to_number == number, OutboundMessage.kind == "notice")
            .order_by(OutboundMessage.due_at)
            .limit(1)
        ).one()


def message(app: Flask, message_id: int) -> OutboundMessage:
    with get_db(app).begin() as session:
        found = session.get(OutboundMessage, message_id)
        assert found is not None
        return found


def subscriber(app: Flask, number: str) -> Subscriber:
    with get_db(app).begin() as session:
        return session.scalars(select(Subscriber).where(Subscriber.phone == number)).one()


def queue_reply(app: Flask, number: str, body: str, template: str = "confirm") -> int:
    """A reply the conversation engine would have queued for ``number``."""
    with get_db(app).begin() as session:
        person = session.scalars(select(Subscriber).where(Subscriber.phone == number)).first()
        row = OutboundMessage(
            kind="reply",
            subscriber_id=person.id if person else None,
            to_number=number,
            template=template,
            body=body,
            due_at=utcnow(),
        )
        session.add(row)
        session.flush()
        return row.id


def update_shop(app: Flask, **values: Any) -> None:
    with get_db(app).begin() as session:
        shop = session.get(Shop, SHOP_ID)
        assert shop is not None
        for name, value in values.items():
            setattr(shop, name, value)


def receipt(phone: Phone, sid: str, status: str, message_id: int, **extra: str) -> Any:
    params = {
        "MessageSid": sid,
        "MessageStatus": status,
        "AccountSid": ACCOUNT_SID,
        "From": FROM_NUMBER,
        **extra,
    }
    response = phone.post(f"/sms/status?m={message_id}", params)
    assert response.status_code == 204
    return response


# Send-time checks


def test_every_notice_of_a_claim_is_written_in_the_merchants_current_wording(
    app: Flask, clock: FrozenDateTimeFactory, twilio: TwilioFake
) -> None:
    with get_db(app).begin() as session:
        session.add(
            TemplateVersion(
                name="upcoming_order",
                source="{{ shop_name }}: {{ first_name }}, your order ships soon.",
                author="merchant@example.com",
            )
        )

    assert dispatcher(app, "w1").run_once(kinds=("notice",)) >= 2

    bodies = {m["to"]: m["body"] for m in twilio.messages}
    assert bodies[MAYA] == "Bean Club: Maya, your order ships soon."
    assert bodies[MARCUS] == "Bean Club: Marcus, your order ships soon."


def test_while_sending_is_off_notices_stay_scheduled_untouched_and_replies_go(
    app: Flask, clock: FrozenDateTimeFactory, twilio: TwilioFake
) -> None:
    update_shop(app, sending_enabled=False)
    before = notice_of(app, MARCUS)
    queue_reply(app, MARCUS, "Your order is skipped.")

    dispatcher(app, "w1").run_once()

    assert twilio.state.bodies_to(MARCUS) == ["Your order is skipped."]
    assert twilio.state.bodies_to(MAYA) == []
    after = notice_of(app, MARCUS)
    untouched = ("status", "due_at", "body", "attempts", "lease_owner", "lease_until")
    assert [getattr(after, name) for name in untouched] == [
        getattr(before, name) for name in untouched
    ]
    assert after.status == "scheduled"

    update_shop(app, sending_enabled=True)
    dispatcher(app, "w1").run_once()
    assert len(twilio.state.bodies_to(MARCUS)) == 2
    assert len(twilio.state.bodies_to(MAYA)) == 1


def test_the_merchants_own_window_decides_at_send_time(
    app: Flask, clock: FrozenDateTimeFactory, twilio: TwilioFake
) -> None:
    update_shop(app, send_window="12:00-21:00", name="Bean Club Deluxe")

    dispatcher(app, "w1").run_once()
    assert twilio.state.bodies_to(MARCUS) == []  # 11:00 in Chicago: not yet, for this shop
    assert notice_of(app, MARCUS).due_at == MARCUS_DUE + timedelta(hours=1)

    clock.move_to(MARCUS_DUE + timedelta(hours=1))
    dispatcher(app, "w1").run_once()
    [text] = twilio.state.bodies_to(MARCUS)
    assert text.startswith("Bean Club Deluxe:")


def test_an_unreachable_number_gets_no_notice_but_still_gets_replies(
    app: Flask, clock: FrozenDateTimeFactory, twilio: TwilioFake
) -> None:
    with get_db(app).begin() as session:
        person = session.scalars(select(Subscriber).where(Subscriber.phone == MARCUS)).one()
        person.unreachable_at = utcnow()
    queue_reply(app, MARCUS, "You are all set.")

    dispatcher(app, "w1").run_once()

    assert twilio.state.bodies_to(MARCUS) == ["You are all set."]
    notice = notice_of(app, MARCUS)
    assert (notice.status, notice.error_message) == ("cancelled", "number marked unreachable")


def test_an_opted_out_subscriber_gets_only_the_answers_carriers_require(
    app: Flask, clock: FrozenDateTimeFactory, twilio: TwilioFake
) -> None:
    with get_db(app).begin() as session:
        person = session.scalars(select(Subscriber).where(Subscriber.phone == MARCUS)).one()
        person.opted_out_at = utcnow()
    queue_reply(app, MARCUS, "Your order is skipped.")
    queue_reply(app, MARCUS, "You will get no more texts.", template="opt_out_confirmed")

    dispatcher(app, "w1").run_once()

    assert twilio.state.bodies_to(MARCUS) == ["You will get no more texts."]
    assert notice_of(app, MARCUS).status == "cancelled"


def test_a_billing_date_changed_after_planning_cancels_the_notice_at_send_time(
    app: Flask, clock: FrozenDateTimeFactory, twilio: TwilioFake
) -> None:
    notice = notice_of(app, MARCUS)
    with get_db(app).begin() as session:
        subscription = session.get(Subscription, notice.subscription_id)
        assert subscription is not None and subscription.next_billing_at is not None
        subscription.next_billing_at += timedelta(days=7)

    dispatcher(app, "w1").run_once()

    assert twilio.state.bodies_to(MARCUS) == []
    notice = notice_of(app, MARCUS)
    assert (notice.status, notice.error_message) == ("cancelled", "billing date changed")


# Receipts


def test_three_carrier_failures_in_a_row_mark_the_number_unreachable(
    app: Flask, clock: FrozenDateTimeFactory, twilio: TwilioFake, phone: Phone
) -> None:
    ids = [queue_reply(app, MAYA, f"Reply {n}") for n in range(6)]
    dispatcher(app, "w1").run_once(kinds=("reply",))
    sids = {message(app, i).id: message(app, i).provider_sid or "" for i in ids}

    receipt(phone, sids[ids[0]], "undelivered", ids[0], ErrorCode="30003")
    receipt(phone, sids[ids[1]], "failed", ids[1], ErrorCode="30005")
    assert subscriber(app, MAYA).failed_deliveries == 2
    receipt(phone, sids[ids[2]], "delivered", ids[2])  # the number works: count again from 0
    assert subscriber(app, MAYA).failed_deliveries == 0
    receipt(phone, sids[ids[3]], "undelivered", ids[3], ErrorCode="30006")
    receipt(phone, sids[ids[4]], "undelivered", ids[4], ErrorCode="30003")
    assert subscriber(app, MAYA).unreachable_at is None
    receipt(phone, sids[ids[5]], "undelivered", ids[5], ErrorCode="30005")

    person = subscriber(app, MAYA)
    assert (person.failed_deliveries, person.unreachable_at) == (3, MARCUS_DUE)
    assert message(app, ids[5]).error_code == "30005"
    dispatcher(app, "w1").run_once()
    assert notice_of(app, MAYA).status == "cancelled"
    assert not [body for body in twilio.state.bodies_to(MAYA) if not body.startswith("Reply")]


def test_a_repeated_or_late_failure_receipt_counts_once(
    app: Flask, clock: FrozenDateTimeFactory, phone: Phone
) -> None:
    first, second = queue_reply(app, MAYA, "One"), queue_reply(app, MAYA, "Two")
    dispatcher(app, "w1").run_once(kinds=("reply",))

    for _ in range(3):
        receipt(
            phone, message(app, first).provider_sid or "", "undelivered", first, ErrorCode="30003"
        )
    assert subscriber(app, MAYA).failed_deliveries == 1
    receipt(phone, message(app, second).provider_sid or "", "delivered", second)
    receipt(phone, message(app, second).provider_sid or "", "failed", second, ErrorCode="30003")

    assert subscriber(app, MAYA).failed_deliveries == 0
    assert message(app, second).status == "delivered"


def test_other_errors_do_not_count_towards_unreachable(
    app: Flask, clock: FrozenDateTimeFactory, phone: Phone
) -> None:
    ids = [queue_reply(app, MAYA, f"Reply {n}") for n in range(3)]
    dispatcher(app, "w1").run_once(kinds=("reply",))
    for message_id in ids:
        sid = message(app, message_id).provider_sid or ""
        receipt(phone, sid, "undelivered", message_id, ErrorCode="30007")  # carrier filtering

    person = subscriber(app, MAYA)
    assert (person.failed_deliveries, person.unreachable_at) == (0, None)


# Provider errors


def test_429_and_5xx_are_retried_with_backoff_and_the_text_goes_once(
    app: Flask, clock: FrozenDateTimeFactory, twilio: TwilioFake
) -> None:
    reply = queue_reply(app, MARCUS, "Done.")
    twilio.fail_next(1, 429, 20429)
    twilio.fail_next(1, 503, 20503)
    worker = dispatcher(app, "w1")

    worker.run_once(kinds=("reply",))
    row = message(app, reply)
    assert (row.status, row.error_code, row.attempts) == ("sending", "20429", 1)
    worker.run_once(kinds=("reply",))  # backing off: not tried again yet
    assert message(app, reply).attempts == 1

    clock.tick(timedelta(seconds=11))
    worker.run_once(kinds=("reply",))
    row = message(app, reply)
    assert (row.status, row.error_code, row.attempts) == ("sending", "20503", 2)

    clock.tick(timedelta(seconds=15))
    worker.run_once(kinds=("reply",))
    assert message(app, reply).status == "sending"  # the second backoff is 20 s

    clock.tick(timedelta(seconds=6))
    worker.run_once(kinds=("reply",))
    row = message(app, reply)
    assert (row.status, row.attempts) == ("sent", 3)
    assert twilio.state.bodies_to(MARCUS) == ["Done."]
    assert row.provider_sid == twilio.messages[-1]["sid"]


def test_a_text_that_keeps_failing_is_given_up_after_the_last_attempt(
    app: Flask, clock: FrozenDateTimeFactory, twilio: TwilioFake
) -> None:
    reply = queue_reply(app, MARCUS, "Done.")
    twilio.fail_next(SENDING.max_attempts, 500, 20500)
    worker = dispatcher(app, "w1")
    for _ in range(SENDING.max_attempts + 1):
        worker.run_once(kinds=("reply",))
        clock.tick(timedelta(minutes=6))

    row = message(app, reply)
    assert (row.status, row.attempts, row.error_code) == ("failed", SENDING.max_attempts, "20500")
    assert twilio.state.bodies_to(MARCUS) == []


def test_a_permanent_error_fails_the_text_at_once(
    app: Flask, clock: FrozenDateTimeFactory, twilio: TwilioFake
) -> None:
    reply = queue_reply(app, MARCUS, "Done.")
    twilio.fail_next(1, 400, 21211)

    dispatcher(app, "w1").run_once(kinds=("reply",))

    row = message(app, reply)
    assert (row.status, row.error_code, row.attempts) == ("failed", "21211", 1)


# Exactly once


def test_a_worker_that_died_after_the_provider_call_is_never_sent_twice(
    app: Flask, clock: FrozenDateTimeFactory, twilio: TwilioFake
) -> None:
    settings = app.extensions["settings"]
    doomed = dispatcher(app, "w1", Dies(TwilioTransport(settings), after_the_call=True))
    with pytest.raises(WorkerDied):
        doomed.run_once()
    notice = notice_of(app, MAYA)
    assert notice.status == "sending"
    assert notice.body and notice.body == twilio.state.bodies_to(MAYA)[0]

    survivor = dispatcher(app, "w2")
    assert survivor.run_once() == 0  # w1's leases still hold: Marcus waits too
    assert len(twilio.messages) == 1

    clock.tick(SENDING.lease + timedelta(seconds=1))
    assert survivor.run_once() == 1  # Marcus's; Maya's is found in Twilio's log

    assert twilio.state.bodies_to(MAYA) == [notice.body]
    settled = notice_of(app, MAYA)
    assert (settled.status, settled.provider_sid) == ("sent", twilio.messages[0]["sid"])
    assert len(twilio.state.bodies_to(MARCUS)) == 1


def test_a_worker_that_died_before_the_provider_call_is_sent_once(
    app: Flask, clock: FrozenDateTimeFactory, twilio: TwilioFake
) -> None:
    settings = app.extensions["settings"]
    doomed = dispatcher(app, "w1", Dies(TwilioTransport(settings), after_the_call=False))
    with pytest.raises(WorkerDied):
        doomed.run_once()
    assert notice_of(app, MAYA).status == "sending"
    assert twilio.messages == []

    clock.tick(SENDING.lease + timedelta(seconds=1))
    assert dispatcher(app, "w2").run_once() == 2

    [text] = twilio.state.bodies_to(MAYA)
    settled = notice_of(app, MAYA)
    assert (settled.status, settled.body) == ("sent", text)
    assert settled.provider_sid == twilio.messages[0]["sid"]  # still first in line
    assert settled.attempts == 2


def test_a_receipt_settles_a_send_whose_worker_died(
    app: Flask, clock: FrozenDateTimeFactory, twilio: TwilioFake, phone: Phone
) -> None:
    settings = app.extensions["settings"]
    with pytest.raises(WorkerDied):
        dispatcher(app, "w1", Dies(TwilioTransport(settings), after_the_call=True)).run_once()
    notice = notice_of(app, MAYA)
    [sent] = twilio.messages

    receipt(phone, sent["sid"], "delivered", notice.id)
    clock.tick(SENDING.lease + timedelta(seconds=1))
    dispatcher(app, "w2").run_once()

    settled = notice_of(app, MAYA)
    assert (settled.status, settled.provider_sid) == ("delivered", sent["sid"])
    assert len(twilio.state.bodies_to(MAYA)) == 1


def test_a_live_worker_keeps_its_claims_however_long_its_batch_takes(
    app: Flask, clock: FrozenDateTimeFactory, twilio: TwilioFake
) -> None:
    settings = app.extensions["settings"]
    ids = [queue_reply(app, MARCUS, f"Reply {n}") for n in range(5)]
    other = dispatcher(app, "w2")
    rivals: list[int] = []

    def slow_call() -> None:
        clock.tick(timedelta(seconds=20))  # five calls: far longer than one lease
        rivals.append(other.run_once(kinds=("reply",)))

    spy = Spy(TwilioTransport(settings), slow_call)
    dispatcher(app, "w1", spy, burst=1).run_once(kinds=("reply",))

    assert rivals == [0, 0, 0, 0, 0]
    assert twilio.state.bodies_to(MARCUS) == [f"Reply {n}" for n in range(5)]
    assert {message(app, i).status for i in ids} == {"sent"}


def test_rows_a_slow_provider_kept_waiting_go_back_to_the_queue_not_out_twice(
    app: Flask, clock: FrozenDateTimeFactory, twilio: TwilioFake
) -> None:
    settings = app.extensions["settings"]
    ids = [queue_reply(app, MARCUS, f"Reply {n}") for n in range(5)]
    other = dispatcher(app, "w2")
    rivals: list[int] = []

    def slow_call() -> None:
        clock.tick(timedelta(seconds=20))  # the rest of the burst waits past half its lease
        rivals.append(other.run_once(kinds=("reply",)))

    spy = Spy(TwilioTransport(settings), slow_call)
    dispatcher(app, "w1", spy).run_once(kinds=("reply",))

    assert rivals == [0, 0, 0, 0, 0]
    assert twilio.state.bodies_to(MARCUS) == [f"Reply {n}" for n in range(5)]
    assert {(message(app, i).status, message(app, i).attempts) for i in ids} == {("sent", 1)}


def test_stop_hands_back_the_rest_of_the_batch_at_once(
    app: Flask, clock: FrozenDateTimeFactory, twilio: TwilioFake
) -> None:
    settings = app.extensions["settings"]
    ids = [queue_reply(app, MARCUS, f"Reply {n}") for n in range(4)]
    spy = Spy(TwilioTransport(settings), lambda: worker.stop())
    worker = dispatcher(app, "w1", spy, burst=1)  # stop() lets the burst in hand finish

    assert worker.run_once(kinds=("reply",)) == 1
    assert [message(app, i).lease_owner for i in ids[1:]] == [None, None, None]
    assert dispatcher(app, "w2").run_once(kinds=("reply",)) == 3
    assert twilio.state.bodies_to(MARCUS) == [f"Reply {n}" for n in range(4)]


# The send gate


@pytest.mark.parametrize("rate", [1.0, 10.0])
def test_the_gate_keeps_every_second_within_the_rate_and_near_it(
    app: Flask, clock: FrozenDateTimeFactory, twilio: TwilioFake, rate: float
) -> None:
    count = int(rate * 6)
    for n in range(count):
        queue_reply(app, f"+1312555{n:04d}", f"Reply {n}")
    settings = replace(app.extensions["settings"], sms_rate_per_second=rate)
    worker = Dispatcher(
        get_db(app),
        TwilioTransport(settings),
        settings,
        "w1",
        sleep=lambda seconds: clock.tick(timedelta(seconds=seconds)),
    )

    assert worker.run_once(kinds=("reply",)) == count

    # The Twilio-like server stamps each request with the (frozen, advanced) time.
    times = [m["_sent"] for m in twilio.messages]
    per = int(rate)
    assert min(b - a for a, b in zip(times, times[per:], strict=False)) >= timedelta(seconds=1)
    achieved = (len(times) - 1) / (times[-1] - times[0]).total_seconds()
    assert 0.95 * rate <= achieved <= rate
