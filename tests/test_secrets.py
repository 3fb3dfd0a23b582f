"""Tokens come from the environment only and never reach a page or a log line."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from conftest import SEED_NOW, Phone
from flask import Flask
from freezegun import freeze_time
from test_console_support import signed_in
from twilio_fake import AUTH_TOKEN

from bot.smartrr.sandbox import SandboxServer
from bot.worker import Worker

PAGES = (
    "/console/",
    "/console/messages",
    "/console/upcoming",
    "/console/conversations",
    "/console/inbox",
    "/console/settings",
    "/console/setup",
)


def test_no_console_page_shows_a_token(app: Flask, sandbox: SandboxServer) -> None:
    console = signed_in(app)
    for path in PAGES:
        page = console.text(path)
        assert AUTH_TOKEN not in page, path
        assert str(sandbox.token) not in page, path


def test_a_whole_loop_logs_no_token(
    app: Flask, sandbox: SandboxServer, phone: Phone, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with freeze_time(SEED_NOW + timedelta(hours=3)):
        worker = Worker(app)
        worker.sync()
        worker.dispatch()
        phone.text("+13125794420", "SKIP")
        worker.inbox()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "sent message" in logged  # the loop did run and log
    assert AUTH_TOKEN not in logged
    assert str(sandbox.token) not in logged
