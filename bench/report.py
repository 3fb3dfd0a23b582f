"""Our section of docs/benchmarks.md, written from the measurements (others keep theirs)."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MARK_START, MARK_END = "<!-- delivery:start -->", "<!-- delivery:end -->"
#: The targets the issue sets for 100,000 subscriptions on 2 cores.
TARGET_SECONDS, TARGET_MB = 60, 300


@dataclass(frozen=True)
class Machine:
    cores: int
    memory_gb: float
    cpu: str
    python: str
    database: str
    date: str


def write_report(
    path: Path, machine: Machine, sync_runs: list[dict[str, Any]], dispatch: dict[str, Any]
) -> None:
    """Write the results as Markdown tables, with the machine they were measured on."""
    lines = [
        MARK_START,
        "## Sync, plan and dispatch",
        "",
        "Measured by `make bench` (`python -m bench`); rerun it to refresh this section.",
        "",
        f"Machine: {machine.cores} cores ({machine.cpu}), {machine.memory_gb} GB memory, "
        f"Python {machine.python}, database {machine.database}. Date: {machine.date}.",
        "",
        "### Sync and plan from a paging Smartrr-like server",
        "",
        "Each size runs in a fresh process against the built-in sandbox server (pages of",
        "250, served from the parent process). *sync* pulls and stores every subscription",
        "and customer; *plan* then creates every notice; *re-plan* is the periodic run",
        "over an unchanged queue. Peak memory is the bot process's own maximum resident",
        "set. Target: 100,000 under 60 s and 300 MB on 2 cores.",
        "",
        "| subscriptions | sync (s) | plan (s) | re-plan (s) | CPU (s) | peak RSS (MB) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in sync_runs:
        lines.append(
            f"| {run['size']:,} | {run['sync_s']} | {run['plan_s']} | {run['replan_s']} "
            f"| {run['cpu_s']} | {run['peak_rss_mb']} |"
        )
    largest = max(sync_runs, key=lambda run: run["size"])
    total = largest["sync_s"] + largest["plan_s"]
    lines += [
        "",
        f"Largest run, {largest['size']:,}: sync and plan took {total:.0f} s "
        f"({'within' if total < TARGET_SECONDS else 'over'} the {TARGET_SECONDS} s target), "
        f"peak {largest['peak_rss_mb']:.0f} MB "
        f"({'within' if largest['peak_rss_mb'] < TARGET_MB else 'over'} "
        f"the {TARGET_MB} MB target).",
    ]
    lines += [
        "",
        "### Dispatch to the local Twilio-like server",
        "",
        f"{dispatch['notices']:,} due notices, `SMS_RATE_PER_SECOND={dispatch['rate']:g}`, "
        f"{dispatch['workers']} worker processes sharing the send gate. Times are the",
        "server's receive timestamps; CPU is the workers' own (start-up excluded; the",
        "database and the server are not included).",
        "",
        "| received | duplicates | achieved rate (/s) | busiest one-second window "
        "| CPU per message (ms) |",
        "| ---: | ---: | ---: | ---: | ---: |",
        f"| {dispatch['received']:,} | {dispatch['duplicates']} | {dispatch['achieved_per_s']} "
        f"| {dispatch['busiest_second']} | {dispatch['cpu_ms_per_message']} |",
        MARK_END,
    ]
    replace_section(path, MARK_START, MARK_END, "\n".join(lines))


def percentile(values: Sequence[float], p: float) -> float:
    """The value at percentile ``p`` (0-100) by nearest rank; NaN when there is none."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def replace_section(path: Path, start: str, end: str, section: str) -> None:
    """Put ``section`` (which starts with ``start`` and ends with ``end``) into ``path``,
    replacing the previous one and leaving the other benchmarks' sections alone."""
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    if start in current:
        before, rest = current.split(start, 1)
        current = before + section + rest.split(end, 1)[1]
    else:
        current = current.rstrip() + "\n\n" + section + "\n"
    path.write_text(current)


def machine() -> Machine:
    """Cores, memory and CPU model of this machine."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line),
        platform.processor() or "unknown",
    )
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    total_kb = next(
        (int(line.split()[1]) for line in meminfo.splitlines() if "MemTotal" in line), 0
    )
    url = os.environ.get("BENCH_DATABASE_URL")
    return Machine(
        cores=os.cpu_count() or 0,
        memory_gb=round(total_kb / 1024 / 1024, 1),
        cpu=model,
        python=platform.python_version(),
        database="PostgreSQL" if url else "SQLite (a file per run)",
        date=datetime.now(UTC).strftime("%Y-%m-%d"),
    )
