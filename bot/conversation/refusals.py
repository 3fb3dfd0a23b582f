"""Why a subscription cannot be changed as asked, and the replies that say so."""

from __future__ import annotations

from bot.conversation.turn import Outcome, Turn, said
from bot.storage.models import Subscription, SubscriptionStatus

#: Parser refusals that mean "a delay, but not one we may make".
OUT_OF_RANGE = frozenset({"over_max", "negative", "past_date"})
# The replies (template names) that say why a change cannot be made.
NOT_PAUSED = "not_paused"
IS_PAUSED = "already_paused"
TOO_LATE = "too_late"
GONE = "subscription_gone"
#: Why a subscription that is not running cannot be changed, by its Smartrr status.
NOT_RUNNING: dict[str, str] = {
    SubscriptionStatus.PAUSED: IS_PAUSED,
    SubscriptionStatus.CANCELLED: "subscription_ended",
    SubscriptionStatus.EXPIRED: "subscription_ended",
    SubscriptionStatus.FAILED: "payment_on_hold",
}


def refuse(why: str, subscription: Subscription | None, *, person: bool = False) -> Outcome:
    """Answer with the reply ``why`` about ``subscription``; ``person`` also hands the text
    to a person."""
    return Outcome("rejected", needs_person=person).reply(why, subscription=subscription)


def delay_refused(turn: Turn) -> Outcome:
    """A delay outside the merchant's limits: say how far one may go."""
    return said("delay_refused", "delay_refused", max_delay_days=turn.settings.max_delay_days)


def pause_refused(turn: Turn) -> Outcome:
    """A pause outside the merchant's limits: say how long one may last."""
    return said("pause_refused", "pause_refused", max_pause_days=turn.settings.max_pause_days)
