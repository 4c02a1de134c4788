"""Durable ingest: events written before they are published, positions per broker log, dead letters.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIME = sa.DateTime(timezone=True)
UNKNOWN_EPOCH = "before-0002"  # rows and positions of a broker log no identity was recorded for


def upgrade() -> None:
    with op.batch_alter_table("events") as events:
        events.add_column(sa.Column("key", sa.String(), nullable=False, server_default=""))
        events.add_column(sa.Column("epoch", sa.String(), nullable=True))
        events.alter_column("partition", existing_type=sa.Integer(), nullable=True)
        events.alter_column("offset", existing_type=sa.BigInteger(), nullable=True)
    op.execute(sa.text("UPDATE events SET epoch = :epoch").bindparams(epoch=UNKNOWN_EPOCH))
    op.create_table(
        "consumer_positions",
        sa.Column("consumer", sa.String(), primary_key=True),
        sa.Column("epoch", sa.String(), primary_key=True),
        sa.Column("topic", sa.String(), primary_key=True),
        sa.Column("partition", sa.Integer(), primary_key=True),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
    )
    op.drop_table("consumer_offsets")
    op.drop_table("ingest_keys")
    op.create_table(
        "relay_cursors",
        sa.Column("epoch", sa.String(), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", SEQ, primary_key=True, autoincrement=True),
        sa.Column("dedup_key", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("topic", sa.String(), nullable=True),
        sa.Column("partition", sa.Integer(), nullable=True),
        sa.Column("offset", sa.BigInteger(), nullable=True),
        sa.Column("key", sa.String(), nullable=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("dead_lettered_at", UTC_TIME, nullable=False),
        sa.UniqueConstraint("dedup_key", name="uq_dead_letters_dedup_key"),
    )


def downgrade() -> None:
    raise NotImplementedError("0002 drops the ingest keys and old positions: restore a backup instead")
