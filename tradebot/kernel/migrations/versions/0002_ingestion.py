"""ingestion: quarantine, bar corrections, checkpoints, universe

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 21:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tradebot.kernel.schema import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bar_corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("timeframe", sa.String(length=8), nullable=False),
        sa.Column("ts_event", UTCDateTime(), nullable=False),
        *[sa.Column(f"old_{c}", sa.Float(), nullable=False)
          for c in ("open", "high", "low", "close", "volume")],
        sa.Column("old_source", sa.String(length=32), nullable=False),
        *[sa.Column(f"new_{c}", sa.Float(), nullable=False)
          for c in ("open", "high", "low", "close", "volume")],
        sa.Column("new_source", sa.String(length=32), nullable=False),
        sa.Column("corrected_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bar_corrections")),
    )
    op.create_index(
        op.f("ix_bar_corrections_corrected_at"), "bar_corrections", ["corrected_at"]
    )
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("record_key", sa.String(length=256), nullable=False),
        sa.Column("reason", sa.String(length=256), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("quarantined_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine")),
        sa.UniqueConstraint(
            "kind", "source", "record_key", "reason",
            name=op.f("uq_quarantine_kind_source_record_key_reason"),
        ),
    )
    op.create_index(op.f("ix_quarantine_quarantined_at"), "quarantine", ["quarantined_at"])
    op.create_table(
        "ingest_checkpoints",
        sa.Column("job_key", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("units_total", sa.Integer(), nullable=False),
        sa.Column("units_done", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("job_key", name=op.f("pk_ingest_checkpoints")),
    )
    op.create_table(
        "universe_assets",
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("exchange", sa.String(length=16), nullable=False),
        sa.Column("asset_class", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("tradable", sa.Boolean(), nullable=False),
        sa.Column("price", sa.Float(), nullable=True),
        sa.Column("excluded_reason", sa.Text(), nullable=True),
        sa.Column("refreshed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", name=op.f("pk_universe_assets")),
    )


def downgrade() -> None:
    op.drop_table("universe_assets")
    op.drop_table("ingest_checkpoints")
    op.drop_index(op.f("ix_quarantine_quarantined_at"), table_name="quarantine")
    op.drop_table("quarantine")
    op.drop_index(op.f("ix_bar_corrections_corrected_at"), table_name="bar_corrections")
    op.drop_table("bar_corrections")
