"""The Smartrr webhooks the bot registers: its URL, and `flask --app wsgi smartrr-webhooks`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from bot import create_app
from bot.config import Settings, from_environ
from bot.outbound.event_texts import topic_kind
from bot.smartrr.client import SmartrrClient
from bot.smartrr.contract import raw_document
from bot.smartrr.records import Webhook
from bot.smartrr.sandbox import SandboxServer
from bot.smartrr.webhooks import EVENT_TYPES, NotConfigured, hide_secret, webhook_url
from bot.storage.db import get_db

SECRET = "s3cret+with/odd&chars"
WEBHOOK_URL = "https://bot.example.com/smartrr/webhook?token=s3cret%2Bwith%2Fodd%26chars"


@pytest.fixture
def config(config: dict[str, Any]) -> dict[str, Any]:
    return {**config, "SMARTRR_WEBHOOK_SECRET": SECRET}


@pytest.fixture
def other_runner(config: dict[str, Any], app: Flask) -> Iterator[Any]:
    """A CLI runner of an app on the same database with some settings changed."""
    made: list[Flask] = []

    def build(**changes: Any) -> FlaskCliRunner:
        made.append(create_app({**config, **changes}))
        return made[-1].test_cli_runner()

    yield build
    for extra in made:
        extra.extensions["smartrr"].close()
        get_db(extra).dispose()


def settings(**environ: str) -> Settings:
    return Settings.from_config(from_environ(environ, "/x"))


def registered(sandbox: SandboxServer) -> list[Webhook]:
    with SmartrrClient(sandbox.url, sandbox.token or "") as client:
        return client.webhooks()


def test_every_event_type_is_one_the_document_names_and_the_bot_reads() -> None:
    enum = raw_document()["components"]["schemas"]["WebhookEventType"]["enum"]
    assert set(EVENT_TYPES) <= set(enum)
    assert len(set(EVENT_TYPES)) == len(EVENT_TYPES)
    understood = {kind: topic_kind(kind) for kind in EVENT_TYPES}
    assert understood["SUBSCRIPTION_AUTO_CANCEL"] == "cancelled"
    assert understood["SUBSCRIPTION_FAILED_PAYMENT"] == "payment_failed"
    assert understood["PAYMENT_METHOD_UPDATE"] == "payment_method_updated"


def test_the_url_carries_the_secret_where_the_webhook_reads_it() -> None:
    configured = settings(SMARTRR_WEBHOOK_SECRET=SECRET, PUBLIC_BASE_URL="https://bot.example.com/")

    assert webhook_url(configured) == WEBHOOK_URL
    assert hide_secret(f"refused {WEBHOOK_URL}", configured) == (
        "refused https://bot.example.com/smartrr/webhook?token=••••"
    )


def test_the_address_the_request_reached_stands_in_for_public_base_url() -> None:
    configured = settings(SMARTRR_WEBHOOK_SECRET="abc")

    assert webhook_url(configured, "https://bot.example.com/") == (
        "https://bot.example.com/smartrr/webhook?token=abc"
    )
    with pytest.raises(NotConfigured, match="Set PUBLIC_BASE_URL"):
        webhook_url(configured)
    with pytest.raises(NotConfigured, match=r"reached at http://127\.0\.0\.1:5000/ now"):
        webhook_url(configured, "http://127.0.0.1:5000/")


def test_listing_names_each_event_type_and_hides_the_secret(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["smartrr-webhooks"])

    assert result.exit_code == 0, result.output
    assert (
        "Smartrr webhooks to https://bot.example.com/smartrr/webhook?token=••••:" in result.output
    )
    for kind in EVENT_TYPES:
        assert f"  {kind}: missing" in result.output
    assert f"missing: {len(EVENT_TYPES)} (create them with" in result.output
    assert "s3cret" not in result.output


def test_register_creates_the_missing_webhooks_and_a_second_run_none(
    runner: FlaskCliRunner, sandbox: SandboxServer
) -> None:
    with SmartrrClient(sandbox.url, sandbox.token or "") as client:
        client.create_webhook("SUBSCRIPTION_SKIP", WEBHOOK_URL)

    first = runner.invoke(args=["smartrr-webhooks", "register"])
    second = runner.invoke(args=["smartrr-webhooks", "register"])
    listing = runner.invoke(args=["smartrr-webhooks"])

    assert first.exit_code == 0, first.output
    assert first.output == f"registered {len(EVENT_TYPES) - 1} webhooks (1 already registered)\n"
    assert second.output == f"registered 0 webhooks ({len(EVENT_TYPES)} already registered)\n"
    hooks = registered(sandbox)
    assert sorted(hook.event_type for hook in hooks) == sorted(EVENT_TYPES)
    assert {hook.url for hook in hooks} == {WEBHOOK_URL}
    assert "missing: none" in listing.output
    assert ": missing" not in listing.output


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"SMARTRR_WEBHOOK_SECRET": None}, "Error: Set SMARTRR_WEBHOOK_SECRET"),
        ({"PUBLIC_BASE_URL": None}, "Error: Set PUBLIC_BASE_URL to the https:// address"),
    ],
    ids=["no-secret", "no-public-url"],
)
@pytest.mark.parametrize("args", [["smartrr-webhooks"], ["smartrr-webhooks", "register"]])
def test_without_the_secret_or_public_base_url_it_says_what_to_set(
    other_runner: Any,
    sandbox: SandboxServer,
    changes: dict[str, Any],
    message: str,
    args: list[str],
) -> None:
    result = other_runner(**changes).invoke(args=args)

    assert result.exit_code == 1
    assert result.output.startswith(message)
    assert result.output.count("\n") == 1
    assert not [call for call in sandbox.store.calls if call[1] == "/vendor/webhook"]


def test_smartrr_refusing_is_one_line_and_exit_1(
    runner: FlaskCliRunner, sandbox: SandboxServer
) -> None:
    sandbox.store.fail_next(1, status=401)

    result = runner.invoke(args=["smartrr-webhooks", "register"])

    assert result.exit_code == 1
    assert result.output.startswith("Error: Smartrr refused the API token (401).")
    assert result.output.count("\n") == 1
    assert registered(sandbox) == []
