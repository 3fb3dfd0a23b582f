"""Event texts from Smartrr webhooks: every kind, told once, in waking hours, only while
still true; never for the bot's own change, never to an opted-out subscriber."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from conftest import SEED_NOW, Phone, portal_body, product_name
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from sqlalchemy import select
from sqlalchemy.orm import Session
from twilio_fake import TwilioFake

from bot.conversation.handler import Conversation
from bot.conversation.inbox import process_inbox
from bot.outbound.event_texts import KINDS, event_variables, topic_kind
from bot.rules.catalog import CATALOG, COMMON_VARIABLES
from bot.rules.templates import default_source, render
from bot.smartrr.client import SmartrrClient
from bot.smartrr.sandbox import JSON, SandboxServer, make_customer, make_purchase_state
from bot.storage.db import get_db
from bot.storage.models import OutboundMessage, Shop, Subscriber, Subscription
from bot.worker import Worker

SECRET = "whsec_event_texts_0123456789abcdef"
MAYA = "+16465823017"  # New York: Coffee bills Nov 25, Tea Nov 28 (14:00 UTC)
MARCUS = "+13125794420"  # Chicago: Protein Bars bill Nov 26, his only subscription
DANA = "+16024817765"  # Phoenix: Coffee PAUSED until Dec 23
#: 11:00 in New York and in Chicago on the seed's Monday: the first waking moment.
NY_OPENS = datetime.fromisoformat("2026-11-23T16:00:00+00:00")
CHICAGO_OPENS = datetime.fromisoformat("2026-11-23T17:00:00+00:00")


@pytest.fixture
def config(config: dict[str, Any]) -> dict[str, Any]:
    return {**config, "SMARTRR_WEBHOOK_SECRET": SECRET}


class World:
    """Smartrr's side (portal changes, webhooks) and ours (jobs, queue, phones) of one test."""

    def __init__(
        self,
        app: Flask,
        client: FlaskClient,
        sandbox: SandboxServer,
        twilio: TwilioFake,
        phone: Phone,
        session: Session,
        clock: FrozenDateTimeFactory,
    ) -> None:
        self.app, self.client, self.sandbox, self.twilio = app, client, sandbox, twilio
        self.phone, self.session, self.clock = phone, session, clock
        self.worker = Worker(app)
        self.deliveries = 0

    def state(self, number: str, product: str = "") -> JSON:
        """The sandbox's purchase state of ``number`` (the one with ``product``)."""
        return next(
            s
            for s in self.sandbox.store.states()
            if s["custRel"]["phone"] == number
            and any(product in product_name(item) for item in s["stLineItems"])
        )

    def act(self, number: str, action: str, body: Any = None, product: str = "") -> JSON:
        """A change made in Smartrr itself: its portal, the merchant's support team."""
        state = self.state(number, product)
        store = self.sandbox.store
        body = portal_body(store, state, action, body)
        return store.act(state["custRel"]["id"], state["id"], action, body)

    def hook(self, topic: str, number: str, product: str = "", **extra: Any) -> None:
        """Smartrr's webhook about ``number``'s subscription, applied by the events job."""
        state = self.state(number, product)
        self.deliveries += 1
        payload = {
            "eventId": f"evt-{self.deliveries}",
            "topic": topic,
            "purchaseStateId": state["id"],
            "customerId": state["custRel"]["id"],
            **extra,
        }
        response = self.client.post(
            "/smartrr/webhook",
            data=json.dumps(payload),
            content_type="application/json",
            headers={"X-Smartrr-Webhook-Secret": SECRET},
        )
        assert response.status_code == 200, response.get_json()
        self.worker.events()

    def queued(self) -> list[tuple[str, str, str, datetime]]:
        """(template, number, status, due) of every event text, oldest first."""
        rows = self.session.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.kind == "event")
            .order_by(OutboundMessage.id)
        )
        found = [(m.template, m.to_number, m.status, m.due_at) for m in rows]
        self.session.rollback()
        return found

    def notes(self) -> list[tuple[str, str, str | None]]:
        """(template, status, reason) of every event text, oldest first."""
        rows = self.session.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.kind == "event")
            .order_by(OutboundMessage.id)
        )
        found = [(m.template, m.status, m.error_message) for m in rows]
        self.session.rollback()
        return found

    def resync(self) -> None:
        """The next periodic sync, a quarter of an hour later."""
        self.clock.tick(timedelta(minutes=15))
        self.worker.sync()

    def send_at(self, moment: datetime) -> None:
        """Move the clock and run the dispatcher."""
        self.clock.move_to(moment)
        self.worker.dispatch()

    def texts(self, number: str) -> list[str]:
        """What ``number`` received."""
        return self.twilio.state.bodies_to(number)


@pytest.fixture
def world(
    app: Flask,
    client: FlaskClient,
    sandbox: SandboxServer,
    twilio: TwilioFake,
    phone: Phone,
    session: Session,
) -> Iterator[World]:
    with freeze_time(SEED_NOW) as clock:
        world = World(app, client, sandbox, twilio, phone, session, clock)
        world.worker.sync()
        yield world


def event_texts_to(world: World, number: str) -> list[str]:
    """Texts ``number`` received that are not order reminders."""
    return [t for t in world.texts(number) if "Heads up: your upcoming" not in t]


# -- every kind, from the portal or support, through the webhook -----------------------------


def test_a_skip_in_the_portal_is_confirmed_at_the_next_waking_hour(world: World) -> None:
    world.act(MARCUS, "skip")
    world.hook("subscription_skipped", MARCUS)

    assert world.queued() == [("event_skipped", MARCUS, "scheduled", CHICAGO_OPENS)]
    world.send_at(CHICAGO_OPENS - timedelta(minutes=1))
    assert event_texts_to(world, MARCUS) == []
    world.send_at(CHICAGO_OPENS)
    assert event_texts_to(world, MARCUS) == [
        "Bean Club: Your upcoming order (Protein Bars) was skipped. Your next order is on Dec 26."
    ]


@pytest.mark.parametrize(
    ("number", "product", "change", "topic", "template", "words"),
    [
        (
            MARCUS,
            "",
            ("next-billing-date", {"nextBillingDate": "2026-12-03"}),
            "purchase_state.updated",
            "event_date_changed",
            "is now on Dec 3",
        ),
        (
            MARCUS,
            "",
            ("next-billing-date", {"nextBillingDate": "2026-12-03"}),
            "nextSendDateChanged",
            "event_date_changed",
            "is now on Dec 3",
        ),
        (
            MARCUS,
            "",
            ("pause", {"unpauseDate": "2027-01-09"}),
            "subscription_paused",
            "event_paused",
            # Smartrr's purchase state does not say when a pause ends: no date is claimed.
            "is paused. Reply RESUME anytime to restart it.",
        ),
        (DANA, "", ("activate", {}), "subscription-activated", "event_resumed", "active again"),
        (
            MAYA,
            "Coffee",
            ("cancel", {}),
            "subscription_cancelled",
            "event_cancelled",
            "Your other subscriptions carry on",
        ),
        (MARCUS, "", ("cancel", {}), "purchase_state.cancelled", "event_goodbye", "Sorry to see"),
    ],
    ids=["date-any-topic", "date-camel", "paused", "resumed", "cancelled", "goodbye"],
)
def test_each_change_made_outside_the_bot_gets_its_text(
    world: World,
    number: str,
    product: str,
    change: tuple[str, dict[str, str]],
    topic: str,
    template: str,
    words: str,
) -> None:
    world.act(number, change[0], change[1], product=product)
    world.hook(topic, number, product)

    [(queued, to, status, due)] = world.queued()
    assert (queued, to, status) == (template, number, "scheduled")
    world.send_at(due)
    [text] = event_texts_to(world, number)
    assert text.startswith("Bean Club: ")
    assert words in text


def test_an_unskip_in_the_portal_says_the_order_is_back(world: World) -> None:
    world.act(MARCUS, "skip")
    world.hook("subscription_skipped", MARCUS)
    world.act(MARCUS, "unskip")
    world.hook("subscription_unskipped", MARCUS)

    # The skip's text is no longer true: only the unskip's goes.
    assert world.notes() == [
        ("event_skipped", "cancelled", "order date changed again"),
        ("event_unskipped", "scheduled", None),
    ]
    world.send_at(CHICAGO_OPENS)
    assert event_texts_to(world, MARCUS) == [
        "Bean Club: Your skipped order (Protein Bars) is back on for Nov 26."
    ]


def test_a_new_subscription_is_welcomed_with_what_carriers_require(world: World) -> None:
    lena = make_customer("lena", first_name="Lena", phone="+12125550199")
    world.sandbox.store.add(
        make_purchase_state("lena-tea", SEED_NOW + timedelta(days=30), customer=lena)
    )
    world.hook("subscription_created", "+12125550199")

    world.send_at(NY_OPENS)
    [welcome] = world.texts("+12125550199")
    assert welcome.startswith("Bean Club: Welcome, Lena!")
    for required in ("Msg & data rates may apply", "Reply STOP to opt out, HELP for help"):
        assert required in welcome


def test_a_failed_payment_asks_for_a_new_card_with_the_account_link(world: World) -> None:
    world.hook("billing.payment_failed", MARCUS)

    world.send_at(CHICAGO_OPENS)
    [text] = event_texts_to(world, MARCUS)
    assert "did not go through" in text
    assert "https://example.com/account" in text


def test_an_updated_card_is_thanked_and_drops_the_pending_failure(world: World) -> None:
    world.hook("paymentFailed", MARCUS)
    world.hook("customer_payment_method_updated", MARCUS)

    assert world.notes() == [
        ("event_payment_failed", "cancelled", "paid or card updated since"),
        ("event_payment_method_updated", "scheduled", None),
    ]
    world.send_at(CHICAGO_OPENS)
    [text] = event_texts_to(world, MARCUS)
    assert "Your payment method for Protein Bars is updated" in text


def test_a_successful_payment_drops_the_failure_text_before_it_leaves(world: World) -> None:
    world.hook("payment_failed", MARCUS)
    world.hook("payment_success", MARCUS)

    world.send_at(CHICAGO_OPENS)
    assert event_texts_to(world, MARCUS) == []
    assert world.notes() == [("event_payment_failed", "cancelled", "paid or card updated since")]


# -- never twice, never the bot's own change, never to someone who said STOP ------------------


def test_a_repeated_or_late_delivery_adds_nothing(world: World) -> None:
    world.act(MARCUS, "skip")
    world.hook("subscription_skipped", MARCUS)
    world.hook("subscription_skipped", MARCUS)  # a second delivery, a new event id
    world.resync()  # the sync sees nothing new either

    assert [template for template, *_ in world.queued()] == ["event_skipped"]


def test_a_change_the_bot_made_by_text_is_confirmed_once_by_the_conversation(
    world: World,
) -> None:
    world.worker.plan()
    world.send_at(CHICAGO_OPENS)  # the order reminder
    world.phone.text(MARCUS, "SKIP")
    world.worker.inbox()
    world.hook("subscription_skipped", MARCUS)  # Smartrr's echo of the bot's own skip
    world.send_at(CHICAGO_OPENS + timedelta(hours=1))

    assert world.queued() == []
    [reminder, confirmation] = world.texts(MARCUS)
    assert "Heads up: your upcoming subscription" in reminder
    assert "Done! We skipped your order" in confirmation


def test_the_echo_of_a_skip_still_in_flight_is_not_announced(world: World) -> None:
    database = get_db(world.app)
    # A worker whose Smartrr call gives up before Smartrr finishes the skip: the
    # webhook then arrives while the bot's action is still "started".
    with SmartrrClient(
        world.sandbox.url, world.sandbox.token or "", read_timeout=0.3, max_attempts=1
    ) as hasty:
        doomed = Conversation(database, hasty, world.app.extensions["settings"])
        world.sandbox.store.delay = 1.0
        before = world.state(MARCUS)["nextBillingDate"]
        world.phone.text(MARCUS, "skip")
        assert process_inbox(database, doomed, "worker-a") == 1
    world.sandbox.store.delay = 0.0
    # Smartrr finishes the skip the worker gave up waiting for; then its webhook comes.
    for _ in range(200):
        if world.state(MARCUS)["nextBillingDate"] != before:
            break
        time.sleep(0.01)  # real time: freezegun leaves sleep alone
    assert world.state(MARCUS)["nextBillingDate"] != before
    world.hook("subscription_skipped", MARCUS)

    assert world.queued() == []
    world.clock.tick(timedelta(seconds=15))
    world.worker.inbox()  # the conversation finishes: one confirmation
    world.send_at(CHICAGO_OPENS)
    [confirmation] = world.texts(MARCUS)
    assert "We skipped your order" in confirmation


def test_a_portal_change_after_the_bots_own_change_is_news(world: World) -> None:
    world.phone.text(MARCUS, "SKIP")
    world.worker.inbox()
    world.act(MARCUS, "next-billing-date", {"nextBillingDate": "2027-01-04"})
    world.hook("purchase_state.updated", MARCUS)

    assert [template for template, *_ in world.queued()] == ["event_date_changed"]


def test_an_opted_out_subscriber_gets_no_event_text(world: World) -> None:
    world.phone.text(MARCUS, "STOP")
    world.worker.inbox()
    world.act(MARCUS, "skip")
    world.hook("subscription_skipped", MARCUS)

    assert world.queued() == []
    world.send_at(CHICAGO_OPENS)
    assert world.texts(MARCUS) == []


def test_an_event_text_switched_off_by_the_merchant_is_not_queued(world: World) -> None:
    with get_db(world.app).begin() as db:
        shop = db.get(Shop, 1)
        assert shop is not None
        shop.event_texts = {"skipped": False}
    world.act(MARCUS, "skip")
    world.hook("subscription_skipped", MARCUS)
    world.act(MARCUS, "pause")
    world.hook("subscription_paused", MARCUS)

    assert [template for template, *_ in world.queued()] == ["event_paused"]


# -- no longer true when its time comes ---------------------------------------------------------


def test_a_pause_undone_before_its_text_leaves_is_dropped_and_the_resume_told(
    world: World,
) -> None:
    world.act(MARCUS, "pause")
    world.hook("subscription_paused", MARCUS)
    world.act(MARCUS, "activate")
    world.hook("subscription_activated", MARCUS)

    world.send_at(CHICAGO_OPENS)
    assert world.notes() == [
        ("event_paused", "cancelled", "subscription is active now"),
        ("event_resumed", "sent", None),
    ]
    [text] = event_texts_to(world, MARCUS)
    assert "active again" in text


def test_a_text_no_longer_true_at_send_time_is_dropped_not_sent(world: World) -> None:
    world.act(MARCUS, "pause")
    world.hook("subscription_paused", MARCUS)
    # Marcus resumes by text before 11:00: the conversation changes the subscription,
    # no webhook comes, and the queued "paused" text is untrue when its time comes.
    world.phone.text(MARCUS, "RESUME")
    world.worker.inbox()

    world.send_at(CHICAGO_OPENS)
    assert world.notes() == [("event_paused", "cancelled", "subscription is active now")]
    [reply] = world.texts(MARCUS)  # the conversation's own confirmation, nothing else
    assert reply.startswith("Bean Club: Welcome back!")


@pytest.mark.parametrize(
    ("topic", "kind"),
    [
        ("subscription_created", "welcome"),
        ("SUBSCRIPTION_SKIPPED", "skipped"),
        ("purchase-state/un-skipped", "unskipped"),
        ("subscriptionUnskipped", "unskipped"),
        ("next_billing_date_updated", "date_changed"),
        ("order_rescheduled", "date_changed"),
        ("subscription_paused", "paused"),
        ("subscription_unpaused", "resumed"),
        ("subscription.reactivated", "resumed"),
        ("subscriptionResumed", "resumed"),
        ("subscription_canceled", "cancelled"),
        ("payment_failed", "payment_failed"),
        ("billing_attempt_declined", "payment_failed"),
        ("customer/payment-method-updated", "payment_method_updated"),
        ("successful_payment", "payment_succeeded"),
        ("payment_success", "payment_succeeded"),
        ("purchase_state.updated", None),
        ("", None),
        (None, None),
    ],
)
def test_topics_are_read_by_their_words_in_any_spelling(
    topic: str | None, kind: str | None
) -> None:
    assert topic_kind(topic) == kind


@pytest.mark.parametrize("kind", KINDS)
def test_each_event_template_is_given_every_variable_it_may_use(app: Flask, kind: str) -> None:
    subscriber = Subscriber(first_name="Maya", phone=MAYA, time_zone="America/New_York")
    subscription = Subscription(
        subscriber=subscriber,
        status="PAUSED",
        products="Earl Grey Tea",
        next_billing_at=SEED_NOW + timedelta(days=5),
        unpause_at=SEED_NOW + timedelta(days=7),
    )
    spec = CATALOG[f"event_{kind}"]

    variables = event_variables(app.extensions["settings"], subscriber, subscription, SEED_NOW)

    for name in COMMON_VARIABLES + spec.variables:
        assert variables[name] not in ("", None), name
    assert render(default_source(spec.name), variables).startswith("Bean Club: ")
