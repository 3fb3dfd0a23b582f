"""Event texts from the reconciliation sync (changes whose webhook never came), and the
reminder before a paused subscription restarts by itself."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from conftest import SEED_NOW
from test_event_texts import CHICAGO_OPENS, DANA, MARCUS, MAYA, NY_OPENS, World, event_texts_to
from test_event_texts import world as world  # the fixture, shared

from bot.smartrr.sandbox import make_customer, make_purchase_state

#: Dana (Phoenix) is paused until Dec 23; 11:00 in Phoenix is 18:00 UTC.
DANA_RESUMES = datetime.fromisoformat("2026-12-23T00:00:00+00:00")
#: "pause for 1 month" on Nov 23: Dec 23 at 8:00 in Chicago, the order's own time of day.
MARCUS_RESUMES = datetime.fromisoformat("2026-12-23T14:00:00+00:00")


def test_the_first_sync_of_an_installation_welcomes_nobody(world: World) -> None:
    # The fixture has synced once: seven subscriptions, all new to us.
    assert world.queued() == []


def test_a_subscription_first_seen_by_a_later_sync_is_welcomed(world: World) -> None:
    lena = make_customer("lena", first_name="Lena", phone="+12125550199")
    world.sandbox.store.add(
        make_purchase_state("lena-tea", SEED_NOW + timedelta(days=30), customer=lena)
    )
    world.resync()

    assert world.queued() == [("event_welcome", "+12125550199", "scheduled", NY_OPENS)]
    world.send_at(NY_OPENS)
    [welcome] = world.texts("+12125550199")
    assert "Msg & data rates may apply. Reply STOP to opt out, HELP for help." in welcome


@pytest.mark.parametrize(
    ("number", "product", "action", "body", "template", "words"),
    [
        (MARCUS, "", "skip", {}, "event_date_changed", "is now on Dec 26"),
        (
            MARCUS,
            "",
            "next-billing-date",
            {"nextBillingDate": "2026-12-01"},
            "event_date_changed",
            "is now on Dec 1",
        ),
        (MARCUS, "", "pause", {}, "event_paused", "is paused. Reply RESUME"),
        (DANA, "", "activate", {}, "event_resumed", "active again"),
        (MAYA, "Tea", "cancel", {}, "event_cancelled", "(Earl Grey Tea) was cancelled"),
        (MARCUS, "", "cancel", {}, "event_goodbye", "Sorry to see you go, Marcus!"),
    ],
    ids=["skip", "date", "paused", "resumed", "cancelled", "goodbye"],
)
def test_a_change_whose_webhook_never_came_is_told_after_the_next_sync(
    world: World,
    number: str,
    product: str,
    action: str,
    body: dict[str, str],
    template: str,
    words: str,
) -> None:
    world.act(number, action, body, product=product)
    world.resync()

    [(queued, to, status, due)] = world.queued()
    assert (queued, to, status) == (template, number, "scheduled")
    world.send_at(due)
    [text] = event_texts_to(world, number)
    assert words in text


def test_the_last_two_subscriptions_cancelled_at_once_get_one_goodbye(world: World) -> None:
    world.act(MAYA, "cancel", product="Coffee")
    world.act(MAYA, "cancel", product="Tea")
    world.resync()

    assert [(template, to) for template, to, *_ in world.queued()] == [("event_goodbye", MAYA)]


def test_an_order_billed_on_schedule_is_no_news(world: World) -> None:
    world.worker.plan()
    world.send_at(CHICAGO_OPENS)  # the reminder
    # The order bills on Nov 26 and Smartrr moves the next one a month on by itself.
    world.clock.move_to(datetime.fromisoformat("2026-11-26T15:00:00+00:00"))
    state = world.state(MARCUS)
    world.sandbox.store.add({**state, "nextBillingDate": "2026-12-26T14:00:00.000Z"})
    world.resync()

    assert world.queued() == []


def pause_by_text(world: World, number: str, text: str) -> None:
    """The subscriber pauses by text; the conversation answers at once."""
    assert world.phone.text(number, text).status_code == 200
    world.worker.inbox()


def test_a_pause_by_text_gets_a_reminder_7_days_before_it_restarts(world: World) -> None:
    pause_by_text(world, MARCUS, "pause for 1 month")
    world.clock.move_to(MARCUS_RESUMES - timedelta(days=8))
    world.resync()
    assert world.queued() == []

    world.clock.move_to(MARCUS_RESUMES - timedelta(days=7))
    world.resync()
    world.resync()  # one reminder per resume date, however often the sync runs
    # 14:30 UTC on Dec 16 is 8:30 in Chicago: due when waking hours open at 11:00.
    [(_, to, status, due)] = world.queued()
    assert (to, status, due) == (MARCUS, "scheduled", CHICAGO_OPENS + timedelta(days=23))

    world.send_at(due)
    assert world.texts(MARCUS)[-1] == (
        "Bean Club: Heads up: your paused subscription (Protein Bars) restarts by "
        "itself on Dec 23. Reply RESUME to restart it sooner, or change the date at "
        "https://example.com/account"
    )


def test_a_pause_made_in_smartrr_gets_no_reminder_since_its_end_is_not_known(
    world: World,
) -> None:
    # Smartrr's purchase state does not carry the date a pause ends (its document has
    # no such field): only a pause the bot made knows it.
    world.clock.move_to(DANA_RESUMES - timedelta(days=7))
    world.resync()

    assert world.queued() == []


def test_a_resume_reminder_is_dropped_when_the_subscriber_resumes_first(world: World) -> None:
    pause_by_text(world, MARCUS, "pause for 1 month")
    world.clock.move_to(MARCUS_RESUMES - timedelta(days=7))
    world.resync()
    pause_by_text(world, MARCUS, "resume")
    world.resync()

    assert world.notes() == [("event_resume_reminder", "cancelled", "subscription is active now")]
    world.send_at(MARCUS_RESUMES - timedelta(days=6))
    assert not any("Heads up" in text for text in world.texts(MARCUS))
