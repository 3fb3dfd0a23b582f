"""Engine and sessions: one `Database` per app, kept in ``app.extensions["db"]``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Connection, Engine, Insert, MetaData, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from bot.storage.models import Base

#: Execution option marking a read-only connection (see `_sqlite_begin`).
READ_ONLY = "bot_read_only"
#: Rows per INSERT statement in bulk inserts.
INSERT_CHUNK = 1000
#: Seconds a SQLite statement waits for a lock held by another connection.
BUSY_TIMEOUT = 30.0
#: Rows written by one sync or plan after which the tables' statistics are refreshed.
ANALYZE_AFTER = 1000
#: Rows a batch job (the sync, the plan) writes per transaction on SQLite, at most.
SQLITE_BATCH_ROWS = 100


class Database:
    """Owns the engine and the session factory; callers own their transactions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = _make_engine(url)
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
        waits on, so batch jobs keep theirs short; PostgreSQL locks rows instead.
        """
        return most if self.is_postgres else min(most, SQLITE_BATCH_ROWS)

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
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # SQLite has no row locks: taking the write lock when a writing
    # transaction starts makes claimers take turns, so a row is never claimed
    # twice. Readers start a plain transaction and never wait on writers (WAL).
    if conn.get_execution_options().get(READ_ONLY, False):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def insert_new(
    session: Session | Connection,
    model: type[Base],
    rows: Sequence[Mapping[str, Any]],
    *,
    key: str,
) -> int:
    """Insert the rows whose unique ``key`` is not taken yet; return how many went in.

    A repeat (a webhook delivered twice, two workers planning at once) is
    dropped by the database itself, so no transaction fails on it.
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
    table = model.__table__
    connection = session if isinstance(session, Connection) else session.connection()
    stmt = _insert_new_statement(table, key, connection.dialect.name)
    inserted: list[Any] = []
    for start in range(0, len(rows), INSERT_CHUNK):
        chunk = rows[start : start + INSERT_CHUNK]
        parameters = dict(chunk[0]) if len(chunk) == 1 else list(chunk)
        inserted += connection.execute(stmt, parameters).scalars()
    return inserted


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
    table = model.__table__
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
