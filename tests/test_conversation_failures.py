"""When Smartrr fails, when a worker dies mid-action, and when the sender is not who we expect."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from test_console_support import signed_in
from test_conversation import MARCUS, STRANGER, Bot, billing_day
from test_conversation import bot as bot  # the fixture, shared

from bot.conversation.handler import Conversation
from bot.conversation.inbox import process_inbox
from bot.smartrr.client import SmartrrClient
from bot.storage.claims import PENDING_WORK
from bot.storage.db import get_db

FAILED = "Bean Club: We could not update your order right now. Our team will follow up shortly."


def wait_for(condition: Callable[[], bool]) -> None:
    """Poll in real time (the test clock is frozen) until ``condition`` holds."""
    for _ in range(100):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition never became true")


# -- Smartrr down, slow or saying no ------------------------------------------------------------


def test_an_outage_is_retried_with_backoff_then_handed_to_a_person(bot: Bot) -> None:
    bot.worker.sync()
    bot.sandbox.store.fail_next(100, status=503, retry_after="0")

    assert bot.text(MARCUS, "skip") == []
    first = bot.last_inbound()
    assert (first.status, first.attempts) == ("pending", 1)
    assert first.next_attempt_at - first.received_at == timedelta(seconds=15)

    calls = len(bot.sandbox.store.calls)
    bot.later(timedelta(seconds=14))
    bot.worker.inbox()  # not due yet: nobody calls Smartrr
    assert len(bot.sandbox.store.calls) == calls

    # 15 s after the first try, then 30 s, 1, 2, 4, 8 and 10 minutes.
    waits = [timedelta(seconds=1)] + [
        PENDING_WORK.delay(n) for n in range(2, PENDING_WORK.max_attempts)
    ]
    for wait in waits:
        assert bot.twilio.state.bodies_to(MARCUS) == []
        bot.later(wait)
        bot.worker.inbox()

    assert bot.twilio.state.bodies_to(MARCUS) == [FAILED]
    handed = bot.last_inbound()
    assert (handed.status, handed.outcome, handed.attempts) == (
        "handoff",
        "failed",
        PENDING_WORK.max_attempts,
    )
    assert "503" in (handed.error or "")
    assert bot.actions() == [("skip", "failed")]
    assert billing_day(bot.state(MARCUS)) == "2026-11-26"


def test_a_try_after_an_outage_checks_smartrr_first_then_acts_once(bot: Bot) -> None:
    bot.worker.sync()
    bot.sandbox.store.fail_next(4, status=503, retry_after="0")  # the client's four attempts
    assert bot.text(MARCUS, "skip") == []

    bot.later(timedelta(seconds=15))
    bot.worker.inbox()

    [reply] = bot.twilio.state.bodies_to(MARCUS)
    assert "next order is now on Dec 26" in reply
    assert billing_day(bot.state(MARCUS)) == "2026-12-26"
    assert bot.actions() == [("skip", "ok")]


def test_a_crash_after_smartrr_acted_but_before_we_noted_it_does_not_act_twice(
    bot: Bot, app: Flask
) -> None:
    bot.worker.sync()
    database = get_db(app)
    # A worker whose Smartrr calls give up after 0.3 s: Smartrr still finishes the skip.
    with SmartrrClient(
        bot.sandbox.url, bot.sandbox.token or "", read_timeout=0.3, max_attempts=1
    ) as hasty:
        doomed = Conversation(database, hasty, app.extensions["settings"])
        bot.sandbox.store.delay = 1.0
        bot.phone.text(MARCUS, "skip")
        assert process_inbox(database, doomed, "worker-a") == 1
    bot.sandbox.store.delay = 0.0
    wait_for(lambda: billing_day(bot.state(MARCUS)) == "2026-12-26")
    assert bot.actions() == [("skip", "started")]
    assert bot.twilio.state.bodies_to(MARCUS) == []

    bot.later(timedelta(seconds=15))
    bot.worker.inbox()

    assert len(bot.puts("/skip")) == 1
    assert billing_day(bot.state(MARCUS)) == "2026-12-26"
    [reply] = bot.twilio.state.bodies_to(MARCUS)
    assert "next order is now on Dec 26" in reply
    assert bot.actions() == [("skip", "ok")]


def test_a_rejection_gets_a_clear_answer_and_lands_in_the_merchants_inbox(bot: Bot) -> None:
    bot.worker.sync()
    bot.sandbox.store.fail_next(1, status=422)  # say, the order is already being processed

    [reply] = bot.text(MARCUS, "skip")

    assert reply == (
        "Bean Club: We could not make that change. This order can no longer be changed by "
        "text. Reply HELP for other options."
    )
    inbound = bot.last_inbound()
    assert (inbound.status, inbound.outcome) == ("handoff", "rejected")
    assert bot.actions() == [("skip", "rejected")]


def test_smartrr_refusing_for_a_reason_we_did_not_know_is_answered_clearly(bot: Bot) -> None:
    bot.worker.sync()
    # Paused in Smartrr's own portal after our last sync: Smartrr refuses the skip.
    state = bot.state(MARCUS)
    until = {"unpauseDate": "2027-01-05T14:00:00.000Z"}
    bot.sandbox.store.act(state["custRel"]["id"], state["id"], "pause", until)

    [reply] = bot.text(MARCUS, "skip")

    assert "This order can no longer be changed by text." in reply
    assert bot.actions() == [("skip", "rejected")]


def test_a_request_smartrr_calls_malformed_is_our_bug_never_the_subscribers(
    bot: Bot, app: Flask, client: FlaskClient
) -> None:
    bot.worker.sync()
    bot.sandbox.store.fail_next(1, status=400)

    [reply] = bot.text(MARCUS, "skip")

    assert reply == FAILED  # never "This order can no longer be changed"
    inbound = bot.last_inbound()
    assert (inbound.status, inbound.outcome) == ("handoff", "failed")
    assert "(400)" in (inbound.error or "")
    assert bot.actions() == [("skip", "refused")]
    assert billing_day(bot.state(MARCUS)) == "2026-11-26"
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'bot_smartrr_bad_requests_total{call="PUT skip"}' in metrics
    overview = signed_in(app).text("/console/")
    assert "Smartrr refused 1 change the bot asked for" in overview


def test_a_refused_token_hands_the_text_to_a_person_at_once(bot: Bot) -> None:
    bot.worker.sync()
    bot.sandbox.store.fail_next(1, status=401)

    assert bot.text(MARCUS, "skip") == [FAILED]
    assert bot.last_inbound().status == "handoff"


# -- senders we do not know -----------------------------------------------------------------


def test_an_unknown_number_changes_nothing_and_is_pointed_to_the_account_page(bot: Bot) -> None:
    bot.worker.sync()

    [reply] = bot.text(STRANGER, "SKIP")

    assert "could not find an active subscription for this phone number" in reply
    assert bot.puts() == []
    inbound = bot.last_inbound()
    assert (inbound.status, inbound.outcome, inbound.subscriber_id) == (
        "handoff",
        "unknown_number",
        None,
    )


def test_stop_from_an_unknown_number_gets_nothing_from_us(bot: Bot) -> None:
    assert bot.text(STRANGER, "STOP") == []
    assert bot.last_inbound().status == "done"


def test_a_sender_that_is_not_a_phone_number_is_stored_for_a_person(bot: Bot) -> None:
    bot.worker.sync()

    assert bot.text("not-a-number", "skip") == []

    inbound = bot.last_inbound()
    assert (inbound.status, inbound.outcome) == ("handoff", "unknown_number")
    assert bot.twilio.messages == []


# -- abuse ------------------------------------------------------------------------------------


def test_more_than_ten_texts_a_minute_are_stored_but_not_acted_on(bot: Bot) -> None:
    bot.worker.sync()
    for _ in range(13):
        bot.phone.text(MARCUS, "next")
    bot.worker.inbox()

    replies = bot.twilio.state.bodies_to(MARCUS)
    assert len(replies) == 11
    assert all("Your next order (Protein Bars)" in r for r in replies[:10])
    assert replies[10] == "Bean Club: We got several messages at once; our team will take a look."
    assert bot.outcomes()[-3:] == ["rate_limited", "throttled", "throttled"]
    assert bot.last_inbound().status == "handoff"

    bot.later(timedelta(minutes=1, seconds=1))
    [answer] = bot.text(MARCUS, "next")
    assert "Your next order (Protein Bars)" in answer


def test_a_flood_never_swallows_an_opt_out(bot: Bot) -> None:
    bot.worker.sync()
    for _ in range(12):
        bot.phone.text(MARCUS, "skip??")
    bot.phone.text(MARCUS, "STOP")
    bot.worker.inbox()

    assert bot.last_inbound().outcome == "opted_out"
    assert bot.puts() == []
