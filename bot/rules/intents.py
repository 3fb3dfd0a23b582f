"""What the reply parser returns: the intents, a move in time (Delay), the result (Parsed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


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
