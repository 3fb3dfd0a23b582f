"""`python -m bench.webhook`: the inbound webhook under gunicorn, beside a bare Flask
endpoint under the same settings, on SQLite and PostgreSQL; ack latency while Smartrr
takes 2 s per call; and reply latency from an inbound SKIP to the confirmation handed
to the provider. Results go into docs/benchmarks.md (their own section).

Throughput is each target's peak: every target is loaded with each of CONNECTIONS in
turn, and all of them in interleaved rounds, so that a machine that speeds up or
slows down during the run does so for every target alike.

BENCH_PG_URL names the PostgreSQL database to use (it is wiped); default: the local
server's `bench_webhook` database, created when missing.
"""

from __future__ import annotations

import http.client
import os
import runpy
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.load import PUBLIC_BASE_URL, Result, _request, fire
from bench.report import replace_section
from bench.store import generate, phone
from bot.smartrr.sandbox import SandboxServer, SandboxStore

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from twilio_fake import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, TwilioFake  # noqa: E402

BIN = Path(sys.executable).parent
PG_URL = os.environ.get(
    "BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/bench_webhook"
)
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
#: The busy worker's window: long enough to hold a run of its minute-ly plan.
BUSY_SECONDS = float(os.environ.get("BENCH_BUSY_SECONDS", "60"))
#: Concurrent connections in all (split over LOAD_PROCESSES), and rounds at each.
CONNECTIONS, LOAD_PROCESSES, ROUNDS = (16, 32, 64), 2, 3
SENDERS = tuple(phone(n) for n in range(200))
#: The paced load: a busy shop's inbound rate with a wide margin (issue #21's target).
PACED = 100
MARK_START, MARK_END = "<!-- webhook:start -->", "<!-- webhook:end -->"


def pg_ready() -> bool:
    """Create the benchmark database if needed and wipe it; False when unreachable."""
    admin = PG_URL.rsplit("/", 1)[0] + "/postgres"
    name = PG_URL.rsplit("/", 1)[1]
    try:
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    except Exception as exc:  # a benchmark without PostgreSQL still reports SQLite
        print(f"PostgreSQL not available for the benchmark: {exc}", file=sys.stderr)
        return False
    return True


def base_env(database_url: str, smartrr: SandboxServer, twilio: TwilioFake) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SMARTRR_API_URL": smartrr.url,
        "SMARTRR_API_TOKEN": smartrr.token or "",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "TWILIO_API_URL": twilio.url,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "SMS_RATE_PER_SECOND": "1000",
        "LOG_LEVEL": "WARNING",
        "ACCESS_LOG": "",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


def wait_until_up(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/healthz")
            if connection.getresponse().status in (200, 503):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not come up")


@contextmanager
def process(args: list[str], env: dict[str, str], port: int | None = None) -> Iterator[None]:
    """Run a command for the duration of the block (gunicorn or a worker)."""
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        if port is not None:
            wait_until_up(port)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def gunicorn(app: str, env: dict[str, str], port: int) -> Any:
    args = [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}", app]
    return process(args, env, port)


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )


def row(name: str, result: Result) -> str:
    return (
        f"| {name} | {result.throughput:,.0f} | {result.median:.1f} | "
        f"{result.percentile(99):.1f} | {result.errors} |"
    )


@dataclass(frozen=True)
class Measured:
    """Each target's median run per connection count, and its run at PACED requests/s."""

    medians: dict[tuple[str, int], Result]
    steady: dict[str, Result]


def measure_peaks(targets: dict[str, tuple[str, dict[str, str], int]]) -> Measured:
    """Each target's requests/s at every connection count (median of ROUNDS interleaved
    runs), then its latency at PACED requests/s; all targets are up for the whole run."""
    runs: dict[tuple[str, int], list[Result]] = {}
    with ExitStack() as servers:
        for app, env, port in targets.values():
            servers.enter_context(gunicorn(app, env, port))
        urls = {name: f"http://127.0.0.1:{port}" for name, (_, _, port) in targets.items()}
        for url in urls.values():
            fire(url, AUTH_TOKEN, SENDERS, seconds=1)  # warm up
        for _ in range(ROUNDS):
            for connections in CONNECTIONS:
                for name, url in urls.items():
                    result = fire(
                        url,
                        AUTH_TOKEN,
                        SENDERS,
                        seconds=SECONDS,
                        processes=LOAD_PROCESSES,
                        threads=connections // LOAD_PROCESSES,
                    )
                    runs.setdefault((name, connections), []).append(result)
        steady = {
            name: fire(url, AUTH_TOKEN, SENDERS, seconds=SECONDS, rate=PACED)
            for name, url in urls.items()
        }
    return Measured({key: median_run(results) for key, results in runs.items()}, steady)


def median_run(results: list[Result]) -> Result:
    """The run with the median throughput (its latencies are that run's own)."""
    return sorted(results, key=lambda result: result.throughput)[len(results) // 2]


def peak(medians: dict[tuple[str, int], Result], name: str) -> tuple[int, Result]:
    """The connection count at which ``name`` went fastest, and that result."""
    best = max(CONNECTIONS, key=lambda connections: medians[(name, connections)].throughput)
    return best, medians[(name, best)]


def throughput_rows(measured: Measured, names: list[str]) -> list[str]:
    """Each target's peak row and its row at PACED requests/s."""
    rows = []
    for name in names:
        connections, result = peak(measured.medians, name)
        rows.append(row(f"{name}, as fast as it goes ({connections} connections)", result))
        rows.append(row(f"{name}, {PACED} req/s", measured.steady[name]))
    return rows


def sweep_rows(measured: Measured, names: list[str]) -> list[str]:
    """Requests/s at each connection count, and each peak as a share of bare's peak."""
    medians = measured.medians
    bare = peak(medians, names[0])[1].throughput
    header = " | ".join(f"{connections} connections" for connections in CONNECTIONS)
    rows = [
        f"| target | {header} | peak / bare's peak |",
        "| --- |" + " --- |" * (len(CONNECTIONS) + 1),
    ]
    for name in names:
        cells = " | ".join(
            f"{medians[(name, connections)].throughput:,.0f}" for connections in CONNECTIONS
        )
        share = peak(medians, name)[1].throughput / bare
        rows.append(f"| {name} | {cells} | {share:.0%} |")
    return rows


def measure_slow_smartrr(
    name: str, env: dict[str, str], port: int, smartrr: SandboxServer
) -> list[str]:
    """Ack latency at PACED req/s while a worker answers the stored texts against a 2 s
    Smartrr: while the worker starts, then once its first sync and plan are done."""
    smartrr.store.delay = 2.0
    worker = [str(BIN / "flask"), "--app", "wsgi", "worker"]
    url = f"http://127.0.0.1:{port}"
    try:
        with gunicorn("wsgi:app", env, port), process(worker, env):
            starting = fire(url, AUTH_TOKEN, SENDERS, seconds=SECONDS, rate=PACED)
            first_plan_done(env["DATABASE_URL"])
            busy = fire(url, AUTH_TOKEN, SENDERS, seconds=BUSY_SECONDS, rate=PACED)
    finally:
        smartrr.store.delay = 0.0
    label = f"{name}, {PACED} req/s, Smartrr 2 s/call"
    return [
        row(f"{label}, worker busy ({BUSY_SECONDS:.0f} s)", busy),
        row(f"{label}, worker starting ({SECONDS:.0f} s)", starting),
    ]


def first_plan_done(database_url: str, seconds: float = 120) -> None:
    """Wait until the worker's first sync and plan have written notices."""
    engine = create_engine(database_url)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                if connection.scalar(text("SELECT count(*) FROM outbound_messages")):
                    return
            time.sleep(0.5)
    finally:
        engine.dispose()
    raise RuntimeError("the worker planned no notices")


def reply_latency(
    label: str, env: dict[str, str], port: int, twilio: TwilioFake, count: int
) -> str:
    """Inbound SKIP → confirmation handed to the Twilio-like server, one text at a time.

    On SQLite the bot runs as its embedded default (`flask serve`: web and worker in one
    process); on PostgreSQL as gunicorn beside a separate worker."""
    flask = [str(BIN / "flask"), "--app", "wsgi"]
    latencies = []
    with ExitStack() as running:
        if env["DATABASE_URL"].startswith("sqlite"):
            running.enter_context(process([*flask, "serve", "--port", str(port)], env, port))
        else:
            running.enter_context(gunicorn("wsgi:app", env, port))
            running.enter_context(process([*flask, "worker"], env))
        time.sleep(5)  # the worker's first sync
        for n in range(count):
            # A connection per text: the wait for each reply outlasts gunicorn's keep-alive.
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            number = phone(n)
            before = len(twilio.state.bodies_to(number))
            body, headers = _request(AUTH_TOKEN, (number,), 0)
            sent = datetime.now(UTC)
            connection.request("POST", "/sms/inbound", body=body, headers=headers)
            connection.getresponse().read()
            connection.close()
            deadline = time.monotonic() + 15
            while len(twilio.state.bodies_to(number)) == before and time.monotonic() < deadline:
                time.sleep(0.01)
            received = [m["_sent"] for m in twilio.state.messages if m["to"] == number]
            if len(received) > before:
                latencies.append((received[-1] - sent).total_seconds())
            time.sleep(0.3)  # one conversation at a time, at the poll's random phase
    result = Result(
        sent=count, errors=count - len(latencies), seconds=1, latencies=tuple(latencies)
    )
    return (
        f"| {label}: inbound SKIP → confirmation handed to the provider ({count} texts) | "
        f"{result.median:.0f} | {result.percentile(99):.0f} | {result.errors} |"
    )


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-webhook-"))
    twilio = TwilioFake().start()
    smartrr = SandboxServer(SandboxStore(generate(200, datetime.now(UTC)))).start()
    sqlite_env = base_env(f"sqlite:///{workdir / 'bench.sqlite3'}", smartrr, twilio)
    migrate(sqlite_env)
    targets = {
        "bare Flask endpoint": ("bench.bare_app:app", sqlite_env, 5071),
        "our webhook, SQLite": ("wsgi:app", sqlite_env, 5072),
    }
    pg_env = base_env(PG_URL, smartrr, twilio) if pg_ready() else None
    if pg_env is not None:
        migrate(pg_env)
        targets["our webhook, PostgreSQL"] = ("wsgi:app", pg_env, 5074)
    names = list(targets)
    measured = measure_peaks(targets)
    throughput = [
        "| target | req/s | p50 ms | p99 ms | errors |",
        "| --- | --- | --- | --- | --- |",
        *throughput_rows(measured, names),
        *measure_slow_smartrr("our webhook, SQLite", sqlite_env, 5073, smartrr),
    ]
    if pg_env is not None:
        throughput += measure_slow_smartrr("our webhook, PostgreSQL", pg_env, 5075, smartrr)
        pg_ready()
        migrate(pg_env)
    latency = [
        "| path | p50 ms | p99 ms | missing |",
        "| --- | --- | --- | --- |",
        reply_latency("SQLite", sqlite_env, 5076, twilio, count=60),
    ]
    if pg_env is not None:
        latency.append(reply_latency("PostgreSQL", pg_env, 5077, twilio, count=60))
    smartrr.stop()
    twilio.stop()
    write_section(throughput, sweep_rows(measured, names), latency)


def write_section(throughput: list[str], sweep: list[str], latency: list[str]) -> None:
    # The shipped settings, as `gunicorn -c gunicorn.conf.py` reads them.
    shipped = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    workers, threads = shipped["workers"], shipped["threads"]
    counts = ", ".join(str(connections) for connections in CONNECTIONS[:-1])
    counts += f" and {CONNECTIONS[-1]}"
    section = "\n".join(
        [
            MARK_START,
            "## Inbound webhook and reply latency",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M UTC} with `python -m bench.webhook`: "
            f"gunicorn with {workers} processes × {threads} threads (`gunicorn.conf.py`), "
            "signed requests carrying the 20 fields Twilio posts, with unique MessageSids, from "
            f"{LOAD_PROCESSES} separate load processes on loopback. Every target is up for the "
            f"whole run and is loaded with {counts} connections in {ROUNDS} interleaved rounds "
            f'of {SECONDS:.0f} s; "as fast as it goes" is its best connection count (the median '
            "of its rounds there). The load generator shares the 2 cores with the servers. "
            "With Smartrr taking 2 s per call, a worker answers the texts stored so far: "
            f"*worker starting* is the first {SECONDS:.0f} s of load after it starts (its first "
            f"sync and plan run meanwhile), *worker busy* {BUSY_SECONDS:.0f} s once they are "
            "done, a window that holds a run of its minute-ly plan.",
            "",
            *throughput,
            "",
            "Requests/s by connection count (median of the rounds):",
            "",
            *sweep,
            "",
            "Reply latency, the Smartrr-like server answering at once: on SQLite the embedded "
            "default (`flask serve`, web and worker in one process, the webhook wakes the inbox "
            "job); on PostgreSQL gunicorn beside a separate worker, woken by `NOTIFY` (it also "
            "polls every second, `INBOX_POLL_SECONDS=1`):",
            "",
            *latency,
            MARK_END,
        ]
    )
    replace_section(ROOT / "docs" / "benchmarks.md", MARK_START, MARK_END, section)
    print(section)


if __name__ == "__main__":
    main()
