"""The SQLite engine's writers: they wait their turn for the write lock, then go in."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from freezegun import freeze_time
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from bot import db
from bot.db import Database, get_db, upsert
from bot.models import Subscriber
from bot.shop import ensure_shop

CUSTOMER_KEYS = ("shop_id", "smartrr_customer_id")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "lock.sqlite3"


@pytest.fixture
def database(path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{path}")
    with database.write() as connection:
        connection.execute(text("CREATE TABLE notes (body TEXT)"))
    yield database
    database.dispose()


@pytest.fixture
def other_process(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection of its own, as another process's would be, holding the write lock."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("BEGIN IMMEDIATE")
    yield connection
    connection.close()


def _notes(database: Database) -> list[str]:
    with database.read() as session:
        return list(session.scalars(text("SELECT body FROM notes")))


def test_a_writer_waits_while_another_holds_the_lock_and_then_goes_in(
    database: Database, other_process: sqlite3.Connection
) -> None:
    def write() -> None:
        with database.write() as connection:
            connection.execute(text("INSERT INTO notes VALUES ('mine')"))

    writer = threading.Thread(target=write)
    writer.start()
    writer.join(0.3)
    assert writer.is_alive(), "the writer did not wait for the lock"
    other_process.execute("INSERT INTO notes VALUES ('theirs')")
    other_process.execute("COMMIT")
    writer.join(5)
    assert not writer.is_alive()
    assert _notes(database) == ["theirs", "mine"]


def test_a_writer_that_never_gets_the_lock_fails_with_sqlalchemys_error(
    database: Database, other_process: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "BUSY_TIMEOUT", 0.2)
    failures: list[OperationalError] = []

    def write() -> None:
        try:
            with database.write() as connection:
                connection.execute(text("INSERT INTO notes VALUES ('mine')"))
        except OperationalError as exc:
            failures.append(exc)

    # Many tests freeze the clock while the worker writes: the wait must end anyway.
    with freeze_time("2026-11-23 12:00"):
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        writer.join(10)
    assert not writer.is_alive(), "the writer never gave up waiting for the lock"
    assert len(failures) == 1
    assert "database is locked" in str(failures[0])
    other_process.execute("ROLLBACK")
    assert _notes(database) == []


def test_writers_of_every_process_queue_for_their_turn(database: Database, path: Path) -> None:
    # Another process's open file of the queue, holding the turn (a file lock belongs
    # to the open file, so this excludes our writers as another process would).
    theirs = os.open(f"{path}-writers", os.O_RDWR | os.O_CREAT)
    fcntl.flock(theirs, fcntl.LOCK_EX)

    def write(body: str) -> None:
        with database.write() as connection:
            connection.execute(text("INSERT INTO notes VALUES (:body)"), {"body": body})

    writers = [threading.Thread(target=write, args=(f"mine {n}",)) for n in range(2)]
    try:
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(0.3)
            assert writer.is_alive(), "a writer did not wait for its turn"
        assert _notes(database) == []
    finally:
        fcntl.flock(theirs, fcntl.LOCK_UN)
        os.close(theirs)
    for writer in writers:
        writer.join(5)
        assert not writer.is_alive()
    assert sorted(_notes(database)) == ["mine 0", "mine 1"]


def test_statements_inside_a_transaction_still_wait_for_locks(database: Database) -> None:
    # Only the BEGIN polls for the write lock; every other statement keeps the
    # driver's busy timeout (a reader can meet a lock while a checkpoint runs).
    with database.write() as connection:
        timeout = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
    assert timeout == db.BUSY_TIMEOUT * 1000


def test_statement_journals_stay_in_memory(database: Database) -> None:
    # A multi-row INSERT that splits pages journals itself; SQLite's default puts that
    # in a temporary file, created and unlinked each time (every second group or so).
    with database.write() as connection:
        temp_store = connection.exec_driver_sql("PRAGMA temp_store").scalar()
    assert temp_store == 2  # MEMORY


def test_readers_do_not_wait_for_the_write_lock(
    database: Database, other_process: sqlite3.Connection
) -> None:
    assert _notes(database) == []


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
