"""Signing in and out, the create-admin command and the sandbox's demo login."""

from __future__ import annotations

import secrets

import click
from flask import Blueprint, Flask, flash, redirect, render_template, request, session, url_for
from flask.cli import with_appcontext
from werkzeug.wrappers import Response

from bot.config import Settings
from bot.console.common import safe_next, when
from bot.console.security import authenticate, normalize_email, password_problem, set_password
from bot.storage.db import get_db
from bot.storage.models import utcnow

bp = Blueprint("auth", __name__)

DEMO_EMAIL = "demo@example.com"


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int] | str:
    """Sign in with email and password."""
    target = safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("console/login.html", next=target, email="")
    email = request.form.get("email", "")
    with get_db().begin() as db:
        result = authenticate(db, email, request.form.get("password", ""), utcnow())
    if result.user_id is None:
        error = (
            f"Too many failed attempts. Try again after {when(result.locked_until)}."
            if result.locked_until
            else "That email and password do not match an account."
        )
        page = render_template("console/login.html", next=target, email=email, error=error)
        return page, 429 if result.locked_until else 401
    # A fresh session on sign-in: nothing set before it (an attacker's cookie) carries over.
    session.clear()
    session.permanent = True
    session["user_id"] = result.user_id
    return redirect(target)


@bp.post("/logout")
def logout() -> Response:
    """Sign out."""
    session.clear()
    flash("You are signed out.")
    return redirect(url_for("console.auth.login"))


@click.command("create-admin")
@click.argument("email")
@click.password_option(help="Prompted for (twice) when not given.")
@with_appcontext
def create_admin_command(email: str, password: str) -> None:
    """Create a console account, or set a new password for an existing one."""
    if "@" not in email:
        raise click.BadParameter("expected an email address", param_hint="EMAIL")
    problem = password_problem(password)
    if problem:
        raise click.BadParameter(problem, param_hint="--password")
    with get_db().begin() as db:
        created = set_password(db, email, password)
    address = normalize_email(email)
    click.echo(f"created account {address}" if created else f"new password set for {address}")


def demo_login(app: Flask) -> tuple[str, str] | None:
    """In sandbox mode, give the demo account a fresh random password and return the login."""
    settings: Settings = app.extensions["settings"]
    if not settings.sandbox:
        return None
    password = secrets.token_urlsafe(12)
    with get_db(app).begin() as db:
        set_password(db, DEMO_EMAIL, password)
    return DEMO_EMAIL, password
