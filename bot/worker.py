"""The worker: APScheduler jobs that sync, plan, dispatch and answer."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from bot.config import Settings
from bot.conversation.handler import Conversation
from bot.conversation.inbox import process_inbox
from bot.outbound.dispatcher import Dispatcher
from bot.outbound.planner import PlanResult, run_plan
from bot.outbound.sms import get_transport
from bot.smartrr.client import get_client
from bot.smartrr.events import process_events
from bot.smartrr.sync import SyncResult, run_sync
from bot.storage.db import get_db
from bot.storage.models import Heartbeat, utcnow
from bot.storage.shop import effective_settings, ensure_shop
from bot.storage.wakeups import listen

log = logging.getLogger(__name__)

#: Smartrr events are applied within a few seconds, at once when the webhook wakes the
#: job (see bot.storage.wakeups); the sync job reconciles anything missed.
EVENTS_POLL_SECONDS = 5.0
#: The jobs a webhook wakes when it stores their work.
WOKEN_JOBS = ("inbox", "events")


class Worker:
    """One process's share of the work; every job is safe to run in many processes."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.settings: Settings = app.extensions["settings"]
        self.database = get_db(app)
        self.client = get_client(app)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.dispatcher = Dispatcher(self.database, get_transport(app), self.settings, self.owner)
        self.conversation = Conversation(self.database, self.client, self.settings)

    def sync(self) -> SyncResult:
        """Pull subscriptions from Smartrr, then plan for what changed."""
        result = run_sync(self.database, self.client, self.settings)
        self.plan()
        return result

    def plan(self) -> PlanResult:
        """Create, move and cancel upcoming-order notices."""
        with self.database.begin() as session:
            ensure_shop(session, self.settings)
            settings = effective_settings(session, self.settings)
        return run_plan(self.database, settings, utcnow())

    def dispatch(self) -> None:
        """Send one batch of due texts."""
        self.dispatcher.run_once()

    def inbox(self) -> None:
        """Answer stored inbound texts batch by batch, sending each batch's answers at
        once, until no text is due (a number's next text is due once its last is
        answered). The loop ends: each text it claims is answered, postponed, or kept
        by our lease from being claimed again."""
        concurrency = self.settings.inbox_concurrency
        while process_inbox(self.database, self.conversation, self.owner, concurrency=concurrency):
            self.dispatcher.run_once(kinds=("reply",))

    def events(self) -> int:
        """Apply stored Smartrr webhook events; return how many were taken."""
        return process_events(self.database, self.client, self.settings, self.owner)

    def heartbeat(self) -> None:
        """Record that this worker's scheduler is alive (read by /healthz)."""
        with self.database.begin() as session:
            beat = session.get(Heartbeat, self.owner)
            if beat is None:
                session.add(Heartbeat(worker=self.owner, beat_at=utcnow()))
            else:
                beat.beat_at = utcnow()


def build_scheduler(app: Flask, *, blocking: bool) -> BaseScheduler:
    """A scheduler with every job of the worker, starting at once."""
    worker = Worker(app)
    config = app.config
    # Every run is logged at INFO, and a run still going when the next is due
    # is skipped on purpose: neither is worth a line every second.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
    scheduler: BaseScheduler = (
        BlockingScheduler(timezone=UTC) if blocking else BackgroundScheduler(timezone=UTC)
    )
    now = datetime.now(UTC)
    jobs = (
        (worker.inbox, "inbox", config["INBOX_POLL_SECONDS"]),
        (worker.dispatch, "dispatch", config["DISPATCH_POLL_SECONDS"]),
        (worker.events, "events", EVENTS_POLL_SECONDS),
        (worker.plan, "plan", config["PLAN_INTERVAL_SECONDS"]),
        (worker.sync, "sync", config["SYNC_INTERVAL_SECONDS"]),
        (worker.heartbeat, "heartbeat", 15),
    )
    for func, job_id, seconds in jobs:
        scheduler.add_job(
            _in_context(app, func),
            "interval",
            seconds=float(seconds),
            id=job_id,
            name=job_id,
            max_instances=1,
            coalesce=True,
            next_run_time=now,
        )
    app.extensions["scheduler"] = scheduler
    app.extensions["wake"] = lambda job_id: _wake(scheduler, job_id)
    return scheduler


def listen_for_work(app: Flask, stop: threading.Event) -> threading.Thread | None:
    """On PostgreSQL, wake this process's jobs when another process announces their work."""
    return listen(app.config["DATABASE_URL"], WOKEN_JOBS, app.extensions["wake"], stop)


def _wake(scheduler: BaseScheduler, job_id: str) -> None:
    if scheduler.running:
        scheduler.modify_job(job_id, next_run_time=datetime.now(UTC))


def _in_context(app: Flask, func: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        with app.app_context():
            try:
                func()
            except Exception:
                # The scheduler would log it too, but without saying which job.
                log.exception("job %s failed", func.__name__)

    run.__name__ = func.__name__
    return run
