"""Helpers shared by the console tests (no tests here): a signed-in test client that sends
the CSRF token with every form, as the console's own pages do, and Smartrr's own settings."""

from __future__ import annotations

import re
from typing import Any

import requests
from flask import Flask
from flask.testing import FlaskClient

from bot.smartrr.sandbox import SandboxServer

EMAIL = "owner@beanclub.example"
PASSWORD = "correct horse battery"
_TOKEN = re.compile(r'name="csrf-token" content="([^"]+)"')


def csrf_token(client: FlaskClient, path: str = "/console/login") -> str:
    """The CSRF token a page of ``path`` hands the browser."""
    match = _TOKEN.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def create_account(app: Flask, email: str = EMAIL, password: str = PASSWORD) -> None:
    """Make an account through the create-admin command."""
    result = app.test_cli_runner().invoke(args=["create-admin", email, "--password", password])
    assert result.exit_code == 0, result.output


class Console:
    """A browser-like client of the console: signed in, posting forms with their token."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.token = ""

    def sign_in(self, email: str = EMAIL, password: str = PASSWORD) -> Any:
        response = self.client.post(
            "/console/login",
            data={"email": email, "password": password, "csrf_token": csrf_token(self.client)},
        )
        # Signing in starts a new session, and with it a new token.
        self.token = csrf_token(self.client)
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, **kwargs)

    def text(self, path: str, **kwargs: Any) -> str:
        response = self.client.get(path, **kwargs)
        assert response.status_code == 200, response.get_data(as_text=True)
        return str(response.get_data(as_text=True))

    def post(self, path: str, data: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return self.client.post(path, data={**(data or {}), "csrf_token": self.token}, **kwargs)


def signed_in(app: Flask) -> Console:
    """A console client signed in to a fresh account."""
    create_account(app)
    console = Console(app.test_client())
    response = console.sign_in()
    assert response.status_code == 302, response.get_data(as_text=True)
    return console


def upcoming_text_in_smartrr(sandbox: SandboxServer, *, on: bool) -> None:
    """Switch Smartrr's own upcoming-order text, through the document's POST /vendor/phone."""
    answer = requests.post(
        f"{sandbox.url}/vendor/phone",
        json={"phoneNumber": "+18885550123", "twilioAccountSid": "", "sendUpcomingOrderSms": on},
        headers={"x-smartrr-access-token": sandbox.token or ""},
        timeout=5,
    )
    answer.raise_for_status()
