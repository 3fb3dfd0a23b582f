"""`python -m bench.burst`: a burst of replies while Smartrr is slow.

TEXTS subscribers text SKIP within a moment of each other, while the Smartrr-like
server takes SMARTRR_SECONDS per call; one worker process answers them, with each
INBOX_CONCURRENCY in turn. Measured: how long until the last confirmation is handed
to the provider, and each text's time from webhook to confirmation. Results go into
docs/benchmarks.md (their own section).
"""

from __future__ import annotations

import http.client
import os
import platform
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.load import Result, _request
from bench.report import replace_section
from bench.store import generate, phone
from bench.webhook import (
    AUTH_TOKEN,
    BIN,
    ROOT,
    TwilioFake,
    base_env,
    first_plan_done,
    gunicorn,
    migrate,
    process,
)
from bot.smartrr.sandbox import SandboxServer, SandboxStore

TEXTS = int(os.environ.get("BENCH_TEXTS", "60"))
SMARTRR_SECONDS = float(os.environ.get("BENCH_SMARTRR_SECONDS", "0.3"))
CONCURRENCIES = (1, 4, 8)
MARK_START, MARK_END = "<!-- burst:start -->", "<!-- burst:end -->"


def burst(concurrency: int, workdir: Path, port: int) -> str:
    """One run: a fresh database, shop and provider; TEXTS SKIPs; one worker."""
    twilio = TwilioFake().start()
    smartrr = SandboxServer(SandboxStore(generate(TEXTS, datetime.now(UTC)))).start()
    env = base_env(f"sqlite:///{workdir / f'burst-{concurrency}.sqlite3'}", smartrr, twilio)
    env["INBOX_CONCURRENCY"] = str(concurrency)
    migrate(env)
    # Notices stay unsent, so that every text the provider gets is a reply.
    flask = [str(BIN / "flask"), "--app", "wsgi"]
    subprocess.run([*flask, "sending", "off"], env=env, cwd=ROOT, check=True, capture_output=True)
    numbers = [phone(n) for n in range(TEXTS)]
    try:
        with gunicorn("wsgi:app", env, port), process([*flask, "worker"], env):
            first_plan_done(env["DATABASE_URL"])
            smartrr.store.delay = SMARTRR_SECONDS
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            sent_at: dict[str, datetime] = {}
            for number in numbers:
                body, headers = _request(AUTH_TOKEN, (number,), 0)
                sent_at[number] = datetime.now(UTC)
                connection.request("POST", "/sms/inbound", body=body, headers=headers)
                connection.getresponse().read()
            first = min(sent_at.values())
            deadline = time.monotonic() + 120 + 4 * TEXTS * SMARTRR_SECONDS
            answered: dict[str, datetime] = {}
            while len(answered) < TEXTS and time.monotonic() < deadline:
                for message in list(twilio.state.messages):
                    answered.setdefault(message["to"], message["_sent"])
                time.sleep(0.05)
    finally:
        smartrr.stop()
        twilio.stop()
    latencies = [(answered[n] - sent_at[n]).total_seconds() for n in numbers if n in answered]
    result = Result(TEXTS, TEXTS - len(latencies), 1, tuple(latencies))
    last = (max(answered.values()) - first).total_seconds() if answered else float("nan")
    return (
        f"| {concurrency} | {TEXTS} | {last:.1f} | {len(latencies) / last:.1f} | "
        f"{result.median / 1000:.1f} | {result.percentile(99) / 1000:.1f} | {result.errors} |"
    )


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-burst-"))
    rows = [burst(concurrency, workdir, 5081 + n) for n, concurrency in enumerate(CONCURRENCIES)]
    section = "\n".join(
        [
            MARK_START,
            "## A burst of replies while Smartrr is slow",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M UTC} with `python -m bench.burst` "
            f"on {os.cpu_count()} cores ({platform.python_implementation()} "
            f"{platform.python_version()}, SQLite): {TEXTS} subscribers text SKIP within a "
            f"moment of each other while the Smartrr-like server takes {SMARTRR_SECONDS} s "
            "per call; one worker process (`flask --app wsgi worker`, polling the inbox "
            "every second) answers them with each `INBOX_CONCURRENCY` in turn. *Last* is "
            "the time from the first webhook to the last confirmation handed to the "
            "provider; p50 and p99 are each text's own time from its webhook to its "
            "confirmation.",
            "",
            "| INBOX_CONCURRENCY | texts | last answered (s) | answers/s | "
            "p50 (s) | p99 (s) | missing |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            *rows,
            MARK_END,
        ]
    )
    replace_section(ROOT / "docs" / "benchmarks.md", MARK_START, MARK_END, section)
    print(section)


if __name__ == "__main__":
    main()
