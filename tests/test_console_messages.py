"""Console messages: catalog, live preview, saving with validation, history, restore, reset."""

from __future__ import annotations

import pytest
from flask import Flask
from markupsafe import escape
from sqlalchemy import select
from sqlalchemy.orm import Session
from test_console_support import EMAIL, Console, signed_in

from bot.outbound.messages import template_source
from bot.rules.catalog import CATALOG
from bot.rules.templates import default_source
from bot.storage.db import get_db
from bot.storage.models import TemplateVersion

EDIT = "/console/messages/upcoming_order"
SAVED = "Saved: texts from now on use this wording."
GOOD = (
    "{{ shop_name }}: {{ first_name }}, {{ products }} ships {{ next_order_date }}. "
    "Reply STOP to opt out."
)


@pytest.fixture
def console(app: Flask) -> Console:
    return signed_in(app)


def source_in_force(app: Flask, name: str = "upcoming_order") -> str:
    with get_db(app).begin() as session:
        return template_source(session, name)


def test_catalog_lists_every_template_with_description_and_variables(console: Console) -> None:
    page = console.text("/console/messages")
    for spec in CATALOG.values():
        assert spec.title in page
        assert str(escape(spec.description)) in page
        assert f'href="/console/messages/{spec.name}"' in page
        for variable in spec.variables:
            assert f"<code>{variable}</code>" in page


def test_editor_shows_the_wording_in_force_rendered_with_sample_data(console: Console) -> None:
    page = console.text(EDIT)
    assert str(escape(default_source("upcoming_order"))) in page
    assert "Bean Box" in page  # the sample shop name in the preview
    assert 'id="preview-encoding">GSM-7<' in page
    assert 'id="preview-segments">' in page


def test_preview_names_ucs2_characters_and_counts_segments(console: Console) -> None:
    response = console.post(
        f"{EDIT}/preview", {"source": "Hi {{ first_name }} ☕ it’s time. Reply STOP to opt out."}
    )
    assert response.status_code == 200
    preview = response.get_json()
    assert preview["text"] == "Hi Sam ☕ it’s time. Reply STOP to opt out."
    assert preview["encoding"] == "UCS-2"
    assert preview["ucs2_chars"] == ["☕", "’"]
    assert preview["segments"] == 1
    assert preview["length"] == len(preview["text"])
    assert not preview["has_errors"]
    assert any("’ -> '" in problem["message"] for problem in preview["problems"])


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Hi {{ frist_name }}", "did you mean 'first_name'"),
        ("Hi {{ first_name ", "Syntax error"),
        ("Hi {{ first_name }}, see you", "opt out"),  # a warning only
    ],
)
def test_preview_reports_problems(console: Console, source: str, expected: str) -> None:
    problems = console.post(f"{EDIT}/preview", {"source": source}).get_json()["problems"]
    assert any(expected in problem["message"] for problem in problems), problems


def test_preview_needs_the_csrf_header_or_field(console: Console) -> None:
    response = console.client.post(f"{EDIT}/preview", data={"source": "Hi"})
    assert response.status_code == 400
    with_header = console.client.post(
        f"{EDIT}/preview", data={"source": "Hi"}, headers={"X-CSRFToken": console.token}
    )
    assert with_header.status_code == 200


def test_saving_puts_the_wording_in_force_with_author_and_note(
    app: Flask, console: Console, session: Session
) -> None:
    response = console.post(EDIT, {"source": GOOD, "note": "shorter"})
    assert response.status_code == 302
    assert "Saved" in console.text(EDIT)
    assert source_in_force(app) == GOOD
    version = session.scalars(select(TemplateVersion)).one()
    assert (version.name, version.author, version.note) == ("upcoming_order", EMAIL, "shorter")


def test_a_preview_answered_after_the_save_does_not_bring_its_message_back(
    console: Console,
) -> None:
    saved = console.post(EDIT, {"source": GOOD})
    assert saved.status_code == 302
    pending = console.client.get_cookie("session")  # the session holding "Saved"
    assert pending is not None
    assert SAVED in console.text(EDIT)  # shown, and so taken out of the session
    # The editor's preview, sent with the older cookie while the save went through,
    # answers last: it must not hand the browser that older session back.
    late = console.client.post(
        f"{EDIT}/preview",
        data={"source": GOOD},
        headers={"X-CSRFToken": console.token, "Cookie": f"session={pending.value}"},
    )
    assert late.status_code == 200
    assert "Set-Cookie" not in late.headers
    assert SAVED not in console.text(EDIT)


def test_saving_the_same_wording_again_adds_no_version(
    app: Flask, console: Console, session: Session
) -> None:
    console.post(EDIT, {"source": GOOD})
    console.post(EDIT, {"source": GOOD})
    assert "No changes to save" in console.text(EDIT)
    assert len(session.scalars(select(TemplateVersion)).all()) == 1


@pytest.mark.parametrize(
    "source",
    [
        "{{ config }}",
        "{{ ''.__class__ }}",
        "{{ shop_name.__class__.__mro__ }}",
        "{% for i in range(10**9) %}x{% endfor %}",
        "{{ cycler.__init__.__globals__ }}",
        "{% include 'x' %}",
        "Hi {{ first_name",
    ],
)
def test_template_injection_and_broken_templates_are_refused_on_save(
    app: Flask, console: Console, source: str
) -> None:
    response = console.post(EDIT, {"source": source})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Not saved" in page
    assert "problem-error" in page
    assert source_in_force(app) == default_source("upcoming_order")


@pytest.mark.parametrize("field", ["source", "note"])
def test_a_nul_character_is_refused_with_a_clear_error(
    app: Flask, console: Console, field: str
) -> None:
    form = {"source": GOOD, "note": "new wording", field: "Hi\x00"}
    response = console.post(EDIT, form)
    assert response.status_code == 400
    assert "NUL character" in response.get_data(as_text=True)
    assert source_in_force(app) == default_source("upcoming_order")


def test_history_restores_an_earlier_version_as_a_new_one(app: Flask, console: Console) -> None:
    first = GOOD
    second = GOOD.replace("ships", "goes out")
    console.post(EDIT, {"source": first, "note": "first try"})
    console.post(EDIT, {"source": second})
    page = console.text(EDIT)
    assert "first try" in page
    assert EMAIL in page
    assert "Restore version 1" in page

    with get_db(app).begin() as session:
        version_one = session.scalars(
            select(TemplateVersion.id).order_by(TemplateVersion.id).limit(1)
        ).one()
    response = console.post(f"{EDIT}/versions/{version_one}/restore")
    assert response.status_code == 302
    assert source_in_force(app) == first
    page = console.text(EDIT)
    assert "Version 1 restored" in page
    assert "restored version 1" in page
    assert "Restore version 2" in page


def test_reset_to_default_is_one_click_and_kept_in_the_history(
    app: Flask, console: Console
) -> None:
    console.post(EDIT, {"source": GOOD})
    assert console.post(f"{EDIT}/reset").status_code == 302
    assert source_in_force(app) == default_source("upcoming_order")
    page = console.text(EDIT)
    assert "reset to default" in page
    assert "The default wording is in force" in page


def test_unknown_templates_and_versions_are_404_pages(console: Console) -> None:
    assert console.get("/console/messages/nope").status_code == 404
    assert console.post("/console/messages/nope", {"source": "x"}).status_code == 404
    missing = console.post(f"{EDIT}/versions/999/restore")
    assert missing.status_code == 404
    assert "No such version" in missing.get_data(as_text=True)
