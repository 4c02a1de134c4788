"""The ledger, consumer positions, ingest keys and settlements.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("time", UTC_TIME, nullable=False),
        sa.Column("topic", sa.String(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("ingested_at", UTC_TIME, nullable=False),
        sa.UniqueConstraint("source", "id", name="uq_events_source_id"),
    )
    op.create_table(
        "consumer_offsets",
        sa.Column("consumer", sa.String(), primary_key=True),
        sa.Column("topic", sa.String(), primary_key=True),
        sa.Column("partition", sa.Integer(), primary_key=True),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "ingest_keys",
        sa.Column("source", sa.String(), primary_key=True),
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("accepted_at", UTC_TIME, nullable=False),
    )
    op.create_table(
        "settlements",
        sa.Column("period", sa.String(), primary_key=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("closed_at", UTC_TIME, nullable=False),
        sa.Column("approved_at", UTC_TIME, nullable=True),
        sa.Column("exported_at", UTC_TIME, nullable=True),
        sa.Column("export_id", sa.String(), nullable=True),
        sa.Column("plan_hashes", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("event_seq", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    for table in ("settlements", "ingest_keys", "consumer_offsets", "events"):
        op.drop_table(table)
