"""Clear JSON errors for the API-like endpoints; bad input never becomes a 500."""

from __future__ import annotations

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException


def init_app(app: Flask) -> None:
    """Answer HTTP errors with a short JSON body naming the problem."""

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        return jsonify(error=exc.name, detail=exc.description), exc.code or 500
