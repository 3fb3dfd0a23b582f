"""Dates, durations and counts written in a reply: "2 weeks", "until march 3", "3 orders"."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from bot.rules.intents import Delay
from bot.rules.vocabulary import (
    ARTICLES,
    DETERMINERS,
    LONE_MONTHS,
    MONTHS,
    NUMBER_WORDS,
    ORDER_NOUNS,
    RELATIVE_DAYS,
    SOONER,
    UNIT_FILLER,
    UNITS,
    UNTIL,
    WEEKDAYS,
)


@dataclass
class When:
    """Times and counts found in a text."""

    found: list[Delay] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)  # every number seen, with or without unit
    bare: bool = False  # a number or month that pins nothing down ("delay 2", "until May")
    until: bool = False
    problems: set[str] = field(default_factory=set)


def _day(token: str) -> int | None:
    digits = token[:-2] if token[-2:] in ("st", "nd", "rd", "th") else token
    return int(digits) if digits.isdigit() and 1 <= int(digits) <= 31 else None


def _on_or_after(month: int, day: int, today: date) -> date | None:
    """The next `month`/`day` on or after today (Feb 29 waits for a leap year)."""
    for year in range(today.year, today.year + 9):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate >= today:
            return candidate
    return None


def _dated(year: int | None, month: int, day: int, today: date) -> date | None:
    if year is None:
        return _on_or_after(month, day, today)
    try:
        return date(year + 2000 if year < 100 else year, month, day)
    except ValueError:
        return None


def _numeric_date(token: str, today: date) -> date | None:
    """ "2026-12-05", "12/5/2026", "3/14" (month first, as in the US)."""
    if "-" in token:
        year, month, day = map(int, token.split("-"))
        return _dated(year, month, day, today)
    parts = [int(p) for p in token.split("/")]
    return _dated(parts[2] if len(parts) == 3 else None, parts[0], parts[1], today)


def _date_at(words: list[str], i: int, today: date) -> tuple[date | None, int] | None:
    """The date written at words[i] and how many words it takes (None inside when invalid)."""
    word = words[i]
    after = words[i + 1] if i + 1 < len(words) else ""
    third = words[i + 2] if i + 2 < len(words) else ""
    if word[:1].isdigit() and ("/" in word or word.count("-") == 2):
        return _numeric_date(word, today), 1
    if word in MONTHS and (day := _day(after)) is not None:  # "march 3", "mar 3rd 2027"
        if third.isdigit() and len(third) == 4:
            return _dated(int(third), MONTHS[word], day, today), 3
        return _dated(None, MONTHS[word], day, today), 2
    day = _day(word)
    if day is not None and after in MONTHS:  # "3 march"
        return _dated(None, MONTHS[after], day, today), 2
    if day is not None and after == "of" and third in MONTHS:  # "3rd of march"
        return _dated(None, MONTHS[third], day, today), 3
    if day is not None and not word.isdigit():  # "until the 15th"
        return _day_of_month(day, today), 1
    if word in WEEKDAYS:  # the next one, never today
        return today + timedelta(days=(WEEKDAYS[word] - today.weekday() - 1) % 7 + 1), 1
    if word in RELATIVE_DAYS:
        return today + timedelta(days=RELATIVE_DAYS[word]), 1
    return None


def _day_of_month(day: int, today: date) -> date | None:
    """The next date on or after today that falls on this day of a month."""
    for ahead in range(13):
        year, month = divmod(today.year * 12 + today.month - 1 + ahead, 12)
        try:
            candidate = date(year, month + 1, day)
        except ValueError:
            continue
        if candidate >= today:
            return candidate
    return None


def read_when(words: list[str], today: date) -> When:
    """Collect the dates, durations and counts written anywhere in the words."""
    when = When()
    i = 0
    while i < len(words):
        word = words[i]
        after = words[i + 1] if i + 1 < len(words) else ""
        step = 1
        if word in UNTIL:
            when.until = True
        elif word == "~range" or ("/" in word and after in UNITS):  # "1-2 weeks", "1/2 week"
            when.problems.add("ambiguous")
        elif word in SOONER or word.startswith("-"):
            when.problems.add("negative")
        elif word == "next" and after in WEEKDAYS:  # this friday or the one after?
            when.problems.add("ambiguous")
        elif word == "next" and after in UNITS:  # "next week", "next month"
            days, months = UNITS[after]
            when.found.append(Delay(days=days, months=months))
            when.counts.append(1)
            step = 2
        elif (dated := _date_at(words, i, today)) is not None:
            on, step = dated
            if on is None:
                when.problems.add("bad_date")
            else:
                when.found.append(Delay(until=on))
        elif word in LONE_MONTHS:
            when.bare = True  # "until january": which day?
        else:
            step = _read_quantity(words, i, when)
        i += step
    return when


def _read_quantity(words: list[str], i: int, when: When) -> int:
    """Read "2 weeks", "a couple of months", "3 orders" or a bare number at i; return its length."""
    word, before = words[i], words[i - 1] if i else ""
    if word == "~big":
        count = 10**6
    elif word.isdigit():
        count = int(word)
    elif word in NUMBER_WORDS and not (word == "one" and before in DETERMINERS):
        count = NUMBER_WORDS[word]
    elif word in ARTICLES:
        count = 1  # "a week"; alone, "a" counts nothing
    else:
        return 1
    j = i + 1
    while j < len(words) and words[j] in UNIT_FILLER | {"couple"}:
        count = 2 if words[j] == "couple" else count
        j += 1
    unit = words[j] if j < len(words) else ""
    if unit in UNITS:
        days, months = UNITS[unit]
        when.found.append(Delay(days=days * count, months=months * count))
        when.counts.append(count)
        return j - i + 1
    if word in ARTICLES:
        return 1
    when.counts.append(count)
    when.bare = when.bare or unit not in ORDER_NOUNS
    return 1
