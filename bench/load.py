"""A load generator for the inbound webhook: signed requests with unique MessageSids.

Runs in its own processes (never inside the server's), over loopback, either
open-loop at a fixed rate (latency at a given load) or closed-loop with a fixed
number of connections (the most the server sustains).
"""

from __future__ import annotations

import http.client
import statistics
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from twilio.request_validator import RequestValidator

from bench.report import percentile

PUBLIC_BASE_URL = "https://bench.example.com"


@dataclass(frozen=True)
class Result:
    sent: int
    errors: int
    seconds: float
    latencies: tuple[float, ...]

    @property
    def throughput(self) -> float:
        return (self.sent - self.errors) / self.seconds

    def percentile(self, p: float) -> float:
        """Latency at percentile ``p`` (0-100), in milliseconds."""
        return 1000 * percentile(self.latencies, p)

    @property
    def median(self) -> float:
        return 1000 * statistics.median(self.latencies) if self.latencies else float("nan")


def _request(token: str, senders: tuple[str, ...], n: int) -> tuple[bytes, dict[str, str]]:
    """An inbound SMS webhook with the 20 fields Twilio posts for a US text."""
    sid = "SM" + uuid.uuid4().hex
    params = {
        "ToCountry": "US",
        "ToState": "NY",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "NEW YORK",
        "FromZip": "60601",
        "SmsSid": sid,
        "FromState": "IL",
        "SmsStatus": "received",
        "FromCity": "CHICAGO",
        "Body": "SKIP",
        "FromCountry": "US",
        "To": "+15005550006",
        "MessagingServiceSid": "MG" + "1" * 32,
        "ToZip": "10001",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": senders[n % len(senders)],
        "ApiVersion": "2010-04-01",
    }
    signature = RequestValidator(token).compute_signature(PUBLIC_BASE_URL + "/sms/inbound", params)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": str(signature),
    }
    return urlencode(params).encode(), headers


def _worker(
    url: str,
    token: str,
    senders: tuple[str, ...],
    seconds: float,
    threads: int,
    rate: float | None,
) -> tuple[int, int, list[float]]:
    """One load process: ``threads`` connections, each paced to rate/threads if a rate is set."""
    parts = urlsplit(url)
    deadline = time.perf_counter() + seconds
    lock = threading.Lock()
    totals = {"sent": 0, "errors": 0}
    latencies: list[float] = []

    def run(index: int) -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        interval = threads / rate if rate else 0.0
        next_at = time.perf_counter() + (index * interval / threads if rate else 0.0)
        n = index
        mine: list[float] = []
        sent = errors = 0
        while True:
            if rate:
                pause = next_at - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                next_at += interval
            if time.perf_counter() >= deadline:
                break
            body, headers = _request(token, senders, n)
            n += threads
            started = time.perf_counter()
            try:
                connection.request("POST", "/sms/inbound", body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
                ok = False
            sent += 1
            if ok:
                mine.append(time.perf_counter() - started)
            else:
                errors += 1
        with lock:
            totals["sent"] += sent
            totals["errors"] += errors
            latencies.extend(mine)

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return totals["sent"], totals["errors"], latencies


def fire(
    url: str,
    token: str,
    senders: tuple[str, ...],
    *,
    seconds: float,
    rate: float | None = None,
    processes: int = 2,
    threads: int = 8,
) -> Result:
    """Load ``url``/sms/inbound from separate processes; ``rate`` None means as fast as it goes."""
    share = rate / processes if rate else None
    started = time.perf_counter()
    with ProcessPoolExecutor(processes) as pool:
        futures = [
            pool.submit(_worker, url, token, senders, seconds, threads, share)
            for _ in range(processes)
        ]
        parts = [f.result() for f in futures]
    elapsed = time.perf_counter() - started
    return Result(
        sent=sum(p[0] for p in parts),
        errors=sum(p[1] for p in parts),
        seconds=min(elapsed, seconds + 0.5),
        latencies=tuple(latency for p in parts for latency in p[2]),
    )
