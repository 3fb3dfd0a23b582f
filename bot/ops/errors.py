"""Clear JSON errors for the API-like endpoints; bad input never becomes a 500."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

#: What the database raises when it cannot serve us just now (down, restarting, locked
#: past the busy timeout, every pooled connection taken, schema missing on SQLite).
UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout)
#: Seconds a client is asked to wait before trying again.
RETRY_AFTER = 5


def init_app(app: Flask) -> None:
    """Answer HTTP errors with a short JSON body naming the problem."""

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        return jsonify(error=exc.name, detail=exc.description), exc.code or 500

    def database_unavailable(exc: Exception) -> tuple[Response, int]:
        """503 with Retry-After when the database is out of reach: nothing was stored,
        and the sender may try again (a webhook's provider retries or fails over)."""
        log.error("database unavailable: %s", type(exc).__name__, exc_info=exc)
        response = jsonify(
            error="Service Unavailable",
            detail="the database is unavailable; nothing was stored, try again",
        )
        response.headers["Retry-After"] = str(RETRY_AFTER)
        return response, 503

    for kind in UNAVAILABLE:
        app.register_error_handler(kind, database_unavailable)
