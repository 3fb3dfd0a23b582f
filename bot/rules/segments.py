"""SMS segment counting: GSM-7 when every character fits, else UCS-2."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Segments:
    encoding: str  # "GSM-7" or "UCS-2"
    length: int  # GSM-7 septets or UTF-16 code units
    segments: int
    ucs2_chars: tuple[str, ...]


# GSM 03.38 default alphabet (the escape code 0x1B left out) and its extension table.
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION = frozenset("\f^{}\\[~]|€")


def _count_parts(weights: list[int], single: int, multi: int) -> int:
    # A two-unit character (escape sequence, surrogate pair) is never split across parts,
    # so a long message can need one part more than ceil(length / multi).
    total = sum(weights)
    if total <= single:
        return 1 if total else 0
    parts, used = 1, 0
    for weight in weights:
        if used + weight > multi:
            parts, used = parts + 1, 0
        used += weight
    return parts


def count_segments(text: str) -> Segments:
    """Count the SMS segments `text` needs, GSM-7 when possible, else UCS-2."""
    ucs2 = tuple(dict.fromkeys(c for c in text if c not in _GSM_BASIC and c not in _GSM_EXTENSION))
    if ucs2:
        weights = [2 if ord(c) > 0xFFFF else 1 for c in text]
        return Segments("UCS-2", sum(weights), _count_parts(weights, 70, 67), ucs2)
    weights = [2 if c in _GSM_EXTENSION else 1 for c in text]
    return Segments("GSM-7", sum(weights), _count_parts(weights, 160, 153), ())
