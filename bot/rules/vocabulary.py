"""The words the reply parser knows: commands, phrases, refusals, numbers, units and dates.

Every list holds words as reading.py leaves them: folded, without accents or apostrophes.
VOCABULARY, their union, is what reading.py never takes for a typo or for emphasis.
"""

from __future__ import annotations

import re

from bot.rules.intents import Intent


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
