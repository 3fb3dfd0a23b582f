"""Waking hours: when a bot-initiated text may reach a recipient, in their local time.

A moment is allowed when its local wall-clock time lies inside the window (start
inclusive, end exclusive) in every zone of the recipient's locale. Local times come
from zoneinfo only, so DST changes are handled by the tz database, never by offsets.

DST edge cases follow from that definition:
- a window start that does not exist on a spring-forward day (e.g. 02:30 in the US)
  opens at the instant the clocks jump, the first moment the local time is past it;
- a start that occurs twice on a fall-back day opens at its first occurrence, and
  opens again at the second if the window had closed in between.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.rules.phones import Place, place_of

# How far next_allowed() looks for a moment allowed in every zone of a locale before
# giving up on zones too far apart to ever share waking hours.
_SEARCH_DAYS = 8

_WINDOW = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Window:
    """Daily wall-clock window: start inclusive, end exclusive, not across midnight."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("window times are local wall-clock times and must be naive")
        if self.start >= self.end:
            raise ValueError(
                f"window start {self.start:%H:%M} must be before its end {self.end:%H:%M}"
                " (windows cannot cross midnight)"
            )

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class Locale:
    """Where a recipient is: the zones their local time may follow, and their US state."""

    zones: tuple[str, ...]
    state: str | None = None

    def __post_init__(self) -> None:
        if not self.zones:
            raise ValueError("a locale needs at least one time zone")
        for key in self.zones:
            if not _is_zone(key):
                raise ValueError(f"unknown time zone {key!r}")


def parse_window(text: str) -> Window:
    """Parse "HH:MM-HH:MM" (e.g. "11:00-21:00") into a Window; ValueError when malformed."""
    match = _WINDOW.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid window {text!r}: expected HH:MM-HH:MM, e.g. '11:00-21:00'")
    start_h, start_m, end_h, end_m = (int(part) for part in match.groups())
    try:
        start, end = time(start_h, start_m), time(end_h, end_m)
    except ValueError:
        raise ValueError(f"invalid window {text!r}: hours run 0-23 and minutes 0-59") from None
    try:
        return Window(start, end)
    except ValueError as error:
        raise ValueError(f"invalid window {text!r}: {error}") from None


def state_window(window: Window, state: str | None) -> Window:
    """Narrow the window to the state's legal calling hours; unchanged when it has none."""
    rule = _state_rules().get(state.upper()) if state else None
    if rule is None:
        return window
    start, end = max(window.start, rule.start), min(window.end, rule.end)
    if start >= end:
        raise ValueError(f"window {window} does not overlap {state}'s allowed hours {rule}")
    return Window(start, end)


# A worker asks this of the same subscriber at claim, check and send time; the answer
# depends on nothing else, and parsing the number is most of its cost.
@lru_cache(maxsize=8192)
def locale_for(
    e164: str | None, *, known_zone: str | None, fallback_zone: str, state: str | None = None
) -> Locale:
    """Pick the recipient's zones: a valid known zone, else the number's, else the fallback.

    Only a geographic number says where someone is. phonenumbers gives a toll-free
    (or personal, or non-geographic mobile) number every zone of its country, dozens
    from Guam to Maine whose windows never overlap, so such a number gets the
    fallback (shop) zone rather than an intersection that is empty.
    """
    known = known_zone if known_zone and _is_zone(known_zone) else None
    place = place_of(e164) if e164 and not (known and state) else Place()
    zones = (known,) if known else (place.zones or (fallback_zone,))
    state = state or place.state
    return Locale(zones=zones, state=state.upper() if state else None)


def is_allowed(moment: datetime, locale: Locale, window: Window) -> bool:
    """Tell whether the moment is inside the state-narrowed window in every zone."""
    _require_aware(moment)
    return _inside(moment, _zones(locale), state_window(window, locale.state))


def next_allowed(moment: datetime, locale: Locale, window: Window) -> datetime:
    """Return the earliest allowed moment at or after this one, in UTC.

    If the locale's zones share no allowed moment within 8 days (zones too far apart,
    say New York and Kolkata), the first zone alone decides, so the answer is then
    allowed in that zone only and is_allowed() says no to it.
    """
    _require_aware(moment)
    window = state_window(window, locale.state)
    start = moment.astimezone(UTC)
    found = _earliest(start, locale.zones, window) or _earliest(start, locale.zones[:1], window)
    if found is None:
        raise ValueError(f"window {window} never opens in {locale.zones[0]}")
    return found


def place_notice(
    billing_at: datetime, days_before: int, locale: Locale, window: Window
) -> datetime | None:
    """Schedule a notice days_before billing (same local wall time), moved into waking hours.

    Returns None when the first allowed moment is not before billing_at: such a
    notice expires rather than arriving late. Days are calendar days in the first
    zone; a wall time that does not exist on the due day (DST gap) is read with the
    offset from before the jump, as zoneinfo does, i.e. one hour later on the clock.
    """
    _require_aware(billing_at)
    if days_before < 0:
        raise ValueError(f"days_before must not be negative, got {days_before}")
    zone = ZoneInfo(locale.zones[0])
    local = billing_at.astimezone(zone)
    due = datetime.combine(local.date() - timedelta(days=days_before), local.time(), zone)
    placed = next_allowed(due, locale, window)
    return placed if placed < billing_at else None


@cache
def _state_rules() -> dict[str, Window]:
    text = (resources.files("bot.rules") / "data" / "state_rules.json").read_text("utf-8")
    return {
        state: Window(time.fromisoformat(rule["start"]), time.fromisoformat(rule["end"]))
        for state, rule in json.loads(text).items()
    }


def _is_zone(key: str) -> bool:
    try:
        ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _zones(locale: Locale) -> tuple[ZoneInfo, ...]:
    return tuple(ZoneInfo(key) for key in locale.zones)


def _require_aware(moment: datetime) -> None:
    if moment.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got {moment!r}")


def _inside(moment: datetime, zones: tuple[ZoneInfo, ...], window: Window) -> bool:
    return all(window.start <= moment.astimezone(zone).time() < window.end for zone in zones)


def _earliest(start: datetime, zone_keys: tuple[str, ...], window: Window) -> datetime | None:
    """The earliest moment >= start (UTC) inside the window in all zones, within _SEARCH_DAYS.

    Being allowed can only begin at a moment when some zone's local time reaches the
    window start or jumps (an offset change), so checking those candidates in order
    finds the exact answer without stepping through the clock.
    """
    zones = tuple(ZoneInfo(key) for key in zone_keys)
    if _inside(start, zones, window):
        return start
    first_day = start.date()
    for offset in range(_SEARCH_DAYS + 1):
        for moment in _day_openings(zone_keys, window.start, first_day + offset * _DAY):
            if moment >= start and _inside(moment, zones, window):
                return moment
    return None


# Openings depend only on the zones, the start and the day, and the scheduler asks
# about the same few days over and over, so they are computed once.
@lru_cache(maxsize=4096)
def _day_openings(zone_keys: tuple[str, ...], start: time, day: date) -> tuple[datetime, ...]:
    """Sorted UTC moments of this UTC day at which some zone's local time may enter the window."""
    low = datetime.combine(day, time(), UTC)
    high = low + _DAY
    found: set[datetime] = set()
    for key in zone_keys:
        zone = ZoneInfo(key)
        # A local day of margin on each side: around a fall-back at midnight the local
        # date can go backwards, and a start instant may sit on either neighbouring date.
        local_day = low.astimezone(zone).date() - _DAY
        while local_day <= high.astimezone(zone).date() + _DAY:
            local = datetime.combine(local_day, start, zone)
            found.update((local.astimezone(UTC), local.replace(fold=1).astimezone(UTC)))
            local_day += _DAY
        change = _offset_change(zone, low, high)
        if change is not None:
            found.add(change)
    return tuple(sorted(moment for moment in found if low <= moment < high))


def _offset_change(zone: ZoneInfo, low: datetime, high: datetime) -> datetime | None:
    """The first second in (low, high] whose UTC offset differs from low's, if any.

    Assumes at most one change per UTC day, as in real-world DST rules.
    """
    # Bisect on whole epoch seconds: the tz database only changes offsets on them.
    lo, hi = int(low.timestamp()), int(high.timestamp())
    before = _offset_at(zone, lo)
    if _offset_at(zone, hi) == before:
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset_at(zone, mid) == before:
            lo = mid
        else:
            hi = mid
    return datetime.fromtimestamp(hi, UTC)


def _offset_at(zone: ZoneInfo, epoch_seconds: int) -> timedelta | None:
    return datetime.fromtimestamp(epoch_seconds, zone).utcoffset()
