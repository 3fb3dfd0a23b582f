"""Sending one call to the Smartrr Vendor API: the token, polite retries, typed errors."""

from __future__ import annotations

import email.utils
import math
import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import NewConnectionError

from bot.ops.metrics import count_bad_request
from bot.smartrr.errors import (
    SmartrrAuthError,
    SmartrrBadRequest,
    SmartrrDataError,
    SmartrrError,
    SmartrrNotFound,
    SmartrrRejected,
    SmartrrUnavailable,
)

TOKEN_HEADER = "x-smartrr-access-token"
USER_AGENT = "smartrr-sms-bot/0.1"

_RETRYABLE_STATUSES = frozenset({408, 429})
#: Smartrr's word that the change cannot be made to this subscription now; any other
#: 4xx to a request we built means we built it wrong.
_REFUSALS = frozenset({409, 422})
_TRANSIENT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


class _TokenSession(requests.Session):
    """A session that, like requests does for Authorization, drops the token on cross-host
    redirects so it never reaches another server."""

    def rebuild_auth(
        self, prepared_request: requests.PreparedRequest, response: requests.Response
    ) -> None:
        super().rebuild_auth(prepared_request, response)  # type: ignore[no-untyped-call]
        old_host = urlsplit(response.request.url or "").hostname
        if urlsplit(prepared_request.url or "").hostname != old_host:
            prepared_request.headers.pop(TOKEN_HEADER, None)


class Transport:
    """An HTTP session with one shop's Smartrr: sends a call, retries it when that is safe."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        max_attempts: int,
        backoff: float,
        max_backoff: float,
        sleep: Callable[[float], None],
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = (connect_timeout, read_timeout)
        self._max_attempts = max(1, max_attempts)
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._sleep = sleep
        self._session = _TokenSession()
        self._session.headers.update(
            {TOKEN_HEADER: token, "Accept": "application/json", "User-Agent": USER_AGENT}
        )

    def on_response(self, callback: Callable[[requests.Response], None]) -> None:
        """Call ``callback`` with every answer Smartrr gives, retries included."""
        self._session.hooks["response"].append(lambda response, **_: callback(response))

    def close(self) -> None:
        """Release the pooled connections."""
        self._session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Mapping[str, str] | None = None,
        repeatable: bool = True,
    ) -> Any:
        """Send one call with retries; return the decoded JSON body, or None when it is empty.

        A call that is not ``repeatable`` (an action: SKIP twice skips two
        orders) is retried only when Smartrr surely did not act on it: a
        refused connection or a 429. After a timeout or a 5xx it may have
        acted, so SmartrrUnavailable goes up at once and the caller re-reads
        the subscription before trying again.
        """
        what = f"{method} {path}"
        for attempt in range(self._max_attempts):
            last = attempt + 1 == self._max_attempts
            try:
                response = self._session.request(
                    method, self.base_url + path, params=params, json=json, timeout=self._timeout
                )
            except _TRANSIENT_ERRORS as exc:
                reason = "timed out" if isinstance(exc, requests.Timeout) else "is unreachable"
                if not repeatable and not _never_sent(exc):
                    raise SmartrrUnavailable(
                        f"Smartrr {reason} ({what}); it may have acted, so not repeated."
                    ) from None
                if last:
                    raise SmartrrUnavailable(
                        f"Smartrr {reason} ({what}) after {self._max_attempts} attempts."
                    ) from None
                self._sleep(self._backoff_delay(attempt))
                continue
            except requests.RequestException as exc:
                message = self._scrub(f"Could not call Smartrr ({what}): {type(exc).__name__}.")
                raise SmartrrError(message) from None
            with response:
                status = response.status_code
                if status in _RETRYABLE_STATUSES or status >= 500:
                    wait = _retry_after(response.headers.get("Retry-After"))
                    unsure = not repeatable and status != 429
                    if last or unsure or (wait is not None and wait > self._max_backoff):
                        raise SmartrrUnavailable(
                            f"Smartrr is unavailable ({what} answered {status}) "
                            f"after {attempt + 1} attempts.",
                            status,
                        )
                    self._sleep(wait if wait is not None else self._backoff_delay(attempt))
                    continue
                if status >= 300:
                    raise self._final_error(what, response)
                return self._decode(what, response)
        raise AssertionError("unreachable: the last attempt always returns or raises")

    def _backoff_delay(self, attempt: int) -> float:
        # Full jitter spreads retries from many workers instead of stampeding together.
        return random.uniform(0, min(self._max_backoff, self._backoff * 2**attempt))

    def _final_error(self, what: str, response: requests.Response) -> SmartrrError:
        status = response.status_code
        detail = self._scrub(_error_detail(response))
        if status in (401, 403):
            return SmartrrAuthError(
                f"Smartrr refused the API token ({status}). Create a token with Read & Write "
                "access to Subscriptions, Customers and Webhooks.",
                status,
            )
        if status == 404:
            return SmartrrNotFound(f"Smartrr found nothing at {what} (404).", status)
        suffix = f": {detail}" if detail else "."
        message = f"Smartrr rejected {what} ({status}){suffix}"
        if status in _REFUSALS:
            return SmartrrRejected(message, status, detail)
        sent = response.request.body or b""
        count_bad_request(what)
        return SmartrrBadRequest(
            message,
            status,
            detail,
            self._scrub(sent.decode(errors="replace") if isinstance(sent, bytes) else sent),
        )

    def _decode(self, what: str, response: requests.Response) -> Any:
        if not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError:
            raise SmartrrDataError(
                f"Smartrr answered {what} with something other than JSON."
            ) from None

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text


def _never_sent(exc: Exception) -> bool:
    """True when the request surely never reached Smartrr (no connection was made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _error_detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200]
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            if isinstance(body.get(key), str):
                return str(body[key])[:200]
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            first = errors[0]
            if isinstance(first, dict) and isinstance(first.get("message"), str):
                return str(first["message"])[:200]
            return str(first)[:200]
    return ""
