"""The database layer: SQLite's writers wait for the write lock and then go in, readers
never wait; inserts of new rows, upserts, and the migrations matching the models."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import upgrade
from freezegun import freeze_time
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from bot import create_app
from bot.outbound.messages import template_source
from bot.rules.templates import default_source
from bot.storage import db
from bot.storage.db import Database, get_db, insert_new, upsert
from bot.storage.models import Base, InboundMessage, Subscriber, TemplateVersion
from bot.storage.shop import ensure_shop

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


def stored(database: Database) -> list[str]:
    with database.read() as session:
        query = select(InboundMessage.message_sid).order_by(InboundMessage.id)
        return list(session.scalars(query))


def test_a_writer_waits_while_another_holds_the_lock_and_then_goes_in(
    database: Database, other_process: sqlite3.Connection
) -> None:
    writer = threading.Thread(target=in_transaction, args=(database, "mine"))
    writer.start()
    writer.join(0.3)
    assert writer.is_alive(), "the writer did not wait for the lock"
    assert stored(database) == []
    other_process.execute("COMMIT")
    writer.join(5)
    assert not writer.is_alive()
    assert stored(database) == ["mine"]


def test_a_writer_that_never_gets_the_lock_fails_with_sqlalchemys_error(
    database: Database,
    path: Path,
    other_process: sqlite3.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(db, "BUSY_TIMEOUT", 0.2)
    impatient = Database(f"sqlite:///{path}")  # the tables are the fixture's
    failures: list[OperationalError] = []

    def attempt() -> None:
        try:
            in_transaction(impatient, "mine")
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
    in_transaction(impatient, "later")
    assert stored(database) == ["later"], "the connection works again"
    impatient.dispose()


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


def test_a_merchants_wording_of_the_old_refusal_reply_carries_over_to_each_reason(
    config: dict[str, Any],
) -> None:
    # "Action rejected" held a {{ reason }} sentence written in code; each reason is now a
    # template of its own, and starts from the merchant's wording.
    app = create_app(config)
    with app.app_context():
        upgrade(revision="c41e7d2b9a60")
        with get_db(app).begin() as session:
            session.add(
                TemplateVersion(
                    name="action_rejected",
                    source="{{ shop_name }}: Sorry! {{reason}} Call us at 555-0100.",
                    author="merchant@example.com",
                )
            )
        upgrade()
        with get_db(app).read() as session:
            too_late = template_source(session, "too_late")
            untouched = template_source(session, "rate_limited")
    get_db(app).dispose()

    assert too_late == (
        "{{ shop_name }}: Sorry! This order can no longer be changed by text. Call us at 555-0100."
    )
    assert untouched == default_source("rate_limited")
