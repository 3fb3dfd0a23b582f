"""the "Action rejected" reply becomes one template per reason; merchant edits carry over

The reply that said why a change could not be made was one template with a
``{{ reason }}`` sentence written in code. Each reason is now a template of its own.
A merchant who had edited "Action rejected" keeps that wording: each new template
starts from it, with the reason's sentence in place of ``{{ reason }}``.

Revision ID: d5a8e3f0b217
Revises: c41e7d2b9a60
Create Date: 2026-12-04 21:20:00

"""

import re
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "d5a8e3f0b217"
down_revision = "c41e7d2b9a60"
branch_labels = None
depends_on = None

#: Each new template and the sentence ``{{ reason }}`` held for it.
REASONS = {
    "not_paused": "Your subscription is not paused.",
    "already_paused": "Your subscription is paused. Reply RESUME to restart it.",
    "too_late": "This order can no longer be changed by text.",
    "subscription_gone": "We could not find this subscription any more.",
    "subscription_ended": "This subscription has ended.",
    "payment_on_hold": "This subscription is on hold after a payment did not go through. "
    "Please update your payment details at {{ account_page_link }}.",
}
NOTE = "carried over from Action rejected"
REASON = re.compile(r"\{\{-?\s*reason\s*-?\}\}")

versions = sa.table(
    "template_versions",
    sa.column("id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("source", sa.Text),
    sa.column("author", sa.String),
    sa.column("note", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def upgrade():
    bind = op.get_bind()
    edited = bind.execute(
        sa.select(versions.c.source, versions.c.author)
        .where(versions.c.name == "action_rejected")
        .order_by(versions.c.created_at.desc(), versions.c.id.desc())
        .limit(1)
    ).first()
    if edited is None:
        return
    now = datetime.now(UTC)
    op.bulk_insert(
        versions,
        [
            {
                "name": name,
                "source": REASON.sub(lambda _, text=sentence: text, edited.source),
                "author": edited.author,
                "note": NOTE,
                "created_at": now,
            }
            for name, sentence in REASONS.items()
        ],
    )


def downgrade():
    op.execute(versions.delete().where(versions.c.name.in_(list(REASONS)), versions.c.note == NOTE))
