"""Engine and sessions: one `Database` per app, kept in ``app.extensions["db"]``."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from functools import cache, lru_cache
from typing import Any

from flask import Flask, current_app
from sqlalchemy import (
    Connection,
    Engine,
    Insert,
    MetaData,
    Table,
    create_engine,
    event,
    make_url,
    select,
    text,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Dialect
from sqlalchemy.orm import Session, sessionmaker

from bot.models import Base

#: Execution option marking a read-only connection (see `_sqlite_begin`).
READ_ONLY = "bot_read_only"
#: Execution option marking a connection whose every statement commits by itself.
AUTOCOMMIT = "bot_autocommit"
#: Rows per INSERT statement in bulk inserts.
INSERT_CHUNK = 1000
#: Bound parameters one SQLite statement may hold (SQLITE_MAX_VARIABLE_NUMBER).
SQLITE_MAX_PARAMETERS = 32766
#: Seconds a SQLite statement waits for a lock, and how often a writer polls for it.
BUSY_TIMEOUT, BUSY_POLL = 30.0, 0.001
#: Rows written by one sync or plan after which the tables' statistics are refreshed.
ANALYZE_AFTER = 1000
#: Rows a batch job (the sync, the plan) writes per transaction on SQLite, at most.
SQLITE_BATCH_ROWS = 100


class Database:
    """Owns the engine and the session factory; callers own their transactions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = _make_engine(url)
        self._writers = _writer_queue(url)
        #: Connections whose every statement commits by itself, for `write`: on
        #: PostgreSQL a pool of their own, on SQLite the engine's with no BEGIN.
        self._autocommit: Engine = (
            _postgres_engine(url, isolation_level="AUTOCOMMIT", pool_size=2)
            if self.is_postgres
            else self.engine.execution_options(**{AUTOCOMMIT: True})
        )
        self.metadata: MetaData = Base.metadata  # read by the Alembic env
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        #: Sessions for read-only work: on SQLite they do not take the write lock.
        self.readers = sessionmaker(
            self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )

    @property
    def is_postgres(self) -> bool:
        """True on PostgreSQL, where claims use FOR UPDATE SKIP LOCKED."""
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """A session inside one transaction: committed on success, rolled back on error."""
        with self.sessions.begin() as session:
            yield session

    def batch_rows(self, most: int) -> int:
        """Rows a batch job should write per transaction: ``most``, and on SQLite 100 at most.

        On SQLite a writing transaction holds the one write lock that every webhook
        waits on. In transactions of 500 and 1,000 rows, a sync that announced 200
        changes held it for 129 ms, and the first plan of 200 subscriptions for 40 ms.
        In transactions of 100 rows they held it for 43 and 22 ms (docs/benchmarks.md).
        PostgreSQL locks rows instead.
        """
        return most if self.is_postgres else min(most, SQLITE_BATCH_ROWS)

    @property
    def write_engine(self) -> Engine:
        """The engine `write` draws its connections from."""
        return self._autocommit

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A bare connection for the webhooks' groups, each one INSERT that commits by
        itself (`insert_committed`): no ORM session, no BEGIN and no COMMIT.

        On PostgreSQL that saves a BEGIN and a COMMIT sent and waited for (4% more
        webhooks in paired runs). On SQLite the write lock is then held only inside the
        driver's one call (see `insert_committed`), and such writers of every process
        take turns in the `WriterQueue` first; the block is their turn.
        """
        if self.is_postgres:
            with self._autocommit.connect() as connection:
                yield connection
            return
        with self._autocommit.connect() as connection:
            raw = _driver(connection)
            # Set outside the turn: `insert_committed` polls for the lock instead.
            raw.execute("PRAGMA busy_timeout=0")
            try:
                with self._writers.turn() if self._writers else nullcontext():
                    yield connection
            finally:
                raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT * 1000:.0f}")

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading only (pages, health, metrics); rolled back at the end."""
        with self.readers() as session:
            yield session

    def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            with self.engine.execution_options(**{READ_ONLY: True}).connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        if self.is_postgres:
            self._autocommit.dispose()  # on SQLite it shares the engine's pool
        if self._writers:
            self._writers.close()


class WriterQueue:
    """Where the webhooks' writers of every process wait their turn at SQLite's write lock.

    SQLite's lock can only be polled (`_begin_immediate`), and a writer that has just
    missed it sleeps a poll before it looks again. A file lock is handed on by the
    kernel the moment it is released, so web processes that take turns at SQLite's
    lock wait in line here instead (measured: docs/benchmarks.md). Other writers (the
    worker) still poll; SQLite's own lock is what keeps writes apart.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        #: A file lock belongs to the open file, which a process's threads share:
        #: they take turns at this lock first.
        self._threads = threading.Lock()
        self._file: int | None = None
        self._pid = 0

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the turn for the block: no other queued writer, in any process, holds it."""
        with self._threads:
            file = self._open()
            fcntl.flock(file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(file, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the lock file (a later turn opens it again)."""
        with self._threads:
            if self._file is not None and self._pid == os.getpid():
                os.close(self._file)
            self._file = None

    def _open(self) -> int:
        # A forked child must not share its parent's open file, and so its lock.
        if self._file is None or self._pid != os.getpid():
            self._file = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return self._file


def _writer_queue(url: str) -> WriterQueue | None:
    """The queue for a SQLite file, beside it (its directory is writable: WAL needs it)."""
    parsed = make_url(url)
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or not path or path == ":memory:":
        return None
    if path.startswith("file:"):
        return None  # a URI filename: where it points is SQLite's to say
    return WriterQueue(f"{path}-writers")


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # A file cannot drop the connection: no ping before each checkout.
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return _postgres_engine(url)


def _postgres_engine(url: str, **options: Any) -> Engine:
    # No server-side prepared statements: psycopg prepares a query after five
    # runs and PostgreSQL may keep the generic plan it chose while the tables
    # were still empty (a full scan per batch, for the whole first sync).
    settings: dict[str, Any] = {
        "pool_pre_ping": True,
        "pool_size": 5,
        "max_overflow": 10,
        "connect_args": {"prepare_threshold": None},
        # Positional placeholders: psycopg rewrites a bulk INSERT of thousands of
        # them for every batch, and named ones cost it about twice as much.
        "paramstyle": "format",
    }
    return create_engine(url, **{**settings, **options})


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the web answer while the worker writes; the busy timeout (the
    # driver's `timeout`) makes a statement wait for a lock instead of failing.
    # The driver's own implicit transactions are switched off so that
    # `_sqlite_begin` decides.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # A statement that writes several rows may keep a journal of its own, to undo just
    # itself; on disk that is a file created and unlinked whenever a group of webhook
    # rows splits a page (about every second group under load). In memory it costs
    # nothing, and a crash never needs it (WAL recovers the transaction).
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # SQLite has no row locks: taking the write lock when a writing
    # transaction starts makes claimers take turns, so a row is never claimed
    # twice. Readers start a plain transaction and never wait on writers (WAL).
    # On an autocommit connection (`Database.write`) each statement is its own.
    options = conn.get_execution_options()
    if options.get(AUTOCOMMIT, False):
        return
    if options.get(READ_ONLY, False):
        conn.exec_driver_sql("BEGIN")
    else:
        _begin_immediate(conn)


def _driver(conn: Connection) -> sqlite3.Connection:
    raw = conn.connection.dbapi_connection
    assert isinstance(raw, sqlite3.Connection)
    return raw


def _begin_immediate(conn: Connection) -> None:
    """Take the write lock, polling for it every millisecond while another writer holds it.

    SQLite's own busy handler sleeps in growing steps (1, 2, 5, 10 … 100 ms): a
    webhook behind a 30 ms write would sleep 33 ms, behind a 60 ms one 78 ms.
    Polling starts the waiting writer within a millisecond of the lock's release.
    """
    raw = _driver(conn)
    raw.execute("PRAGMA busy_timeout=0")
    try:
        _lock_for_writing(conn)
    finally:
        raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT * 1000:.0f}")


def _lock_for_writing(conn: Connection) -> None:
    """BEGIN IMMEDIATE, polled for (see `_begin_immediate`; the busy timeout is 0)."""
    raw = _driver(conn)
    # Tries are counted, not timed (tests freeze the clock): each sleep lasts at
    # least BUSY_POLL, so the writer waits at least BUSY_TIMEOUT in all.
    for _ in range(round(BUSY_TIMEOUT / BUSY_POLL)):
        try:
            raw.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                break
        time.sleep(BUSY_POLL)
    # Once more through SQLAlchemy, so that a failure is its OperationalError.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _busy(error: BaseException | None) -> bool:
    """True when SQLite refused for a lock another connection holds (SQLITE_BUSY…)."""
    code = getattr(error, "sqlite_errorcode", 0)
    return isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_BUSY


def insert_new(
    session: Session | Connection,
    model: type[Base],
    rows: Sequence[Mapping[str, Any]],
    *,
    key: str,
) -> int:
    """Insert the rows whose unique ``key`` is not taken yet; return how many went in.

    A repeat (a webhook delivered twice, two workers planning at once) is
    dropped by the database itself, so no transaction fails on it; and one
    plain INSERT is far cheaper than the ORM's unit of work on a hot path.
    """
    return len(inserted_keys(session, model, rows, key=key))


def inserted_keys(
    session: Session | Connection,
    model: type[Base],
    rows: Sequence[Mapping[str, Any]],
    *,
    key: str,
) -> list[Any]:
    """Like `insert_new`, but name the ``key`` of each row that went in."""
    table = model.__table__  # type: ignore[attr-defined]
    connection = session if isinstance(session, Connection) else session.connection()
    stmt = _insert_new_statement(table, key, connection.dialect.name)
    inserted: list[Any] = []
    for start in range(0, len(rows), INSERT_CHUNK):
        chunk = rows[start : start + INSERT_CHUNK]
        parameters = dict(chunk[0]) if len(chunk) == 1 else list(chunk)
        inserted += connection.execute(stmt, parameters).scalars()
    return inserted


def insert_committed(
    connection: Connection,
    model: type[Base],
    rows: Sequence[Mapping[str, Any]],
    *,
    key: str,
    more: Callable[[], Sequence[Mapping[str, Any]]] | None = None,
) -> list[Any]:
    """Like `inserted_keys`, on a `Database.write` connection: the INSERT commits by itself.

    On SQLite it is one multi-row INSERT with no RETURNING, which the driver runs in
    one call: the write lock is taken, the rows written and flushed to disk, and the
    lock released, all in SQLite's C code. With RETURNING, or inside BEGIN and COMMIT,
    each further step returns to Python first, and under load each return waits for
    the process's GIL while the lock stays held (docs/benchmarks.md). When another
    writer (the worker) holds the lock, this waits for it as a transaction does and
    then writes, inside BEGIN IMMEDIATE and COMMIT, these rows and those ``more``
    gives then: the rows that arrived meanwhile go in now, not after its next write.
    The rows must leave the primary key to SQLite.
    """
    if connection.dialect.name != "sqlite":
        return inserted_keys(connection, model, rows, key=key)
    table: Table = model.__table__  # type: ignore[attr-defined, assignment]
    batch = _NewRows(table, key, connection.dialect)
    batch.add(rows)
    if not batch.rows:
        return []
    try:
        result = connection.exec_driver_sql(*batch.statement())
    except sa_exc.OperationalError as exc:
        if not _busy(exc.orig):
            raise
        result = _after_the_lock(connection, batch, more)
    return batch.inserted(connection, result)


def _after_the_lock(
    connection: Connection,
    batch: _NewRows,
    more: Callable[[], Sequence[Mapping[str, Any]]] | None,
) -> CursorResult[Any]:
    """Wait for the write lock as transactions do, then write ``batch`` and the rows
    ``more`` adds to it in one transaction."""
    _lock_for_writing(connection)
    raw = _driver(connection)
    try:
        if more is not None:
            batch.add(more())
        result = connection.exec_driver_sql(*batch.statement())
        connection.exec_driver_sql("COMMIT")
    except BaseException:
        if raw.in_transaction:
            raw.execute("ROLLBACK")
        raise
    return result


class _NewRows:
    """The rows of one multi-row INSERT … ON CONFLICT DO NOTHING on SQLite."""

    def __init__(self, table: Table, key: str, dialect: Dialect) -> None:
        self.table = table
        self.key = key
        self.processors = _bind_processors(table, dialect)
        (self.primary,) = table.primary_key.columns
        #: The columns every row names, in the table's order.
        self.names: tuple[str, ...] = ()
        #: Each key's first row, converted as SQLAlchemy converts parameters (JSON to
        #: text, datetimes to ISO text …); a later row with the same key is a repeat.
        self.rows: dict[Any, tuple[Any, ...]] = {}

    def add(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            if row[self.key] in self.rows:
                continue
            full = _with_defaults(self.table, row)
            if not self.names:
                names = tuple(column.name for column in self.table.columns if column.name in full)
                if len(names) != len(full):
                    unknown = ", ".join(sorted(set(full) - set(names)))
                    raise ValueError(f"{self.table.name} has no column {unknown}")
                if self.primary.name in names:
                    raise ValueError(f"{self.table.name}: rows must not name {self.primary.name}")
                self.names = names
            elif len(full) != len(self.names) or any(name not in full for name in self.names):
                raise ValueError(f"{self.table.name}: the rows of one INSERT name other columns")
            self.rows[row[self.key]] = tuple(
                _bound(self.processors[name], full[name]) for name in self.names
            )

    def statement(self) -> tuple[str, tuple[Any, ...]]:
        """The INSERT and its parameters."""
        if len(self.names) * len(self.rows) > SQLITE_MAX_PARAMETERS:
            raise ValueError(f"{len(self.rows)} rows are too many for one SQLite statement")
        statement = _multirow_insert(self.table, self.names, self.key, len(self.rows))
        return statement, tuple(value for values in self.rows.values() for value in values)

    def inserted(self, connection: Connection, result: CursorResult[Any]) -> list[Any]:
        """The keys of the rows that went in, from the INSERT's result."""
        count = result.rowcount
        if count == len(self.rows):
            return list(self.rows)
        if count <= 0:
            return []
        # Some keys were taken already. SQLite gave the new rows, in order and under the
        # write lock, the rowids after the table's largest: the last `count`, to lastrowid.
        last = result.lastrowid
        new = select(self.table.c[self.key]).where(
            self.primary > last - count, self.primary <= last
        )
        return list(connection.execute(new).scalars())


@lru_cache(maxsize=512)
def _multirow_insert(table: Table, names: tuple[str, ...], key: str, count: int) -> str:
    """INSERT … VALUES (…), (…) … ON CONFLICT DO NOTHING for ``count`` rows.

    Built once per table, columns and row count: SQLAlchemy compiles a multi-row
    VALUES anew for every execution, which cost more CPU than the write it speeds up.
    """
    quote = sqlite.dialect().identifier_preparer.quote
    row = f"({', '.join('?' * len(names))})"
    return (
        f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, names))}) "
        f"VALUES {', '.join([row] * count)} ON CONFLICT ({quote(key)}) DO NOTHING"
    )


@cache
def _bind_processors(table: Table, dialect: Dialect) -> dict[str, Callable[[Any], Any] | None]:
    """Each column's conversion to what the driver stores (JSON to text, datetimes to
    ISO text …), as SQLAlchemy applies it to the parameters of a compiled statement."""
    return {
        column.name: column.type.dialect_impl(dialect).bind_processor(dialect)
        for column in table.columns
    }


def _bound(processor: Callable[[Any], Any] | None, value: Any) -> Any:
    return processor(value) if processor is not None else value


@cache
def _insert_new_statement(table: Table, key: str, dialect: str) -> Insert:
    # Built once per table: a webhook then reuses the statement and its compiled form.
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # RETURNING names the rows that went in; rowcount is not reliable with it.
    return insert(table).on_conflict_do_nothing(index_elements=[key]).returning(table.c[key])


def upsert(
    session: Session,
    model: type[Base],
    rows: Sequence[Mapping[str, Any]],
    *,
    keys: Sequence[str],
    returning: str,
) -> dict[Any, int]:
    """Insert the rows, or update the ones whose unique ``keys`` exist; map ``returning`` → id.

    Columns a row does not name keep their value on update and take their
    default on insert.
    """
    if not rows:
        return {}
    table = model.__table__  # type: ignore[attr-defined]
    connection = session.connection()
    updated = tuple(name for name in rows[0] if name not in keys)
    stmt = _upsert_statement(table, tuple(keys), updated, returning, connection.dialect.name)
    ids: dict[Any, int] = {}
    for start in range(0, len(rows), INSERT_CHUNK):
        chunk = [_with_defaults(table, row) for row in rows[start : start + INSERT_CHUNK]]
        ids.update((key, id_) for key, id_ in connection.execute(stmt, chunk))
    return ids


@cache
def _upsert_statement(
    table: Table, keys: tuple[str, ...], updated: tuple[str, ...], returning: str, dialect: str
) -> Insert:
    # Built once per shape: its `excluded` alias alone is a column proxy per column,
    # made inside the caller's write transaction (the conversation's, twice a text).
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    base = insert(table)
    changes = {name: base.excluded[name] for name in updated}
    return base.on_conflict_do_update(index_elements=list(keys), set_=changes).returning(
        table.c[returning], table.c.id
    )


def _with_defaults(table: Any, row: Mapping[str, Any]) -> dict[str, Any]:
    # An executemany INSERT takes its columns from the first row: give every row
    # the scalar or callable defaults of the columns it leaves out.
    full = dict(row)
    for column in table.columns:
        default = column.default
        if column.name in full or default is None or column.primary_key:
            continue
        full[column.name] = default.arg(None) if default.is_callable else default.arg
    return full


def analyze(session: Session, *models: type[Base]) -> None:
    """Refresh the query planner's statistics of these tables after a bulk write.

    Until autovacuum gets to it, PostgreSQL plans a freshly filled table as if it
    held a handful of rows: the planner's keyset chunks then become full scans and
    planning 100,000 subscriptions goes quadratic.
    """
    for model in models:
        session.execute(text(f"ANALYZE {model.__tablename__}"))


def init_app(app: Flask) -> Database:
    """Create the app's database handle."""
    database = Database(app.config["DATABASE_URL"])
    app.extensions["db"] = database
    return database


def get_db(app: Flask | None = None) -> Database:
    """The database of ``app`` (or of the current app)."""
    target = app if app is not None else current_app
    database: Database = target.extensions["db"]
    return database
