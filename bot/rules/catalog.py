"""The SMS template catalog: which templates exist, what each may print, sample values."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TemplateSpec:
    name: str
    title: str
    description: str
    variables: tuple[str, ...]
    first_message: bool = False


COMMON_VARIABLES: tuple[str, ...] = ("shop_name", "first_name", "account_page_link")
#: What every reply about one subscription can say (the order date after the change, too).
SUBSCRIPTION_VARIABLES: tuple[str, ...] = (
    "products",
    "next_order_date",
    "new_delivery_date",
    "days_until",
)

_SPECS = (
    TemplateSpec(
        "upcoming_order",
        "Upcoming order reminder",
        "Sent a few days before a subscription order ships.",
        ("products", "next_order_date", "days_until"),
        first_message=True,
    ),
    TemplateSpec(
        "skip_confirmed",
        "Skip confirmed",
        "The subscriber replied SKIP and the order was skipped.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "already_skipped",
        "Already skipped",
        "The subscriber replied SKIP again for an order that is already skipped.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "delay_options",
        "Delay options",
        "The subscriber replied DELAY without saying for how long. A reply of 1, 2 or 3 "
        "delays the order by 1 week, 2 weeks or 1 month; any other length may be named.",
        (),
    ),
    TemplateSpec(
        "delay_confirmed",
        "Delay confirmed",
        "The order was pushed back to a new date.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "delay_refused",
        "Delay refused",
        "The requested delay is too long, in the past or not understood.",
        ("max_delay_days",),
    ),
    TemplateSpec(
        "pause_options",
        "Pause options",
        "The subscriber replied PAUSE without saying for how long; options are the pause "
        "lengths set in Settings.",
        ("options",),
    ),
    TemplateSpec(
        "pause_refused",
        "Pause refused",
        "The requested pause is longer than the longest pause set in Settings, or in the past.",
        ("max_pause_days",),
    ),
    TemplateSpec(
        "pause_confirmed",
        "Pause confirmed",
        "The subscription was paused until resume_date, when it restarts by itself.",
        (*SUBSCRIPTION_VARIABLES, "resume_date"),
    ),
    TemplateSpec(
        "resume_confirmed",
        "Resume confirmed",
        "The subscriber replied RESUME and the subscription is active again.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "undo_confirmed",
        "Undo confirmed",
        "The subscriber replied UNDO and their last change was reverted.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "nothing_to_undo",
        "Nothing to undo",
        "The subscriber replied UNDO but there is no recent change to revert.",
        (),
    ),
    TemplateSpec(
        "next_order",
        "Next order",
        "The subscriber replied NEXT; status is PAUSED when the subscription is paused.",
        (*SUBSCRIPTION_VARIABLES, "status"),
    ),
    TemplateSpec(
        "help",
        "Help",
        "The subscriber replied HELP: lists every keyword.",
        (),
    ),
    TemplateSpec(
        "fallback",
        "Not understood",
        "The reply was not understood; nothing was changed.",
        (),
    ),
    TemplateSpec(
        "which_subscription",
        "Which subscription",
        "The subscriber has several subscriptions and must pick one.",
        ("options",),
    ),
    TemplateSpec(
        "no_subscription",
        "No subscription found",
        "No active subscription matches the subscriber's phone number.",
        (),
    ),
    TemplateSpec(
        "opt_out_confirmed",
        "Opt-out confirmed",
        "The subscriber asked to stop in their own words (carriers answer the STOP keyword).",
        (),
    ),
    TemplateSpec(
        "opt_in_confirmed",
        "Opt-in confirmed",
        "The subscriber replied START and will get texts again.",
        (),
        first_message=True,
    ),
    TemplateSpec(
        "cancel_info",
        "Cancellation info",
        "The subscriber asked to cancel: cancelling is done on the account page.",
        (),
    ),
    TemplateSpec(
        "cancel_confirm",
        "Confirm cancellation",
        "Asks the subscriber to reply YES before cancelling.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "cancel_confirmed",
        "Cancellation confirmed",
        "The subscription was cancelled.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "action_failed",
        "Action failed",
        "The change could not be made because of an error; the team follows up.",
        (),
    ),
    TemplateSpec(
        "not_paused",
        "Not paused",
        "The subscriber asked to resume a subscription that is not paused.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "already_paused",
        "Already paused",
        "The subscriber asked to change an order of a paused subscription.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "too_late",
        "Too late to change",
        "Smartrr refused the change (say, the order is already being prepared); the team "
        "sees the text in the Inbox.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "subscription_gone",
        "Subscription not found",
        "Smartrr no longer has the subscription; the team sees the text in the Inbox.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "subscription_ended",
        "Subscription ended",
        "The subscriber asked to change a cancelled or expired subscription.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "payment_on_hold",
        "Payment on hold",
        "The subscriber asked to change a subscription on hold after a failed payment.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "rate_limited",
        "Too many messages",
        "The subscriber sent many messages in a short time; the team will look.",
        (),
    ),
    # Event texts: sent when a subscription changes outside a conversation with the bot.
    TemplateSpec(
        "event_welcome",
        "Welcome",
        "A new subscription started. Often the first text a subscriber gets: carriers want "
        "the brand, what the texts are for, 'Msg & data rates may apply' and STOP/HELP.",
        SUBSCRIPTION_VARIABLES,
        first_message=True,
    ),
    TemplateSpec(
        "event_skipped",
        "Order skipped",
        "The next order was skipped in the customer portal or by support.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "event_unskipped",
        "Skip undone",
        "A skipped order was put back in the customer portal or by support.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "event_date_changed",
        "Order date changed",
        "The next order date was moved in the customer portal or by support.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "event_paused",
        "Subscription paused",
        "The subscription was paused outside a text; resume_date is empty when it does not "
        "resume by itself.",
        (*SUBSCRIPTION_VARIABLES, "resume_date"),
    ),
    TemplateSpec(
        "event_resumed",
        "Subscription resumed",
        "A paused subscription is active again (resumed by itself, in the portal or by support).",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "event_cancelled",
        "Subscription cancelled",
        "A subscription was cancelled while the subscriber has others still running.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "event_goodbye",
        "Last subscription cancelled",
        "The subscriber's last running subscription was cancelled.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "event_payment_failed",
        "Payment failed",
        "A payment failed; ask the subscriber to update their card on the account page. "
        "Dropped if a payment succeeds or the card is updated before it leaves.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "event_payment_method_updated",
        "Payment method updated",
        "The subscriber's payment method was updated.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "event_resume_reminder",
        "Resume reminder",
        "Sent 7 days before a paused subscription restarts by itself on resume_date.",
        (*SUBSCRIPTION_VARIABLES, "resume_date"),
    ),
)
CATALOG: dict[str, TemplateSpec] = {spec.name: spec for spec in _SPECS}

SAMPLE_VARIABLES: dict[str, str] = {
    "shop_name": "Bean Box",
    "first_name": "Sam",
    "account_page_link": "https://beanbox.example/account",
    "products": "Dark Roast Coffee",
    "next_order_date": "Dec 5",
    "days_until": "3",
    "new_delivery_date": "Dec 19",
    "options": "1) 1 month 2) 2 months 3) 3 months",
    "max_delay_days": "60",
    "max_pause_days": "92",
    "resume_date": "Jan 9",
    "status": "ACTIVE",
}
# `options` means different lists in different templates; previews should read naturally.
_SAMPLE_OVERRIDES: dict[str, dict[str, str]] = {
    "which_subscription": {"options": "1) Dark Roast Coffee (Dec 5), 2) Green Tea (Dec 9)"},
}


def sample_variables(name: str) -> dict[str, str]:
    """Return the sample values to preview template `name` with."""
    return SAMPLE_VARIABLES | _SAMPLE_OVERRIDES.get(name, {})
