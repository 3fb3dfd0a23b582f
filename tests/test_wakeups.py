"""bot.storage.wakeups: a webhook wakes the job that handles its work in other processes."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Phone
from sqlalchemy import create_engine, text

from bot.storage.wakeups import listen

STRANGER = "+13125550199"


@pytest.fixture
def woken(postgres_url: str) -> Iterator[queue.Queue[str]]:
    """The jobs a listener on PostgreSQL is asked to wake, once it listens."""
    jobs: queue.Queue[str] = queue.Queue()
    stop = threading.Event()
    thread = listen(postgres_url, ("inbox", "events"), jobs.put, stop)
    assert thread is not None
    _wait_until_listening(postgres_url)
    yield jobs
    stop.set()
    thread.join(timeout=10)


def _wait_until_listening(url: str) -> None:
    engine = create_engine(url)
    listening = text("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN %events%'")
    try:
        for _ in range(100):
            with engine.connect() as conn:
                if conn.scalar(listening):
                    return
            time.sleep(0.05)
        raise AssertionError("the listener never listened")
    finally:
        engine.dispose()


def test_a_stored_text_wakes_the_inbox_of_a_worker_listening_elsewhere(
    woken: queue.Queue[str], phone: Phone
) -> None:
    assert phone.text(STRANGER, "SKIP").status_code == 200
    assert woken.get(timeout=5) == "inbox"


def test_a_repeated_delivery_wakes_nobody(woken: queue.Queue[str], phone: Phone) -> None:
    phone.text(STRANGER, "SKIP", sid="SM" + "1" * 32)
    assert woken.get(timeout=5) == "inbox"
    phone.text(STRANGER, "SKIP", sid="SM" + "1" * 32)
    with pytest.raises(queue.Empty):
        woken.get(timeout=1)


def test_on_sqlite_nothing_listens(tmp_path: Path) -> None:
    # The embedded default wakes its own jobs directly; a separate worker polls.
    stop = threading.Event()
    assert listen(f"sqlite:///{tmp_path / 'bot.sqlite3'}", ("inbox",), print, stop) is None
