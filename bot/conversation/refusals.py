"""Why a subscription cannot be changed as asked, and the replies that say so."""

from __future__ import annotations

from bot.conversation.turn import Outcome, Turn, said
from bot.storage.models import Subscription

#: Parser refusals that mean "a delay, but not one we may make".
OUT_OF_RANGE = frozenset({"over_max", "negative", "past_date"})
NOT_PAUSED = "Your subscription is not paused."
IS_PAUSED = "Your subscription is paused. Reply RESUME to restart it."
TOO_LATE = "This order can no longer be changed by text."
GONE = "We could not find this subscription any more."
#: Why a subscription that is not running cannot be changed, by its Smartrr status.
NOT_RUNNING = {
    "PAUSED": IS_PAUSED,
    "CANCELLED": "This subscription has ended.",
    "EXPIRED": "This subscription has ended.",
    "FAILED": "This subscription is on hold after a payment did not go through. "
    "Please update your payment details on your account page.",
}


def refuse(reason: str, subscription: Subscription | None, *, person: bool = False) -> Outcome:
    """Say ``reason`` about ``subscription``; ``person`` also hands the text to a person."""
    return Outcome("rejected", needs_person=person).reply(
        "action_rejected", reason=reason, subscription=subscription
    )


def delay_refused(turn: Turn) -> Outcome:
    """A delay outside the merchant's limits: say how far one may go."""
    return said("delay_refused", "delay_refused", max_delay_days=turn.settings.max_delay_days)


def pause_refused(turn: Turn) -> Outcome:
    """A pause outside the merchant's limits: say how long one may last."""
    return said("pause_refused", "pause_refused", max_pause_days=turn.settings.max_pause_days)
