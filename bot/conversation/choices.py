"""How long a subscriber may delay or pause, and the dates a chosen length leads to."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime

from bot.config import Settings
from bot.conversation import actions
from bot.conversation.refusals import OUT_OF_RANGE
from bot.conversation.turn import Turn
from bot.rules.keywords import MAX_PAUSE_DAYS, Delay, Intent, Parsed, parse
from bot.storage.models import ActionLog, Subscription

#: What the numbers of the delay_options reply mean: 1 week, 2 weeks, 1 month.
DELAY_CHOICES: tuple[Delay, ...] = (Delay(days=7), Delay(days=14), Delay(months=1))
#: What a pause option longer than the parser lets any pause be reads as.
TOO_LONG_PAUSE = Delay(days=MAX_PAUSE_DAYS + 1)
#: Any day: a pause option is a span, not a date.
ANY_DAY = date(2000, 1, 1)


def pause_span(option: str, today: date = ANY_DAY) -> Delay | None:
    """How long a pause option ("2 weeks", "1 month") lasts, read as a subscriber's
    "pause for …" would be: TOO_LONG_PAUSE when longer than any pause, None when no span."""
    reading = parse(f"pause for {option}", today=today)
    if reading.refused == "over_max":
        return TOO_LONG_PAUSE
    span = reading.pause_for
    if reading.intent is not Intent.PAUSE or span is None or span.until is not None:
        return None
    return span


def pause_choices(settings: Settings) -> tuple[tuple[str, Delay], ...]:
    """The merchant's pause options that read as durations, as (label, duration)."""
    found = []
    for label in settings.pause_options:
        span = pause_span(label)
        if span is not None and span != TOO_LONG_PAUSE:
            found.append((label, span))
    return tuple(found)


def chosen_delay(parsed: Parsed, choices: Sequence[Delay]) -> Delay | None:
    """What an answer to "how long?" picks: the number of one of ``choices``, or a
    duration ("2 weeks")."""
    if parsed.intent is Intent.CHOICE and parsed.choice is not None:
        if 1 <= parsed.choice <= len(choices):
            return choices[parsed.choice - 1]
        return None
    if parsed.intent is Intent.PAUSE and parsed.pause_for is not None:
        return parsed.pause_for
    if parsed.intent is Intent.DELAY or parsed.refused in OUT_OF_RANGE | {"duration_only"}:
        return parsed.delay
    return None


def numbered(labels: Iterable[str], separator: str = " ") -> str:
    """ "1) 1 month 2) 2 months 3) 3 months": choices a subscriber picks by number."""
    return separator.join(f"{n}) {label}" for n, label in enumerate(labels, 1))


def restart_at(subscription: Subscription, last: datetime | None, now: datetime) -> datetime:
    """When a resumed subscription bills next: the first date after ``now`` on its own
    cadence, counted from the order date ``last``."""
    return actions.next_on_cadence(
        last, subscription.interval_unit, subscription.interval_count, now
    )


def undoing_at(turn: Turn, last: ActionLog, subscription: Subscription) -> datetime | None:
    """The moment UNDO of ``last`` sends to Smartrr; None when there is nothing to restore."""
    if last.action == "skip":
        return last.argument_at or last.old_billing_at
    if last.action == "delay":
        return last.old_billing_at
    if last.action == "pause":  # resume on the date the order had before the pause
        return restart_at(subscription, last.old_billing_at, turn.now)
    # A resume: pause again until it was due to restart (else the merchant's first option).
    if last.old_unpause_at is not None and last.old_unpause_at > turn.now:
        return last.old_unpause_at
    choices = pause_choices(turn.settings)
    if not choices:
        return None
    until = actions.shifted(turn.today, choices[0][1])
    return actions.at_local_time(until, subscription.next_billing_at, turn.zone)


def delayed(turn: Turn, billing_at: datetime, delay: Delay) -> date | None:
    """The new billing date for a delay, or None when it breaks the merchant's limits."""
    current = billing_at.astimezone(turn.zone).date()
    target = actions.shifted(current, delay)
    too_far = (target - current).days > turn.settings.max_delay_days
    if target <= max(current, turn.today) or too_far:
        return None
    return target
