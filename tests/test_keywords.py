"""The reply parser: what it understands, what it must never act on.

Every test reads replies as if today were Monday 2026-11-23 (the corpus in
tests/data/replies.tsv is labelled for that day too).
"""

from __future__ import annotations

import csv
import time
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.rules.keywords import ACTIONS, Delay, Intent, Parsed, parse
from bot.rules.reading import normalize

TODAY = date(2026, 11, 23)
CORPUS = Path(__file__).parent / "data" / "replies.tsv"


def read(text: str, **kwargs: int) -> Parsed:
    return parse(text, today=TODAY, **kwargs)


# -- what it must understand --------------------------------------------------------------

UNDERSTOOD = [
    ("SKIP", Parsed(Intent.SKIP, 0.95)),
    ("skip please 🙏", Parsed(Intent.SKIP, 0.9)),
    ("Yes skip", Parsed(Intent.SKIP, 0.9)),
    ("can you skip it please", Parsed(Intent.SKIP, 0.9)),
    ("I'd like to skip", Parsed(Intent.SKIP, 0.9)),
    ("Hi! Please skip my next order. Thanks 😊", Parsed(Intent.SKIP, 0.9)),
    ("ＳＫＩＰ", Parsed(Intent.SKIP, 0.95)),
    ("SALTAR", Parsed(Intent.SKIP, 0.95)),
    ("delay 10 days", Parsed(Intent.DELAY, 0.9, delay=Delay(days=10))),
    ("delay a week", Parsed(Intent.DELAY, 0.9, delay=Delay(days=7))),
    ("delay 2 weeks", Parsed(Intent.DELAY, 0.9, delay=Delay(days=14))),
    ("delay two wks", Parsed(Intent.DELAY, 0.9, delay=Delay(days=14))),
    ("delay 1 month", Parsed(Intent.DELAY, 0.9, delay=Delay(months=1))),
    ("delay an mo", Parsed(Intent.DELAY, 0.9, delay=Delay(months=1))),
    ("push back 1 week", Parsed(Intent.DELAY, 0.8, delay=Delay(days=7))),
    ("postpone 3 days", Parsed(Intent.DELAY, 0.9, delay=Delay(days=3))),
    ("move it to dec 5", Parsed(Intent.DELAY, 0.8, delay=Delay(until=date(2026, 12, 5)))),
    ("later", Parsed(Intent.DELAY_ASK, 0.8)),
    ("delay until jan 5", Parsed(Intent.DELAY, 0.9, delay=Delay(until=date(2027, 1, 5)))),
    ("delay until Dec 3rd", Parsed(Intent.DELAY, 0.9, delay=Delay(until=date(2026, 12, 3)))),
    ("delay to 12/14", Parsed(Intent.DELAY, 0.9, delay=Delay(until=date(2026, 12, 14)))),
    ("delay to 12/5/2026", Parsed(Intent.DELAY, 0.9, delay=Delay(until=date(2026, 12, 5)))),
    ("delay to 2026-12-05", Parsed(Intent.DELAY, 0.9, delay=Delay(until=date(2026, 12, 5)))),
    ("reschedule to Jan 5", Parsed(Intent.DELAY, 0.9, delay=Delay(until=date(2027, 1, 5)))),
    ("DELAY", Parsed(Intent.DELAY_ASK, 0.95)),
    ("delay please", Parsed(Intent.DELAY_ASK, 0.9)),
    ("UNSKIP", Parsed(Intent.UNDO, 0.95)),
    ("undo skip", Parsed(Intent.UNDO, 0.9)),
    ("pause", Parsed(Intent.PAUSE, 0.95)),
    ("pause for 2 months", Parsed(Intent.PAUSE, 0.9, pause_for=Delay(months=2))),
    ("pause until June 1", Parsed(Intent.PAUSE, 0.9, pause_for=Delay(until=date(2027, 6, 1)))),
    ("RESUME", Parsed(Intent.RESUME, 0.95)),
    ("unpause", Parsed(Intent.RESUME, 0.95)),
    ("reactivate", Parsed(Intent.RESUME, 0.95)),
    ("NEXT", Parsed(Intent.NEXT, 0.85)),
    ("status", Parsed(Intent.NEXT, 0.85)),
    ("when is my next order?", Parsed(Intent.NEXT, 0.85)),
    ("INFO", Parsed(Intent.HELP, 1.0, carrier_keyword=True)),
    ("menu", Parsed(Intent.HELP, 0.85)),
    ("what can I do?", Parsed(Intent.HELP, 0.85)),
    ("AYUDA", Parsed(Intent.HELP, 0.85)),
    ("stop texting me", Parsed(Intent.OPT_OUT, 0.85)),
    ("do not text me", Parsed(Intent.OPT_OUT, 0.85)),
    ("no more texts", Parsed(Intent.OPT_OUT, 0.85)),
    ("PARAR", Parsed(Intent.OPT_OUT, 0.85)),
    ("UNSTOP", Parsed(Intent.OPT_IN, 1.0, carrier_keyword=True)),
    ("cancel my subscription", Parsed(Intent.CANCEL_REQUEST, 0.85)),
    ("I want to cancel my order", Parsed(Intent.CANCEL_REQUEST, 0.85)),
    ("yes", Parsed(Intent.YES, 0.95)),
    ("yeah", Parsed(Intent.YES, 0.95)),
    ("y", Parsed(Intent.YES, 0.95)),
    ("confirm", Parsed(Intent.YES, 0.95)),
    ("no", Parsed(Intent.NO, 0.95)),
    ("nope", Parsed(Intent.NO, 0.95)),
    ("n", Parsed(Intent.NO, 0.95)),
    ("1", Parsed(Intent.CHOICE, 0.9, choice=1)),
    ("2.", Parsed(Intent.CHOICE, 0.9, choice=2)),
    ("#2", Parsed(Intent.CHOICE, 0.9, choice=2)),
    ("option 2", Parsed(Intent.CHOICE, 0.9, choice=2)),
    ("two", Parsed(Intent.CHOICE, 0.9, choice=2)),
]


@pytest.mark.parametrize(("text", "expected"), UNDERSTOOD)
def test_understands_what_people_type(text: str, expected: Parsed) -> None:
    assert read(text) == expected


@pytest.mark.parametrize(
    ("typo", "intent"),
    [
        ("Skipp", Intent.SKIP),
        ("skp", Intent.SKIP),
        ("sikp", Intent.SKIP),
        ("dealy", Intent.DELAY_ASK),
        ("puase", Intent.PAUSE),
        ("resme", Intent.RESUME),
        ("unskp", Intent.UNDO),
        ("postphone", Intent.DELAY_ASK),
    ],
)
def test_a_typo_still_names_the_intent_with_less_confidence(typo: str, intent: Intent) -> None:
    parsed = read(typo)
    assert parsed.intent is intent
    assert parsed.confidence < read(intent.value.removesuffix("_ask")).confidence


@pytest.mark.parametrize("word", ["ship", "slip", "skin", "ski", "sip", "decay", "parse", "unto"])
def test_a_real_word_near_a_command_is_not_a_typo(word: str) -> None:
    assert not read(f"{word} my order").is_action
    assert not read(word).is_action


def test_typos_never_turn_one_action_into_another() -> None:
    assert read("dealy 2 weeks").delay == Delay(days=14)
    assert read("pasue").intent is Intent.PAUSE
    assert read("unpuase").intent is Intent.RESUME  # near "unpause", not "pause"


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("STOP", Intent.OPT_OUT),
        ("stop.", Intent.OPT_OUT),
        ("Stopall", Intent.OPT_OUT),
        ("UNSUBSCRIBE", Intent.OPT_OUT),
        ("end", Intent.OPT_OUT),
        ("QUIT", Intent.OPT_OUT),
        ("CANCEL", Intent.OPT_OUT),
        ("cancel.", Intent.OPT_OUT),
        ("CANCEL!", Intent.OPT_OUT),
        ("optout", Intent.OPT_OUT),
        ("revoke", Intent.OPT_OUT),
        ("START", Intent.OPT_IN),
        ("unstop", Intent.OPT_IN),
        ("HELP", Intent.HELP),
        (" info ", Intent.HELP),
    ],
)
def test_carrier_keywords_are_flagged(text: str, intent: Intent) -> None:
    assert read(text) == Parsed(intent, 1.0, carrier_keyword=True)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("stop texting me", Intent.OPT_OUT),
        ("please stop", Intent.OPT_OUT),
        ("cancel please", Intent.OPT_OUT),
        ("unsubscribe me", Intent.OPT_OUT),
        ("start texting me again", Intent.OPT_IN),
        ("help me", Intent.HELP),
        ("yes", Intent.YES),
    ],
)
def test_plain_words_are_not_carrier_keywords(text: str, intent: Intent) -> None:
    parsed = read(text)
    assert parsed.intent is intent
    assert not parsed.carrier_keyword


# -- what it must never act on ------------------------------------------------------------

REFUSED = [
    ("don't skip", "negation"),
    ("do not delay my order", "negation"),
    ("no skip", "negation"),
    ("No, skip it", "negation"),
    ("never pause", "negation"),
    ("skip. actually no", "negation"),
    ("don't stop texting me", "negation"),
    ("can I skip?", "question"),
    ("can i skip", "question"),
    ("skip??", "question"),
    ("what does skip mean", "question"),
    ("how do I pause", "question"),
    ("can you delay it 2 weeks?", "question"),
    ("cancel?", "question"),
    ("I skipped breakfast lol", "joke"),
    ("skip lol", "joke"),
    ("skip 😂", "joke"),
    ("if I skip will I lose my discount", "conditional"),
    ("skip or pause?", "question"),
    ("skip or pause", "ambiguous"),
    ("skip and pause", "ambiguous"),
    ("maybe skip", "ambiguous"),
    ("skip 2 weeks", "ambiguous"),
    ("skip every other month", "ambiguous"),
    ("cancel skip", "ambiguous"),
    ("cancel that", "ambiguous"),
    ("resume in january", "ambiguous"),
    ("delay 1-2 weeks", "ambiguous"),
    ("delay until next friday", "ambiguous"),
    ("pause until June", "ambiguous"),
    ("delay 6 months", "over_max"),
    ("delay 2 months", "over_max"),
    ("delay 61 days", "over_max"),
    ("pause for 2 years", "over_max"),
    ("delay -2 weeks", "negative"),
    ("delay 0 days", "negative"),
    ("move it up a week", "negative"),
    ("delay until 11/1/2026", "past_date"),
    ("delay until yesterday", "past_date"),
    ("delay until 2/30", "bad_date"),
    ("ok", "not_command"),
    ("thanks", "not_command"),
    ("lol", "not_command"),
    ("👍", "not_command"),
    ("", "not_command"),
    ("my order was delayed", "not_command"),
    ("ship my order", "not_command"),
]


@pytest.mark.parametrize(("text", "reason"), REFUSED)
def test_refuses_to_act(text: str, reason: str) -> None:
    parsed = read(text)
    assert (parsed.intent, parsed.refused) == (Intent.UNKNOWN, reason)
    assert not parsed.is_action


@pytest.mark.parametrize(
    "text",
    ["skip?", "Skip ?", "delay 2 weeks?", "pause?? please", "undo?", "resume ?", "skip？"],
)
def test_a_question_mark_beside_an_action_is_a_question(text: str) -> None:
    assert read(text).refused == "question"


def test_a_negation_that_gives_a_reason_keeps_the_request() -> None:
    assert read("skip please, I don't need it this month").intent is Intent.SKIP
    assert read("skip, not home that week").intent is Intent.SKIP
    assert read("skip, not").refused == "negation"


def test_a_bare_duration_is_kept_but_not_acted_on() -> None:
    assert read("2 weeks") == Parsed(
        Intent.UNKNOWN, 0.0, delay=Delay(days=14), refused="duration_only"
    )


# -- dates and limits ----------------------------------------------------------------------


def test_a_date_without_year_is_the_next_one_on_or_after_today() -> None:
    assert read("delay until jan 5").delay == Delay(until=date(2027, 1, 5))
    in_january = parse("delay until jan 5", today=date(2027, 1, 2))
    assert in_january.delay == Delay(until=date(2027, 1, 5))
    assert read("pause until 11/23").refused == "past_date"  # today itself moves nothing
    assert read("pause until 11/24").pause_for == Delay(until=date(2026, 11, 24))


def test_months_count_as_31_days_against_the_maximum() -> None:
    assert read("delay 2 months", max_delay_days=62).delay == Delay(months=2)
    assert read("delay 2 months", max_delay_days=61).refused == "over_max"
    assert read("delay until March 3", max_delay_days=120).delay == Delay(until=date(2027, 3, 3))
    assert read("delay until March 3").refused == "over_max"


# -- robustness ------------------------------------------------------------------------------


def test_normalize_folds_width_case_accents_and_emoji() -> None:
    assert normalize("ＳＫＩＰ　ｐｌｅａｓｅ") == "skip please"
    assert normalize("Sí 👍🏽 ¡GRACIAS!!!") == "si !gracias!"
    assert normalize("Don’t\tSKIP") == "don't skip"


@pytest.mark.parametrize(
    "text",
    ["", " ", "\x00\x07\x1b[31m", "a\u0301\u0302\u0303" * 50, "🙂" * 2000, "9" * 5000, "-" * 3000],
)
def test_odd_input_is_read_without_error(text: str) -> None:
    assert not parse(text, today=TODAY).is_action


def test_ten_kilobytes_of_junk_is_read_quickly() -> None:
    junk = ("skip? 12/45/9999 -99999 delay " + "x" * 50 + " ☃ ") * 120
    start = time.perf_counter()
    parsed = parse(junk[:10_000], today=TODAY)
    assert time.perf_counter() - start < 1.0
    assert not parsed.is_action


# -- the labelled corpus -----------------------------------------------------------------------


def _expected(label: str) -> tuple[Intent, Delay | None, Delay | None, int | None]:
    """ "delay:14d" -> (DELAY, Delay(days=14), None, None); "pause" -> (PAUSE, None, None, None)."""
    name, _, argument = label.partition(":")
    intent = Intent(name)
    if intent is Intent.CHOICE:
        return intent, None, None, int(argument)
    moved = None
    if argument.startswith("until="):
        moved = Delay(until=date.fromisoformat(argument.removeprefix("until=")))
    elif argument.endswith("d"):
        moved = Delay(days=int(argument[:-1]))
    elif argument.endswith("m"):
        moved = Delay(months=int(argument[:-1]))
    if intent is Intent.PAUSE:
        return intent, None, moved, None
    return intent, moved, None, None


def test_the_corpus_is_read_correctly_and_never_destructively() -> None:
    with CORPUS.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert len(rows) >= 320
    misses, destructive = [], []
    for row in rows:
        text = row["text"].replace("\\n", "\n")
        expected = _expected(row["expected"])
        parsed = read(text)
        got = (parsed.intent, parsed.delay, parsed.pause_for, parsed.choice)
        if parsed.is_action and got != expected:
            destructive.append(f"{text!r}: expected {row['expected']}, read {got}")
        elif got[:1] != expected[:1] or (parsed.intent is not Intent.UNKNOWN and got != expected):
            misses.append(f"{text!r}: expected {row['expected']}, read {got} {parsed.refused}")
    accuracy = 1 - (len(misses) + len(destructive)) / len(rows)
    print(f"\ncorpus: {len(rows)} texts, accuracy {accuracy:.1%}, misses {len(misses)}")
    print("\n".join(misses))
    assert destructive == []
    assert accuracy >= 0.95


def test_corpus_labels_name_real_intents() -> None:
    with CORPUS.open(encoding="utf-8", newline="") as f:
        labels = [row["expected"] for row in csv.DictReader(f, delimiter="\t")]
    assert {_expected(label)[0] for label in labels} >= ACTIONS


# -- properties ------------------------------------------------------------------------------

NEGATION_WORDS = ["don't", "do not", "dont", "no", "never", "not"]
ACTION_WORDS = [
    "skip", "SKIP", "Skipp", "delay", "delay 2 weeks", "pause", "pause for 2 months",
    "resume", "undo", "unskip", "postpone a week", "push back", "saltar", "move it to dec 5",
]  # fmt: skip
_filler = st.text(max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_any_text_is_read_without_error(text: str) -> None:
    parsed = parse(text, today=TODAY)
    assert isinstance(parsed, Parsed)
    assert 0.0 <= parsed.confidence <= 1.0
    assert parsed.is_action == (parsed.intent in ACTIONS)


@settings(max_examples=300, deadline=None)
@given(
    _filler,
    st.sampled_from(NEGATION_WORDS),
    _filler,
    st.sampled_from(ACTION_WORDS),
    _filler,
)
def test_a_negation_before_an_action_is_never_an_action(
    before: str, negation: str, between: str, action: str, after: str
) -> None:
    text = f"{before} {negation} {between} {action} {after}"
    assert not parse(text, today=TODAY).is_action


@settings(max_examples=300, deadline=None)
@given(_filler, st.sampled_from(ACTION_WORDS), _filler)
def test_an_action_with_a_question_mark_is_never_an_action(
    before: str, action: str, after: str
) -> None:
    assert not parse(f"{before} {action} {after}?", today=TODAY).is_action
