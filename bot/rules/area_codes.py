"""The US state of each area code, derived once from phonenumbers' geocoder.

The geocoder's data costs about 100 MB of memory in every process that imports
it; the bot only needs the state of a US number, which the area code decides.
`python -c "from bot.rules.area_codes import write_table; write_table()"` rebuilds
`data/us_area_codes.json` after an upgrade of phonenumbers; a test checks that
the file still matches the geocoder.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from pathlib import Path

TABLE = Path(__file__).resolve().parent / "data" / "us_area_codes.json"
#: Exchanges sampled per area code: the geocoder names a city per exchange.
SAMPLE_EXCHANGES = range(201, 1000, 7)


@cache
def area_code_states() -> dict[str, str]:
    """Area code → two-letter state, from the shipped table."""
    table: dict[str, str] = json.loads(TABLE.read_text())
    return table


def derive_from_geocoder() -> dict[str, str]:
    """Build the table from phonenumbers' geocoder (slow, memory-hungry: build time only)."""
    import phonenumbers
    from phonenumbers import geocoder

    from bot.rules.phones import state_from_description

    table = {}
    for npa in range(200, 1000):
        votes: Counter[str] = Counter()
        for exchange in SAMPLE_EXCHANGES:
            number = phonenumbers.parse(f"+1{npa}{exchange:03d}4567")
            if phonenumbers.region_code_for_number(number) != "US":
                continue
            state = state_from_description(geocoder.description_for_number(number, "en"))
            if state:
                votes[state] += 1
        if votes:
            table[str(npa)] = votes.most_common(1)[0][0]
    return table


def write_table() -> None:
    """Rewrite the shipped table from the geocoder."""
    TABLE.write_text(json.dumps(derive_from_geocoder(), indent=0, sort_keys=True) + "\n")
