"""Group commit for webhooks: rows from concurrent requests share one transaction.

A webhook may answer only once its row is committed. With a transaction per
request, every request pays its own commit (a disk flush), and on SQLite its own
turn at the one write lock, which its process's other threads then fight over.
Here a request that finds no write under way takes its turn to write
(`Database.write`; on SQLite the web processes' writers queue for it) and then
writes every waiting row, its own first, in one INSERT that commits by itself;
the requests that arrive meanwhile wait (without polling) and the first of them
writes the next group. Rows that came while the writer waited for its turn so go
in with it, not a whole write later, and so do those that come while its INSERT
waits for a worker's transaction to end. Each request still returns only after the
INSERT holding its row has committed, so an answer never promises a row that a
crash could lose.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DataError, IntegrityError

from bot.db import Database, insert_committed
from bot.models import Base

#: Rows in one transaction (one INSERT) at most; a larger backlog is written in turns.
MOST = 200


class NotCommitted(Exception):
    """The transaction meant to hold the row failed: the row is not stored.

    Its ``__cause__`` is what the database raised.
    """


def _held() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass(eq=False)
class _Pending:
    row: Mapping[str, Any]
    done: bool = False
    stored: bool = False
    error: BaseException | None = field(default=None, repr=False)
    #: Held from the start and released to wake the request. A bare lock, not an Event:
    #: an Event is a Condition with Python bookkeeping, built and notified per webhook.
    _bell: threading.Lock = field(default_factory=_held, repr=False)

    def wait(self) -> None:
        """Sleep until `wake` (at once if it came first)."""
        self._bell.acquire()

    def wake(self) -> None:
        """Wake the request: its group is written, or it is to write the next one.

        A request is woken at most twice, and the second time only once it has woken
        from the first and so holds the lock again: release never meets it unlocked.
        """
        self._bell.release()


class GroupInsert:
    """Insert rows unless their unique ``key`` is taken, committing them in groups."""

    def __init__(self, database: Database, model: type[Base], key: str) -> None:
        self.database = database
        self.model = model
        self.key = key
        self._lock = threading.Lock()
        self._waiting: list[_Pending] = []
        self._writing = False

    def insert(self, row: Mapping[str, Any]) -> bool:
        """Insert ``row``, committed, unless its key is taken; True when it went in.

        Raises `NotCommitted` when the transaction meant to hold it failed.
        """
        mine = _Pending(row)
        with self._lock:
            self._waiting.append(mine)
            leading = not self._writing
            self._writing = True
        if not leading:
            mine.wait()
        if not mine.done:
            self._write()
        if mine.error is not None:
            # A fresh exception per request: threads must not raise one object at once.
            raise NotCommitted(f"{self.model.__name__} not stored") from mine.error
        return mine.stored

    def _write(self) -> None:
        """Write the next group; whoever leads is first in line, so its own row is in it."""
        group: list[_Pending] = []
        try:
            try:
                with self.database.write() as connection:
                    # Taken once it is this writer's turn, so rows that came while it
                    # waited go in now, not next time.
                    group = self._take(MOST)
                    self._insert(connection, group, self._more(group))
            except (DataError, IntegrityError):
                if len(group) == 1:
                    raise
                # A row the database refuses must fail its own request only.
                for pending in group:
                    try:
                        with self.database.write() as connection:
                            self._insert(connection, [pending])
                    except Exception as exc:
                        pending.error = exc
        except BaseException as exc:
            # A write that failed (no lock in time, the database gone) fails its rows.
            group = group or self._take(MOST)
            for pending in group:
                pending.error = exc
            if not isinstance(exc, Exception):
                raise  # an interrupt: the writer stops, its group still hears of the failure
        finally:
            with self._lock:
                # The first of those who came meanwhile writes the next group.
                self._writing = bool(self._waiting)
                after = self._waiting[:1]
            for pending in group:
                pending.done = True
                pending.wake()
            for pending in after:
                pending.wake()

    def _take(self, most: int) -> list[_Pending]:
        with self._lock:
            group, self._waiting = self._waiting[:most], self._waiting[most:]
        return group

    def _more(self, group: list[_Pending]) -> Callable[[], list[Mapping[str, Any]]]:
        """Rows that came since ``group`` was taken, added to it (up to MOST in all)."""

        def more() -> list[Mapping[str, Any]]:
            extra = self._take(MOST - len(group))
            group.extend(extra)
            return [pending.row for pending in extra]

        return more

    def _insert(
        self,
        connection: Connection,
        group: list[_Pending],
        more: Callable[[], list[Mapping[str, Any]]] | None = None,
    ) -> None:
        rows = [pending.row for pending in group]
        keys = set(insert_committed(connection, self.model, rows, key=self.key, more=more))
        for pending in group:
            # Of two requests with one key in a group, only the first stored it.
            pending.stored = pending.row[self.key] in keys
            keys.discard(pending.row[self.key])
