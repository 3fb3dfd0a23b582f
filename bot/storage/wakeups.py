"""Waking a job in another process when its work arrives, instead of at its next poll.

A webhook stores a text in one process and a worker answers it in another. On
PostgreSQL the webhook's transaction sends ``NOTIFY`` on the job's channel (delivered
only when it commits) and each worker keeps one connection that ``LISTEN``s and wakes
the job. On SQLite there is no such channel; the embedded default runs the worker in
the web process, which wakes its job directly, and a separate worker polls.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

import psycopg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

#: Each job that may be woken listens on a channel of its own name.
CHANNEL_PREFIX = "bot_wake_"
#: How long a listener waits before checking that it should still run.
IDLE = 5.0
#: The pause before connecting again after the database went away.
RECONNECT = 1.0


def announce(session: Session, job: str) -> None:
    """Wake ``job`` in every listening process once this transaction commits."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_notify(CHANNEL_PREFIX + job, "")))


def listen(
    database_url: str,
    jobs: Iterable[str],
    wake: Callable[[str], None],
    stop: threading.Event,
) -> threading.Thread | None:
    """Start a thread that calls ``wake(job)`` for each announcement; None off PostgreSQL."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return None
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    channels = {CHANNEL_PREFIX + job: job for job in jobs}
    thread = threading.Thread(
        target=_listen, args=(conninfo, channels, wake, stop), name="wakeups", daemon=True
    )
    thread.start()
    return thread


def _listen(
    conninfo: str,
    channels: dict[str, str],
    wake: Callable[[str], None],
    stop: threading.Event,
) -> None:
    while not stop.is_set():
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                for channel in channels:
                    conn.execute(f'LISTEN "{channel}"')
                # Work announced while we were away is found by the jobs' own polls.
                while not stop.is_set():
                    for note in conn.notifies(timeout=IDLE):
                        wake(channels[note.channel])
        except psycopg.OperationalError as exc:
            log.warning("wakeups: database connection lost, listening again: %s", exc)
            stop.wait(RECONNECT)
