"""Console accounts: password hashing, lockout after failures, cookie and CSRF settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from bot import webhooks
from bot.config import Settings
from bot.storage.models import User

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 10
SESSION_LIFETIME = timedelta(hours=12)
#: The only pages with a sign-in, and so the only ones with a session.
CONSOLE_PATH = "/console"

csrf = CSRFProtect()


@dataclass(frozen=True)
class SignIn:
    """The result of a sign-in attempt: a user id, or why not."""

    user_id: int | None
    locked_until: datetime | None = None


def normalize_email(email: str) -> str:
    """Emails are compared trimmed and lower-cased."""
    return email.strip().lower()


def password_problem(password: str) -> str | None:
    """Why a new password is not acceptable, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    return None


@cache
def _decoy_hash() -> str:
    return generate_password_hash("decoy password for unknown accounts")


def authenticate(session: Session, email: str, password: str, now: datetime) -> SignIn:
    """Check a password, counting failures; the 5th failure in a row locks for 15 minutes."""
    user = session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        # Spend the same time as a real check, so timing does not reveal accounts.
        check_password_hash(_decoy_hash(), password)
        return SignIn(None)
    if user.locked_until is not None and user.locked_until > now:
        return SignIn(None, user.locked_until)
    if not check_password_hash(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILURES:
            user.failed_logins = 0
            user.locked_until = now + LOCKOUT
            return SignIn(None, user.locked_until)
        return SignIn(None)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    return SignIn(user.id)


def set_password(session: Session, email: str, password: str) -> bool:
    """Create the account or replace its password (and lift a lockout); True when created."""
    address = normalize_email(email)
    user = session.scalar(select(User).where(User.email == address))
    created = user is None
    if user is None:
        user = User(email=address, password_hash="", failed_logins=0)
        session.add(user)
    user.password_hash = generate_password_hash(password)
    user.failed_logins = 0
    user.locked_until = None
    session.flush()
    return created


class ConsoleSessions(SecureCookieSessionInterface):
    """Signed-cookie sessions for the console only.

    Webhooks and health checks have no sign-in: they skip verifying a cookie and
    never write one, which also keeps that work off the busiest path.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """The console's session; None elsewhere, so Flask stands in its empty null session."""
        if not request.path.startswith(CONSOLE_PATH):
            return None
        return super().open_session(app, request)


def is_development(app: Flask, settings: Settings) -> bool:
    """Debug, tests, or the local sandbox demo with no public URL: plain HTTP is expected."""
    return app.debug or app.testing or (settings.sandbox and not settings.public_base_url)


def configure(app: Flask, settings: Settings) -> None:
    """Harden the session cookie and turn on CSRF checks for every form but the webhooks."""
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=not is_development(app, settings),
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        # Write the cookie only when the session changed. The last cookie written wins,
        # and a request still in flight from a page being left (the editor's preview)
        # would otherwise bring back a message already shown. A sign-in therefore lasts
        # SESSION_LIFETIME from signing in, however busy.
        SESSION_REFRESH_EACH_REQUEST=False,
        # The token lives as long as the session: a long edit must not fail on save.
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.session_interface = ConsoleSessions()
    csrf.init_app(app)
    # Webhooks are authenticated by their signatures, and their callers have no session.
    csrf.exempt(webhooks.bp)
