"""One inbound text's turn: what it led to, who sent it, and what it is allowed to start.

The rules here come before any understanding: the carrier keywords (STOP,
START, HELP) and what Twilio already did about them, numbers we do not know,
numbers that flood us, and the one open question a subscriber may be answering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.outbound.messages import base_variables, format_date, local_zone
from bot.rules.keywords import Intent, Parsed
from bot.storage.models import (
    InboundMessage,
    OutboundMessage,
    PendingQuestion,
    SendStatus,
    Subscriber,
    Subscription,
)

#: More texts than this from one number within the window are stored but not acted on.
THROTTLE_TEXTS = 10
THROTTLE_WINDOW = timedelta(minutes=1)


@dataclass
class Outcome:
    """What one inbound text led to: the replies to send and how it ended."""

    outcome: str = "answered"
    needs_person: bool = False
    replies: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def reply(self, template: str, **variables: Any) -> Outcome:
        """Add a reply rendered from ``template`` with ``variables``."""
        self.replies.append((template, variables))
        return self


def said(outcome: str, template: str, **variables: Any) -> Outcome:
    """An outcome with one reply."""
    return Outcome(outcome).reply(template, **variables)


@dataclass
class Turn:
    """One inbound text from a known subscriber being handled, inside one transaction."""

    session: Session
    inbound: InboundMessage
    subscriber: Subscriber
    now: datetime
    settings: Settings  # with the merchant's overrides
    cancel_by_text: bool

    @property
    def zone(self) -> ZoneInfo:
        """The zone the subscriber's dates are in."""
        return local_zone(self.subscriber, self.settings)

    @property
    def today(self) -> date:
        """The subscriber's date at ``now``."""
        return self.now.astimezone(self.zone).date()


def reply_variables(
    settings: Settings,
    subscriber: Subscriber | None,
    subscription: Subscription | None,
    now: datetime,
) -> dict[str, object]:
    """Every variable a merchant may expect in a reply about ``subscription``."""
    variables = base_variables(settings, subscriber, subscription)
    if subscription is not None:
        zone = local_zone(subscriber, settings)
        billing = subscription.next_billing_at
        # After an action the subscription row already holds Smartrr's answer.
        variables["new_delivery_date"] = variables["next_order_date"]
        variables["resume_date"] = format_date(subscription.unpause_at, zone)
        variables["days_until"] = ""
        if billing is not None:
            days = (billing.astimezone(zone).date() - now.astimezone(zone).date()).days
            variables["days_until"] = max(0, days)
    return variables


# -- who is texting --------------------------------------------------------------------------


def find_subscriber(session: Session, phone: str | None) -> Subscriber | None:
    """The subscriber with this E.164 number (the most recently synced one if several)."""
    if phone is None:
        return None
    return session.scalar(
        select(Subscriber)
        .where(Subscriber.phone == phone)
        .order_by(Subscriber.updated_at.desc(), Subscriber.id.desc())
        .limit(1)
    )


def carrier_keyword(parsed: Parsed, handled: str, subscriber: Subscriber | None) -> str | None:
    """STOP, START or HELP when the text is one of those, as Twilio or the parser read it.

    ``handled`` is Twilio's OptOutType parameter: the keyword Twilio already answered.
    """
    if handled in ("STOP", "START", "HELP"):
        return handled
    if parsed.intent is Intent.OPT_OUT:
        return "STOP"
    if parsed.intent is Intent.OPT_IN or (
        # Twilio counts YES as an opt-in keyword too.
        parsed.intent is Intent.YES and subscriber is not None and subscriber.opted_out
    ):
        return "START"
    return "HELP" if parsed.intent is Intent.HELP else None


def stranger(reachable: bool, keyword: str | None, handled: str) -> Outcome:
    """A number we have no subscriber for: never an action, at most a pointer."""
    if not reachable:  # not a phone number we could answer
        return Outcome("unknown_number", needs_person=True)
    if keyword == "HELP":
        return Outcome("help") if handled else said("help", "help")
    if keyword is not None:  # STOP/START: Twilio's own list is the one that counts
        return Outcome("unknown_number")
    return Outcome("unknown_number", needs_person=True).reply("no_subscription")


def opt_out(turn: Turn, *, quiet: bool) -> Outcome:
    """Stop every bot-initiated text; confirm once unless Twilio already did."""
    subscriber = turn.subscriber
    already = subscriber.opted_out
    if not already:
        subscriber.opted_out_at = turn.now
    turn.session.execute(
        update(OutboundMessage)
        .where(
            OutboundMessage.subscriber_id == subscriber.id,
            OutboundMessage.status == SendStatus.SCHEDULED,
            OutboundMessage.kind != "reply",
        )
        .values(status=SendStatus.CANCELLED, status_at=turn.now, error_message="opted out")
    )
    question = open_question(turn)
    if question is not None:
        turn.session.delete(question)
    # Twilio answers the carrier keywords itself; a plain-words request
    # ("stop texting me") is not caught there and gets our one confirmation.
    if quiet or already:
        return Outcome("opted_out")
    return said("opted_out", "opt_out_confirmed")


def flooding(session: Session, inbound: InboundMessage) -> bool:
    """Did this number send more than THROTTLE_TEXTS texts in the window up to this one?"""
    earlier = session.scalar(
        select(func.count())
        .select_from(InboundMessage)
        .where(
            InboundMessage.from_number == inbound.from_number,
            InboundMessage.received_at > inbound.received_at - THROTTLE_WINDOW,
            InboundMessage.received_at <= inbound.received_at,
            InboundMessage.id < inbound.id,
        )
    )
    return (earlier or 0) >= THROTTLE_TEXTS


def throttled(session: Session, inbound: InboundMessage, subscriber: Subscriber | None) -> Outcome:
    """Keep the text for a person; say so once per window, never to an opted-out number."""
    warned = session.scalar(
        select(InboundMessage.id)
        .where(
            InboundMessage.from_number == inbound.from_number,
            InboundMessage.received_at > inbound.received_at - THROTTLE_WINDOW,
            InboundMessage.outcome == "rate_limited",
        )
        .limit(1)
    )
    if warned is not None or (subscriber is not None and subscriber.opted_out):
        return Outcome("throttled", needs_person=True)
    return Outcome("rate_limited", needs_person=True).reply("rate_limited")


# -- the one open question ---------------------------------------------------------------------


def open_question(turn: Turn) -> PendingQuestion | None:
    """The subscriber's unexpired question, if any (an expired one is dropped)."""
    question = turn.session.scalar(
        select(PendingQuestion).where(PendingQuestion.subscriber_id == turn.subscriber.id)
    )
    if question is not None and question.expires_at <= turn.now:
        turn.session.delete(question)
        return None
    return question


def ask(turn: Turn, kind: str, *, subscription: Subscription | None = None, **payload: Any) -> None:
    """Remember a question, replacing any earlier one; it expires after QUESTION_TTL_HOURS."""
    previous = turn.session.scalar(
        select(PendingQuestion).where(PendingQuestion.subscriber_id == turn.subscriber.id)
    )
    if previous is not None:
        turn.session.delete(previous)
        turn.session.flush()  # one question per subscriber (a unique column)
    turn.session.add(
        PendingQuestion(
            subscriber_id=turn.subscriber.id,
            kind=kind,
            subscription_id=subscription.id if subscription else None,
            payload=payload,
            expires_at=turn.now + timedelta(hours=turn.settings.question_ttl_hours),
            created_at=turn.now,
        )
    )
