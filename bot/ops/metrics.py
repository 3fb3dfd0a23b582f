"""Prometheus metrics: request latency in-process, queue depths read from the database."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from bot.storage.db import Database, get_db
from bot.storage.models import InboundMessage, OutboundMessage, SmartrrEvent

REQUEST_SECONDS = Histogram(
    "bot_http_request_seconds",
    "Time to answer an HTTP request, by endpoint.",
    ["endpoint", "method", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
SMARTRR_SECONDS = Histogram(
    "bot_smartrr_request_seconds",
    "Time for one Smartrr API call, by method and status.",
    ["method", "status"],
)

SMARTRR_BAD_REQUESTS = Counter(
    "bot_smartrr_bad_requests",
    "Requests of ours that Smartrr refused as malformed (a 4xx other than "
    "401/403/404/409/422): a bug on our side.",
    ["call"],
)


class QueueCollector(Collector):
    """Counts rows per state at scrape time, so every process reports the same truth."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def collect(self) -> Iterator[GaugeMetricFamily]:
        outbound = GaugeMetricFamily(
            "bot_outbound_messages", "Texts we send, by kind and status.", labels=["kind", "status"]
        )
        inbound = GaugeMetricFamily(
            "bot_inbound_messages", "Texts we received, by status.", labels=["status"]
        )
        events = GaugeMetricFamily(
            "bot_smartrr_events", "Smartrr webhook events, by status.", labels=["status"]
        )
        with self.database.read() as session:
            for kind, status, count in session.execute(
                select(OutboundMessage.kind, OutboundMessage.status, func.count()).group_by(
                    OutboundMessage.kind, OutboundMessage.status
                )
            ):
                outbound.add_metric([kind, status], count)
            for status, count in session.execute(
                select(InboundMessage.status, func.count()).group_by(InboundMessage.status)
            ):
                inbound.add_metric([status], count)
            for status, count in session.execute(
                select(SmartrrEvent.status, func.count()).group_by(SmartrrEvent.status)
            ):
                events.add_metric([status], count)
        yield outbound
        yield inbound
        yield events


def observe_smartrr(method: str, status: int, seconds: float) -> None:
    """Record one Smartrr call (called by the client's response hook)."""
    SMARTRR_SECONDS.labels(method, str(status)).observe(seconds)


def count_bad_request(call: str) -> None:
    """Count one request of ours that Smartrr refused as malformed."""
    # "PUT /vendor/customer/<id>/…/skip" → "PUT skip": ids would make a label per customer.
    method, _, path = call.partition(" ")
    SMARTRR_BAD_REQUESTS.labels(f"{method} {path.rstrip('/').rsplit('/', 1)[-1]}").inc()


def init_app(app: Flask) -> None:
    """Time every request and serve /metrics."""
    queues = CollectorRegistry()
    queues.register(QueueCollector(get_db(app)))

    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def stop_timer(response: Response) -> Response:
        started = g.get("started")
        if started is not None and request.endpoint != "metrics":
            REQUEST_SECONDS.labels(
                request.endpoint or "unknown", request.method, str(response.status_code)
            ).observe(time.perf_counter() - started)
        return response

    @app.get("/metrics", endpoint="metrics")
    def metrics() -> Response:
        return Response(
            generate_latest(_process_registry()) + generate_latest(queues),
            mimetype=CONTENT_TYPE_LATEST,
        )


def _process_registry() -> CollectorRegistry:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    # Under gunicorn with several workers, histograms live in shared files.
    shared = CollectorRegistry()
    multiprocess.MultiProcessCollector(shared)  # type: ignore[no-untyped-call]
    return shared
