"""Going live: sending starts off only where texts would reach real phones, the operator's
switch, the dry run, and the cap of bot-initiated texts per subscriber per 24 hours."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from conftest import SEED_NOW
from flask.testing import FlaskCliRunner
from sqlalchemy import select
from test_event_texts import MARCUS, MAYA, NY_OPENS, World
from test_event_texts import config as config  # the webhook secret, shared
from test_event_texts import world as world  # the fixture, shared

from bot import create_app
from bot.smartrr.sandbox import make_purchase_state
from bot.storage.db import get_db
from bot.storage.models import OutboundMessage
from bot.worker import Worker

DRY_RUN = "sending: off (dry run: texts are planned, not sent; replies still go out)"
SENDING = "sending: on (reminders and event texts go out)"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"TWILIO_API_URL": None}, DRY_RUN),  # real Twilio: real phones
        ({}, SENDING),  # a Twilio-compatible test server
        ({"TWILIO_ACCOUNT_SID": None, "TWILIO_AUTH_TOKEN": None}, SENDING),  # the outbox
    ],
    ids=["real-twilio", "test-server", "outbox"],
)
def test_sending_starts_off_only_when_texts_would_reach_real_phones(
    runner: FlaskCliRunner, config: dict[str, Any], overrides: dict[str, Any], expected: str
) -> None:
    app = create_app({**config, **overrides})
    try:
        cli = app.test_cli_runner()
        assert cli.invoke(args=["sending"]).output.strip() == expected  # before any shop row
        Worker(app).sync()  # creates the shop row
        assert cli.invoke(args=["sending"]).output.strip() == expected
    finally:
        app.extensions["smartrr"].close()
        get_db(app).dispose()


def test_the_operator_switches_sending_off_and_on(runner: FlaskCliRunner) -> None:
    assert runner.invoke(args=["sending", "off"]).output.strip() == DRY_RUN
    assert runner.invoke(args=["sending"]).output.strip() == DRY_RUN
    assert runner.invoke(args=["sending", "on"]).output.strip() == SENDING
    assert runner.invoke(args=["sending"]).output.strip() == SENDING


def test_the_switch_accepts_only_on_or_off(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["sending", "maybe"])

    assert result.exit_code == 2
    assert "'maybe' is not one of 'on', 'off'" in result.output


def test_a_dry_run_plans_everything_sends_nothing_and_still_answers(
    world: World, runner: FlaskCliRunner
) -> None:
    runner.invoke(args=["sending", "off"])
    world.worker.plan()
    world.act(MARCUS, "pause")
    world.hook("subscription_paused", MARCUS)
    world.send_at(NY_OPENS + timedelta(hours=2))

    assert world.twilio.messages == []
    planned = world.session.scalars(
        select(OutboundMessage.kind).where(OutboundMessage.status == "scheduled")
    ).all()
    world.session.rollback()
    assert planned.count("notice") == 5  # everyone active but Marcus, now paused
    assert planned.count("event") == 1
    # A subscriber's own text is still answered.
    world.phone.text(MAYA, "NEXT")
    world.worker.inbox()
    answers = world.texts(MAYA)
    assert [text[:26] for text in answers] == ["Bean Club: Your next order"] * 2

    runner.invoke(args=["sending", "on"])
    world.worker.dispatch()
    assert world.texts(MAYA)[:2] == answers
    assert "Heads up: your upcoming subscription" in world.texts(MAYA)[2]
    assert any("is paused" in text for text in world.texts(MARCUS))


def test_sending_turned_off_stops_bot_texts_at_once(world: World, runner: FlaskCliRunner) -> None:
    world.worker.plan()
    runner.invoke(args=["sending", "off"])
    world.send_at(NY_OPENS)

    assert world.twilio.messages == []


def test_no_more_than_three_bot_texts_a_day_and_the_overflow_waits(world: World) -> None:
    world.worker.plan()  # her coffee reminder, due at 11:00
    world.act(MAYA, "skip", product="Tea")
    world.hook("subscription_skipped", MAYA, product="Tea")
    world.hook("payment_failed", MAYA, product="Tea")
    maya = world.state(MAYA, "Coffee")["custRel"]
    world.sandbox.store.add(
        make_purchase_state(
            "maya-bars",
            SEED_NOW + timedelta(days=20),
            customer=maya,
            items=[("Protein Bars", None, 1)],
        )
    )
    world.hook("subscription_created", MAYA, product="Protein")

    world.send_at(NY_OPENS)
    sent = world.texts(MAYA)
    assert len(sent) == 3
    assert "Welcome" not in " ".join(sent)
    # Her own text is answered all the same: replies are not capped.
    world.phone.text(MAYA, "HELP")
    world.worker.inbox()
    assert len(world.texts(MAYA)) == 4

    world.send_at(NY_OPENS + timedelta(hours=23, minutes=59))
    assert len(world.texts(MAYA)) == 4
    # The rolling day ends 24 hours after her first text, which left just after opening.
    world.send_at(NY_OPENS + timedelta(hours=24, seconds=1))
    assert world.texts(MAYA)[-1].startswith("Bean Club: Welcome, Maya!")
