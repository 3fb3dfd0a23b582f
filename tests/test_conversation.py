"""The conversation through the inbound webhook: which subscription, questions, repeats, UNDO.

Every test texts the app with signed webhooks, lets the worker's inbox job answer
(it sends replies at once) against the sandbox Smartrr over HTTP, and reads what
the Twilio-like server received. The other test_conversation_*.py files share
the `Bot` helper defined here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from conftest import SEED_NOW, Phone, product_name
from flask import Flask
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory, StepTickTimeFactory
from sqlalchemy import Select, select
from sqlalchemy.orm import Session
from twilio_fake import TwilioFake

from bot.smartrr.sandbox import SandboxServer
from bot.storage.models import ActionLog, InboundMessage
from bot.worker import Worker

MAYA = "+16465823017"  # New York: House Blend Coffee x2 bills Nov 25, Earl Grey Tea Nov 28
MARCUS = "+13125794420"  # Chicago: Protein Bars bill Nov 26, monthly
DANA = "+16024817765"  # Phoenix: paused
STRANGER = "+12025550143"
#: 11:00 in New York and 10:00 in Chicago on Monday, Nov 23: inside the window for Maya.
MORNING = SEED_NOW + timedelta(hours=2)
Clock = FrozenDateTimeFactory | StepTickTimeFactory


class Bot:
    """One test's view of the running bot: text it, run its jobs, look at the results."""

    def __init__(
        self,
        app: Flask,
        sandbox: SandboxServer,
        twilio: TwilioFake,
        phone: Phone,
        session: Session,
        clock: Clock,
    ) -> None:
        self.worker = Worker(app)
        self.sandbox, self.twilio, self.phone = sandbox, twilio, phone
        self.session, self.clock = session, clock

    def text(self, number: str, body: str, **extra: str) -> list[str]:
        """Send a text, let the inbox job answer it, return the replies it got."""
        before = len(self.twilio.state.bodies_to(number))
        assert self.phone.text(number, body, **extra).status_code == 200
        self.worker.inbox()
        return self.twilio.state.bodies_to(number)[before:]

    def notices(self) -> None:
        """Sync, plan and send whatever notice is due now."""
        self.worker.sync()
        self.worker.plan()
        self.worker.dispatch()

    def later(self, delta: timedelta) -> None:
        """Move the frozen clock forward."""
        self.clock.tick(delta)

    def puts(self, action: str = "") -> list[str]:
        """Paths of the Smartrr actions called so far (of one kind when given)."""
        calls = self.sandbox.store.calls
        return [path for method, path in calls if method == "PUT" and path.endswith(action)]

    def state(self, number: str, product: str = "") -> dict[str, Any]:
        """The sandbox's purchase state of ``number`` (the one with ``product``)."""
        return next(
            s
            for s in self.sandbox.store.states()
            if s["custRel"]["phone"] == number
            and any(product in product_name(item) for item in s["stLineItems"])
        )

    def last_inbound(self) -> InboundMessage:
        """A detached copy of the newest stored inbound text."""
        [inbound] = self._read(select(InboundMessage).order_by(InboundMessage.id.desc()).limit(1))
        return inbound

    def outcomes(self) -> list[str | None]:
        """The outcome of every stored inbound text, oldest first."""
        return [i.outcome for i in self._read(select(InboundMessage).order_by(InboundMessage.id))]

    def actions(self) -> list[tuple[str, str]]:
        """(action, result) of every logged Smartrr action, oldest first."""
        return [(a.action, a.result) for a in self._read(select(ActionLog).order_by(ActionLog.id))]

    def _read(self, query: Select[Any]) -> list[Any]:
        # On SQLite every transaction holds the write lock (BEGIN IMMEDIATE, see
        # bot.storage.db): read fresh rows, detach them and end the transaction at once.
        self.session.expire_all()
        rows = list(self.session.scalars(query))
        self.session.expunge_all()
        self.session.rollback()
        return rows


@pytest.fixture
def bot(
    app: Flask, sandbox: SandboxServer, twilio: TwilioFake, phone: Phone, session: Session
) -> Iterator[Bot]:
    with freeze_time(MORNING) as clock:
        yield Bot(app, sandbox, twilio, phone, session, clock)


def billing_day(state: dict[str, Any]) -> str:
    return str(state["nextBillingDate"])[:10]


# -- which subscription ---------------------------------------------------------------------


def test_a_reply_refers_to_the_subscription_of_the_most_recent_notice(bot: Bot) -> None:
    bot.notices()
    [notice] = bot.twilio.state.bodies_to(MAYA)
    assert "House Blend Coffee x2" in notice

    [reply] = bot.text(MAYA, "skip")

    assert "skipped your order (House Blend Coffee x2)" in reply
    assert billing_day(bot.state(MAYA, "Coffee")) == "2026-12-09"  # every 2 weeks
    assert billing_day(bot.state(MAYA, "Tea")) == "2026-11-28"


def test_without_a_notice_the_bot_asks_which_subscription_and_takes_the_number(bot: Bot) -> None:
    bot.worker.sync()

    [question] = bot.text(MAYA, "skip please")
    assert "Which subscription? Reply 1) House Blend Coffee x2 (Nov 25), " in question
    assert "2) Earl Grey Tea (Nov 28)" in question
    assert bot.puts() == []

    [reply] = bot.text(MAYA, "2")
    assert "skipped your order (Earl Grey Tea)" in reply
    assert billing_day(bot.state(MAYA, "Tea")) == "2026-12-28"
    assert billing_day(bot.state(MAYA, "Coffee")) == "2026-11-25"
    assert len(bot.puts("/skip")) == 1


def test_the_which_question_keeps_the_delay_that_was_asked_for(bot: Bot) -> None:
    bot.worker.sync()
    bot.text(MAYA, "delay 1 week")

    [reply] = bot.text(MAYA, "1")

    assert "will now ship on Dec 2" in reply
    assert billing_day(bot.state(MAYA, "Coffee")) == "2026-12-02"


def test_a_number_that_answers_no_option_acts_on_nothing(bot: Bot) -> None:
    bot.worker.sync()
    bot.text(MAYA, "skip")

    [reply] = bot.text(MAYA, "7")

    assert "did not understand" in reply
    assert bot.puts() == []


# -- questions are remembered, and expire -----------------------------------------------------


def test_bare_delay_is_answered_by_a_number_within_the_questions_lifetime(bot: Bot) -> None:
    bot.worker.sync()
    [question] = bot.text(MARCUS, "DELAY")
    assert "Reply 1 for 1 week, 2 for 2 weeks, 3 for 1 month." in question

    bot.later(timedelta(hours=23))
    [reply] = bot.text(MARCUS, "3")

    assert "will now ship on Dec 26" in reply
    assert billing_day(bot.state(MARCUS)) == "2026-12-26"


def test_the_delay_question_also_takes_a_duration_in_words(bot: Bot) -> None:
    bot.worker.sync()
    bot.text(MARCUS, "delay please")

    [reply] = bot.text(MARCUS, "2 weeks")

    assert "will now ship on Dec 10" in reply


def test_an_expired_question_makes_a_late_answer_a_fresh_text(bot: Bot) -> None:
    bot.worker.sync()
    bot.text(MARCUS, "DELAY")

    bot.later(timedelta(hours=24, minutes=1))
    [reply] = bot.text(MARCUS, "2")

    assert "did not understand" in reply
    assert bot.puts() == []
    assert bot.last_inbound().outcome == "not_understood"


def test_an_unrelated_text_sets_the_question_aside(bot: Bot) -> None:
    bot.worker.sync()
    bot.text(MARCUS, "DELAY")

    [answer] = bot.text(MARCUS, "when is my next order?")
    assert "Your next order (Protein Bars) is on Nov 26" in answer
    [reply] = bot.text(MARCUS, "2")

    assert "did not understand" in reply
    assert bot.puts() == []


def test_no_declines_a_question_and_changes_nothing(bot: Bot) -> None:
    bot.worker.sync()
    bot.text(MARCUS, "DELAY")

    assert bot.text(MARCUS, "no") == []
    assert bot.text(MARCUS, "2") != []

    assert bot.puts() == []


# -- idempotent --------------------------------------------------------------------------------


def test_a_second_skip_for_the_same_notice_answers_already_skipped_and_calls_nothing(
    bot: Bot,
) -> None:
    bot.later(timedelta(hours=1))  # 11:00 in Chicago
    bot.notices()
    [first] = bot.text(MARCUS, "SKIP")
    assert "next order is now on Dec 26" in first

    [second] = bot.text(MARCUS, "skip it pls")

    assert second == (
        "Bean Club: This order (Protein Bars) is already skipped, your next order is on "
        "Dec 26. Reply HELP for other options."
    )
    assert len(bot.puts("/skip")) == 1
    assert bot.last_inbound().outcome == "already_skipped"


def test_a_repeated_bare_skip_without_a_notice_skips_nothing_more(bot: Bot) -> None:
    bot.worker.sync()
    bot.text(MARCUS, "skip")

    [second] = bot.text(MARCUS, "skip")

    assert "already skipped" in second
    assert len(bot.puts("/skip")) == 1


def test_repeated_webhook_deliveries_of_one_text_act_and_answer_once(bot: Bot) -> None:
    bot.worker.sync()
    for _ in range(3):
        bot.phone.text(MARCUS, "skip", sid="SMsame0000000000000000000000001")
    bot.worker.inbox()
    bot.worker.inbox()

    assert len(bot.puts("/skip")) == 1
    assert len(bot.twilio.state.bodies_to(MARCUS)) == 1


def test_skip_after_undo_for_the_same_notice_skips_again(bot: Bot) -> None:
    bot.later(timedelta(hours=1))
    bot.notices()
    bot.text(MARCUS, "skip")
    bot.text(MARCUS, "undo")

    [reply] = bot.text(MARCUS, "skip")

    assert "next order is now on Dec 26" in reply
    assert len(bot.puts("/skip")) == 2


# -- UNDO ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "reverse_path", "check"),
    [
        ("skip", "/unskip", lambda s: billing_day(s) == "2026-11-26"),
        ("delay 2 weeks", "/next-billing-date", lambda s: billing_day(s) == "2026-11-26"),
        ("pause for 1 month", "/activate", lambda s: s["purchaseStateStatus"] == "ACTIVE"),
    ],
)
def test_undo_reverses_the_last_action(
    bot: Bot, command: str, reverse_path: str, check: Any
) -> None:
    bot.worker.sync()
    bot.text(MARCUS, command)
    assert not check(bot.state(MARCUS))

    bot.later(timedelta(hours=23))
    [reply] = bot.text(MARCUS, "undo")

    assert check(bot.state(MARCUS))
    assert len(bot.puts(reverse_path)) == (2 if command.startswith("delay") else 1)
    assert reply.startswith("Bean Club: Done, we undid your last change.")
    assert "Your next order (Protein Bars) is on Nov 26" in reply
    assert bot.last_inbound().outcome == "undone"


def test_undo_twice_does_not_reverse_the_reversal(bot: Bot) -> None:
    bot.worker.sync()
    bot.text(MARCUS, "skip")
    bot.text(MARCUS, "undo")

    [reply] = bot.text(MARCUS, "UNDO")

    assert "nothing to undo" in reply
    assert bot.puts("/skip") and len(bot.puts("/unskip")) == 1


def test_undo_after_the_window_has_nothing_to_undo(bot: Bot) -> None:
    bot.worker.sync()
    bot.text(MARCUS, "skip")

    bot.later(timedelta(hours=24, minutes=1))
    [reply] = bot.text(MARCUS, "unskip")

    assert "There is nothing to undo right now." in reply
    assert bot.puts("/unskip") == []
    assert billing_day(bot.state(MARCUS)) == "2026-12-26"
