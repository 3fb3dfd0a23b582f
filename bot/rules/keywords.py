"""Understand a subscriber's reply: one text in, one intent with its arguments out.

Pure logic, no I/O. The parser is timid on purpose: a text that negates, asks,
jokes, hedges or names two actions is refused (intent UNKNOWN with a short
``refused`` reason) rather than guessed. docs/understanding.md lists what it
understands and what it refuses.

Steps: normalise -> tokens (phrases merged) -> opt-out -> help -> action words
(refusals, then arguments) -> the remaining information intents.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from functools import lru_cache


class Intent(StrEnum):
    """What a reply asks for."""

    SKIP = "skip"
    DELAY = "delay"
    DELAY_ASK = "delay_ask"
    UNDO = "undo"
    PAUSE = "pause"
    RESUME = "resume"
    NEXT = "next"
    HELP = "help"
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    CANCEL_REQUEST = "cancel_request"
    YES = "yes"
    NO = "no"
    CHOICE = "choice"
    UNKNOWN = "unknown"


ACTIONS: frozenset[Intent] = frozenset(
    {Intent.SKIP, Intent.DELAY, Intent.UNDO, Intent.PAUSE, Intent.RESUME}
)

#: A pause longer than this is refused ("over_max"): nobody means "pause for 40 years".
MAX_PAUSE_DAYS = 366


@dataclass(frozen=True)
class Delay:
    """A move in time: days, calendar months, or a date (only one is set)."""

    days: int = 0
    months: int = 0
    until: date | None = None


@dataclass(frozen=True)
class Parsed:
    """The reading of one text."""

    intent: Intent
    confidence: float
    delay: Delay | None = None
    pause_for: Delay | None = None
    choice: int | None = None
    carrier_keyword: bool = False
    refused: str = ""

    @property
    def is_action(self) -> bool:
        """True when acting on this reading would change a subscription."""
        return self.intent in ACTIONS


# -- vocabulary ----------------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _numbered(text: str, first: int) -> dict[str, int]:
    return {word: n for n, word in enumerate(text.split(), first)}


# Command words in their base form: the only words that can trigger an action.
COMMANDS: dict[str, Intent] = {
    **dict.fromkeys(_words("skip saltar saltear omitir"), Intent.SKIP),
    **dict.fromkeys(_words("delay postpone reschedule posponer aplazar"), Intent.DELAY),
    **dict.fromkeys(_words("undo unskip deshacer"), Intent.UNDO),
    **dict.fromkeys(_words("pause suspend pausar"), Intent.PAUSE),
    **dict.fromkeys(_words("resume unpause reactivate restart reanudar"), Intent.RESUME),
}
# Everyday verbs that mean "delay" only when no command word is present.
SOFT_DELAY = _words("push move bump later holdoff")
# Misspellings are matched against these (Spanish words only exactly).
TYPO_TARGETS = _words("skip delay postpone reschedule undo unskip pause suspend resume unpause")
TYPO_TARGETS |= _words("reactivate restart")
# Real words one typo away from a command: "ship my order" must never skip it.
REAL_WORDS = _words("ship skid skim skin skit slip snip sip ski skimp decay passe parse pase")
REAL_WORDS |= _words("unto uno und updo reactive")

CARRIER_KEYWORDS: dict[str, Intent] = {
    **dict.fromkeys(
        _words("stop stopall unsubscribe cancel end quit optout revoke"), Intent.OPT_OUT
    ),
    **dict.fromkeys(_words("start unstop"), Intent.OPT_IN),
    **dict.fromkeys(_words("help info"), Intent.HELP),
}

# Several words that read as one; "if possible" is politeness, not a condition.
PHRASES: dict[tuple[str, ...], str] = {
    tuple(phrase.split()): word
    for word, phrases in {
        "unskip": ["un skip"],
        "unpause": ["un pause"],
        "pause": ["on hold"],
        "holdoff": ["hold off"],
        "optout": ["opt out", "opt me out", "remove me", "take me off", "leave me alone"],
        "optin": ["opt in", "opt me in", "opt back in"],
        "stopall": ["stop all"],
        "nevermind": ["never mind"],
        "thanks": ["thank you"],
        "wrongnumber": ["wrong number"],
        "please": [
            "por favor", "if possible", "if you can", "if u can", "if you could",
            "if thats ok", "if thats okay", "if that ok", "if that okay", "if its ok",
            "if its okay", "if it ok", "if it okay", "if that works",
        ],
    }.items()
    for phrase in phrases
}  # fmt: skip

NEGATIONS = _words("no not never dont doesnt didnt wont cant cannot shouldnt wouldnt isnt arent")
NEGATIONS |= _words("aint havent hasnt nah nope nevermind nvm nunca neither nor")
# After the action, "skip, I don't need it" gives a reason; "skip. don't." takes it back.
REASON_NEGATIONS = _words("not dont doesnt didnt wont cant isnt arent aint havent")
REASONS = _words("need needed home here around ready done finished through available using")
REASONS |= _words("used town there")
HEDGES = _words("maybe might perhaps possibly probably unsure idk dunno thinking considering")
HEDGES |= _words("either or whatever whichever guess")
QUESTION_WORDS = _words("how what whats why wondering wonder curious question possible")
CONDITIONALS = _words("if unless whether")
JOKES = _words("lol lmao lmfao rofl jk jking kidding joking joke")
JOKE_EMOJI = frozenset("😂🤣😜😝😛🙃😹😆")
# A clause opening with one of these is a question even without "?".
OPENERS = _words("how hows what whats why when whens where wheres which who whos is are was")
OPENERS |= _words("does do did should shall will would can could may isnt doesnt")
INTERJECTIONS = _words("hi hey hello ok okay so um uh hmm oh well and but also yes yeah sorry")
INTERJECTIONS |= _words("hola please pls plz just actually")
POLITE = _words("please pls plz plse plez pleas thanks thx ty tysm tyvm thankyou you u ok")
POLITE |= _words("okay k kk okey hi hey hello yo just now sorry gracias hola porfa asap again")
POLITE |= _words("dear team sir maam guys much so very great cool good perfect")
YES_WORDS = _words("yes y yeah yep yup ya yea yah yas sure confirm confirmed correct si")
YES_WORDS |= _words("affirmative absolutely definitely")
NO_WORDS = _words("no n nope nah nay")
DETERMINERS = _words("a an the any another that this your my our his her their its each")
DETERMINERS |= _words("every last next")
SUBJECTS = _words("you u they he she")
# An action on every order, or several, is not one action: "skip every other month".
MANY = _words("every all always forever permanently future remaining rest both twice")

NUMBER_WORDS = _numbered("one two three four five six seven eight nine ten eleven twelve", 1)
NUMBER_WORDS |= {"couple": 2, "uno": 1, "una": 1, "dos": 2, "tres": 3, "cuatro": 4}
ARTICLES = _words("a an another un")  # a count only in front of a unit: "a week"
UNITS: dict[str, tuple[int, int]] = {  # word -> (days, months) in one unit
    **dict.fromkeys(_words("day days d dia dias"), (1, 0)),
    **dict.fromkeys(_words("week weeks wk wks w semana semanas"), (7, 0)),
    **dict.fromkeys(_words("fortnight fortnights"), (14, 0)),
    **dict.fromkeys(_words("month months mo mos mth mths m mes meses"), (0, 1)),
    **dict.fromkeys(_words("year years yr yrs"), (0, 12)),
}
UNIT_FILLER = _words("more extra additional of full whole entire")
_MONTH_NAMES = (
    "january jan", "february feb", "march mar", "april apr", "may", "june jun", "july jul",
    "august aug", "september sep sept", "october oct", "november nov", "december dec",
)  # fmt: skip
MONTHS: dict[str, int] = {
    name: n for n, names in enumerate(_MONTH_NAMES, 1) for name in names.split()
}
# A month named alone pins no day down ("until January"); "may" alone is a verb.
LONE_MONTHS = frozenset(MONTHS) - {"may"}
WEEKDAYS = _numbered("monday tuesday wednesday thursday friday saturday sunday", 0)
RELATIVE_DAYS: dict[str, int] = {"yesterday": -1, "today": 0, "tomorrow": 1, "manana": 1}
UNTIL = _words("until till til untill hasta")
SOONER = _words("earlier sooner ago minus up forward")  # "move it up a week"

ORDER_NOUNS = _words("order orders delivery deliveries shipment shipments box boxes package")
ORDER_NOUNS |= _words("packages charge charges renewal renewals")
SUBSCRIPTION_NOUNS = ORDER_NOUNS | _words("subscription subscriptions sub membership plan")
SUBSCRIPTION_NOUNS |= _words("account service everything charging billing shipping suscripcion")
TEXTING = _words("text texts texting txt txts message messages messaging msg msgs sms alert")
TEXTING |= _words("alerts notification notifications reminder reminders spam spamming")
TEXTING |= _words("contact contacting mensaje mensajes textos")
STOP_WORDS = _words("stop stopall parar detener")
ALWAYS_OPT_OUT = _words("unsubscribe optout wrongnumber")
ALONE_OPT_OUT = _words("end quit revoke cancel alto basta cancelar")
OPT_IN_WORDS = _words("start unstop subscribe resubscribe optin")
HELP_WORDS = _words("help info information menu options commands keywords instructions ayuda")
HELP_PHRASES = tuple(
    tuple(phrase.split())
    for phrase in (
        "what can i do", "what do i do", "what can i say", "what can i text", "what do i say",
        "what do i reply", "how does this work", "how does it work",
    )
)  # fmt: skip
NEXT_WORDS = _words("next status proxima proximo")
WHEN_VERBS = _words("ship ships shipping arrive arrives arriving come comes coming charge")
WHEN_VERBS |= _words("charged bill billed renew renews deliver delivered sent")


def _inflections(word: str) -> set[str]:
    stem = word[:-1] if word.endswith("e") else word
    forms = {word + "s", word + "es", word + "d", stem + "ed", stem + "ing"}
    if re.search(r"[^aeiou][aeiou][bdgkmnprt]$", word):  # skip -> skipped, skipping
        forms |= {word + word[-1] + "ed", word + word[-1] + "ing"}
    return forms - {word}


# Inflected forms talk about an action ("I skipped breakfast") without asking for one.
MENTIONS = frozenset(
    {form for word in (*COMMANDS, *SOFT_DELAY) for form in _inflections(word)}
    | {"undid", "undone", "skiped", "skipt"}
)
VOCABULARY = frozenset(
    {*COMMANDS, *SOFT_DELAY, *MENTIONS, *NEGATIONS, *HEDGES, *QUESTION_WORDS, *CONDITIONALS}
    | {*JOKES, *OPENERS, *INTERJECTIONS, *POLITE, *YES_WORDS, *NO_WORDS, *DETERMINERS}
    | {*NUMBER_WORDS, *UNITS, *MONTHS, *WEEKDAYS, *RELATIVE_DAYS, *UNTIL, *SOONER, *REASONS}
    | {*SUBSCRIPTION_NOUNS, *TEXTING, *STOP_WORDS, *ALWAYS_OPT_OUT, *ALONE_OPT_OUT}
    | {*OPT_IN_WORDS, *HELP_WORDS, *NEXT_WORDS, *WHEN_VERBS, *UNIT_FILLER, *REAL_WORDS}
    | {*SUBJECTS, *MANY}
    | {w for phrase in PHRASES for w in phrase}
)


# -- normalising and tokens -------------------------------------------------------------

_SAME_AS = str.maketrans(
    {"’": "'", "‘": "'", "`": "'", "´": "'", "ʼ": "'", "¿": "?", "¡": "!"}
    | dict.fromkeys("‐‑‒–—―−", "-")
)
_KEPT_PUNCTUATION = frozenset("?!.,;:'/-#")
_REPEATED_PUNCTUATION = re.compile(r"([?!.,;:'/#-])\1+")
_TOKEN = re.compile(
    r"(?P<big>[0-9]{7,})"
    r"|(?P<iso>[0-9]{4}-[0-9]{1,2}-[0-9]{1,2})"
    r"|(?P<slash>[0-9]{1,2}/[0-9]{1,2}(?:/[0-9]{2,4})?)"
    r"|(?P<range>[0-9]{1,6} ?- ?[0-9]{1,6})"
    r"|(?P<neg>-[0-9]{1,6})"
    r"|(?P<num>[0-9]{1,6}(?:st|nd|rd|th)?)"
    r"|(?P<word>[^\W\d_]+(?:['-][^\W\d_]+)*)"
    r"|(?P<mark>[?.!,;:])"
)
_CONTRACTION = re.compile(r"'(?:re|ll|ve|m|d|s)$")  # "we're" -> "we", while "don't" -> "dont"
_ELONGATED = re.compile(r"(.)\1{2,}")
_LAUGH = re.compile(r"(?:ha|he|ja|je){2,}h?")
BREAK = ","  # the token every clause break becomes


def normalize(text: str) -> str:
    """Fold a text to plain lower-case words and meaningful punctuation (NFKC, no emoji)."""
    folded = unicodedata.normalize("NFKC", text).casefold().translate(_SAME_AS)
    kept = []
    for ch in unicodedata.normalize("NFKD", folded):
        if unicodedata.category(ch) == "Mn":
            continue  # accents: "sí" -> "si", "próxima" -> "proxima"
        ascii_kept = ch.isascii() and (ch.isalnum() or ch in _KEPT_PUNCTUATION)
        kept.append(ch if ascii_kept or unicodedata.category(ch).startswith("L") else " ")
    return " ".join(_REPEATED_PUNCTUATION.sub(r"\1", "".join(kept)).split())


@lru_cache(maxsize=4096)
def _canon(word: str) -> str:
    """Undo emphasis: "skiiip" -> "skip", "pleeease" -> "please", "weeeks" -> "weeks"."""
    if word in VOCABULARY or not _ELONGATED.search(word):
        return word
    for keep in (r"\1", r"\1\1"):
        candidate = _ELONGATED.sub(keep, word)
        if candidate in VOCABULARY:
            return candidate
    return word


def _tokens(text: str) -> list[str]:
    tokens = []
    for match in _TOKEN.finditer(normalize(text)):
        kind, token = match.lastgroup, match.group()
        if kind == "word":
            tokens.append(_canon(_CONTRACTION.sub("", token).replace("'", "").replace("-", "")))
        elif kind == "mark":
            tokens.append("?" if token == "?" else BREAK)
        elif kind in ("big", "range"):
            tokens.append("~" + kind)
        else:
            tokens.append(token.replace(" ", ""))
    return _merge_phrases(tokens)


def _merge_phrases(tokens: list[str]) -> list[str]:
    merged: list[str] = []
    i = 0
    while i < len(tokens):
        for size in (3, 2):
            phrase = PHRASES.get(tuple(tokens[i : i + size]))
            if phrase is not None:
                merged.append(phrase)
                i += size
                break
        else:
            merged.append(tokens[i])
            i += 1
    return merged


def _distance(a: str, b: str) -> int:
    """Edit distance counting a swap of neighbours as one edit ("sikp" is one from "skip")."""
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = int(a[i - 1] != b[j - 1])
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], before[j - 2] + 1)
        before, previous = previous, current
    return previous[-1]


@lru_cache(maxsize=4096)
def _typo(word: str) -> Intent | None:
    """The command a misspelt word stands for, when exactly one command is that close."""
    if len(word) < 3 or word in VOCABULARY:
        return None
    found = set()
    for target in TYPO_TARGETS:
        limit = 2 if len(target) >= 10 else 1
        near = word[0] == target[0] and abs(len(word) - len(target)) <= limit
        if near and _distance(word, target) <= limit:
            found.add(COMMANDS[target])
    return found.pop() if len(found) == 1 else None


# -- reading a text ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Hit:
    at: int  # index in the token list
    intent: Intent
    soft: bool  # an everyday verb ("move", "later"), not a command word
    typo: bool


@dataclass(frozen=True)
class _Reading:
    tokens: list[str]
    words: list[str]  # tokens without punctuation
    question: bool
    joke: bool
    hits: list[_Hit]
    mentions: list[int]
    negations: list[int]

    def has(self, vocabulary: frozenset[str] | dict[str, object]) -> bool:
        return any(w in vocabulary for w in self.words)

    def content(self) -> list[str]:
        """The words that are not politeness: "cancel please" -> ["cancel"]."""
        return [w for w in self.words if w not in POLITE]


def _read(text: str) -> _Reading:
    tokens = _tokens(text)
    hits: list[_Hit] = []
    mentions: list[int] = []
    talk = any(t in ("talk", "see", "chat", "ttyl", "call") or t in TEXTING for t in tokens)
    for i, token in enumerate(tokens):
        if token in COMMANDS:
            hit = _Hit(i, COMMANDS[token], soft=False, typo=False)
        elif token in SOFT_DELAY and not (token == "later" and talk):
            hit = _Hit(i, Intent.DELAY, soft=True, typo=False)
        elif token in MENTIONS:
            mentions.append(i)
            continue
        elif (intent := _typo(token)) is not None:
            hit = _Hit(i, intent, soft=False, typo=True)
        else:
            continue
        before = tokens[i - 1] if i else ""
        counted = i > 1 and (tokens[i - 2][:1].isdigit() or tokens[i - 2] in NUMBER_WORDS)
        noun_before = before[:1].isdigit() or (before in UNITS and counted)
        asked = i > 1 and tokens[i - 2] in ("can", "could", "would", "will", "please", "pls")
        if before in DETERMINERS or (noun_before and token != "later"):
            mentions.append(i)  # "a delay", "the 2 week delay": a noun, not a command
        elif before in SUBJECTS and not asked:
            mentions.append(i)  # "you skip my order again and...", while "can you skip" asks
        elif hits and hits[-1].intent is Intent.UNDO and hits[-1].at == i - 1:
            continue  # "undo skip": the object of UNDO
        else:
            hits.append(hit)
    if any(not h.soft for h in hits):
        hits = [h for h in hits if not h.soft]
    words = [t for t in tokens if t not in (BREAK, "?")]
    return _Reading(
        tokens=tokens,
        words=words,
        question="?" in tokens,
        joke=any(w in JOKES or _LAUGH.fullmatch(w) for w in words)
        or any(ch in JOKE_EMOJI for ch in text),
        hits=hits,
        mentions=mentions,
        negations=[i for i, t in enumerate(tokens) if t in NEGATIONS],
    )


def _asks(r: _Reading) -> bool:
    """True when a clause opens like a question ("how do i skip", "can i pause")."""
    polite = r.has(frozenset({"please", "pls", "plz"}))
    opening = True
    for i, token in enumerate(r.tokens):
        if token in (BREAK, "?"):
            opening = True
        elif opening and token not in INTERJECTIONS:
            opening = False
            after = r.tokens[i + 1] if i + 1 < len(r.tokens) else ""
            if token in ("can", "could", "would", "will") and after in ("you", "u", "ya"):
                continue  # "can you skip it": a request
            if token in ("can", "could", "may") and after in ("i", "we") and polite:
                continue  # "can i skip it please": a request
            if token in OPENERS:
                return True
    return r.has(QUESTION_WORDS)


def _gives_reason(r: _Reading, at: int) -> bool:
    """True for "not home", "don't need it": a negation that explains the request."""
    following = r.tokens[at + 1 : at + 4]
    return r.tokens[at] in REASON_NEGATIONS and any(t in REASONS for t in following)


# -- dates and durations -----------------------------------------------------------------


@dataclass
class _When:
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


def _read_when(words: list[str], today: date) -> _When:
    """Collect the dates, durations and counts written anywhere in the words."""
    when = _When()
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


def _read_quantity(words: list[str], i: int, when: _When) -> int:
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


_EDGES = " \t\r\n.,!;:'\"()[]*~-_¡…"


# -- deciding ------------------------------------------------------------------------------


def parse(text: str, *, today: date, max_delay_days: int = 60) -> Parsed:
    """Read one inbound text; whatever is not a clear request comes back refused."""
    # Twilio answers these single words itself, punctuation aside ("?" stays: "cancel?" asks).
    carrier = CARRIER_KEYWORDS.get(unicodedata.normalize("NFKC", text).casefold().strip(_EDGES))
    if carrier is not None:
        return Parsed(carrier, 1.0, carrier_keyword=True)
    r = _read(text)
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


def _opt_out(r: _Reading) -> Parsed | None:
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


def _help(r: _Reading) -> Parsed | None:
    if r.has(HELP_WORDS) or any(_contains(r.words, phrase) for phrase in HELP_PHRASES):
        return Parsed(Intent.HELP, 0.85)
    return None


def _contains(words: list[str], phrase: tuple[str, ...]) -> bool:
    size = len(phrase)
    return any(tuple(words[i : i + size]) == phrase for i in range(len(words) - size + 1))


def _action(r: _Reading, today: date, max_delay_days: int) -> Parsed | None:
    """An action when exactly one is clearly asked for; a refusal when one is only mentioned."""
    if not r.hits:
        if not r.mentions:
            return None
        return _refuse("negation" if r.negations else _doubt(r) or "not_command")
    last = r.hits[-1].at
    if any(n < last or not _gives_reason(r, n) for n in r.negations):
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
    when = _read_when(r.words, today)
    return _with_arguments(intents.pop(), when, confidence, today, max_delay_days)


def _doubt(r: _Reading) -> str:
    """Why a text that names an action is not a request for it ("" when nothing is wrong)."""
    if r.question or _asks(r):
        return "question"
    if r.joke:
        return "joke"
    return "conditional" if r.has(CONDITIONALS) else ""


def _with_arguments(
    intent: Intent, when: _When, confidence: float, today: date, max_delay_days: int
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


def _cancel(r: _Reading) -> Parsed | None:
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


def _information(r: _Reading, today: date, max_delay_days: int) -> Parsed:
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


def _asks_next(r: _Reading) -> bool:
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
    when = _read_when(content, today)
    if len(when.found) != 1 or when.bare or when.problems:
        return None
    moved = when.found[0]
    return _refuse(_out_of_range(moved, today, max_delay_days) or "duration_only", delay=moved)
