"""Rate arithmetic over the moments a server received requests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

SECOND = timedelta(seconds=1)


def busiest_second(times: Sequence[datetime]) -> int:
    """The most requests in any one-second window [t, t + 1 s), sliding over ``times``."""
    ordered = sorted(times)
    most = start = 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= SECOND:
            start += 1
        most = max(most, end - start + 1)
    return most
