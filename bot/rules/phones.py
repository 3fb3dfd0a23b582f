"""Phone numbers: E.164 normalisation, time zones, US state and masking for logs."""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import timezone

from bot.rules.area_codes import area_code_states

_UNKNOWN_ZONE = "Etc/Unknown"
_E164 = re.compile(r"\+[1-9]\d{5,14}")

# The geocoder describes US numbers either as "City, ST" or by the state's full name
# (and, for two of them, with a qualifier), so full names are mapped back to postal codes.
_STATE_CODES = {
    "Alabama": "AL",
    "Alaska": "AK",
    "Arizona": "AZ",
    "Arkansas": "AR",
    "California": "CA",
    "Colorado": "CO",
    "Connecticut": "CT",
    "Delaware": "DE",
    "District of Columbia": "DC",
    "Florida": "FL",
    "Georgia": "GA",
    "Hawaii": "HI",
    "Idaho": "ID",
    "Illinois": "IL",
    "Indiana": "IN",
    "Iowa": "IA",
    "Kansas": "KS",
    "Kentucky": "KY",
    "Louisiana": "LA",
    "Maine": "ME",
    "Maryland": "MD",
    "Massachusetts": "MA",
    "Michigan": "MI",
    "Minnesota": "MN",
    "Mississippi": "MS",
    "Missouri": "MO",
    "Montana": "MT",
    "Nebraska": "NE",
    "Nevada": "NV",
    "New Hampshire": "NH",
    "New Jersey": "NJ",
    "New Mexico": "NM",
    "New York": "NY",
    "North Carolina": "NC",
    "North Dakota": "ND",
    "Ohio": "OH",
    "Oklahoma": "OK",
    "Oregon": "OR",
    "Pennsylvania": "PA",
    "Rhode Island": "RI",
    "South Carolina": "SC",
    "South Dakota": "SD",
    "Tennessee": "TN",
    "Texas": "TX",
    "Utah": "UT",
    "Vermont": "VT",
    "Virginia": "VA",
    "Washington": "WA",
    "Washington State": "WA",
    "Washington D.C.": "DC",
    "West Virginia": "WV",
    "Wisconsin": "WI",
    "Wyoming": "WY",
}
_POSTAL_CODES = frozenset(_STATE_CODES.values())


def _parse(number: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None


def normalize(raw: str | None, default_region: str = "US") -> str | None:
    """Return the number in E.164 form, or None when it is not a valid phone number."""
    if not raw:
        return None
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@dataclass(frozen=True)
class Place:
    """Where a number says its owner is: the zones of a geographic number, and a US state."""

    zones: tuple[str, ...] = ()
    state: str | None = None


def place_of(e164: str) -> Place:
    """The IANA zones phonenumbers knows for a geographic number (sorted) and the
    two-letter state of a US number; nothing for what is not a number.

    Toll-free, personal and country-wide mobile numbers belong to no place. The
    planner asks this of every subscriber; parsing a number and typing it are
    most of the cost, so each is done once here.
    """
    parsed = _parse(e164)
    if parsed is None or parsed.country_code is None:
        return Place()
    kind = phonenumbers.number_type(parsed)
    zones: tuple[str, ...] = ()
    if phonenumbers.is_number_type_geographical(kind, parsed.country_code):
        found = timezone.time_zones_for_geographical_number(parsed)
        zones = tuple(sorted(zone for zone in found if zone != _UNKNOWN_ZONE))
    return Place(zones, _us_state(parsed))


def _us_state(parsed: phonenumbers.PhoneNumber) -> str | None:
    """The state of a US number from its area code (the geocoder is never loaded)."""
    if parsed.country_code != 1 or phonenumbers.region_code_for_number(parsed) != "US":
        return None
    national = str(parsed.national_number)
    return area_code_states().get(national[:3]) if len(national) == 10 else None


def state_from_description(description: str) -> str | None:
    """The state in a geocoder description: "Miami, FL" or a full name such as "Florida"."""
    _, _, suffix = description.rpartition(", ")
    if suffix in _POSTAL_CODES:
        return suffix
    return _STATE_CODES.get(description)


def state_code(province: str | None) -> str | None:
    """Return the postal code of a US state given as "FL", "fl" or "Florida"; None otherwise."""
    text = (province or "").strip()
    if text.upper() in _POSTAL_CODES:
        return text.upper()
    return _STATE_CODES.get(text.title()) or _STATE_CODES.get(text)


def mask(e164: str | None) -> str:
    """Hide all but the country code and last four digits, e.g. "+1 ••• ••• 0123"."""
    split = _split_e164(e164) if e164 else None
    if split is None:
        parsed = _parse(e164) if e164 else None
        if parsed is None:
            return "•••"
        split = str(parsed.country_code), str(parsed.national_number)
    country, national = split
    # Short numbers would be fully revealed by their last four digits.
    last = national[-4:] if len(national) > 6 else ""
    return f"+{country} ••• ••• {last}".rstrip()


def _split_e164(text: str) -> tuple[str, str] | None:
    """Country code and national digits of a well-formed E.164 string, without a parse.

    Every webhook logs its sender masked; country calling codes are prefix-free, so
    the first known one of 1-3 digits is the code.
    """
    if not _E164.fullmatch(text):
        return None
    digits = text[1:]
    for length in (1, 2, 3):
        if int(digits[:length]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return digits[:length], digits[length:]
    return None
