"""Opting out and back in: carrier keywords, plain words, Twilio's OptOutType, HELP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from test_conversation import MARCUS, Bot
from test_conversation import bot as bot  # the fixture, shared

from bot.storage.models import OutboundMessage, Subscriber

CONFIRMED_OUT = (
    "Bean Club: You are unsubscribed and will not get any more texts from us. "
    "Reply START to resubscribe."
)
CONFIRMED_IN = "Bean Club: You are resubscribed to texts about your subscription."


def opted_out(bot: Bot) -> bool:
    """Has Marcus opted out? (The read ends at once: on SQLite it holds the write lock.)"""
    bot.session.expire_all()
    subscriber = bot.session.scalars(select(Subscriber).where(Subscriber.phone == MARCUS)).one()
    result = subscriber.opted_out
    bot.session.rollback()
    return result


def notice_statuses(bot: Bot) -> list[str]:
    """Statuses of the notices planned for Marcus."""
    bot.session.expire_all()
    query = select(OutboundMessage.status).where(
        OutboundMessage.kind == "notice", OutboundMessage.to_number == MARCUS
    )
    statuses = list(bot.session.scalars(query))
    bot.session.rollback()
    return statuses


@pytest.mark.parametrize(
    "word",
    [
        "STOP",
        "stop",
        "Stop.",
        "STOPALL",
        "UNSUBSCRIBE",
        "END",
        "QUIT",
        "CANCEL",
        "OPTOUT",
        "REVOKE",
    ],
)
def test_a_carrier_opt_out_word_stops_every_pending_text_and_we_send_nothing(
    bot: Bot, word: str
) -> None:
    bot.notices()  # Marcus's notice waits for 11:00 in Chicago
    assert notice_statuses(bot) == ["scheduled"]

    assert bot.text(MARCUS, word) == []  # Twilio confirms these itself

    assert opted_out(bot)
    assert notice_statuses(bot) == ["cancelled"]
    bot.later(timedelta(hours=2))
    bot.notices()
    assert bot.twilio.state.bodies_to(MARCUS) == []
    assert bot.puts() == []


@pytest.mark.parametrize(
    "text", ["stop texting me", "Please do not text me anymore", "no more texts!!"]
)
def test_a_plain_words_opt_out_gets_exactly_one_confirmation(bot: Bot, text: str) -> None:
    bot.worker.sync()

    assert bot.text(MARCUS, text) == [CONFIRMED_OUT]
    assert bot.text(MARCUS, "I said stop texting me") == []

    assert opted_out(bot)


def test_twilio_advanced_opt_out_is_respected_for_its_own_keywords(bot: Bot) -> None:
    bot.worker.sync()

    # A merchant-configured opt-out word the parser does not know: Twilio says what it was.
    assert bot.text(MARCUS, "Arret", OptOutType="STOP") == []
    assert opted_out(bot)

    assert bot.text(MARCUS, "HELP", OptOutType="HELP") == []  # Twilio sent its help text
    assert bot.text(MARCUS, "Start", OptOutType="START") == []  # and its welcome back
    assert not opted_out(bot)


def test_an_opted_out_number_gets_nothing_but_help_and_start_replies(bot: Bot) -> None:
    bot.worker.sync()
    bot.text(MARCUS, "STOP")

    assert bot.text(MARCUS, "skip") == []
    assert bot.text(MARCUS, "next") == []
    assert bot.text(MARCUS, "stop texting me") == []
    assert bot.puts() == []
    assert bot.last_inbound().status == "done"

    [help_text] = bot.text(MARCUS, "HELP")
    assert help_text.startswith("Bean Club: Reply SKIP to skip your next order")

    [welcome] = bot.text(MARCUS, "START")
    assert welcome.startswith(CONFIRMED_IN)
    assert not opted_out(bot)
    assert "skipped your order" in bot.text(MARCUS, "skip")[0]


def test_a_text_from_an_opted_out_subscriber_is_kept_for_a_person(bot: Bot) -> None:
    bot.worker.sync()
    bot.text(MARCUS, "STOP")

    bot.text(MARCUS, "please skip my order")

    inbound = bot.last_inbound()
    assert (inbound.status, inbound.outcome) == ("handoff", "ignored_opted_out")


@pytest.mark.parametrize("word", ["UNSTOP", "yes", "Yes!"])
def test_unstop_and_yes_after_an_opt_out_resume_texts(bot: Bot, word: str) -> None:
    bot.worker.sync()
    bot.text(MARCUS, "STOP")

    [welcome] = bot.text(MARCUS, word)

    assert welcome.startswith(CONFIRMED_IN)
    assert not opted_out(bot)
    bot.notices()
    assert notice_statuses(bot) == ["scheduled"]


def test_stop_drops_an_open_question(bot: Bot) -> None:
    bot.worker.sync()
    bot.text(MARCUS, "delay")
    bot.text(MARCUS, "STOP")
    bot.text(MARCUS, "START")

    [reply] = bot.text(MARCUS, "2")

    assert "did not understand" in reply
    assert bot.puts() == []
