"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21 19:52:11.641889
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tradebot.kernel.schema import ExactDecimal, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "account_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("cash", ExactDecimal(18, 4), nullable=False),
        sa.Column("equity", ExactDecimal(18, 4), nullable=False),
        sa.Column("positions_value", ExactDecimal(18, 4), nullable=False),
        sa.Column("realized_pnl", ExactDecimal(18, 4), nullable=False),
        sa.Column("unrealized_pnl", ExactDecimal(18, 4), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_snapshots")),
        sa.UniqueConstraint("ts", name=op.f("uq_account_snapshots_ts")),
    )
    op.create_table(
        "bars",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("timeframe", sa.String(length=8), nullable=False),
        sa.Column("ts_event", UTCDateTime(), nullable=False),
        sa.Column("ts_known", UTCDateTime(), nullable=False),
        sa.Column("open", sa.Float(), nullable=False),
        sa.Column("high", sa.Float(), nullable=False),
        sa.Column("low", sa.Float(), nullable=False),
        sa.Column("close", sa.Float(), nullable=False),
        sa.Column("volume", sa.Float(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("ingested_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bars")),
        sa.UniqueConstraint(
            "symbol", "timeframe", "ts_event", name=op.f("uq_bars_symbol_timeframe_ts_event")
        ),
    )
    with op.batch_alter_table("bars", schema=None) as batch_op:
        batch_op.create_index(
            "ix_bars_symbol_timeframe_known", ["symbol", "timeframe", "ts_known"], unique=False
        )

    op.create_table(
        "feature_rows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("feature_set_version", sa.String(length=32), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("label", sa.Integer(), nullable=True),
        sa.Column("forward_return", sa.Float(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_rows")),
        sa.UniqueConstraint(
            "symbol",
            "ts",
            "feature_set_version",
            name=op.f("uq_feature_rows_symbol_ts_feature_set_version"),
        ),
    )
    with op.batch_alter_table("feature_rows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feature_rows_ts"), ["ts"], unique=False)

    op.create_table(
        "fills",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fill_id", sa.String(length=96), nullable=False),
        sa.Column("client_order_id", sa.String(length=128), nullable=False),
        sa.Column("broker_order_id", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("qty", ExactDecimal(20, 6), nullable=False),
        sa.Column("price", ExactDecimal(18, 4), nullable=False),
        sa.Column("commission", ExactDecimal(18, 4), nullable=False),
        sa.Column("ts_fill", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fills")),
        sa.UniqueConstraint("fill_id", name=op.f("uq_fills_fill_id")),
    )
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_fills_client_order_id"), ["client_order_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_fills_symbol"), ["symbol"], unique=False)
        batch_op.create_index(batch_op.f("ix_fills_ts_fill"), ["ts_fill"], unique=False)

    op.create_table(
        "kill_switch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kill_switch")),
    )
    op.create_table(
        "model_promotions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_promotions")),
    )
    op.create_table(
        "news_articles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("symbols", sa.String(length=256), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("ingested_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_news_articles")),
        sa.UniqueConstraint(
            "source", "external_id", name=op.f("uq_news_articles_source_external_id")
        ),
    )
    with op.batch_alter_table("news_articles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_news_articles_content_hash"), ["content_hash"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_news_articles_published_at"), ["published_at"], unique=False
        )

    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_order_id", sa.String(length=128), nullable=False),
        sa.Column("broker_order_id", sa.String(length=64), nullable=True),
        sa.Column("strategy", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("qty", ExactDecimal(20, 6), nullable=False),
        sa.Column("order_type", sa.String(length=16), nullable=False),
        sa.Column("limit_price", ExactDecimal(18, 4), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("ts_decision", UTCDateTime(), nullable=False),
        sa.Column("submitted_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("client_order_id", name=op.f("uq_orders_client_order_id")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orders_symbol"), ["symbol"], unique=False)
        batch_op.create_index(batch_op.f("ix_orders_ts_decision"), ["ts_decision"], unique=False)

    op.create_table(
        "positions",
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("qty", ExactDecimal(20, 6), nullable=False),
        sa.Column("avg_price", ExactDecimal(18, 4), nullable=False),
        sa.Column("realized_pnl", ExactDecimal(18, 4), nullable=False),
        sa.Column("last_price", sa.Float(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", name=op.f("pk_positions")),
    )
    op.create_table(
        "predictions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("ts_decision", UTCDateTime(), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.String(length=32), nullable=False),
        sa.Column("prob_up", sa.Float(), nullable=False),
        sa.Column("target_weight", sa.Float(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_predictions")),
        sa.UniqueConstraint(
            "symbol",
            "ts_decision",
            "model_name",
            "model_version",
            name=op.f("uq_predictions_symbol_ts_decision_model_name_model_version"),
        ),
    )
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_predictions_ts_decision"), ["ts_decision"], unique=False
        )

    op.create_table(
        "risk_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("symbol", sa.String(length=16), nullable=True),
        sa.Column("client_order_id", sa.String(length=128), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_events")),
    )
    with op.batch_alter_table("risk_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_risk_events_ts"), ["ts"], unique=False)

    op.create_table(
        "sentiment_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("scorer", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("positive", sa.Float(), nullable=False),
        sa.Column("negative", sa.Float(), nullable=False),
        sa.Column("neutral", sa.Float(), nullable=False),
        sa.Column("scored_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sentiment_scores")),
        sa.UniqueConstraint(
            "content_hash", "scorer", name=op.f("uq_sentiment_scores_content_hash_scorer")
        ),
    )
    op.create_table(
        "social_posts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("subreddit", sa.String(length=64), nullable=False),
        sa.Column("symbols", sa.String(length=256), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("ingested_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_social_posts")),
        sa.UniqueConstraint(
            "source", "external_id", name=op.f("uq_social_posts_source_external_id")
        ),
    )
    with op.batch_alter_table("social_posts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_social_posts_content_hash"), ["content_hash"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_social_posts_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "trade_cycles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ts_decision", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("model_version", sa.String(length=32), nullable=False),
        sa.Column("n_orders", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trade_cycles")),
        sa.UniqueConstraint("ts_decision", name=op.f("uq_trade_cycles_ts_decision")),
    )


def downgrade() -> None:

    op.drop_table("trade_cycles")
    with op.batch_alter_table("social_posts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_social_posts_created_at"))
        batch_op.drop_index(batch_op.f("ix_social_posts_content_hash"))

    op.drop_table("social_posts")
    op.drop_table("sentiment_scores")
    with op.batch_alter_table("risk_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_risk_events_ts"))

    op.drop_table("risk_events")
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_predictions_ts_decision"))

    op.drop_table("predictions")
    op.drop_table("positions")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_ts_decision"))
        batch_op.drop_index(batch_op.f("ix_orders_symbol"))

    op.drop_table("orders")
    with op.batch_alter_table("news_articles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_news_articles_published_at"))
        batch_op.drop_index(batch_op.f("ix_news_articles_content_hash"))

    op.drop_table("news_articles")
    op.drop_table("model_promotions")
    op.drop_table("kill_switch")
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fills_ts_fill"))
        batch_op.drop_index(batch_op.f("ix_fills_symbol"))
        batch_op.drop_index(batch_op.f("ix_fills_client_order_id"))

    op.drop_table("fills")
    with op.batch_alter_table("feature_rows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feature_rows_ts"))

    op.drop_table("feature_rows")
    with op.batch_alter_table("bars", schema=None) as batch_op:
        batch_op.drop_index("ix_bars_symbol_timeframe_known")

    op.drop_table("bars")
    op.drop_table("account_snapshots")
