"""SMS keyword bot for Shopify merchants on Smartrr."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from flask_migrate import Migrate
from werkzeug.middleware.proxy_fix import ProxyFix

from bot import cli, console, webhooks
from bot.config import Settings, from_environ, load_environ, secret_key
from bot.ops import errors, headers, logs, metrics, pages
from bot.outbound import sms
from bot.smartrr import client as smartrr
from bot.storage import db

ROOT = Path(__file__).resolve().parent.parent
#: Webhook bodies are small; anything larger is refused with 413.
MAX_BODY_BYTES = 64 * 1024


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: configuration, database, integrations, blueprints, commands."""
    app = Flask(__name__, instance_relative_config=True, template_folder=str(ROOT / "templates"))
    app.config.update(from_environ(load_environ(), app.instance_path))
    app.config.update(test_config or {})
    app.config["SECRET_KEY"] = secret_key(app.config)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    logs.init_app(app)
    settings = Settings.from_config(app.config)
    app.extensions["settings"] = settings
    database = db.init_app(app)
    Migrate(app, database, directory=str(ROOT / "migrations"), render_as_batch=True)
    sms.init_app(app, settings)
    smartrr.init_app(app, settings, database)
    register_blueprints(app)
    console.init_app(app)
    metrics.init_app(app)
    headers.init_app(app, settings)
    register_proxy(app)
    errors.init_app(app)
    cli.init_app(app)
    return app


def register_proxy(app: Flask) -> None:
    """Trust PROXY_FIX_HOPS proxies in front of us for scheme, host and client address."""
    hops = int(app.config["PROXY_FIX_HOPS"])
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]


def register_blueprints(app: Flask) -> None:
    """Webhooks and pages."""
    webhooks.init_app(app)
    app.register_blueprint(pages.bp)
