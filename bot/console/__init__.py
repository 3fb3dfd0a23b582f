"""The merchant console under /console/: one blueprint with a nested one per area (sign-in,
overview, messages, upcoming, conversations, inbox, settings, setup, phone simulator)."""

from __future__ import annotations

from flask import Blueprint, Flask, abort, g, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from bot.console import (
    auth,
    conversations,
    inbox,
    messages,
    overview,
    queue,
    security,
    settings,
    setup,
    simulator,
)
from bot.console.common import app_settings, require_account, when

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    static_folder="static",
    static_url_path="/static",
)
bp.before_request(require_account)


@bp.before_request
def refuse_nul() -> None:
    """A NUL character can be neither stored (PostgreSQL text) nor texted: refuse the form."""
    if any("\x00" in value for _, value in request.form.items(multi=True)):
        abort(400, "The form holds a NUL character, which a text cannot carry. Remove it.")


bp.add_app_template_filter(when, "when")
for area in (auth, overview, messages, queue, conversations, inbox, settings, setup, simulator):
    bp.register_blueprint(area.bp)


@bp.context_processor
def layout() -> dict[str, object]:
    """What the layout needs on every page (the guard may not have run on error pages)."""
    return {
        "sandbox": app_settings().sandbox,
        "shop_title": g.get("shop_name") or app_settings().shop_name,
        "signed_in": g.get("account") is not None,
    }


@bp.errorhandler(CSRFError)
def csrf_refused(exc: CSRFError) -> tuple[str, int]:
    """A form without a valid token: explain, do not act."""
    message = "This form has expired or did not come from this site. Go back, reload and retry."
    return render_template("console/error.html", code=400, message=message), 400


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> tuple[str, int]:
    """Errors inside the console are pages, not JSON."""
    code = exc.code or 500
    return render_template("console/error.html", code=code, message=exc.description), code


def init_app(app: Flask) -> None:
    """Harden sessions, turn on CSRF, register the console and the create-admin command."""
    security.configure(app, app.extensions["settings"])
    app.register_blueprint(bp)
    app.cli.add_command(auth.create_admin_command)
