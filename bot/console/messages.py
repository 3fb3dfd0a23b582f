"""Message templates: the catalog, editing with a live preview, versions, restore and reset."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from bot.console.common import account
from bot.outbound.messages import template_source
from bot.rules.catalog import CATALOG, COMMON_VARIABLES, TemplateSpec, sample_variables
from bot.rules.segments import count_segments
from bot.rules.templates import MAX_SOURCE_LENGTH, Problem, default_source, render, validate
from bot.storage.db import get_db
from bot.storage.models import TemplateVersion

bp = Blueprint("messages", __name__, url_prefix="/messages")

MAX_NOTE_LENGTH = 200


@dataclass(frozen=True)
class Preview:
    """What a phone would receive with the sample values, and what it costs."""

    text: str
    encoding: str
    length: int
    segments: int
    ucs2_chars: tuple[str, ...]
    problems: tuple[Problem, ...]

    @property
    def has_errors(self) -> bool:
        """True when the template cannot be saved."""
        return any(problem.level == "error" for problem in self.problems)


@dataclass(frozen=True)
class Version:
    id: int
    number: int
    source: str
    author: str
    note: str | None
    created_at: datetime


def preview(name: str, source: str) -> Preview:
    """Validate ``source`` and render it with the sample values of template ``name``."""
    problems = tuple(validate(name, source))
    errors = any(problem.level == "error" for problem in problems)
    text = "" if errors else render(source, sample_variables(name))
    counted = count_segments(text)
    return Preview(
        text, counted.encoding, counted.length, counted.segments, counted.ucs2_chars, problems
    )


def versions(session: Session, name: str) -> list[Version]:
    """Saved versions of ``name``, newest (the one in force) first, numbered from 1."""
    rows = session.scalars(
        select(TemplateVersion).where(TemplateVersion.name == name).order_by(TemplateVersion.id)
    ).all()
    numbered = [
        Version(row.id, number, row.source, row.author, row.note, row.created_at)
        for number, row in enumerate(rows, 1)
    ]
    return numbered[::-1]


def save_version(session: Session, name: str, source: str, author: str, note: str | None) -> bool:
    """Put ``source`` in force as a new version; False when it is already the wording in force."""
    if source == template_source(session, name):
        return False
    session.add(TemplateVersion(name=name, source=source, author=author, note=note or None))
    return True


def _spec_or_404(name: str) -> TemplateSpec:
    spec = CATALOG.get(name)
    if spec is None:
        abort(404, "No such message template.")
    return spec


def _source_from_form() -> str:
    # Browsers send CRLF line ends from a textarea; templates are stored with LF.
    return request.form.get("source", "").replace("\r\n", "\n")[: MAX_SOURCE_LENGTH + 1]


@bp.get("")
def index() -> str:
    """Every template with its description, variables and last edit."""
    with get_db().read() as db:
        latest = {
            row.name: row
            for row in db.scalars(
                select(TemplateVersion).where(
                    TemplateVersion.id.in_(
                        select(func.max(TemplateVersion.id)).group_by(TemplateVersion.name)
                    )
                )
            )
        }
        edited = {name: (row.author, row.created_at, row.note) for name, row in latest.items()}
    return render_template(
        "console/messages.html",
        specs=list(CATALOG.values()),
        common=COMMON_VARIABLES,
        edited=edited,
    )


def _edit_page(name: str, source: str, result: Preview, status: int = 200) -> tuple[str, int]:
    spec = _spec_or_404(name)
    with get_db().read() as db:
        history = versions(db, name)
    page = render_template(
        "console/message_edit.html",
        spec=spec,
        common=COMMON_VARIABLES,
        source=source,
        preview=result,
        history=history,
        is_default=source == default_source(name),
        samples=sample_variables(name),
    )
    return page, status


@bp.get("/<name>")
def edit(name: str) -> tuple[str, int]:
    """The editor, showing the wording in force."""
    _spec_or_404(name)
    with get_db().read() as db:
        source = template_source(db, name)
    return _edit_page(name, source, preview(name, source))


@bp.post("/<name>/preview")
def live_preview(name: str) -> Response:
    """JSON preview for the editor's script."""
    _spec_or_404(name)
    result = preview(name, _source_from_form())
    return jsonify(asdict(result) | {"has_errors": result.has_errors})


@bp.post("/<name>")
def save(name: str) -> Response | tuple[str, int]:
    """Save a new version; refused while the template has errors."""
    _spec_or_404(name)
    source = _source_from_form()
    result = preview(name, source)
    if result.has_errors:
        flash("Not saved: fix the errors below first.", "error")
        return _edit_page(name, source, result, 400)
    note = request.form.get("note", "").strip()[:MAX_NOTE_LENGTH]
    with get_db().begin() as db:
        saved = save_version(db, name, source, account().email, note)
    flash("Saved: texts from now on use this wording." if saved else "No changes to save.")
    return redirect(url_for(".edit", name=name))


@bp.post("/<name>/versions/<int:version_id>/restore")
def restore(name: str, version_id: int) -> Response | tuple[str, int]:
    """Put an earlier version back in force, as a new version."""
    _spec_or_404(name)
    with get_db().begin() as db:
        found = next((v for v in versions(db, name) if v.id == version_id), None)
        if found is None:
            abort(404, "No such version.")
        result = preview(name, found.source)
        if not result.has_errors:
            note = f"restored version {found.number}"
            saved = save_version(db, name, found.source, account().email, note)
    if result.has_errors:
        flash(f"Version {found.number} cannot be restored: it has errors.", "error")
        return _edit_page(name, found.source, result, 400)
    flash(f"Version {found.number} restored." if saved else "That version is already in force.")
    return redirect(url_for(".edit", name=name))


@bp.post("/<name>/reset")
def reset(name: str) -> Response:
    """Put the default wording back in force (kept in the history like any save)."""
    _spec_or_404(name)
    with get_db().begin() as db:
        saved = save_version(db, name, default_source(name), account().email, "reset to default")
    flash("Reset to the default wording." if saved else "The default wording is already in force.")
    return redirect(url_for(".edit", name=name))
