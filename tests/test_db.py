"""The SQLite engine's writers: they wait their turn for the write lock, then go in;
and the webhooks' INSERTs that commit by themselves (`insert_committed`)."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from freezegun import freeze_time
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from bot import db
from bot.db import Database, get_db, insert_committed, insert_new, upsert
from bot.models import Base, InboundMessage, Subscriber
from bot.shop import ensure_shop

CUSTOMER_KEYS = ("shop_id", "smartrr_customer_id")
STRANGER = "+12025550143"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "lock.sqlite3"


@pytest.fixture
def database(path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{path}")
    Base.metadata.create_all(database.engine)
    yield database
    database.dispose()


@pytest.fixture
def other_process(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection of its own, as another process's would be, holding the write lock."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("BEGIN IMMEDIATE")
    yield connection
    connection.close()


def text_row(sid: str, **overrides: object) -> dict[str, object]:
    return {"message_sid": sid, "from_number": STRANGER, "to_number": "", "body": sid, **overrides}


def in_transaction(database: Database, *sids: str) -> None:
    """Write as the worker does: a transaction, begun with BEGIN IMMEDIATE."""
    with database.begin() as session:
        insert_new(session, InboundMessage, [text_row(sid) for sid in sids], key="message_sid")


def committed(database: Database, *sids: str) -> list[str]:
    """Write as the webhooks do: one INSERT that commits by itself, in the writers' turn."""
    with database.write() as connection:
        rows = [text_row(sid) for sid in sids]
        return insert_committed(connection, InboundMessage, rows, key="message_sid")


WRITERS = [pytest.param(in_transaction, id="transaction"), pytest.param(committed, id="committed")]
Writer = Callable[..., object]


def stored(database: Database) -> list[str]:
    with database.read() as session:
        query = select(InboundMessage.message_sid).order_by(InboundMessage.id)
        return list(session.scalars(query))


@pytest.mark.parametrize("write", WRITERS)
def test_a_writer_waits_while_another_holds_the_lock_and_then_goes_in(
    database: Database, other_process: sqlite3.Connection, write: Writer
) -> None:
    writer = threading.Thread(target=write, args=(database, "mine"))
    writer.start()
    writer.join(0.3)
    assert writer.is_alive(), "the writer did not wait for the lock"
    assert stored(database) == []
    other_process.execute("COMMIT")
    writer.join(5)
    assert not writer.is_alive()
    assert stored(database) == ["mine"]


@pytest.mark.parametrize("write", WRITERS)
def test_a_writer_that_never_gets_the_lock_fails_with_sqlalchemys_error(
    database: Database,
    other_process: sqlite3.Connection,
    monkeypatch: pytest.MonkeyPatch,
    write: Writer,
) -> None:
    monkeypatch.setattr(db, "BUSY_TIMEOUT", 0.2)
    failures: list[OperationalError] = []

    def attempt() -> None:
        try:
            write(database, "mine")
        except OperationalError as exc:
            failures.append(exc)

    # Many tests freeze the clock while the worker writes: the wait must end anyway.
    with freeze_time("2026-11-23 12:00"):
        writer = threading.Thread(target=attempt, daemon=True)
        writer.start()
        writer.join(10)
    assert not writer.is_alive(), "the writer never gave up waiting for the lock"
    assert len(failures) == 1
    assert "database is locked" in str(failures[0])
    other_process.execute("ROLLBACK")
    assert stored(database) == []
    assert committed(database, "later") == ["later"], "the connection works again"


def test_writers_of_every_process_queue_for_their_turn(database: Database, path: Path) -> None:
    # Another process's open file of the queue, holding the turn (a file lock belongs
    # to the open file, so this excludes our writers as another process would).
    theirs = os.open(f"{path}-writers", os.O_RDWR | os.O_CREAT)
    fcntl.flock(theirs, fcntl.LOCK_EX)
    writers = [threading.Thread(target=committed, args=(database, f"mine {n}")) for n in range(2)]
    try:
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(0.3)
            assert writer.is_alive(), "a writer did not wait for its turn"
        assert stored(database) == []
    finally:
        fcntl.flock(theirs, fcntl.LOCK_UN)
        os.close(theirs)
    for writer in writers:
        writer.join(5)
        assert not writer.is_alive()
    assert sorted(stored(database)) == ["mine 0", "mine 1"]


def test_a_committed_insert_is_committed_before_its_turn_ends(
    database: Database, path: Path
) -> None:
    elsewhere = sqlite3.connect(path)
    with database.write() as connection:
        insert_committed(connection, InboundMessage, [text_row("a")], key="message_sid")
        seen = elsewhere.execute("SELECT message_sid FROM inbound_messages").fetchall()
    elsewhere.close()
    assert seen == [("a",)]


def test_a_committed_insert_names_only_the_rows_that_went_in(database: Database) -> None:
    assert committed(database, "a") == ["a"]
    # "a" is stored already, and "b" comes twice: the first "b" and "c" go in.
    assert committed(database, "b", "a", "c", "b", "d") == ["b", "c", "d"]
    assert committed(database, "a", "c") == []
    assert committed(database, "e", "a") == ["e"], "the last row was a repeat"
    assert stored(database) == ["a", "b", "c", "d", "e"]


def test_a_committed_insert_stores_what_the_orm_reads_back(database: Database) -> None:
    params = {"NumMedia": "0", "OptOutType": "STOP", "émoji": "🙂"}
    with freeze_time("2026-11-23 12:00:00.250000"), database.write() as connection:
        row = text_row("a", body="SKIP", params=params)
        insert_committed(connection, InboundMessage, [row], key="message_sid")
    with database.read() as session:
        text = session.scalars(select(InboundMessage)).one()
    moment = datetime(2026, 11, 23, 12, 0, 0, 250000, tzinfo=UTC)
    assert (text.body, text.params, text.status, text.attempts) == ("SKIP", params, "pending", 0)
    assert text.received_at == text.next_attempt_at == moment
    assert (text.lease_owner, text.processed_at) == (None, None)


def test_a_committed_insert_the_database_refuses_raises_sqlalchemys_error(
    database: Database,
) -> None:
    with pytest.raises(IntegrityError), database.write() as connection:
        row = text_row("a", from_number=None)  # NOT NULL
        insert_committed(connection, InboundMessage, [row], key="message_sid")
    assert stored(database) == []


def test_statements_inside_a_transaction_still_wait_for_locks(database: Database) -> None:
    # Only the BEGIN polls for the write lock; every other statement keeps the
    # driver's busy timeout (a reader can meet a lock while a checkpoint runs).
    with database.begin() as session:
        timeout = session.connection().exec_driver_sql("PRAGMA busy_timeout").scalar()
    with database.write():
        pass
    with database.begin() as session:
        after_a_turn = session.connection().exec_driver_sql("PRAGMA busy_timeout").scalar()
    assert timeout == after_a_turn == db.BUSY_TIMEOUT * 1000


def test_statement_journals_stay_in_memory(database: Database) -> None:
    # A multi-row INSERT that splits pages journals itself; SQLite's default puts that
    # in a temporary file, created and unlinked each time (every second group or so).
    with database.begin() as session:
        temp_store = session.connection().exec_driver_sql("PRAGMA temp_store").scalar()
    assert temp_store == 2  # MEMORY


def test_readers_do_not_wait_for_the_write_lock(
    database: Database, other_process: sqlite3.Connection
) -> None:
    assert stored(database) == []


def test_an_upsert_of_no_rows_writes_nothing(app: Flask) -> None:
    with get_db(app).begin() as session:
        ids = upsert(session, Subscriber, [], keys=CUSTOMER_KEYS, returning="smartrr_customer_id")
        stored = session.scalar(select(func.count()).select_from(Subscriber))

    assert (ids, stored) == ({}, 0)


def test_an_upsert_updates_the_columns_its_rows_name_and_keeps_the_others(app: Flask) -> None:
    database = get_db(app)
    with database.begin() as session:
        shop_id = ensure_shop(session, app.extensions["settings"]).id
        customer = {"shop_id": shop_id, "smartrr_customer_id": "c1"}
        first = upsert(
            session,
            Subscriber,
            [{**customer, "first_name": "Ann", "phone": "+12025550143"}],
            keys=CUSTOMER_KEYS,
            returning="smartrr_customer_id",
        )
        again = upsert(
            session,
            Subscriber,
            [{**customer, "phone": "+12025550199"}],  # no first_name: it stays
            keys=CUSTOMER_KEYS,
            returning="smartrr_customer_id",
        )

    with database.read() as session:
        stored = session.scalars(select(Subscriber)).one()
    assert again == first
    assert (stored.first_name, stored.phone) == ("Ann", "+12025550199")


def test_the_migrations_build_the_schema_the_models_describe(app: Flask) -> None:
    # A model changed without its migration (an index, a column) would pass every test
    # built on `upgrade()` yet differ from what operators' databases get.
    database = get_db(app)
    with database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), database.metadata)
    assert differences == []


def test_a_committed_insert_refuses_rows_it_cannot_write_as_one_statement(
    database: Database,
) -> None:
    with database.write() as connection:
        with pytest.raises(ValueError, match="other columns"):
            rows = [text_row("a"), text_row("b", subscriber_id=None)]
            insert_committed(connection, InboundMessage, rows, key="message_sid")
        with pytest.raises(ValueError, match="must not name id"):
            insert_committed(connection, InboundMessage, [text_row("a", id=7)], key="message_sid")
        with pytest.raises(ValueError, match="has no column sender"):
            row = text_row("a", sender=STRANGER)
            insert_committed(connection, InboundMessage, [row], key="message_sid")
    assert stored(database) == []
