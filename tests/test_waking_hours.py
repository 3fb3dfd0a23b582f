from __future__ import annotations

from bisect import bisect_left
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bot.rules.waking_hours import (
    Locale,
    Window,
    is_allowed,
    locale_for,
    next_allowed,
    parse_window,
    place_notice,
    state_window,
)

DEFAULT = Window(time(11), time(21))
NEW_YORK = Locale(("America/New_York",))
QUARTER = timedelta(minutes=15)


def at(zone: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An aware moment given by its local wall time in the zone."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone))


def wall(moment: datetime, zone: str) -> datetime:
    """The naive local wall time of a moment in the zone."""
    return moment.astimezone(ZoneInfo(zone)).replace(tzinfo=None)


# --- parse_window and state_window ---


@pytest.mark.parametrize(
    ("text", "window"),
    [
        ("11:00-21:00", Window(time(11), time(21))),
        ("9:30-20:00", Window(time(9, 30), time(20))),
        (" 08:00 - 20:00 ", Window(time(8), time(20))),
        ("00:00-23:59", Window(time(0), time(23, 59))),
    ],
)
def test_parse_window_reads_hours_and_minutes(text: str, window: Window) -> None:
    assert parse_window(text) == window


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "expected HH:MM-HH:MM"),
        ("11-21", "expected HH:MM-HH:MM"),
        ("11:00", "expected HH:MM-HH:MM"),
        ("11:00-21:00-22:00", "expected HH:MM-HH:MM"),
        ("11h00-21h00", "expected HH:MM-HH:MM"),
        ("25:00-26:00", "hours run 0-23"),
        ("11:60-12:00", "minutes 0-59"),
        ("24:00-24:00", "hours run 0-23"),
        ("21:00-11:00", "cannot cross midnight"),
        ("11:00-11:00", "must be before"),
    ],
)
def test_parse_window_rejects_malformed_text_with_a_clear_message(
    text: str, complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint) as error:
        parse_window(text)
    assert repr(text) in str(error.value)


def test_window_refuses_an_empty_or_reversed_span() -> None:
    with pytest.raises(ValueError, match="before its end"):
        Window(time(21), time(11))


@pytest.mark.parametrize("state", ["FL", "CT", "MD", "OK", "WA", "fl"])
def test_state_window_narrows_the_default_to_eight_pm_in_strict_states(state: str) -> None:
    assert state_window(DEFAULT, state) == Window(time(11), time(20))


def test_state_window_narrows_both_ends_to_the_legal_hours() -> None:
    assert state_window(parse_window("07:00-22:30"), "FL") == Window(time(8), time(20))


@pytest.mark.parametrize("state", [None, "", "NY", "CA", "ZZ"])
def test_state_window_leaves_the_window_alone_without_a_rule(state: str | None) -> None:
    assert state_window(DEFAULT, state) == DEFAULT


def test_state_window_refuses_a_window_outside_the_legal_hours() -> None:
    with pytest.raises(ValueError, match="does not overlap"):
        state_window(parse_window("20:00-22:00"), "WA")


# --- locale_for ---


def test_locale_for_prefers_a_known_zone_over_the_number() -> None:
    locale = locale_for("+12125550123", known_zone="America/Chicago", fallback_zone="UTC")

    assert locale == Locale(("America/Chicago",), "NY")


@pytest.mark.parametrize("known_zone", [None, "", "Mars/Olympus_Mons", "America"])
def test_locale_for_uses_the_number_zones_without_a_valid_known_zone(
    known_zone: str | None,
) -> None:
    locale = locale_for("+12085550123", known_zone=known_zone, fallback_zone="UTC")

    assert locale == Locale(("America/Boise", "America/Los_Angeles"), "ID")


@pytest.mark.parametrize("e164", [None, "+15555555555"])
def test_locale_for_falls_back_to_the_shop_zone(e164: str | None) -> None:
    locale = locale_for(e164, known_zone=None, fallback_zone="America/Denver")

    assert locale == Locale(("America/Denver",), None)


def test_locale_for_prefers_an_explicit_state_from_the_address() -> None:
    locale = locale_for("+12125550123", known_zone=None, fallback_zone="UTC", state="fl")

    assert locale.state == "FL"


@pytest.mark.parametrize("zones", [(), ("Nowhere/Special",)])
def test_locale_refuses_missing_or_unknown_zones(zones: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="zone"):
        Locale(zones)


# --- is_allowed and next_allowed at the window edges ---

ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Indiana/Indianapolis",
]


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("day", [date(2026, 1, 15), date(2026, 7, 15)])
@pytest.mark.parametrize(
    ("hour", "minute", "allowed"),
    [(10, 59, False), (11, 0, True), (20, 59, True), (21, 0, False)],
)
def test_is_allowed_at_the_window_edges_in_local_time(
    zone: str, day: date, hour: int, minute: int, allowed: bool
) -> None:
    moment = at(zone, day.year, day.month, day.day, hour, minute)

    assert is_allowed(moment, Locale((zone,)), DEFAULT) is allowed
    assert is_allowed(moment.astimezone(UTC), Locale((zone,)), DEFAULT) is allowed


@pytest.mark.parametrize("zone", ZONES)
def test_next_allowed_waits_for_the_local_opening(zone: str) -> None:
    locale = Locale((zone,))

    before_opening = next_allowed(at(zone, 2026, 7, 15, 10, 59), locale, DEFAULT)
    after_closing = next_allowed(at(zone, 2026, 7, 15, 21, 0), locale, DEFAULT)

    assert before_opening == at(zone, 2026, 7, 15, 11, 0)
    assert after_closing == at(zone, 2026, 7, 16, 11, 0)
    assert before_opening.tzinfo is UTC


@pytest.mark.parametrize("local", [time(11), time(15, 37, 12, 5), time(20, 59, 59, 999999)])
def test_next_allowed_keeps_an_allowed_moment_as_it_is(local: time) -> None:
    moment = datetime.combine(date(2026, 7, 15), local, ZoneInfo("America/Chicago"))

    assert next_allowed(moment, Locale(("America/Chicago",)), DEFAULT) == moment


def test_arizona_keeps_the_same_utc_opening_all_year() -> None:
    arizona = Locale(("America/Phoenix",))

    winter = next_allowed(datetime(2026, 1, 15, 12, tzinfo=UTC), arizona, DEFAULT)
    summer = next_allowed(datetime(2026, 7, 15, 12, tzinfo=UTC), arizona, DEFAULT)

    assert winter == datetime(2026, 1, 15, 18, tzinfo=UTC)
    assert summer == datetime(2026, 7, 15, 18, tzinfo=UTC)


def test_strict_state_closes_at_eight_pm() -> None:
    florida = locale_for("+13055550123", known_zone=None, fallback_zone="UTC")

    assert is_allowed(at("America/New_York", 2026, 7, 15, 19, 59), florida, DEFAULT)
    assert not is_allowed(at("America/New_York", 2026, 7, 15, 20, 0), florida, DEFAULT)
    assert next_allowed(at("America/New_York", 2026, 7, 15, 20, 0), florida, DEFAULT) == at(
        "America/New_York", 2026, 7, 16, 11, 0
    )


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        is_allowed(datetime(2026, 7, 15, 12), NEW_YORK, DEFAULT)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_allowed(datetime(2026, 7, 15, 12), NEW_YORK, DEFAULT)


# --- several zones ---

DENVER_AND_LA = Locale(("America/Denver", "America/Los_Angeles"))


def test_a_moment_must_be_allowed_in_every_zone() -> None:
    denver_morning = at("America/Denver", 2026, 7, 15, 11, 30)  # 10:30 in Los Angeles
    denver_late = at("America/Denver", 2026, 7, 15, 21, 30)  # 20:30 in Los Angeles

    assert is_allowed(denver_morning, Locale(("America/Denver",)), DEFAULT)
    assert not is_allowed(denver_morning, DENVER_AND_LA, DEFAULT)
    assert is_allowed(denver_late, Locale(("America/Los_Angeles",)), DEFAULT)
    assert not is_allowed(denver_late, DENVER_AND_LA, DEFAULT)


def test_next_allowed_waits_for_the_latest_zone_to_open() -> None:
    moment = at("America/Denver", 2026, 7, 15, 11, 30)

    assert next_allowed(moment, DENVER_AND_LA, DEFAULT) == at(
        "America/Los_Angeles", 2026, 7, 15, 11
    )


def test_zones_that_never_share_waking_hours_fall_back_to_the_first_zone() -> None:
    # New York and Kolkata are 9.5-10.5 hours apart: their windows never overlap.
    apart = Locale(("America/New_York", "Asia/Kolkata"))
    moment = datetime(2026, 7, 15, 3, tzinfo=UTC)

    assert next_allowed(moment, apart, DEFAULT) == next_allowed(moment, NEW_YORK, DEFAULT)
    assert next_allowed(moment, apart, DEFAULT) == at("America/New_York", 2026, 7, 15, 11)


@pytest.mark.parametrize(
    "e164",
    [
        "+18005550123",  # toll-free: phonenumbers gives it every US zone, Guam to Maine
        "+18885550123",
        "+15005550006",  # a personal-number range, no place either
        "+79161234567",  # a Russian mobile: sixteen zones
    ],
)
def test_a_number_that_names_no_place_uses_the_shop_zone(e164: str) -> None:
    locale = locale_for(e164, known_zone=None, fallback_zone="America/Denver")
    moment = at("America/Denver", 2026, 7, 15, 10, 0)

    assert locale.zones == ("America/Denver",)
    assert next_allowed(moment, locale, DEFAULT) == at("America/Denver", 2026, 7, 15, 11, 0)


def test_a_number_that_names_no_place_keeps_a_known_zone_and_an_address_state() -> None:
    locale = locale_for(
        "+18005550123", known_zone="America/Chicago", fallback_zone="UTC", state="OK"
    )

    assert locale == Locale(("America/Chicago",), "OK")


# --- daylight saving time ---


@pytest.mark.parametrize(
    ("frozen", "zone"),
    [
        ("2026-03-07 12:00:00", "America/New_York"),  # spring forward 2026-03-08
        ("2026-10-31 12:00:00", "America/New_York"),  # fall back 2026-11-01
        ("2027-03-13 12:00:00", "America/New_York"),  # spring forward 2027-03-14
        ("2026-03-07 12:00:00", "America/Los_Angeles"),
        ("2026-10-31 12:00:00", "America/Anchorage"),
        ("2026-03-07 12:00:00", "America/Indiana/Indianapolis"),
    ],
)
def test_openings_stay_at_eleven_local_across_dst_changes(frozen: str, zone: str) -> None:
    locale = Locale((zone,))
    with freeze_time(frozen):
        now = datetime.now(UTC)
        for step in range(3 * 24 * 4):
            moment = now + step * QUARTER
            found = next_allowed(moment, locale, DEFAULT)

            assert found >= moment
            assert found == moment or wall(found, zone).time() == time(11)
            assert time(11) <= wall(found, zone).time() < time(21)
            assert is_allowed(moment, locale, DEFAULT) is (found == moment)


@pytest.mark.parametrize(
    ("evening", "opening"),
    [
        # 21:00 the day before the change; the next opening is 11:00 under the new offset.
        (datetime(2026, 3, 8, 2, tzinfo=UTC), datetime(2026, 3, 8, 15, tzinfo=UTC)),
        (datetime(2026, 11, 1, 1, tzinfo=UTC), datetime(2026, 11, 1, 16, tzinfo=UTC)),
        (datetime(2027, 3, 14, 2, tzinfo=UTC), datetime(2027, 3, 14, 15, tzinfo=UTC)),
    ],
)
def test_next_opening_uses_the_new_offset_after_a_change(
    evening: datetime, opening: datetime
) -> None:
    assert not is_allowed(evening, NEW_YORK, DEFAULT)
    assert next_allowed(evening, NEW_YORK, DEFAULT) == opening


def test_a_start_inside_the_spring_gap_opens_when_the_clocks_jump() -> None:
    # 02:30 does not exist on 2026-03-08 in New York: 02:00 EST is followed by 03:00 EDT.
    night = parse_window("02:30-05:00")
    jump = datetime(2026, 3, 8, 7, tzinfo=UTC)

    assert next_allowed(datetime(2026, 3, 7, 12, tzinfo=UTC), NEW_YORK, night) == jump
    assert not is_allowed(jump - timedelta(seconds=1), NEW_YORK, night)
    assert is_allowed(jump, NEW_YORK, night)


def test_a_start_inside_the_repeated_hour_opens_twice() -> None:
    # 01:00-02:00 happens twice on 2026-11-01 in New York (EDT, then EST).
    small_hours = parse_window("00:30-01:30")
    first = datetime(2026, 11, 1, 4, 30, tzinfo=UTC)  # 00:30 EDT
    closed = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    again = datetime(2026, 11, 1, 6, tzinfo=UTC)  # 02:00 EDT becomes 01:00 EST

    assert next_allowed(datetime(2026, 10, 31, 12, tzinfo=UTC), NEW_YORK, small_hours) == first
    assert next_allowed(closed, NEW_YORK, small_hours) == again


# --- place_notice ---


def test_place_notice_keeps_an_allowed_due_moment() -> None:
    billing = at("America/New_York", 2026, 6, 15, 14, 0)

    placed = place_notice(billing, 3, NEW_YORK, DEFAULT)

    assert placed == at("America/New_York", 2026, 6, 12, 14, 0)


def test_place_notice_moves_an_early_due_moment_to_the_opening() -> None:
    billing = at("America/New_York", 2026, 6, 15, 9, 0)

    placed = place_notice(billing, 1, NEW_YORK, DEFAULT)

    assert placed == at("America/New_York", 2026, 6, 14, 11, 0)


def test_place_notice_moves_a_late_due_moment_to_the_next_morning() -> None:
    billing = at("America/New_York", 2026, 6, 15, 22, 0)

    placed = place_notice(billing, 2, NEW_YORK, DEFAULT)

    assert placed == at("America/New_York", 2026, 6, 14, 11, 0)


@pytest.mark.parametrize(
    ("locale", "billing_hour", "billing_minute"),
    [
        (NEW_YORK, 10, 0),  # the next opening, 11:00, comes after billing
        (NEW_YORK, 10, 59),
        (NEW_YORK, 14, 0),  # allowed, but not before billing
        (Locale(("America/New_York",), "FL"), 20, 30),  # closed by the state rule
    ],
)
def test_place_notice_expires_when_billing_is_too_close(
    locale: Locale, billing_hour: int, billing_minute: int
) -> None:
    billing = at("America/New_York", 2026, 6, 15, billing_hour, billing_minute)

    assert place_notice(billing, 0, locale, DEFAULT) is None


@pytest.mark.parametrize(
    ("billing", "due"),
    [
        # Three calendar days across spring forward: same wall time, 71 real hours earlier.
        (at("America/New_York", 2026, 3, 10, 14, 0), datetime(2026, 3, 7, 19, tzinfo=UTC)),
        # Across fall back: 73 real hours earlier.
        (at("America/New_York", 2026, 11, 3, 14, 0), datetime(2026, 10, 31, 18, tzinfo=UTC)),
    ],
)
def test_place_notice_counts_calendar_days_across_dst(billing: datetime, due: datetime) -> None:
    assert place_notice(billing, 3, NEW_YORK, DEFAULT) == due
    # Billing moments usually come back from the database in UTC: same answer.
    assert place_notice(billing.astimezone(UTC), 3, NEW_YORK, DEFAULT) == due


def test_place_notice_applies_the_state_rule() -> None:
    florida = Locale(("America/New_York",), "FL")
    billing = at("America/New_York", 2026, 6, 15, 20, 30)

    assert place_notice(billing, 1, florida, DEFAULT) == at("America/New_York", 2026, 6, 15, 11)


def test_place_notice_refuses_negative_days() -> None:
    with pytest.raises(ValueError, match="negative"):
        place_notice(at("America/New_York", 2026, 6, 15, 14), -1, NEW_YORK, DEFAULT)


# --- properties over arbitrary windows and moments ---

SINGLE_ZONES = [*ZONES, "America/Adak", "America/Boise", "Europe/London", "Australia/Lord_Howe"]


def _allowed_independently(moment: datetime, zones: tuple[str, ...], window: Window) -> bool:
    return all(window.start <= wall(moment, zone).time() < window.end for zone in zones)


@settings(deadline=None, max_examples=150)
@given(
    zone=st.sampled_from(SINGLE_ZONES),
    start_minute=st.integers(0, 23 * 60 + 58),
    length=st.integers(1, 12 * 60),
    moment=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
)
def test_next_allowed_is_the_first_allowed_minute_for_any_window(
    zone: str, start_minute: int, length: int, moment: datetime
) -> None:
    end_minute = min(start_minute + length, 23 * 60 + 59)
    window = Window(time(*divmod(start_minute, 60)), time(*divmod(end_minute, 60)))
    locale = Locale((zone,))

    found = next_allowed(moment, locale, window)

    assert found >= moment
    assert _allowed_independently(found, locale.zones, window)
    # Openings fall on whole minutes here, so no allowed minute may be skipped.
    minute = moment.replace(second=0, microsecond=0)
    if minute < moment:
        minute += timedelta(minutes=1)
    while minute < found:
        assert not _allowed_independently(minute, locale.zones, window)
        minute += timedelta(minutes=1)


@settings(deadline=None, max_examples=100)
@given(
    zones=st.sampled_from(
        [
            ("America/Adak", "America/Anchorage"),
            ("America/Boise", "America/Los_Angeles"),
            ("America/Chicago", "America/New_York"),
            ("America/Los_Angeles", "America/Phoenix"),
        ]
    ),
    start_minute=st.integers(0, 20 * 60),
    length=st.integers(3 * 60, 12 * 60),
    moment=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
)
def test_next_allowed_is_the_first_shared_minute_for_nearby_zones(
    zones: tuple[str, ...], start_minute: int, length: int, moment: datetime
) -> None:
    end_minute = min(start_minute + length, 23 * 60 + 59)
    assume(end_minute - start_minute >= 3 * 60)  # wider than any offset gap between the zones
    window = Window(time(*divmod(start_minute, 60)), time(*divmod(end_minute, 60)))

    found = next_allowed(moment, Locale(zones), window)

    assert found >= moment
    assert _allowed_independently(found, zones, window)
    minute = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while minute < found:
        assert not _allowed_independently(minute, zones, window)
        minute += timedelta(minutes=1)


# --- the year-long simulation ---

YEAR_LOCALES = {
    "New York": locale_for("+12125550123", known_zone=None, fallback_zone="UTC"),
    "Chicago": locale_for("+13125550123", known_zone=None, fallback_zone="UTC"),
    "Denver": locale_for("+13035550123", known_zone=None, fallback_zone="UTC"),
    "Phoenix": locale_for("+16025550123", known_zone=None, fallback_zone="UTC"),
    "Los Angeles": locale_for("+12135550123", known_zone=None, fallback_zone="UTC"),
    "Anchorage": locale_for("+19075550123", known_zone="America/Anchorage", fallback_zone="UTC"),
    "Alaska, both zones": locale_for("+19075550123", known_zone=None, fallback_zone="UTC"),
    "Honolulu": locale_for("+18085550123", known_zone=None, fallback_zone="UTC"),
    "Indianapolis": locale_for(
        "+13175550123", known_zone="America/Indiana/Indianapolis", fallback_zone="UTC"
    ),
    "Idaho, both zones": locale_for("+12085550123", known_zone=None, fallback_zone="UTC"),
    "Miami (Florida rule)": locale_for("+13055550123", known_zone=None, fallback_zone="UTC"),
    "Seattle (Washington rule)": locale_for("+12065550123", known_zone=None, fallback_zone="UTC"),
}
STRICT_STATES = {"FL", "CT", "MD", "OK", "WA"}


def test_year_locales_cover_the_zones_they_claim() -> None:
    assert YEAR_LOCALES["Alaska, both zones"].zones == ("America/Adak", "America/Anchorage")
    assert YEAR_LOCALES["Idaho, both zones"].zones == ("America/Boise", "America/Los_Angeles")
    assert YEAR_LOCALES["Miami (Florida rule)"].state == "FL"
    assert YEAR_LOCALES["Seattle (Washington rule)"].state == "WA"


@pytest.mark.parametrize("name", YEAR_LOCALES)
def test_a_year_of_quarter_hours_is_judged_like_local_wall_clocks(name: str) -> None:
    locale = YEAR_LOCALES[name]
    # Written out rather than taken from state_window, so the check stays independent.
    end = time(20) if locale.state in STRICT_STATES else time(21)
    expected_window = Window(time(11), end)
    with freeze_time("2026-01-01 00:00:00"):
        start = datetime.now(UTC)
        # Nine extra days so the opening after the last moment is on the grid too.
        grid = [start + i * QUARTER for i in range((365 + 9) * 24 * 4)]
        truly_allowed = [_allowed_independently(m, locale.zones, expected_window) for m in grid]
        allowed_steps = [i for i, allowed in enumerate(truly_allowed) if allowed]

        for i in range(365 * 24 * 4):
            moment = grid[i]
            assert is_allowed(moment, locale, DEFAULT) is truly_allowed[i], moment
            # Every US offset is whole hours and the window opens on the hour, so each
            # opening lies on the grid and the answer must be exactly the first truly
            # allowed step at or after the moment: allowed, not earlier than the moment,
            # and with no allowed step skipped in between.
            first_allowed = grid[allowed_steps[bisect_left(allowed_steps, i)]]
            assert next_allowed(moment, locale, DEFAULT) == first_allowed, moment
