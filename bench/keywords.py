"""`python -m bench.keywords`: how long reading one reply takes.

Every text of the labelled corpus (tests/data/replies.tsv) is read ROUNDS times, as
the tests read it, and so is 10 KB of junk. Each read is timed on its own. The
results go into docs/benchmarks.md, in a section of their own. Target: well under a
millisecond per text.
"""

from __future__ import annotations

import csv
import statistics
import time
from datetime import date
from pathlib import Path

from bench.report import Machine, machine, percentile, replace_section
from bot.rules.keywords import parse

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "replies.tsv"
#: The corpus's dates are read as if today were this Monday (as in tests/test_keywords.py).
TODAY = date(2026, 11, 23)
ROUNDS, JUNK_ROUNDS = 50, 20
#: Questions, bad dates, negative numbers and a snowman, repeated up to 10 KB.
JUNK = (("skip? 12/45/9999 -99999 delay " + "x" * 50 + " ☃ ") * 120)[:10_000]
TARGET_US = 1000
MARK_START, MARK_END = "<!-- keywords:start -->", "<!-- keywords:end -->"


def corpus() -> list[str]:
    """The corpus's texts, with their escaped line breaks restored."""
    with CORPUS.open(encoding="utf-8", newline="") as f:
        rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [row["text"].replace("\\n", "\n") for row in rows]


def timed(texts: list[str], rounds: int) -> list[float]:
    """Microseconds for each read of each text, ``rounds`` times over."""
    taken = []
    for _ in range(rounds):
        for text in texts:
            started = time.perf_counter_ns()
            parse(text, today=TODAY)
            taken.append((time.perf_counter_ns() - started) / 1000)
    return taken


def row(name: str, taken: list[float]) -> str:
    return (
        f"| {name} | {len(taken):,} | {statistics.median(taken):,.0f} | "
        f"{percentile(taken, 99):,.0f} | {max(taken):,.0f} |"
    )


def section(texts: list[str], replies: list[float], junk: list[float], where: Machine) -> str:
    """The Markdown section, from its start mark to its end mark."""
    p99 = percentile(replies, 99)
    verdict = "met" if p99 < TARGET_US else "not met"
    return "\n".join(
        [
            MARK_START,
            "## Reading a reply",
            "",
            "Measured by `python -m bench.keywords`; rerun it to refresh this section.",
            "",
            f"Machine: {where.cores} cores ({where.cpu}), Python {where.python}. "
            f"Date: {where.date}.",
            "",
            f"Every text of the labelled corpus ({len(texts)} replies, "
            "`tests/data/replies.tsv`) is read "
            f"{ROUNDS} times, each read timed on its own, in one process.",
            "",
            "| texts | reads | p50 µs | p99 µs | worst µs |",
            "| --- | ---: | ---: | ---: | ---: |",
            row("the corpus", replies),
            row("10 KB of junk", junk),
            "",
            f"Target: well under a millisecond per text: {verdict} "
            f"(p99 {p99:.0f} µs for the corpus).",
            MARK_END,
        ]
    )


def main() -> None:
    texts = corpus()
    timed(texts, 1)  # warm up: the first reads build the parser's caches
    replies, junk = timed(texts, ROUNDS), timed([JUNK], JUNK_ROUNDS)
    report = section(texts, replies, junk, machine())
    replace_section(ROOT / "docs" / "benchmarks.md", MARK_START, MARK_END, report)
    print(report)


if __name__ == "__main__":
    main()
