"""Which subscription a text is about: the last notice's, the only candidate, or ask."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from bot.conversation import actions
from bot.conversation.choices import numbered
from bot.conversation.refusals import NOT_PAUSED, NOT_RUNNING, refuse
from bot.conversation.turn import Outcome, Turn, ask, said
from bot.outbound.messages import format_date
from bot.outbound.planner import NOTICE_KIND
from bot.rules.keywords import Intent, Parsed
from bot.storage.models import OutboundMessage, Subscription, SubscriptionStatus

#: How long a sent notice stays the one a reply refers to.
NOTICE_MEMORY = timedelta(days=14)
#: Intents that need to know which subscription they are about.
TARGETED = frozenset(
    (
        Intent.SKIP,
        Intent.DELAY,
        Intent.DELAY_ASK,
        Intent.PAUSE,
        Intent.RESUME,
        Intent.CANCEL_REQUEST,
    )
)


def target(turn: Turn, parsed: Parsed) -> tuple[Subscription, int | None] | Outcome:
    """The subscription of the most recent notice; else the only candidate; else ask."""
    intent = parsed.intent
    notice = latest_notice(turn)
    if notice is not None:
        subscription = turn.session.get(Subscription, notice.subscription_id)
        if subscription is not None and (
            intent is not Intent.RESUME or subscription.status == SubscriptionStatus.PAUSED
        ):
            return subscription, notice.id
    # A subscription whose payment failed is still running: it gets its own answer.
    running = subscriptions(
        turn, (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED, SubscriptionStatus.FAILED)
    )
    if not running:
        return said("no_subscription", "no_subscription")
    wanted = {
        Intent.RESUME: (SubscriptionStatus.PAUSED,),
        Intent.CANCEL_REQUEST: (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED),
    }
    candidates = [
        s for s in running if s.status in wanted.get(intent, (SubscriptionStatus.ACTIVE,))
    ]
    if not candidates:
        first = running[0]
        why = NOT_PAUSED if first.status == SubscriptionStatus.ACTIVE else NOT_RUNNING[first.status]
        return refuse(why, first)
    if len(candidates) == 1:
        return candidates[0], None
    candidates = candidates[:9]
    zone = turn.zone
    options = numbered(
        (f"{s.products} ({format_date(s.next_billing_at, zone)})" for s in candidates), ", "
    )
    ask(
        turn,
        "which_subscription",
        intent=intent.value,
        subscription_ids=[s.id for s in candidates],
        delay=actions.delay_to_json(parsed.delay),
        pause_for=actions.delay_to_json(parsed.pause_for),
    )
    return said("asked_which", "which_subscription", options=options)


def latest_notice(turn: Turn) -> OutboundMessage | None:
    """The latest notice sent to this subscriber whose order is still ahead."""
    return turn.session.scalar(
        select(OutboundMessage)
        .where(
            OutboundMessage.subscriber_id == turn.subscriber.id,
            OutboundMessage.kind == NOTICE_KIND,
            OutboundMessage.subscription_id.is_not(None),
            OutboundMessage.sent_at >= turn.now - NOTICE_MEMORY,
            OutboundMessage.billing_at > turn.now,
        )
        .order_by(OutboundMessage.sent_at.desc(), OutboundMessage.id.desc())
        .limit(1)
    )


def noticed_order(turn: Turn, notice_id: int | None) -> datetime | None:
    """The billing moment the notice ``notice_id`` told the subscriber about."""
    notice = turn.session.get(OutboundMessage, notice_id) if notice_id is not None else None
    return notice.billing_at if notice is not None else None


def subscriptions(
    turn: Turn, statuses: tuple[str, ...] = (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED)
) -> list[Subscription]:
    """The subscriber's subscriptions in ``statuses`` (active and paused), soonest first."""
    return list(
        turn.session.scalars(
            select(Subscription)
            .where(
                Subscription.subscriber_id == turn.subscriber.id,
                Subscription.status.in_(statuses),
            )
            .order_by(Subscription.next_billing_at.asc().nulls_last(), Subscription.id)
        )
    )
