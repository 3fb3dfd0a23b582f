"""Each command through the webhook: cancel, pause, resume, next, help, delays, timing, copy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from test_conversation import DANA, MARCUS, MAYA, STRANGER, Bot, billing_day
from test_conversation import bot as bot  # the fixture, shared

from bot.rules.catalog import CATALOG, COMMON_VARIABLES
from bot.smartrr.client import SmartrrClient
from bot.storage.models import Shop, TemplateVersion
from bot.storage.shop import SHOP_ID

SOFIA = "+13034512298"  # Denver: Vitamin Pack bills Nov 27


def shop(bot: Bot, **values: Any) -> None:
    """Change the merchant's settings as the console would."""
    row = bot.session.get(Shop, SHOP_ID)
    assert row is not None
    for name, value in values.items():
        setattr(row, name, value)
    bot.session.commit()


def allow_cancel(bot: Bot) -> None:
    """Allow cancelling by text, filed under the first of the merchant's Smartrr reasons."""
    with SmartrrClient(bot.sandbox.url, bot.sandbox.token or "") as client:
        reason = client.cancellation_reasons()[0]
    shop(bot, cancel_by_text=True, cancel_reason_id=reason.id)


def wording(bot: Bot, name: str, source: str) -> None:
    """Save a merchant's wording of template ``name``."""
    bot.session.add(TemplateVersion(name=name, source=source, author="merchant@example.com"))
    bot.session.commit()


# -- cancel --------------------------------------------------------------------------------


def test_cancel_my_subscription_answers_with_the_account_page_by_default(bot: Bot) -> None:
    bot.worker.sync()

    [reply] = bot.text(MARCUS, "cancel my subscription")

    assert reply == (
        "Bean Club: You can cancel your subscription on your account page: "
        "https://example.com/account"
    )
    assert bot.text(MARCUS, "YES") != []  # no question was asked: a bare YES changes nothing
    assert bot.puts() == []


def test_when_the_merchant_allows_it_cancel_needs_yes_and_then_cancels(bot: Bot) -> None:
    bot.worker.sync()
    allow_cancel(bot)

    [question] = bot.text(MARCUS, "I want to cancel my subscription")
    assert "Reply YES to confirm cancelling your subscription (Protein Bars)" in question
    assert bot.puts() == []

    [reply] = bot.text(MARCUS, "yes")

    assert "Your subscription (Protein Bars) is cancelled." in reply
    assert bot.state(MARCUS)["purchaseStateStatus"] == "CANCELLED"
    assert len(bot.puts("/cancel")) == 1
    assert "nothing to undo" in bot.text(MARCUS, "undo")[0]


def test_a_yes_after_the_cancel_question_expired_cancels_nothing(bot: Bot) -> None:
    bot.worker.sync()
    allow_cancel(bot)
    bot.text(MARCUS, "cancel my subscription")

    bot.later(timedelta(hours=25))
    bot.text(MARCUS, "YES")

    assert bot.puts() == []
    assert bot.state(MARCUS)["purchaseStateStatus"] == "ACTIVE"


def test_cancel_with_two_subscriptions_asks_which_then_confirms(bot: Bot) -> None:
    bot.worker.sync()
    allow_cancel(bot)
    bot.text(MAYA, "cancel my subscription")

    [question] = bot.text(MAYA, "2")
    assert "cancelling your subscription (Earl Grey Tea)" in question
    bot.text(MAYA, "YES")

    assert bot.state(MAYA, "Tea")["purchaseStateStatus"] == "CANCELLED"
    assert bot.state(MAYA, "Coffee")["purchaseStateStatus"] == "ACTIVE"


# -- pause, resume, next, help ----------------------------------------------------------------


def test_pause_for_two_months_sets_the_date_it_resumes_by_itself(bot: Bot) -> None:
    bot.worker.sync()

    [reply] = bot.text(MARCUS, "pause for 2 months")

    state = bot.state(MARCUS)
    assert state["purchaseStateStatus"] == "PAUSED"
    # Jan 23 at the order's own time of day in Chicago (8:00, 14:00 UTC).
    assert bot.sandbox.store.unpause_date(state["id"]) == datetime(2027, 1, 23, 14, tzinfo=UTC)
    assert reply == (
        "Bean Club: Your subscription (Protein Bars) is paused and will restart on Jan 23. "
        "Reply RESUME anytime to restart it sooner."
    )


def test_a_bare_pause_asks_how_long_and_takes_a_number_or_a_duration(bot: Bot) -> None:
    bot.worker.sync()

    [question] = bot.text(MARCUS, "PAUSE")
    assert question == (
        "Bean Club: How long should we pause your subscription? "
        "Reply 1) 1 month 2) 2 months 3) 3 months."
    )
    assert bot.puts("/pause") == []
    [reply] = bot.text(MARCUS, "2")

    state = bot.state(MARCUS)
    assert bot.sandbox.store.unpause_date(state["id"]) == datetime(2027, 1, 23, 14, tzinfo=UTC)
    assert "is paused and will restart on Jan 23" in reply

    bot.text(SOFIA, "pause")
    [reply] = bot.text(SOFIA, "6 weeks")
    assert "will restart on Jan 4" in reply


def test_the_merchant_sets_the_pause_options_and_the_longest_pause(bot: Bot) -> None:
    bot.worker.sync()
    shop(bot, pause_options="2 weeks, 1 month", max_pause_days=31)

    [question] = bot.text(MARCUS, "pause")
    [refused] = bot.text(MARCUS, "pause for 3 months")

    assert question.endswith("Reply 1) 2 weeks 2) 1 month.")
    assert "You can pause it for up to 31 days" in refused
    assert bot.puts("/pause") == []
    assert "will restart on Dec 7" in bot.text(MARCUS, "pause for 2 weeks")[0]


def test_resume_restarts_a_paused_subscription_on_its_next_date(bot: Bot) -> None:
    bot.worker.sync()

    [reply] = bot.text(DANA, "RESUME")

    state = bot.state(DANA)
    assert state["purchaseStateStatus"] == "ACTIVE"
    assert state["nextBillingDate"] == "2026-11-29T14:00:00.000Z"
    assert reply == (
        "Bean Club: Welcome back! Your subscription (House Blend Coffee x2) is active again. "
        "Your next order is on Nov 29."
    )


def test_undo_of_a_resume_pauses_again_until_the_first_resume_date(bot: Bot) -> None:
    bot.worker.sync()
    bot.text(MARCUS, "pause for 2 months")
    bot.text(MARCUS, "resume")

    [reply] = bot.text(MARCUS, "undo")

    state = bot.state(MARCUS)
    assert state["purchaseStateStatus"] == "PAUSED"
    assert bot.sandbox.store.unpause_date(state["id"]) == datetime(2027, 1, 23, 14, tzinfo=UTC)
    assert reply.startswith("Bean Club: Done, we undid your last change.")
    assert "Nov 26" in reply  # the order date Smartrr holds for the paused subscription


def test_undo_of_a_pause_resumes_on_the_original_next_date(bot: Bot) -> None:
    bot.worker.sync()
    bot.text(MARCUS, "pause for 2 months")

    [reply] = bot.text(MARCUS, "undo")

    state = bot.state(MARCUS)
    assert (state["purchaseStateStatus"], billing_day(state)) == ("ACTIVE", "2026-11-26")
    assert "Your next order (Protein Bars) is on Nov 26" in reply


def test_resume_when_nothing_is_paused_and_skip_when_paused_are_answered_plainly(
    bot: Bot,
) -> None:
    bot.worker.sync()

    assert "Your subscription is not paused." in bot.text(MARCUS, "unpause")[0]
    assert "Your subscription is paused. Reply RESUME" in bot.text(DANA, "skip")[0]
    assert bot.puts() == []


def test_a_subscription_whose_payment_failed_is_answered_with_what_to_do(bot: Bot) -> None:
    failed = bot.state(MARCUS) | {"purchaseStateStatus": "FAILED"}
    bot.sandbox.store.add(failed)
    bot.worker.sync()

    [reply] = bot.text(MARCUS, "skip")

    assert "on hold after a payment did not go through" in reply
    assert bot.puts() == []


def test_next_answers_with_date_and_products_and_changes_nothing(bot: Bot) -> None:
    bot.worker.sync()

    assert bot.text(MARCUS, "NEXT") == [
        "Bean Club: Your next order (Protein Bars) is on Nov 26. Reply SKIP or DELAY to change it."
    ]
    coffee, tea = bot.text(MAYA, "when is my next order?")
    assert "(House Blend Coffee x2) is on Nov 25" in coffee
    assert "(Earl Grey Tea) is on Nov 28" in tea
    assert "(House Blend Coffee x2) is paused" in bot.text(DANA, "status")[0]
    assert bot.puts() == []


def test_help_lists_the_keywords_and_the_account_page(bot: Bot) -> None:
    bot.worker.sync()

    [reply] = bot.text(MARCUS, "HELP")

    assert "SKIP" in reply and "DELAY" in reply and "STOP to opt out" in reply
    assert reply.endswith("https://example.com/account")
    assert bot.text(STRANGER, "help")[0] == reply  # HELP answers anyone


# -- delays -----------------------------------------------------------------------------------


def test_delay_to_a_date(bot: Bot) -> None:
    bot.worker.sync()

    [reply] = bot.text(MARCUS, "delay to 12/14")

    assert billing_day(bot.state(MARCUS)) == "2026-12-14"
    assert "will now ship on Dec 14" in reply


def test_a_delay_keeps_the_orders_time_of_day_and_sends_a_full_utc_moment(bot: Bot) -> None:
    bot.worker.sync()
    assert bot.state(MARCUS)["nextBillingDate"] == "2026-11-26T14:00:00.000Z"

    bot.text(MARCUS, "delay 1 week")

    # Not midnight UTC (the evening before in Chicago): the same 8:00 there, a week later.
    assert bot.state(MARCUS)["nextBillingDate"] == "2026-12-03T14:00:00.000Z"


@pytest.mark.parametrize(
    "text", ["delay 6 months", "delay 70 days", "delay until March 3", "delay -2 weeks"]
)
def test_a_delay_beyond_the_limits_is_refused_and_changes_nothing(bot: Bot, text: str) -> None:
    bot.worker.sync()

    [reply] = bot.text(MARCUS, text)

    assert "You can delay it by up to 60 days from its current date." in reply
    assert bot.puts() == []


def test_the_merchants_own_maximum_delay_applies(bot: Bot) -> None:
    bot.worker.sync()
    shop(bot, max_delay_days=10)

    assert "up to 10 days" in bot.text(MARCUS, "delay 2 weeks")[0]
    bot.text(MARCUS, "delay")
    assert "up to 10 days" in bot.text(MARCUS, "3")[0]  # 1 month, offered but too long here
    assert bot.puts() == []

    assert "will now ship on Dec 3" in bot.text(MARCUS, "delay a week")[0]


def test_negations_and_questions_never_act(bot: Bot) -> None:
    bot.worker.sync()

    for text in ("don't skip", "can I skip?", "skip or pause?", "I skipped breakfast lol"):
        [reply] = bot.text(MARCUS, text)
        assert "nothing was changed" in reply

    assert bot.puts() == []
    assert set(bot.outcomes()) == {"not_understood"}


# -- timing -----------------------------------------------------------------------------------


def test_a_reply_at_two_in_the_morning_goes_out_at_once_while_notices_wait(bot: Bot) -> None:
    bot.later(timedelta(hours=16))  # Tuesday 02:00 in Chicago
    bot.notices()
    assert bot.twilio.state.bodies_to(MARCUS) == []  # the notice waits for 11:00

    [reply] = bot.text(MARCUS, "next")

    assert "Your next order (Protein Bars) is on Nov 26" in reply


# -- the copy a merchant edits ------------------------------------------------------------------

ALL_MERCHANT_VARIABLES = (
    "first_name",
    "shop_name",
    "products",
    "next_order_date",
    "new_delivery_date",
    "account_page_link",
    "days_until",
)
#: How to make the bot send each reply template: (settings, [(number, text), ...]). Beside
#: the shop's settings: "noticed" sends Marcus's notice first, "status" then gives his
#: subscription that status in Smartrr, "smartrr_fails" makes Smartrr answer the last
#: text's call with that status.
SCENARIOS: dict[str, tuple[dict[str, Any], list[tuple[str, str]]]] = {
    "skip_confirmed": ({}, [(MARCUS, "skip")]),
    "already_skipped": ({}, [(MARCUS, "skip"), (MARCUS, "skip")]),
    "delay_options": ({}, [(MARCUS, "delay")]),
    "delay_confirmed": ({}, [(MARCUS, "delay 2 weeks")]),
    "delay_refused": ({}, [(MARCUS, "delay 6 months")]),
    "pause_options": ({}, [(MARCUS, "pause")]),
    "pause_refused": ({}, [(MARCUS, "pause for 6 months")]),
    "pause_confirmed": ({}, [(MARCUS, "pause for 2 months")]),
    "resume_confirmed": ({}, [(DANA, "resume")]),
    "undo_confirmed": ({}, [(MARCUS, "skip"), (MARCUS, "undo")]),
    "nothing_to_undo": ({}, [(MARCUS, "undo")]),
    "next_order": ({}, [(MARCUS, "next")]),
    "help": ({}, [(MARCUS, "help")]),
    "fallback": ({}, [(MARCUS, "hello there")]),
    "which_subscription": ({}, [(MAYA, "skip")]),
    "no_subscription": ({}, [(STRANGER, "skip")]),
    "opt_out_confirmed": ({}, [(MARCUS, "stop texting me")]),
    "opt_in_confirmed": ({}, [(MARCUS, "STOP"), (MARCUS, "START")]),
    "cancel_info": ({}, [(MARCUS, "cancel my subscription")]),
    "cancel_confirm": ({"allow_cancel": True}, [(MARCUS, "cancel my subscription")]),
    "cancel_confirmed": (
        {"allow_cancel": True},
        [(MARCUS, "cancel my subscription"), (MARCUS, "yes")],
    ),
    "not_paused": ({}, [(MARCUS, "resume")]),
    "already_paused": ({}, [(DANA, "skip")]),
    "too_late": ({"smartrr_fails": 422}, [(MARCUS, "skip")]),
    "subscription_gone": ({"smartrr_fails": 404}, [(MARCUS, "skip")]),
    "subscription_ended": ({"noticed": True, "status": "CANCELLED"}, [(MARCUS, "skip")]),
    "payment_on_hold": ({"status": "FAILED"}, [(MARCUS, "skip")]),
    "rate_limited": ({}, [(MARCUS, "hi")] * 11),
}


def test_every_reply_template_has_a_scenario() -> None:
    # Event texts are not replies: tests/test_event_texts.py gives each its variables.
    replies = {name for name in CATALOG if not name.startswith("event_")}
    assert set(SCENARIOS) == replies - {"upcoming_order", "action_failed"}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_reply_is_given_every_variable_its_template_may_use(bot: Bot, name: str) -> None:
    bot.worker.sync()
    settings, texts = SCENARIOS[name]
    if settings.get("allow_cancel"):
        allow_cancel(bot)
    if settings.get("noticed"):
        bot.later(timedelta(hours=1))  # 11:00 in Chicago
        bot.notices()
    if "status" in settings:
        bot.sandbox.store.add(bot.state(MARCUS) | {"purchaseStateStatus": settings["status"]})
        bot.later(timedelta(minutes=1))  # a later sync: it reads again what it no longer lists
        bot.worker.sync()
    allowed = COMMON_VARIABLES + CATALOG[name].variables
    wording(bot, name, "|".join(f"{{{{ {v} }}}}" for v in allowed))
    for number, text in texts[:-1]:
        bot.phone.text(number, text)
    number, text = texts[-1]
    if "smartrr_fails" in settings:
        bot.sandbox.store.fail_next(1, status=settings["smartrr_fails"])

    replies = bot.text(number, text)

    marked = [r for r in replies if r.count("|") == len(allowed) - 1]
    assert marked, f"{name} was not sent: {replies}"
    assert "" not in marked[-1].split("|"), marked[-1]


@pytest.mark.parametrize(
    ("name", "texts", "expected"),
    [
        ("skip_confirmed", ["skip"], "Dec 26|Dec 26|33"),
        ("delay_confirmed", ["delay 2 weeks"], "Dec 10|Dec 10|17"),
        ("pause_confirmed", ["pause for 1 month"], "Nov 26|Nov 26|3"),
        ("undo_confirmed", ["skip", "undo"], "Nov 26|Nov 26|3"),
        ("next_order", ["next"], "Nov 26|Nov 26|3"),
    ],
)
def test_confirmations_can_use_all_the_variables_a_merchant_expects(
    bot: Bot, name: str, texts: list[str], expected: str
) -> None:
    bot.worker.sync()
    wording(bot, name, "|".join(f"{{{{ {v} }}}}" for v in ALL_MERCHANT_VARIABLES))

    for text in texts:
        replies = bot.text(MARCUS, text)

    first, shop_name, products, *dates, link, days = replies[-1].split("|")
    assert (first, shop_name, products, link) == (
        "Marcus",
        "Bean Club",
        "Protein Bars",
        "https://example.com/account",
    )
    assert "|".join([*dates, days]) == expected
