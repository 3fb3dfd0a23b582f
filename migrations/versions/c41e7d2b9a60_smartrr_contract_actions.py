"""actions carry the moments Smartrr's document asks for; pause options and cancel reason

An action's argument was a calendar date; Smartrr's Vendor API takes full UTC
timestamps (a delay keeps the order's time of day), so the log keeps the moment
it sent, the cancellation reason of a cancel, and the resume moment a change
replaced (UNDO of a resume pauses again until then). The shop gains the pause
options, the longest pause and the cancellation reason, edited in Settings.

Revision ID: c41e7d2b9a60
Revises: b7d2c0f1a9e3
Create Date: 2026-12-04 19:20:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c41e7d2b9a60"
down_revision = "b7d2c0f1a9e3"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("action_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("argument_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("reason_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("old_unpause_at", sa.DateTime(timezone=True), nullable=True))
    # A dated argument becomes midnight UTC of that day, as Smartrr read the old bodies.
    if op.get_bind().dialect.name == "sqlite":
        midnight = "argument || ' 00:00:00.000000'"
    else:
        midnight = "CAST(argument AS TIMESTAMP) AT TIME ZONE 'UTC'"
    op.execute(f"UPDATE action_log SET argument_at = {midnight} WHERE argument IS NOT NULL")
    with op.batch_alter_table("action_log", schema=None) as batch_op:
        batch_op.drop_column("argument")
    with op.batch_alter_table("shops", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cancel_reason_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("pause_options", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("max_pause_days", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("shops", schema=None) as batch_op:
        batch_op.drop_column("max_pause_days")
        batch_op.drop_column("pause_options")
        batch_op.drop_column("cancel_reason_id")
    with op.batch_alter_table("action_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("argument", sa.Date(), nullable=True))
    op.execute("UPDATE action_log SET argument = DATE(argument_at)")
    with op.batch_alter_table("action_log", schema=None) as batch_op:
        batch_op.drop_column("old_unpause_at")
        batch_op.drop_column("reason_id")
        batch_op.drop_column("argument_at")
