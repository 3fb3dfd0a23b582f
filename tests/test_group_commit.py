"""Group commit: rows from concurrent webhooks share a transaction, and each request
learns truly whether its own row was committed (SQLite and PostgreSQL)."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from conftest import Phone
from flask import Flask
from sqlalchemy import create_engine, event, make_url, select
from sqlalchemy.exc import IntegrityError, OperationalError

from bot import db, group_commit
from bot.db import Database, get_db
from bot.group_commit import GroupInsert, NotCommitted
from bot.models import InboundMessage

STRANGER = "+12025550143"


def row(sid: str, **overrides: Any) -> dict[str, Any]:
    return {"message_sid": sid, "from_number": STRANGER, "to_number": "", "body": sid, **overrides}


@contextmanager
def writes_held(database: Database) -> Iterator[Callable[[], object]]:
    """Another connection holds off every insert until the yielded function is called."""
    if database.is_postgres:
        engine = create_engine(database.url)
        with engine.connect() as other:
            other.exec_driver_sql("LOCK TABLE inbound_messages IN SHARE ROW EXCLUSIVE MODE")
            yield other.commit
        engine.dispose()
    else:
        raw = sqlite3.connect(str(database.engine.url.database), isolation_level=None)
        raw.execute("BEGIN IMMEDIATE")
        try:
            yield lambda: raw.execute("COMMIT")
        finally:
            raw.close()


class Requests:
    """Concurrent calls of ``GroupInsert.insert``, one thread each, started in order."""

    def __init__(self, inserts: GroupInsert) -> None:
        self.inserts = inserts
        self.threads: list[threading.Thread] = []
        self.outcomes: dict[str, bool | BaseException] = {}

    def start(self, name: str, values: dict[str, Any], settle: float = 0.2) -> None:
        def call() -> None:
            try:
                self.outcomes[name] = self.inserts.insert(values)
            except BaseException as exc:
                self.outcomes[name] = exc

        thread = threading.Thread(target=call, daemon=True)
        thread.start()
        self.threads.append(thread)
        thread.join(settle)
        assert thread.is_alive(), f"{name} did not wait for the held insert"

    def finish(self) -> dict[str, bool | BaseException]:
        for thread in self.threads:
            thread.join(30)
            assert not thread.is_alive()
        return self.outcomes


def group_writes(database: Database) -> list[str]:
    """The INSERTs that `Database.write` sends from now on: one per group, committing by
    itself."""
    seen: list[str] = []

    def executed(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT"):
            seen.append(statement)

    event.listen(database.write_engine, "after_cursor_execute", executed)
    return seen


def stored_sids(app: Flask) -> list[str]:
    with get_db(app).read() as session:
        return list(session.scalars(select(InboundMessage.message_sid).order_by("message_sid")))


@pytest.fixture
def database(app: Flask) -> Database:
    return get_db(app)


@pytest.fixture
def inserts(database: Database) -> GroupInsert:
    return GroupInsert(database, InboundMessage, "message_sid")


@contextmanager
def first_insert_paused(database: Database) -> Iterator[Callable[[], None]]:
    """The first INSERT waits, inside its transaction, until the yielded function is called."""
    go, paused = threading.Event(), []

    def pause(*_: Any) -> None:
        if not paused:
            paused.append(True)
            go.wait(30)

    event.listen(database.write_engine, "before_cursor_execute", pause)
    try:
        yield go.set
    finally:
        go.set()
        event.remove(database.write_engine, "before_cursor_execute", pause)


def test_rows_arriving_during_a_write_share_the_next_transaction(
    app: Flask, database: Database, inserts: GroupInsert
) -> None:
    requests = Requests(inserts)
    with first_insert_paused(database) as resume:
        requests.start("a", row("a"))  # leads, and its INSERT is under way
        for name in ("b", "c1", "c2", "d"):
            requests.start(name, row(name[0]))
        seen = group_writes(database)
        resume()
        outcomes = requests.finish()

    assert len(seen) == 2, "a's transaction, then one for b, c and d"
    assert (outcomes["a"], outcomes["b"], outcomes["d"]) == (True, True, True)
    assert sorted([outcomes["c1"], outcomes["c2"]]) == [False, True]  # one key, stored once
    assert stored_sids(app) == ["a", "b", "c", "d"]


def test_rows_arriving_while_the_leader_waits_its_turn_join_its_group(
    app: Flask, database: Database, inserts: GroupInsert
) -> None:
    if database.is_postgres:
        pytest.skip("PostgreSQL writers do not queue for a turn: SQLite only")
    requests = Requests(inserts)
    # Another web process's writer holds the turn (its open file of the queue).
    theirs = os.open(f"{database.engine.url.database}-writers", os.O_RDWR | os.O_CREAT)
    fcntl.flock(theirs, fcntl.LOCK_EX)
    try:
        requests.start("a", row("a"))  # leads, and waits for its turn
        for name in ("b", "c"):
            requests.start(name, row(name))
        seen = group_writes(database)
    finally:
        fcntl.flock(theirs, fcntl.LOCK_UN)
        os.close(theirs)
    outcomes = requests.finish()

    assert len(seen) == 1, "one INSERT for a, b and c"
    assert outcomes == {"a": True, "b": True, "c": True}
    assert stored_sids(app) == ["a", "b", "c"]


def test_rows_arriving_while_the_worker_holds_sqlites_lock_join_the_waiting_insert(
    app: Flask, database: Database, inserts: GroupInsert
) -> None:
    # The worker's transactions take SQLite's lock without queueing: the leader's INSERT
    # waits for it, then takes in the rows that came meanwhile.
    if database.is_postgres:
        pytest.skip("PostgreSQL takes no lock when a transaction begins: SQLite only")
    requests = Requests(inserts)
    with writes_held(database) as release:
        requests.start("a", row("a"))  # leads, and its INSERT waits for the held lock
        for name in ("b", "c"):
            requests.start(name, row(name))
        seen = group_writes(database)
        release()
        outcomes = requests.finish()

    assert [statement.count("), (") + 1 for statement in seen] == [3], "one INSERT of a, b, c"
    assert outcomes == {"a": True, "b": True, "c": True}
    assert stored_sids(app) == ["a", "b", "c"]


def test_a_key_already_stored_is_reported_as_not_inserted(app: Flask, inserts: GroupInsert) -> None:
    assert inserts.insert(row("a")) is True
    assert inserts.insert(row("a", body="again")) is False
    assert stored_sids(app) == ["a"]


def test_a_row_the_database_refuses_fails_only_its_own_request(
    app: Flask, database: Database, inserts: GroupInsert
) -> None:
    requests = Requests(inserts)
    with writes_held(database) as release:
        requests.start("a", row("a"))
        requests.start("bad", row("bad", from_number=None))  # NOT NULL
        requests.start("b", row("b"))
        release()
        outcomes = requests.finish()

    assert (outcomes["a"], outcomes["b"]) == (True, True)
    refused = outcomes["bad"]
    assert isinstance(refused, NotCommitted)
    assert isinstance(refused.__cause__, IntegrityError)
    assert stored_sids(app) == ["a", "b"]


def test_when_the_transaction_fails_every_request_in_it_hears_so_and_later_ones_go_in(
    app: Flask, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Inserts give up on the held lock after half a second.
    if database.is_postgres:
        url = make_url(database.url).update_query_dict({"options": "-c lock_timeout=500"})
        database = Database(url.render_as_string(hide_password=False))
    else:
        monkeypatch.setattr(db, "BUSY_TIMEOUT", 0.5)
    inserts = GroupInsert(database, InboundMessage, "message_sid")
    requests = Requests(inserts)
    with writes_held(database):
        requests.start("a", row("a"))
        requests.start("b", row("b"), settle=0.1)
        requests.start("c", row("c"), settle=0.1)
        outcomes = requests.finish()
    later = inserts.insert(row("d"))
    database.dispose()

    for name in ("a", "b", "c"):
        failure = outcomes[name]
        assert isinstance(failure, NotCommitted), (name, failure)
        assert isinstance(failure.__cause__, OperationalError)
    assert later is True
    assert stored_sids(app) == ["d"]


def test_concurrent_webhooks_store_every_text_once(app: Flask) -> None:
    sids = [f"SM{n:032d}" for n in range(40)]
    sent = sids + sids[:10]  # Twilio retries some

    def post(sid: str) -> int:
        return int(Phone(app.test_client()).text(STRANGER, "SKIP", sid=sid).status_code)

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(post, sent))

    assert codes == [200] * len(sent)
    assert stored_sids(app) == sorted(sids)


def test_a_group_holds_at_most_MOST_rows_and_the_rest_go_in_next(
    app: Flask, database: Database, inserts: GroupInsert, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(group_commit, "MOST", 2)
    requests = Requests(inserts)
    with writes_held(database) as release:
        requests.start("a", row("a"))  # leads, and waits for the held lock
        for name in ("b", "c", "d"):
            requests.start(name, row(name))
        seen = group_writes(database)
        release()
        outcomes = requests.finish()

    sizes = [statement.count("), (") + 1 for statement in seen]
    assert sum(sizes) == 4 and max(sizes) == 2, sizes
    if not database.is_postgres:
        assert sizes == [2, 2], "b joined a's waiting INSERT, c and d came next"
    assert outcomes == {"a": True, "b": True, "c": True, "d": True}
    assert stored_sids(app) == ["a", "b", "c", "d"]
