"""The typed errors of the Smartrr client; each message is safe to show a merchant."""

from __future__ import annotations


class SmartrrError(Exception):
    """Base error; its message is safe to show a merchant."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SmartrrAuthError(SmartrrError):
    """Smartrr refused the access token (401/403)."""


class SmartrrNotFound(SmartrrError):
    """Smartrr has no such subscription or customer (404)."""


class SmartrrRejected(SmartrrError):
    """Smartrr refused the request for good (a 4xx other than 401/403/404/408/429)."""

    status: int

    def __init__(self, message: str, status: int, detail: str) -> None:
        super().__init__(message, status)
        self.detail = detail


class SmartrrBadRequest(SmartrrRejected):
    """Smartrr refused a request we built (a 4xx other than 401/403/404/409/422): our bug.

    ``sent`` is the body we sent, for the log; the subscriber is never told their order
    "can no longer be changed" for it.
    """

    def __init__(self, message: str, status: int, detail: str, sent: str) -> None:
        super().__init__(message, status, detail)
        self.sent = sent


class SmartrrUnavailable(SmartrrError):
    """Smartrr could not be reached or stayed overloaded through every retry."""


class SmartrrDataError(SmartrrError):
    """Smartrr answered 2xx with something we cannot read."""
