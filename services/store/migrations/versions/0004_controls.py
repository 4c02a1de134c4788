"""Controls around money: who closed a period, its approvals and rejection, and the append-only audit log.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Periods closed before 0004 have no recorded closer (null) and no approvals recorded by name.
    with op.batch_alter_table("settlements") as settlements:
        settlements.add_column(sa.Column("closed_by", sa.String(), nullable=True))
        settlements.add_column(sa.Column("approvals", sa.Text(), nullable=False, server_default="[]"))
        settlements.add_column(sa.Column("rejection_reason", sa.Text(), nullable=True))
        settlements.add_column(sa.Column("rejected_by", sa.String(), nullable=True))
        settlements.add_column(sa.Column("rejected_at", UTC_TIME, nullable=True))
        settlements.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "audit_log",
        sa.Column("id", SEQ, primary_key=True, autoincrement=True),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("period", sa.String(), nullable=True),
        sa.Column("content_hash", sa.String(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
    )
    op.create_index("ix_audit_log_period", "audit_log", ["period"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_period", table_name="audit_log")
    op.drop_table("audit_log")
    with op.batch_alter_table("settlements") as settlements:
        for column in ("revision", "rejected_at", "rejected_by", "rejection_reason", "approvals", "closed_by"):
            settlements.drop_column(column)
