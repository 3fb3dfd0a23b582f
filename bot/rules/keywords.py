"""Understand a subscriber's reply: one text in, one intent with its arguments out.

Pure logic, no I/O. The parser is timid on purpose: a text that negates, asks,
jokes, hedges or names two actions is refused (intent UNKNOWN with a short
``refused`` reason) rather than guessed. docs/understanding.md lists what it
understands and what it refuses.

Steps: normalise -> tokens (phrases merged) -> opt-out -> help -> action words
(refusals, then arguments) -> the remaining information intents. The first two
live in reading.py, over the words listed in vocabulary.py; the decisions from
opt-out on are made here, with dates and durations read by when.py. The result
types come from intents.py and are re-exported here with parse.
"""

from __future__ import annotations

import unicodedata
from datetime import date

from bot.rules.intents import ACTIONS, MAX_PAUSE_DAYS, Delay, Intent, Parsed
from bot.rules.reading import Reading, asks, gives_reason, read
from bot.rules.vocabulary import (
    ALONE_OPT_OUT,
    ALWAYS_OPT_OUT,
    ARTICLES,
    CARRIER_KEYWORDS,
    CONDITIONALS,
    HEDGES,
    HELP_PHRASES,
    HELP_WORDS,
    MANY,
    MONTHS,
    NEGATIONS,
    NEXT_WORDS,
    NO_WORDS,
    NUMBER_WORDS,
    OPT_IN_WORDS,
    ORDER_NOUNS,
    RELATIVE_DAYS,
    STOP_WORDS,
    SUBSCRIPTION_NOUNS,
    TEXTING,
    UNIT_FILLER,
    UNITS,
    UNTIL,
    WEEKDAYS,
    WHEN_VERBS,
    YES_WORDS,
)
from bot.rules.when import When, read_when

__all__ = ["ACTIONS", "MAX_PAUSE_DAYS", "Delay", "Intent", "Parsed", "parse"]

_EDGES = " \t\r\n.,!;:'\"()[]*~-_¡…"


def parse(text: str, *, today: date, max_delay_days: int = 60) -> Parsed:
    """Read one inbound text; whatever is not a clear request comes back refused."""
    # Twilio answers these single words itself, punctuation aside ("?" stays: "cancel?" asks).
    carrier = CARRIER_KEYWORDS.get(unicodedata.normalize("NFKC", text).casefold().strip(_EDGES))
    if carrier is not None:
        return Parsed(carrier, 1.0, carrier_keyword=True)
    r = read(text)
    if not r.words:
        return Parsed(Intent.HELP, 0.6) if r.question else _refuse("not_command")
    return (
        _opt_out(r)
        or _help(r)
        or _action(r, today, max_delay_days)
        or _cancel(r)
        or _information(r, today, max_delay_days)
    )


def _refuse(reason: str, delay: Delay | None = None) -> Parsed:
    return Parsed(Intent.UNKNOWN, 0.0, delay=delay, refused=reason)


def _opt_out(r: Reading) -> Parsed | None:
    """Plain-words opt-outs: "stop texting me", "do not text me", "no more texts"."""
    for i, token in enumerate(r.tokens):
        if token in TEXTING and _refuses_texts(r.tokens, i):
            return Parsed(Intent.OPT_OUT, 0.85)
        if token not in STOP_WORDS | ALWAYS_OPT_OUT:
            continue
        if i and r.tokens[i - 1] in NEGATIONS - {"no"}:
            return _refuse("negation")  # "don't stop", while "no, stop" is an opt-out
        if token in STOP_WORDS and not r.has(TEXTING):
            if r.hits or r.mentions:
                return _refuse("ambiguous")  # "stop skipping my orders"
            if r.has(SUBSCRIPTION_NOUNS):
                return Parsed(Intent.CANCEL_REQUEST, 0.8)  # "stop my subscription"
            if r.question and r.content() != [token]:
                return _refuse("question")  # "did it stop?", while "stop?" still opts out
        return Parsed(Intent.OPT_OUT, 0.85)
    return None


_TEXT_FILLER = frozenset(
    {"send", "sending", "me", "any", "more", "these", "those", "your", "the", "to", "want"}
    | {"need", "ever", "again", "please", "pls"}
)


def _refuses_texts(tokens: list[str], at: int) -> bool:
    """True for "no more texts", "do not text me", "don't send me any messages"."""
    for token in reversed(tokens[max(0, at - 4) : at]):
        if token in ("no", "not", "dont", "never"):
            return True
        if token not in _TEXT_FILLER:
            return False
    return False


def _help(r: Reading) -> Parsed | None:
    if r.has(HELP_WORDS) or any(_contains(r.words, phrase) for phrase in HELP_PHRASES):
        return Parsed(Intent.HELP, 0.85)
    return None


def _contains(words: list[str], phrase: tuple[str, ...]) -> bool:
    size = len(phrase)
    return any(tuple(words[i : i + size]) == phrase for i in range(len(words) - size + 1))


def _action(r: Reading, today: date, max_delay_days: int) -> Parsed | None:
    """An action when exactly one is clearly asked for; a refusal when one is only mentioned."""
    if not r.hits:
        if not r.mentions:
            return None
        return _refuse("negation" if r.negations else _doubt(r) or "not_command")
    last = r.hits[-1].at
    if any(n < last or not gives_reason(r, n) for n in r.negations):
        return _refuse("negation")
    doubt = _doubt(r)
    if doubt:
        return _refuse(doubt)
    intents = {hit.intent for hit in r.hits}
    if len(intents) > 1 or r.has(HEDGES | MANY | ALONE_OPT_OUT | TEXTING):
        return _refuse("ambiguous")  # "skip or pause", "skip every month", "resume texts"
    if any(hit.typo for hit in r.hits):
        confidence = 0.7
    elif all(hit.soft for hit in r.hits):
        confidence = 0.8
    else:
        confidence = 0.95 if len(r.words) == 1 else 0.9
    when = read_when(r.words, today)
    return _with_arguments(intents.pop(), when, confidence, today, max_delay_days)


def _doubt(r: Reading) -> str:
    """Why a text that names an action is not a request for it ("" when nothing is wrong)."""
    if r.question or asks(r):
        return "question"
    if r.joke:
        return "joke"
    return "conditional" if r.has(CONDITIONALS) else ""


def _with_arguments(
    intent: Intent, when: When, confidence: float, today: date, max_delay_days: int
) -> Parsed:
    if intent is Intent.UNDO:
        return Parsed(intent, confidence)
    if intent is Intent.SKIP:  # a date may name the order; a count or a span may not
        if when.until or any(count != 1 for count in when.counts) or when.problems - {"bad_date"}:
            return _refuse("ambiguous")
        return Parsed(intent, confidence)
    if intent is Intent.RESUME:  # "resume in March" is not "resume now"
        if when.found or when.until or when.bare or when.problems:
            return _refuse("ambiguous")
        return Parsed(intent, confidence)
    for problem in ("negative", "bad_date", "ambiguous"):
        if problem in when.problems:
            return _refuse(problem)
    if len(when.found) > 1 or (when.found and when.bare):
        return _refuse("ambiguous")
    moved = when.found[0] if when.found else None
    if intent is Intent.DELAY:
        if moved is None:
            return Parsed(Intent.DELAY_ASK, confidence)
        wrong = _out_of_range(moved, today, max_delay_days)
        return _refuse(wrong) if wrong else Parsed(intent, confidence, delay=moved)
    if moved is None:  # PAUSE: no date means until resumed
        return _refuse("ambiguous") if when.bare else Parsed(intent, confidence)
    wrong = _out_of_range(moved, today, MAX_PAUSE_DAYS)
    return _refuse(wrong) if wrong else Parsed(intent, confidence, pause_for=moved)


def _out_of_range(moved: Delay, today: date, limit_days: int) -> str:
    """ "past_date", "negative" or "over_max" (a month counts as 31 days), else ""."""
    if moved.until is not None:
        ahead = (moved.until - today).days
        if ahead <= 0:
            return "past_date"
    else:
        ahead = moved.days + 31 * moved.months
        if ahead <= 0:
            return "negative"
    return "over_max" if ahead > limit_days else ""


def _cancel(r: Reading) -> Parsed | None:
    """CANCEL alone is a carrier opt-out word; "cancel my subscription" asks to cancel."""
    at = next((i for i, t in enumerate(r.tokens) if t in ALONE_OPT_OUT), None)
    if at is None:
        return None
    word = r.tokens[at]
    if any(n < at for n in r.negations):
        return _refuse("negation")
    if r.content() == [word]:
        return _refuse("question") if r.question else Parsed(Intent.OPT_OUT, 0.85)
    if r.has(TEXTING):
        return Parsed(Intent.OPT_OUT, 0.85)  # "cancel these texts"
    if word in ("cancel", "cancelar"):
        if r.has(SUBSCRIPTION_NOUNS | {"it", "this"}):
            return Parsed(Intent.CANCEL_REQUEST, 0.85)
        return _refuse("ambiguous")  # "cancel that"
    if word in ("end", "quit") and r.has(SUBSCRIPTION_NOUNS - ORDER_NOUNS):
        return Parsed(Intent.CANCEL_REQUEST, 0.8)  # "end my subscription"
    return None


def _information(r: Reading, today: date, max_delay_days: int) -> Parsed:
    """Opt-in, NEXT, yes/no, a choice, or nothing we act on."""
    content = r.content()
    if r.has(OPT_IN_WORDS):
        if r.negations:
            return _refuse("negation")
        if r.has(SUBSCRIPTION_NOUNS):
            return _refuse("ambiguous")  # "start my subscription again": resume or opt in?
        return Parsed(Intent.OPT_IN, 0.85)
    if _asks_next(r):
        return Parsed(Intent.NEXT, 0.85)
    if content and set(content) <= YES_WORDS | NO_WORDS:
        yes, no = r.has(YES_WORDS), r.has(NO_WORDS)
        if r.question or (yes and no):
            return _refuse("question" if r.question else "ambiguous")
        return Parsed(Intent.YES if yes else Intent.NO, 0.95 if len(r.words) == 1 else 0.9)
    choice = _choice([w for w in content if w not in YES_WORDS])
    if choice is not None:
        return _refuse("question") if r.question else Parsed(Intent.CHOICE, 0.9, choice=choice)
    return _duration_only(content, today, max_delay_days) or _refuse("not_command")


def _asks_next(r: Reading) -> bool:
    """ "next", "status", "next order?", "when is my next delivery", "when will it ship"."""
    if r.has(NEXT_WORDS - {"next"}):
        return True
    for i, word in enumerate(r.words):
        if word == "next" and (i + 1 == len(r.words) or r.words[i + 1] in ORDER_NOUNS):
            return True
    return "when" in r.words and (r.has(ORDER_NOUNS) or r.has(WHEN_VERBS))


_CHOICE_WORDS = frozenset({"option", "choice", "number", "opt", "opcion", "the", "#"})


def _choice(content: list[str]) -> int | None:
    """A bare number answering a question: "2", "#2", "option 2", "two", "2nd"."""
    words = [w for w in content if w not in _CHOICE_WORDS]
    if len(words) != 1:
        return None
    word = words[0]
    digits = word[:-2] if word[-2:] in ("st", "nd", "rd", "th") else word
    if digits.isdigit():
        return int(digits) if 1 <= int(digits) <= 99 else None
    return NUMBER_WORDS.get(word) if word != "couple" else None


_DURATION_WORDS = frozenset(
    {*NUMBER_WORDS, *ARTICLES, *UNITS, *UNIT_FILLER, *MONTHS, *WEEKDAYS, *RELATIVE_DAYS, *UNTIL}
    | {"for", "by", "in", "to", "next", "the", "on"}
)


def _duration_only(content: list[str], today: date, max_delay_days: int) -> Parsed | None:
    """ "2 weeks" with no verb: not a command, but the answer to "how long?" is kept in delay."""
    if not all(w in _DURATION_WORDS or w[:1].isdigit() for w in content):
        return None
    when = read_when(content, today)
    if len(when.found) != 1 or when.bare or when.problems:
        return None
    moved = when.found[0]
    return _refuse(_out_of_range(moved, today, max_delay_days) or "duration_only", delay=moved)
