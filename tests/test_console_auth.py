"""Console sign-in: hashed passwords, lockout, CSRF, cookie flags, the admin command."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from conftest import SEED_NOW, Phone
from flask import Flask, session
from flask.sessions import NullSession
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session
from test_console_support import EMAIL, PASSWORD, Console, create_account, csrf_token

from bot import create_app
from bot.console.auth import DEMO_EMAIL, demo_login
from bot.storage.db import get_db
from bot.storage.models import InboundMessage, Shop, User

PAGES = (
    "/console/",
    "/console/messages",
    "/console/messages/upcoming_order",
    "/console/upcoming",
    "/console/conversations",
    "/console/conversations/1",
    "/console/inbox",
    "/console/settings",
)


@pytest.mark.parametrize("path", PAGES)
def test_every_page_sends_a_signed_out_visitor_to_sign_in(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/console/login?next=")


def test_password_is_stored_hashed_and_signing_in_returns_to_the_page_asked_for(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    create_account(app)
    response = client.post(
        "/console/login",
        data={
            "email": " Owner@BeanClub.example ",
            "password": PASSWORD,
            "next": "/console/inbox",
            "csrf_token": csrf_token(client),
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/inbox"
    assert client.get("/console/inbox").status_code == 200
    user = session.scalars(select(User)).one()
    assert PASSWORD not in user.password_hash
    assert user.password_hash.startswith(("scrypt:", "pbkdf2:"))


@pytest.mark.parametrize(
    ("email", "password"), [(EMAIL, "wrong password"), ("nobody@example.com", PASSWORD)]
)
def test_a_wrong_password_and_an_unknown_email_get_the_same_refusal(
    app: Flask, client: FlaskClient, email: str, password: str
) -> None:
    create_account(app)
    response = client.post(
        "/console/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 401
    assert "do not match an account" in response.get_data(as_text=True)
    assert client.get("/console/inbox").status_code == 302


def test_five_failures_lock_the_account_for_fifteen_minutes(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    create_account(app)

    def attempt(password: str) -> Any:
        return client.post(
            "/console/login",
            data={"email": EMAIL, "password": password, "csrf_token": csrf_token(client)},
        )

    with freeze_time(SEED_NOW) as clock:
        for _ in range(4):
            assert attempt("guess").status_code == 401
        locked = attempt("guess")
        assert locked.status_code == 429
        assert "Too many failed attempts" in locked.get_data(as_text=True)
        # Even the right password is refused while locked.
        assert attempt(PASSWORD).status_code == 429

        clock.move_to(SEED_NOW + timedelta(minutes=14, seconds=59))
        assert attempt(PASSWORD).status_code == 429

        clock.move_to(SEED_NOW + timedelta(minutes=15))
        assert attempt(PASSWORD).status_code == 302
    user = session.scalars(select(User)).one()
    assert (user.failed_logins, user.locked_until) == (0, None)
    assert user.last_login_at == SEED_NOW + timedelta(minutes=15)


def test_signing_in_starts_a_fresh_session(app: Flask, client: FlaskClient) -> None:
    create_account(app)
    with client.session_transaction("/console/") as cookie_session:
        cookie_session["planted"] = "by an attacker"
        cookie_session["user_id"] = 999
    Console(client).sign_in()
    with client.session_transaction("/console/") as cookie_session:
        assert "planted" not in cookie_session
        assert cookie_session["user_id"] == 1


def test_forms_without_the_csrf_token_are_refused_and_change_nothing(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    create_account(app)
    refused = client.post("/console/login", data={"email": EMAIL, "password": PASSWORD})
    assert refused.status_code == 400
    assert "expired or did not come from this site" in refused.get_data(as_text=True)

    console = Console(client)
    console.sign_in()
    form = {"name": "Hacked", "account_page_url": "https://evil.example", "time_zone": "UTC"}
    assert client.post("/console/settings", data=form).status_code == 400
    wrong = {**form, "csrf_token": "not-the-token"}
    assert client.post("/console/settings", data=wrong).status_code == 400
    assert session.scalars(select(Shop)).all() == []


def test_signed_twilio_webhooks_need_no_csrf_token(phone: Phone, session: Session) -> None:
    assert phone.text("+13125794420", "HELP").status_code == 200
    assert session.scalars(select(InboundMessage)).one().body == "HELP"


def test_sign_in_never_redirects_to_another_site(app: Flask, client: FlaskClient) -> None:
    create_account(app)
    for target in ("https://evil.example/console/", "//evil.example/console/", "/outbox"):
        response = client.post(
            "/console/login",
            data={
                "email": EMAIL,
                "password": PASSWORD,
                "next": target,
                "csrf_token": csrf_token(client),
            },
        )
        assert response.headers["Location"] == "/console/"


def test_signing_out_ends_the_session(app: Flask, client: FlaskClient) -> None:
    create_account(app)
    console = Console(client)
    console.sign_in()
    assert console.post("/console/logout").status_code == 302
    assert client.get("/console/inbox").status_code == 302


@pytest.mark.parametrize("path", ["/sms/inbound", "/sms/status", "/smartrr/webhook", "/healthz"])
def test_only_the_console_opens_a_session(app: Flask, client: FlaskClient, path: str) -> None:
    create_account(app)
    Console(client).sign_in()
    cookie = signed_in_cookie(client)

    with app.test_request_context(path, method="POST", headers=cookie):
        assert isinstance(session, NullSession)
        assert "user_id" not in session
    with app.test_request_context("/console/", headers=cookie):
        assert session["user_id"] == 1


def signed_in_cookie(client: FlaskClient) -> dict[str, str]:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return {"Cookie": f"session={cookie.value}"}


def test_session_cookie_is_http_only_and_lax_and_secure_outside_tests(
    app: Flask, config: dict[str, Any]
) -> None:
    for testing, secure in ((True, False), (False, True)):
        app = create_app({**config, "TESTING": testing})
        response = app.test_client().get("/console/login")
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie
        assert ("Secure" in cookie) is secure
        get_db(app).dispose()


def test_create_admin_prompts_for_the_password_and_resets_an_existing_one(
    app: Flask, client: FlaskClient
) -> None:
    runner = app.test_cli_runner()
    created = runner.invoke(args=["create-admin", EMAIL], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert created.exit_code == 0, created.output
    assert f"created account {EMAIL}" in created.output

    short = runner.invoke(args=["create-admin", EMAIL, "--password", "short"])
    assert short.exit_code != 0
    assert "at least 10 characters" in short.output

    new_password = "a brand new passphrase"
    reset = runner.invoke(args=["create-admin", EMAIL, "--password", new_password])
    assert f"new password set for {EMAIL}" in reset.output
    assert Console(client).sign_in(password=PASSWORD).status_code == 401
    assert Console(client).sign_in(password=new_password).status_code == 302


def test_demo_login_exists_only_in_sandbox_mode_and_works(
    app: Flask, config: dict[str, Any]
) -> None:
    assert demo_login(app) is None  # a Smartrr token is configured

    sandbox_app = create_app({**config, "SMARTRR_API_TOKEN": None})
    login = demo_login(sandbox_app)
    assert login is not None
    email, password = login
    assert email == DEMO_EMAIL
    assert len(password) >= 16
    client = sandbox_app.test_client()
    assert Console(client).sign_in(email, password).status_code == 302
    # Each start prints a new one-time password; the old one stops working.
    assert demo_login(sandbox_app) != login
    assert Console(sandbox_app.test_client()).sign_in(email, password).status_code == 401
    get_db(sandbox_app).dispose()
