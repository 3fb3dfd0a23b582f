"""Sync and plan N subscriptions from a paging Smartrr-like server, in a fresh process.

Run as ``python -m bench.syncplan URL DATABASE_URL``: prints one JSON line with the
timings and this process's peak resident memory (the bot's side only: the
Smartrr-like server runs in the parent).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from flask_migrate import upgrade

from bot import create_app
from bot.smartrr.sync import run_sync
from bot.storage.db import get_db
from bot.worker import Worker


def peak_rss_kb() -> int:
    """This process's own peak resident memory.

    Not ru_maxrss: Linux carries it across fork and exec, so a child would
    report its parent's peak (here the Smartrr-like server holding every
    subscription). VmHWM belongs to this process's own address space.
    """
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0])


def main(smartrr_url: str, database_url: str) -> None:
    """Sync, plan (creating every notice), plan again (nothing changed), and report."""
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "SMARTRR_API_URL": smartrr_url,
            "SMARTRR_API_TOKEN": "bench-token",
            "LOG_LEVEL": "WARNING",
        }
    )
    with app.app_context():
        upgrade()
    worker = Worker(app)
    started = time.perf_counter()
    synced = run_sync(worker.database, worker.client, worker.settings)
    synced_at = time.perf_counter()
    planned = worker.plan()
    planned_at = time.perf_counter()
    worker.plan()
    replanned_at = time.perf_counter()
    get_db(app).dispose()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "synced": synced.synced,
                "scheduled": planned.scheduled,
                "sync_s": round(synced_at - started, 2),
                "plan_s": round(planned_at - synced_at, 2),
                "replan_s": round(replanned_at - planned_at, 2),
                "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
                "peak_rss_mb": round(peak_rss_kb() / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
