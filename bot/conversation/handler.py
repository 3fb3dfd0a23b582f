"""Inbound text → intent → subscription → Smartrr action → confirmation.

Every answer is a row in `OutboundMessage` (kind "reply") written in the same
transaction that closes the inbound message, so a retry never answers twice.
Changes to a subscription go through bot.conversation.actions, which logs
them before Smartrr is called so that a crash never makes one twice.
Which subscription is meant comes from .targets; delay and pause dates from .choices.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot.config import Settings
from bot.conversation import actions
from bot.conversation.actions import CONFIRMATION, REVERSE, Call
from bot.conversation.choices import (
    DELAY_CHOICES,
    chosen_delay,
    delayed,
    numbered,
    pause_choices,
    restart_at,
    undoing_at,
)
from bot.conversation.refusals import (
    GONE,
    IS_PAUSED,
    NOT_PAUSED,
    NOT_RUNNING,
    OUT_OF_RANGE,
    TOO_LATE,
    delay_refused,
    pause_refused,
    refuse,
)
from bot.conversation.targets import TARGETED, latest_notice, noticed_order, subscriptions, target
from bot.conversation.turn import (
    Outcome,
    Turn,
    ask,
    carrier_keyword,
    find_subscriber,
    flooding,
    open_question,
    opt_out,
    reply_variables,
    said,
    stranger,
    throttled,
)
from bot.outbound.messages import local_zone, render_message
from bot.rules.keywords import Intent, Parsed, parse
from bot.rules.phones import mask, normalize
from bot.smartrr.client import SmartrrClient
from bot.smartrr.errors import (
    SmartrrBadRequest,
    SmartrrError,
    SmartrrNotFound,
    SmartrrRejected,
    SmartrrUnavailable,
)
from bot.storage.db import Database
from bot.storage.models import (
    ActionResult,
    InboundMessage,
    InboundStatus,
    OutboundMessage,
    SendStatus,
    Shop,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    utcnow,
)
from bot.storage.shop import SHOP_ID, effective_settings

log = logging.getLogger(__name__)

#: NEXT without a notice answers for this many subscriptions at most.
NEXT_LIMIT = 3


Decision = tuple[Outcome, Call | None]


class Conversation:
    """Handles stored inbound texts; one instance per worker process."""

    def __init__(
        self,
        database: Database,
        client: SmartrrClient,
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self.client = client
        self.settings = settings
        self.clock = clock

    # -- the job -----------------------------------------------------------

    def handle(self, inbound_id: int) -> str:
        """Process one stored inbound text to the end; return its outcome.

        Raises SmartrrUnavailable when Smartrr could not be reached: the
        caller tries again later, and the text stays stored.
        """
        with self.database.begin() as session:
            inbound = session.get(InboundMessage, inbound_id)
            if inbound is None or inbound.status != InboundStatus.PENDING:
                return "gone"
            call = actions.interrupted(session, inbound.id)
            if call is None:
                outcome, call = self._decide(session, inbound)
                if call is None:
                    return self._finish(session, inbound, outcome)
        try:
            state = actions.perform(self.client, call)
        except SmartrrUnavailable:
            raise
        except SmartrrBadRequest as exc:
            # Smartrr refused a request we built: our bug, never the subscriber's order.
            log.error("smartrr refused our request: %s; body sent: %s", exc, exc.sent)
            return self.give_up(inbound_id, str(exc), result=ActionResult.REFUSED)
        except SmartrrRejected as exc:
            return self._rejected(inbound_id, call, TOO_LATE, exc)
        except SmartrrNotFound as exc:
            return self._rejected(inbound_id, call, GONE, exc)
        except SmartrrError as exc:  # credentials or an unreadable answer: a person must look
            log.error("smartrr call failed for good: %s", exc)
            return self.give_up(inbound_id, str(exc))
        with self.database.begin() as session:
            inbound = session.get(InboundMessage, inbound_id)
            assert inbound is not None
            entry = actions.succeeded(session, call, state, self.clock())
            subscription = session.get(Subscription, entry.subscription_id)
            template = "undo_confirmed" if entry.reverses_id else CONFIRMATION[entry.action]
            outcome = Outcome("undone" if entry.reverses_id else entry.action)
            return self._finish(
                session, inbound, outcome.reply(template, subscription=subscription)
            )

    def give_up(self, inbound_id: int, reason: str, *, result: str = ActionResult.FAILED) -> str:
        """Hand a text to a person: tell the subscriber, show it in the merchant's inbox.

        ``result`` closes the action the text started: "failed", or "refused" when
        Smartrr refused the request we built.
        """
        with self.database.begin() as session:
            inbound = session.get(InboundMessage, inbound_id)
            if inbound is None or inbound.status != InboundStatus.PENDING:
                return "gone"
            call = actions.interrupted(session, inbound_id)
            if call is not None:
                actions.close(session, call.log_id, result, reason)
            inbound.error = reason[:500]
            outcome = Outcome("failed", needs_person=True).reply("action_failed")
            return self._finish(session, inbound, outcome)

    def _rejected(self, inbound_id: int, call: Call, why: str, exc: Exception) -> str:
        with self.database.begin() as session:
            inbound = session.get(InboundMessage, inbound_id)
            assert inbound is not None
            entry = actions.close(session, call.log_id, ActionResult.REJECTED, str(exc))
            inbound.error = str(exc)[:500]
            subscription = session.get(Subscription, entry.subscription_id)
            return self._finish(session, inbound, refuse(why, subscription, person=True))

    # -- deciding ----------------------------------------------------------

    def _decide(self, session: Session, inbound: InboundMessage) -> Decision:
        now = self.clock()
        settings = effective_settings(session, self.settings)
        phone = normalize(inbound.from_number)
        subscriber = find_subscriber(session, phone)
        if subscriber is not None:
            inbound.subscriber_id = subscriber.id
        today = now.astimezone(local_zone(subscriber, settings)).date()
        parsed = parse(inbound.body, today=today, max_delay_days=settings.max_delay_days)
        inbound.intent = parsed.intent.value
        # Twilio's Advanced Opt-Out names the keyword it already answered itself.
        handled = str(inbound.params.get("OptOutType", "")).upper()
        keyword = carrier_keyword(parsed, handled, subscriber)
        if keyword != "STOP" and flooding(session, inbound):
            return throttled(session, inbound, subscriber), None
        if subscriber is None:
            log.info("text from unknown number %s", mask(inbound.from_number))
            return stranger(phone is not None, keyword, handled), None
        shop = session.get(Shop, SHOP_ID)
        turn = Turn(session, inbound, subscriber, now, settings, bool(shop and shop.cancel_by_text))
        if keyword == "STOP":
            return opt_out(turn, quiet=parsed.carrier_keyword or bool(handled)), None
        if keyword == "START":
            subscriber.opted_out_at = None
            return (Outcome("opted_in") if handled else said("opted_in", "opt_in_confirmed")), None
        if keyword == "HELP":
            return (Outcome("help") if handled else said("help", "help")), None
        if subscriber.opted_out:
            return Outcome("ignored_opted_out", needs_person=True), None
        answered = self._answer(turn, parsed)
        return answered if answered is not None else self._command(turn, parsed)

    def _answer(self, turn: Turn, parsed: Parsed) -> Decision | None:
        """Resolve the open question with this text; None when it is a fresh text."""
        question = open_question(turn)
        if question is None:
            return None
        turn.session.delete(question)  # answered, or set aside by a fresh text
        if parsed.intent is Intent.NO:
            return Outcome("question_declined"), None
        payload = question.payload
        subscription = (
            turn.session.get(Subscription, question.subscription_id)
            if question.subscription_id
            else None
        )
        notice_id = payload.get("notice_id")
        if question.kind == "delay_options" and subscription is not None:
            delay = chosen_delay(parsed, DELAY_CHOICES)
            if delay is not None:
                asked = Parsed(Intent.DELAY, 1.0, delay=delay)
                return self._act(turn, asked, subscription, notice_id)
        if question.kind == "pause_options" and subscription is not None:
            pause_for = chosen_delay(parsed, [span for _, span in pause_choices(turn.settings)])
            if pause_for is not None:
                asked = Parsed(Intent.PAUSE, 1.0, pause_for=pause_for)
                return self._act(turn, asked, subscription, notice_id)
        if question.kind == "which_subscription" and parsed.intent is Intent.CHOICE:
            ids: list[int] = payload.get("subscription_ids", [])
            chosen = (
                turn.session.get(Subscription, ids[parsed.choice - 1])
                if parsed.choice is not None and 1 <= parsed.choice <= len(ids)
                else None
            )
            if chosen is not None:
                original = Parsed(
                    Intent(payload["intent"]),
                    1.0,
                    delay=actions.delay_from_json(payload.get("delay")),
                    pause_for=actions.delay_from_json(payload.get("pause_for")),
                )
                return self._act(turn, original, chosen, None)
        if (
            question.kind == "cancel_confirm"
            and parsed.intent is Intent.YES
            and turn.cancel_by_text  # the merchant may have turned it off since asking
            and subscription is not None
            and subscription.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED)
        ):
            return self._cancel(turn, subscription, notice_id)
        return None

    def _command(self, turn: Turn, parsed: Parsed) -> Decision:
        intent = parsed.intent
        if intent is Intent.CANCEL_REQUEST and not turn.cancel_by_text:
            return said("cancel_info", "cancel_info"), None
        if intent is Intent.UNDO:
            return self._undo(turn)
        if intent is Intent.NEXT:
            return self._next(turn), None
        if intent is Intent.UNKNOWN and parsed.refused in OUT_OF_RANGE:
            return delay_refused(turn), None
        if intent not in TARGETED:
            return Outcome("not_understood", needs_person=True).reply("fallback"), None
        found = target(turn, parsed)
        if isinstance(found, Outcome):
            return found, None
        return self._act(turn, parsed, *found)

    def _act(
        self, turn: Turn, parsed: Parsed, chosen: Subscription, notice_id: int | None
    ) -> Decision:
        """Act on ``chosen``, or say why not, or ask what exactly."""
        intent = parsed.intent
        if intent is Intent.CANCEL_REQUEST:
            ask(turn, "cancel_confirm", subscription=chosen, notice_id=notice_id)
            return said("asked_cancel", "cancel_confirm", subscription=chosen), None
        if intent is Intent.RESUME:
            if chosen.status != SubscriptionStatus.PAUSED:
                return refuse(NOT_RUNNING.get(chosen.status, NOT_PAUSED), chosen), None
            restart = restart_at(chosen, chosen.next_billing_at, turn.now)
            return Outcome(), self._start(turn, chosen, "activate", notice_id, argument_at=restart)
        if chosen.status != SubscriptionStatus.ACTIVE or chosen.next_billing_at is None:
            return refuse(NOT_RUNNING.get(chosen.status, IS_PAUSED), chosen), None
        if intent is Intent.DELAY_ASK:
            ask(turn, "delay_options", subscription=chosen, notice_id=notice_id)
            return said("asked_delay", "delay_options"), None
        if intent is Intent.SKIP:
            if actions.already_skipped(turn.session, chosen, notice_id):
                return said("already_skipped", "already_skipped", subscription=chosen), None
            order_at = noticed_order(turn, notice_id) or chosen.next_billing_at
            return Outcome(), self._start(turn, chosen, "skip", notice_id, argument_at=order_at)
        if intent is Intent.DELAY:
            assert parsed.delay is not None
            new_date = delayed(turn, chosen.next_billing_at, parsed.delay)
            if new_date is None:
                return delay_refused(turn), None
            moved = actions.at_local_time(new_date, chosen.next_billing_at, turn.zone)
            return Outcome(), self._start(turn, chosen, "delay", notice_id, argument_at=moved)
        if parsed.pause_for is None:
            ask(turn, "pause_options", subscription=chosen, notice_id=notice_id)
            options = numbered(label for label, _ in pause_choices(turn.settings))
            return said("asked_pause", "pause_options", options=options), None
        resume = actions.shifted(turn.today, parsed.pause_for)
        if not 0 < (resume - turn.today).days <= turn.settings.max_pause_days:
            return pause_refused(turn), None
        until = actions.at_local_time(resume, chosen.next_billing_at, turn.zone)
        return Outcome(), self._start(turn, chosen, "pause", notice_id, argument_at=until)

    def _cancel(self, turn: Turn, subscription: Subscription, notice_id: int | None) -> Decision:
        """Cancel under the merchant's cancellation reason; without one, the account page."""
        shop = turn.session.get(Shop, SHOP_ID)
        reason_id = shop.cancel_reason_id if shop is not None else None
        if reason_id is None:
            return said("cancel_info", "cancel_info"), None
        return Outcome(), self._start(turn, subscription, "cancel", notice_id, reason_id=reason_id)

    def _undo(self, turn: Turn) -> Decision:
        since = turn.now - timedelta(hours=turn.settings.undo_window_hours)
        last = actions.last_undoable(turn.session, turn.subscriber, since)
        subscription = turn.session.get(Subscription, last.subscription_id) if last else None
        if last is None or subscription is None:
            return said("nothing_to_undo", "nothing_to_undo"), None
        moment = undoing_at(turn, last, subscription)
        if moment is None:
            return said("nothing_to_undo", "nothing_to_undo"), None
        action = REVERSE[last.action]
        return Outcome(), self._start(
            turn, subscription, action, last.notice_id, argument_at=moment, reverses=last
        )

    def _next(self, turn: Turn) -> Outcome:
        """NEXT: the notice's subscription, else each of the subscriber's; no action."""
        notice = latest_notice(turn)
        about = turn.session.get(Subscription, notice.subscription_id) if notice else None
        chosen = [about] if about is not None else subscriptions(turn)[:NEXT_LIMIT]
        if not chosen:
            return said("no_subscription", "no_subscription")
        outcome = Outcome("next")
        for subscription in chosen:
            outcome.reply("next_order", subscription=subscription)
        return outcome

    # -- state kept between texts -------------------------------------------

    def _start(
        self,
        turn: Turn,
        subscription: Subscription,
        action: str,
        notice_id: int | None,
        **extra: Any,
    ) -> Call:
        return actions.start(
            turn.session,
            subscription,
            action=action,
            inbound_id=turn.inbound.id,
            notice_id=notice_id,
            now=turn.now,
            **extra,
        )

    def _finish(self, session: Session, inbound: InboundMessage, outcome: Outcome) -> str:
        now = self.clock()
        settings = effective_settings(session, self.settings)
        subscriber = (
            session.get(Subscriber, inbound.subscriber_id) if inbound.subscriber_id else None
        )
        for index, (template, extra) in enumerate(outcome.replies):
            subscription = extra.pop("subscription", None)
            variables = reply_variables(settings, subscriber, subscription, now) | extra
            session.add(
                OutboundMessage(
                    kind="reply",
                    dedupe_key=f"reply:{inbound.id}:{index}",
                    subscriber_id=subscriber.id if subscriber else None,
                    subscription_id=subscription.id if subscription else None,
                    in_reply_to_id=inbound.id,
                    to_number=inbound.from_number,
                    template=template,
                    body=render_message(session, template, variables),
                    status=SendStatus.SCHEDULED,
                    due_at=now,
                    created_at=now,
                )
            )
        inbound.status = InboundStatus.HANDOFF if outcome.needs_person else InboundStatus.DONE
        inbound.outcome = outcome.outcome
        inbound.processed_at = now
        inbound.lease_owner = None
        inbound.lease_until = None
        return outcome.outcome
