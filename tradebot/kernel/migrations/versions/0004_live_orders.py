"""orders: stop/trailing/bracket fields and intent; fills: realized P&L; reconciliations

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tradebot.kernel.schema import ExactDecimal, UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ORDER_PRICES = ("stop_price", "take_profit_price", "stop_loss_price")


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch_op:
        for name in ORDER_PRICES:
            batch_op.add_column(sa.Column(name, ExactDecimal(18, 4), nullable=True))
        batch_op.add_column(sa.Column("trail_percent", ExactDecimal(9, 4), nullable=True))
        batch_op.add_column(sa.Column("parent_client_order_id", sa.String(128), nullable=True))
        batch_op.add_column(
            sa.Column("intent", sa.String(32), nullable=False, server_default="")
        )
    with op.batch_alter_table("fills") as batch_op:
        batch_op.add_column(sa.Column("realized_pnl", ExactDecimal(18, 4), nullable=True))
    op.create_table(
        "reconciliations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("broker", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(16), nullable=True),
        sa.Column("client_order_id", sa.String(128), nullable=True),
        sa.Column("ledger_value", sa.Text(), nullable=False),
        sa.Column("broker_value", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
    )
    op.create_index(op.f("ix_reconciliations_ts"), "reconciliations", ["ts"])


def downgrade() -> None:
    op.drop_index(op.f("ix_reconciliations_ts"), table_name="reconciliations")
    op.drop_table("reconciliations")
    with op.batch_alter_table("fills") as batch_op:
        batch_op.drop_column("realized_pnl")
    with op.batch_alter_table("orders") as batch_op:
        for name in (*ORDER_PRICES, "trail_percent", "parent_client_order_id", "intent"):
            batch_op.drop_column(name)
