"""Operator commands: `flask --app wsgi worker | serve | sync | plan | sending |
smartrr-webhooks | sandbox reset`."""

from __future__ import annotations

import contextlib
import threading

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from werkzeug.serving import run_simple

from bot.console.auth import demo_login
from bot.smartrr.client import get_client
from bot.smartrr.errors import SmartrrError
from bot.smartrr.sandbox import DatabaseSandboxStore
from bot.smartrr.webhooks import EVENT_TYPES, NotConfigured, hide_secret, register, survey
from bot.smartrr.webhooks import webhook_url as smartrr_webhook_url
from bot.storage.db import get_db
from bot.storage.models import Shop
from bot.storage.shop import SHOP_ID, ensure_shop, sending_default
from bot.worker import Worker, build_scheduler, listen_for_work


@click.command("worker")
@with_appcontext
def worker_command() -> None:
    """Run the scheduler only (sync, plan, dispatch, inbox); safe to start many times."""
    click.echo("worker: starting the scheduler (Ctrl-C to stop)")
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    scheduler = build_scheduler(app, blocking=True)
    stop = threading.Event()
    listen_for_work(app, stop)
    try:
        with contextlib.suppress(KeyboardInterrupt, SystemExit):
            scheduler.start()
    finally:
        stop.set()


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@with_appcontext
def serve_command(host: str, port: int) -> None:
    """Run the web app and the scheduler in one process (the embedded default)."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    scheduler = build_scheduler(app, blocking=False)
    scheduler.start()
    stop = threading.Event()
    listen_for_work(app, stop)
    click.echo(f"serving on http://{host}:{port} with the scheduler in this process")
    login = demo_login(app)
    if login:
        click.echo(f"console: http://{host}:{port}/console/ (demo login: {login[0]} / {login[1]})")
    try:
        # app.run() refuses to block inside a flask CLI command; run_simple is what it wraps.
        run_simple(host, port, app, threaded=True, use_reloader=False)
    finally:
        stop.set()
        scheduler.shutdown(wait=False)


@click.command("sync")
@with_appcontext
def sync_command() -> None:
    """Pull subscriptions from Smartrr once."""
    result = Worker(current_app._get_current_object()).sync()  # type: ignore[attr-defined]
    click.echo(f"synced {result.synced} subscriptions ({result.gone} no longer listed)")


@click.command("plan")
@with_appcontext
def plan_command() -> None:
    """Create, move and cancel upcoming-order notices once."""
    result = Worker(current_app._get_current_object()).plan()  # type: ignore[attr-defined]
    click.echo(
        f"planned: {result.scheduled} scheduled, {result.expired} expired, "
        f"{result.cancelled} cancelled"
    )


@click.command("sending")
@click.argument("switch", required=False, type=click.Choice(["on", "off"]))
@with_appcontext
def sending_command(switch: str | None) -> None:
    """Turn bot-initiated texts on or off (replies always go); alone, print the state."""
    settings = current_app.extensions["settings"]
    database = get_db()
    if switch is None:
        with database.read() as session:
            shop = session.get(Shop, SHOP_ID)
            on = shop.sending_enabled if shop is not None else sending_default(settings)
    else:
        on = switch == "on"
        with database.begin() as session:
            ensure_shop(session, settings).sending_enabled = on
    click.echo(
        "sending: on (reminders and event texts go out)"
        if on
        else "sending: off (dry run: texts are planned, not sent; replies still go out)"
    )


@click.command("smartrr-webhooks")
@click.argument("action", required=False, type=click.Choice(["register"]))
@with_appcontext
def smartrr_webhooks_command(action: str | None) -> None:
    """List the bot's Smartrr webhooks and what is missing; `register` creates the missing."""
    settings = current_app.extensions["settings"]
    client = get_client()
    try:
        url = smartrr_webhook_url(settings)
        if action == "register":
            created, existing = register(client, url)
            click.echo(f"registered {len(created)} webhooks ({len(existing)} already registered)")
            return
        found = survey(client, url)
    except NotConfigured as exc:
        raise click.ClickException(str(exc)) from None
    except SmartrrError as exc:
        raise click.ClickException(hide_secret(str(exc), settings)) from None
    click.echo(f"Smartrr webhooks to {hide_secret(url, settings)}:")
    for kind in EVENT_TYPES:
        click.echo(f"  {kind}: {'registered' if kind in found.registered else 'missing'}")
    for hook in found.stale:
        shown = hide_secret(hook.url, settings)
        click.echo(f"  {hook.event_type} to {shown}: an old secret, delete it in Smartrr")
    if found.missing:
        click.echo(
            f"missing: {len(found.missing)} "
            "(create them with `flask --app wsgi smartrr-webhooks register`)"
        )
    else:
        click.echo("missing: none")


@click.group("sandbox")
def sandbox_group() -> None:
    """The built-in Smartrr sandbox, which stands in while no SMARTRR_API_TOKEN is set."""


@sandbox_group.command("reset")
@with_appcontext
def sandbox_reset_command() -> None:
    """Replace the sandbox's data with fresh demo subscribers, for every process at once."""
    if not current_app.extensions["settings"].sandbox:
        raise click.ClickException(
            "SMARTRR_API_TOKEN is set: the bot talks to Smartrr, and there is no sandbox to reset."
        )
    count = DatabaseSandboxStore(get_db()).reset()
    click.echo(
        f"sandbox: reset to {count} demo subscriptions billing 2 to 10 days from now, "
        "the default cancellation reasons and SMS settings, no webhooks "
        "(the bot's own copy follows at its next sync)"
    )


def init_app(app: Flask) -> None:
    """Register the commands."""
    for command in (
        worker_command,
        serve_command,
        sync_command,
        plan_command,
        sending_command,
        smartrr_webhooks_command,
        sandbox_group,
    ):
        app.cli.add_command(command)
