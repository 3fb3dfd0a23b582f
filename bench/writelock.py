"""`python -m bench.writelock`: how long the worker's transactions hold SQLite's write
lock, which every webhook's INSERT waits on, while Smartrr takes 2 s per call.

The worker starts on a shop whose 200 subscriptions were all moved in Smartrr's portal
(its first sync announces each change) with 2,000 replies waiting in the inbox, and
runs all its jobs for 15 s. Results go into docs/benchmarks.md (their own section).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event

from bench.report import percentile, replace_section
from bench.store import generate, phone
from bench.webhook import ROOT, base_env, migrate
from bot.smartrr.sandbox import SandboxServer, SandboxStore
from bot.storage.db import READ_ONLY

sys.path.insert(0, str(ROOT / "tests"))
from twilio_fake import FROM_NUMBER, TwilioFake

SUBSCRIPTIONS, REPLIES, SECONDS = 200, 2000, 15.0
MARK_START, MARK_END = "<!-- writelock:start -->", "<!-- writelock:end -->"


class Holds:
    """Write transactions of one engine: how long each held the lock, and what it began with."""

    def __init__(self) -> None:
        self.held: list[tuple[float, str]] = []
        self._local = threading.local()

    def watch(self, engine: Any) -> None:
        event.listen(engine, "begin", self._begin)
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._end)
        event.listen(engine, "rollback", self._end)

    def _begin(self, conn: Connection) -> None:
        # Listeners run in order: bot.storage.db's BEGIN IMMEDIATE has taken the lock by now.
        self._local.began, self._local.first = time.perf_counter(), None

    def _statement(self, conn: Connection, cursor: Any, sql: str, *_: Any) -> None:
        if getattr(self._local, "first", "") is None and not sql.startswith("BEGIN"):
            self._local.first = " ".join(sql.split()[:4])

    def _end(self, conn: Connection) -> None:
        began = getattr(self._local, "began", None)
        if began is None or conn.get_execution_options().get(READ_ONLY):
            return
        self.held.append(((time.perf_counter() - began) * 1000, self._local.first or "?"))
        self._local.began = None


def run(database_url: str) -> list[tuple[float, str]]:
    twilio = TwilioFake().start()
    store = SandboxStore(generate(SUBSCRIPTIONS, datetime.now(UTC)))
    smartrr = SandboxServer(store).start()
    os.environ.update(base_env(database_url, smartrr, twilio))
    migrate(dict(os.environ))
    from bot import create_app
    from bot.storage.db import get_db, insert_new
    from bot.storage.models import InboundMessage
    from bot.worker import Worker, build_scheduler

    app = create_app()
    database = get_db(app)
    with app.app_context():
        worker = Worker(app)
        worker.sync()
        worker.plan()
    for state in store.states():  # moved in the portal: the next sync announces each
        store.act(state["custRel"]["id"], state["id"], "skip", None)
    replies = [
        {
            "message_sid": f"SM{n:032d}",
            "from_number": phone(n % SUBSCRIPTIONS),
            "to_number": FROM_NUMBER,
            "body": "NEXT",
            "params": {},
        }
        for n in range(REPLIES)
    ]
    with database.begin() as session:
        insert_new(session, InboundMessage, replies, key="message_sid")
    holds = Holds()
    holds.watch(database.engine)
    store.delay = 2.0
    scheduler = build_scheduler(app, blocking=False)
    scheduler.start()
    time.sleep(SECONDS)
    held = list(holds.held)
    store.delay = 0.0  # the jobs under way finish quickly, then everything stops
    scheduler.shutdown(wait=True)
    smartrr.stop()
    twilio.stop()
    return held


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-writelock-"))
    held = run(f"sqlite:///{workdir / 'bench.sqlite3'}")
    times = sorted(ms for ms, _ in held)
    longest = sorted(held, reverse=True)[:3]
    lines = [
        MARK_START,
        "## How long the worker holds SQLite's write lock",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M UTC} with `python -m bench.writelock`: "
        f"one worker process's jobs for {SECONDS:.0f} s, Smartrr taking 2 s per call, on a "
        f"shop whose {SUBSCRIPTIONS} subscriptions were all just moved in Smartrr's portal "
        f"(the sync announces each change) and {REPLIES:,} replies waiting. While a write "
        "transaction holds the lock, every webhook's INSERT waits.",
        "",
        "| write transactions | p50 ms | p99 ms | longest ms |",
        "| --- | --- | --- | --- |",
        f"| {len(times)} | {statistics.median(times):.1f} | "
        f"{percentile(times, 99):.1f} | {times[-1]:.1f} |",
        "",
        "The longest, by the statement each began with:",
        "",
        *(f"- {ms:.0f} ms: `{first}…`" for ms, first in longest),
        MARK_END,
    ]
    replace_section(ROOT / "docs" / "benchmarks.md", MARK_START, MARK_END, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
