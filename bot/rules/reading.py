"""Read one text: normalise it, split it into tokens, merge phrases, forgive typos.

The result, a Reading, says where the command words sit and whether the text asks, jokes
or negates; keywords.py decides from it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from bot.rules.intents import Intent
from bot.rules.vocabulary import (
    COMMANDS,
    DETERMINERS,
    INTERJECTIONS,
    JOKE_EMOJI,
    JOKES,
    MENTIONS,
    NEGATIONS,
    NUMBER_WORDS,
    OPENERS,
    PHRASES,
    POLITE,
    QUESTION_WORDS,
    REASON_NEGATIONS,
    REASONS,
    SOFT_DELAY,
    SUBJECTS,
    TEXTING,
    TYPO_TARGETS,
    UNITS,
    VOCABULARY,
)

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
class Reading:
    """One text as tokens, with its command words, mentions and negations located."""

    tokens: list[str]
    words: list[str]  # tokens without punctuation
    question: bool
    joke: bool
    hits: list[_Hit]
    mentions: list[int]
    negations: list[int]

    def has(self, vocabulary: frozenset[str] | dict[str, object]) -> bool:
        """True when any word of the text is in the vocabulary."""
        return any(w in vocabulary for w in self.words)

    def content(self) -> list[str]:
        """The words that are not politeness: "cancel please" -> ["cancel"]."""
        return [w for w in self.words if w not in POLITE]


def read(text: str) -> Reading:
    """Tokenise a text and find its command words, mentions, negations, question and joke."""
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
    return Reading(
        tokens=tokens,
        words=words,
        question="?" in tokens,
        joke=any(w in JOKES or _LAUGH.fullmatch(w) for w in words)
        or any(ch in JOKE_EMOJI for ch in text),
        hits=hits,
        mentions=mentions,
        negations=[i for i, t in enumerate(tokens) if t in NEGATIONS],
    )


def asks(r: Reading) -> bool:
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


def gives_reason(r: Reading, at: int) -> bool:
    """True for "not home", "don't need it": a negation that explains the request."""
    following = r.tokens[at + 1 : at + 4]
    return r.tokens[at] in REASON_NEGATIONS and any(t in REASONS for t in following)
