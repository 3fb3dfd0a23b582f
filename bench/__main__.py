"""`python -m bench`: sync/plan growth from 10k to 100k subscriptions and dispatch at a
set rate, each measured in separate processes; results go to docs/benchmarks.md.

Set BENCH_DATABASE_URL to a PostgreSQL database to measure there (it is wiped);
by default each run uses a fresh SQLite file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.rate import busiest_second
from bench.report import machine, write_report
from bench.store import due_now_zone, generate
from bot.smartrr.sandbox import SandboxServer, SandboxStore

ROOT = Path(__file__).resolve().parent.parent
# The Twilio-like server lives with the tests.
sys.path.insert(0, str(ROOT / "tests"))
from twilio_fake import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, TwilioFake  # noqa: E402


def fresh_database(workdir: Path, name: str) -> str:
    """An empty database: the wiped BENCH_DATABASE_URL, else a new SQLite file."""
    url = os.environ.get("BENCH_DATABASE_URL")
    if not url:
        return f"sqlite:///{workdir / name}.sqlite3"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


def bench_sync_plan(size: int, workdir: Path) -> dict[str, Any]:
    """Serve ``size`` subscriptions and let a fresh process sync and plan them."""
    store = SandboxStore(generate(size, datetime.now(UTC)))
    with SandboxServer(store, token="bench-token") as server:
        database = fresh_database(workdir, f"sync-{size}")
        started = time.perf_counter()
        output = subprocess.run(
            [sys.executable, "-m", "bench.syncplan", server.url, database],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    result.update(size=size, wall_s=round(time.perf_counter() - started, 2))
    return result


def bench_dispatch(rate: float, seconds: float, workers: int, workdir: Path) -> dict[str, Any]:
    """Send ``rate * seconds`` due notices with ``workers`` processes; measure at the server."""
    from flask_migrate import upgrade

    from bot import create_app
    from bot.storage.db import get_db
    from bot.worker import Worker

    count = int(rate * seconds)
    twilio = TwilioFake().start()
    now = datetime.now(UTC)
    store = SandboxStore(generate(count, now, due_now=True))
    with SandboxServer(store, token="bench-token") as server:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "DATABASE_URL": fresh_database(workdir, "dispatch"),
            "SMARTRR_API_URL": server.url,
            "SMARTRR_API_TOKEN": "bench-token",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": FROM_NUMBER,
            "TWILIO_API_URL": twilio.url,
            "SMS_RATE_PER_SECOND": str(rate),
            "SHOP_TIMEZONE": due_now_zone(now),
            "LOG_LEVEL": "WARNING",
        }
        app = create_app({key: value for key, value in env.items() if key != "PATH"})
        with app.app_context():
            upgrade()
        Worker(app).sync()  # syncs and plans: every notice is now due
        get_db(app).dispose()
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "bench.dispatch"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(workers)
        ]
        reports = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in processes]
    twilio.stop()
    times = sorted(m["_sent"] for m in twilio.messages)
    span = (times[-1] - times[0]).total_seconds()
    sent = sum(r["sent"] for r in reports)
    return {
        "rate": rate,
        "workers": workers,
        "notices": count,
        "received": len(times),
        "duplicates": len(times) - len({m["to"] for m in twilio.messages}),
        "achieved_per_s": round((len(times) - 1) / span, 2),
        "busiest_second": busiest_second(times),
        "cpu_ms_per_message": round(1000 * sum(r["cpu_s"] for r in reports) / max(1, sent), 2),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmarks and write the report."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--sizes", default="10000,30000,100000", help="subscriptions per run")
    parser.add_argument("--rate", type=float, default=100.0, help="SMS_RATE_PER_SECOND")
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="backlog, in seconds of sending"
    )
    parser.add_argument("--workers", type=int, default=2, help="dispatch processes")
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sync_runs = []
        for size in (int(part) for part in args.sizes.split(",")):
            sync_runs.append(bench_sync_plan(size, workdir))
            print(json.dumps(sync_runs[-1]), flush=True)
        dispatch = bench_dispatch(args.rate, args.seconds, args.workers, workdir)
        print(json.dumps(dispatch), flush=True)
    write_report(Path(args.output), machine(), sync_runs, dispatch)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
