"""sandbox records

The built-in Smartrr sandbox keeps its purchase states, webhooks and settings in the
bot's own database, so that every process of the embedded default (the web, a worker,
`flask --app wsgi sync` in another shell) talks to one sandbox, seeded once.

Revision ID: b7d2c0f1a9e3
Revises: a818222e2e49
Create Date: 2026-12-04 19:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "b7d2c0f1a9e3"
down_revision = "a818222e2e49"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "sandbox_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("notes", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "key"),
    )


def downgrade():
    op.drop_table("sandbox_records")
