from __future__ import annotations

import pytest

from bot.rules.area_codes import area_code_states, derive_from_geocoder
from bot.rules.phones import Place, mask, normalize, place_of, state_code


@pytest.mark.parametrize(
    "raw",
    [
        "(212) 555-0123",
        "212.555.0123",
        "212-555-0123",
        "2125550123",
        "+1 212 555 0123",
        "+1 (212) 555-0123",
        "1-212-555-0123",
        "12125550123",
        "+12125550123",
        "  212 555 0123  ",
    ],
)
def test_normalize_accepts_common_us_formats(raw: str) -> None:
    assert normalize(raw) == "+12125550123"


def test_normalize_reads_national_numbers_in_the_default_region() -> None:
    assert normalize("020 7946 0958", default_region="GB") == "+442079460958"
    assert normalize("+44 20 7946 0958") == "+442079460958"


@pytest.mark.parametrize(
    "raw",
    [None, "", "   ", "abc", "12", "212555012", "+1 555 555 5555", "+1 123 555 0123", "555-0123"],
)
def test_normalize_rejects_what_is_not_a_valid_number(raw: str | None) -> None:
    assert normalize(raw) is None


@pytest.mark.parametrize(
    ("e164", "zones"),
    [
        ("+12125550123", ("America/New_York",)),
        ("+13125550123", ("America/Chicago",)),
        ("+13035550123", ("America/Denver",)),
        ("+16025550123", ("America/Phoenix",)),
        ("+12135550123", ("America/Los_Angeles",)),
        ("+19075550123", ("America/Adak", "America/Anchorage")),
        ("+18085550123", ("Pacific/Honolulu",)),
        # phonenumbers files Indianapolis under Eastern time, not America/Indiana/*.
        ("+13175550123", ("America/New_York",)),
        ("+12085550123", ("America/Boise", "America/Los_Angeles")),
    ],
)
def test_zones_are_what_phonenumbers_knows_for_the_area_code(
    e164: str, zones: tuple[str, ...]
) -> None:
    assert place_of(e164).zones == zones


def test_a_toll_free_number_belongs_to_no_place_though_phonenumbers_gives_it_every_zone() -> None:
    import phonenumbers
    from phonenumbers import timezone

    everywhere = timezone.time_zones_for_number(phonenumbers.parse("+18005550123"))

    assert len(everywhere) > 30
    assert place_of("+18005550123") == Place()


@pytest.mark.parametrize("e164", ["+15555555555", "not a number", ""])
def test_zones_are_empty_when_unknown(e164: str) -> None:
    assert place_of(e164).zones == ()


@pytest.mark.parametrize(
    ("e164", "state"),
    [
        ("+13052070123", "FL"),  # described as "Miami, FL"
        ("+13055550123", "FL"),  # described as "Florida"
        ("+12062150123", "WA"),  # "Seattle, WA"
        ("+12065550123", "WA"),  # "Washington State"
        ("+18602060123", "CT"),  # "Hartford, CT"
        ("+18605550123", "CT"),  # "Connecticut"
        ("+12125550123", "NY"),
        ("+13035550123", "CO"),
        ("+13175550123", "IN"),
        ("+12022430000", "DC"),  # "Washington D.C."
    ],
)
def test_us_state_comes_from_the_geocoder(e164: str, state: str) -> None:
    assert place_of(e164).state == state


@pytest.mark.parametrize(
    "e164",
    [
        "+18005550123",  # toll-free: no place
        "+442079460958",  # London
        "+14165550123",  # Toronto, Canada shares +1
        "+17875550123",  # Puerto Rico is its own region
        "+15555555555",
        "garbage",
    ],
)
def test_us_state_is_none_when_unknown_or_not_us(e164: str) -> None:
    assert place_of(e164).state is None


@pytest.mark.parametrize(
    ("e164", "geographic"),
    [
        ("+12125550123", True),
        ("+19075550123", True),  # Alaska: two zones, still one place
        ("+442079460958", True),
        ("+18005550123", False),  # toll-free
        ("+15005550006", False),  # personal numbers
        ("+79161234567", False),  # mobile ranges that span a country
        ("garbage", False),
    ],
)
def test_only_numbers_that_belong_to_a_place_have_zones(e164: str, geographic: bool) -> None:
    assert bool(place_of(e164).zones) is geographic


@pytest.mark.parametrize(
    ("province", "code"),
    [
        ("FL", "FL"),
        ("fl", "FL"),
        (" Florida ", "FL"),
        ("new york", "NY"),
        ("District of Columbia", "DC"),
        ("Washington State", "WA"),
    ],
)
def test_state_code_reads_postal_codes_and_names(province: str, code: str) -> None:
    assert state_code(province) == code


@pytest.mark.parametrize("province", [None, "", "ON", "Ontario", "Bavaria", "F"])
def test_state_code_is_none_for_what_is_not_a_us_state(province: str | None) -> None:
    assert state_code(province) is None


def test_mask_keeps_only_country_code_and_last_four_digits() -> None:
    assert mask("+12125550123") == "+1 ••• ••• 0123"
    assert mask("+442079460958") == "+44 ••• ••• 0958"


@pytest.mark.parametrize("e164", [None, "", "garbage"])
def test_mask_reveals_nothing_of_what_is_not_a_number(e164: str | None) -> None:
    assert mask(e164) == "•••"


def test_mask_hides_every_digit_of_short_numbers() -> None:
    masked = mask("+4312345")

    assert masked == "+43 ••• •••"
    assert "2345" not in masked


def test_the_shipped_area_code_table_matches_the_geocoder() -> None:
    assert area_code_states() == derive_from_geocoder()


def test_a_state_is_read_from_the_area_code_without_the_geocoder_in_memory() -> None:
    import subprocess
    import sys

    probe = (
        "import sys; from bot.rules.phones import place_of; "
        "print(place_of('+13056218854').state, 'phonenumbers.geocoder' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["FL", "False"]


@pytest.mark.parametrize(
    "number",
    [
        "+12125550123",
        "+442079460958",
        "+4312345",
        "+390612345678",
        "+8613800138000",
        "+971501234567",
    ],
)
def test_mask_of_an_e164_string_matches_the_parsed_number(number: str) -> None:
    import phonenumbers

    parsed = phonenumbers.parse(number)
    national = str(parsed.national_number)
    expected = f"+{parsed.country_code} ••• ••• {national[-4:] if len(national) > 6 else ''}"

    assert mask(number) == expected.rstrip()


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+99912345678", "•••"),  # no such country code
        ("+1 (212) 555-0123", "+1 ••• ••• 0123"),  # formatted: parsed instead
        ("client:alice", "•••"),
    ],
)
def test_mask_of_anything_else_is_parsed_or_hidden_whole(number: str, masked: str) -> None:
    assert mask(number) == masked
