"""SQLAlchemy 2 models of the project database; Alembic migrations (``migrations/``) own DDL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class ExactDecimal(TypeDecorator[Decimal]):
    """Exact decimals: NUMERIC on PostgreSQL, text on SQLite (which would store binary floats)."""

    impl = String(40)
    cache_ok = True

    def __init__(self, precision: int = 20, scale: int = 6) -> None:
        super().__init__()
        self.precision = precision
        self.scale = scale

    def __repr__(self) -> str:
        return f"ExactDecimal({self.precision}, {self.scale})"

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))
        return dialect.type_descriptor(String(40))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        dec = Decimal(str(value))
        return dec if dialect.name == "postgresql" else format(dec, "f")

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(str(value))


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite would hand back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def __repr__(self) -> str:
        return "UTCDateTime()"

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: tradebot stores UTC-aware times only")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class BarRow(Base):
    """An OHLCV bar; ``ts_event`` is its open time, ``ts_known`` its close (when it is knowable)."""

    __tablename__ = "bars"
    __table_args__ = (UniqueConstraint("symbol", "timeframe", "ts_event"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(16))
    timeframe: Mapped[str] = mapped_column(String(8))
    ts_event: Mapped[datetime] = mapped_column(UTCDateTime())
    ts_known: Mapped[datetime] = mapped_column(UTCDateTime())
    open: Mapped[float] = mapped_column(Float)
    high: Mapped[float] = mapped_column(Float)
    low: Mapped[float] = mapped_column(Float)
    close: Mapped[float] = mapped_column(Float)
    volume: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(32))
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime())


class NewsArticleRow(Base):
    __tablename__ = "news_articles"
    __table_args__ = (UniqueConstraint("source", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(128))
    symbols: Mapped[str] = mapped_column(String(256), doc="Comma-separated tickers")
    published_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str] = mapped_column(Text, default="")
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SocialPostRow(Base):
    __tablename__ = "social_posts"
    __table_args__ = (UniqueConstraint("source", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(128))
    subreddit: Mapped[str] = mapped_column(String(64))
    symbols: Mapped[str] = mapped_column(String(256), doc="Comma-separated tickers")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text, default="")
    score: Mapped[int] = mapped_column(Integer, default=0)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SentimentScoreRow(Base):
    """One scorer's verdict on one text, keyed by the text's content hash (scored once)."""

    __tablename__ = "sentiment_scores"
    __table_args__ = (UniqueConstraint("content_hash", "scorer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    scorer: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)
    positive: Mapped[float] = mapped_column(Float)
    negative: Mapped[float] = mapped_column(Float)
    neutral: Mapped[float] = mapped_column(Float)
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime())


class FeatureRow(Base):
    """Features of one symbol at one decision time, computed only from data known by then."""

    __tablename__ = "feature_rows"
    __table_args__ = (UniqueConstraint("symbol", "ts", "feature_set_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(16))
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    feature_set_version: Mapped[str] = mapped_column(String(32))
    values: Mapped[dict[str, float | None]] = mapped_column(JSON)
    label: Mapped[int | None] = mapped_column(Integer, nullable=True)
    forward_return: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PredictionRow(Base):
    __tablename__ = "predictions"
    __table_args__ = (UniqueConstraint("symbol", "ts_decision", "model_name", "model_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(16))
    ts_decision: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(32))
    prob_up: Mapped[float] = mapped_column(Float)
    target_weight: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OrderRow(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_order_id: Mapped[str] = mapped_column(String(128), unique=True)
    broker_order_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    strategy: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(16), index=True)
    side: Mapped[str] = mapped_column(String(4))
    qty: Mapped[Decimal] = mapped_column(ExactDecimal(20, 6))
    order_type: Mapped[str] = mapped_column(String(16))
    limit_price: Mapped[Decimal | None] = mapped_column(ExactDecimal(18, 4), nullable=True)
    stop_price: Mapped[Decimal | None] = mapped_column(ExactDecimal(18, 4), nullable=True)
    trail_percent: Mapped[Decimal | None] = mapped_column(ExactDecimal(9, 4), nullable=True)
    take_profit_price: Mapped[Decimal | None] = mapped_column(ExactDecimal(18, 4), nullable=True)
    stop_loss_price: Mapped[Decimal | None] = mapped_column(ExactDecimal(18, 4), nullable=True)
    parent_client_order_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    intent: Mapped[str] = mapped_column(String(32), default="")
    status: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(Text, default="")
    ts_decision: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())


class FillRow(Base):
    __tablename__ = "fills"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fill_id: Mapped[str] = mapped_column(String(96), unique=True)
    client_order_id: Mapped[str] = mapped_column(String(128), index=True)
    broker_order_id: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(16), index=True)
    side: Mapped[str] = mapped_column(String(4))
    qty: Mapped[Decimal] = mapped_column(ExactDecimal(20, 6))
    price: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))
    commission: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))
    ts_fill: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    realized_pnl: Mapped[Decimal | None] = mapped_column(ExactDecimal(18, 4), nullable=True)


class PositionRow(Base):
    __tablename__ = "positions"

    symbol: Mapped[str] = mapped_column(String(16), primary_key=True)
    qty: Mapped[Decimal] = mapped_column(ExactDecimal(20, 6))
    avg_price: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))
    realized_pnl: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))
    peak_price: Mapped[Decimal] = mapped_column(
        ExactDecimal(18, 4), default=Decimal(0), server_default="0"
    )
    last_price: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AccountSnapshotRow(Base):
    __tablename__ = "account_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), unique=True)
    cash: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))
    equity: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))
    positions_value: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))
    realized_pnl: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))
    unrealized_pnl: Mapped[Decimal] = mapped_column(ExactDecimal(18, 4))


class RiskEventRow(Base):
    __tablename__ = "risk_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    rule: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str | None] = mapped_column(String(16), nullable=True)
    client_order_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    reason: Mapped[str] = mapped_column(Text)


class ReconciliationRow(Base):
    """One difference found between the ledger and the broker, and what was done about it."""

    __tablename__ = "reconciliations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    broker: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str | None] = mapped_column(String(16), nullable=True)
    client_order_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    ledger_value: Mapped[str] = mapped_column(Text, default="")
    broker_value: Mapped[str] = mapped_column(Text, default="")
    action: Mapped[str] = mapped_column(Text, default="")


class KillSwitchRow(Base):
    """Single-row table holding the persisted kill-switch state."""

    __tablename__ = "kill_switch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ModelPromotionRow(Base):
    __tablename__ = "model_promotions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(32))
    run_id: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    metrics: Mapped[dict[str, float]] = mapped_column(JSON)


class TradeCycleRow(Base):
    __tablename__ = "trade_cycles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts_decision: Mapped[datetime] = mapped_column(UTCDateTime(), unique=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    model_version: Mapped[str] = mapped_column(String(32), default="")
    n_orders: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str] = mapped_column(Text, default="")


class BarCorrectionRow(Base):
    """A restated bar: the values it replaced, kept when a source revises a stored bar."""

    __tablename__ = "bar_corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(16))
    timeframe: Mapped[str] = mapped_column(String(8))
    ts_event: Mapped[datetime] = mapped_column(UTCDateTime())
    old_open: Mapped[float] = mapped_column(Float)
    old_high: Mapped[float] = mapped_column(Float)
    old_low: Mapped[float] = mapped_column(Float)
    old_close: Mapped[float] = mapped_column(Float)
    old_volume: Mapped[float] = mapped_column(Float)
    old_source: Mapped[str] = mapped_column(String(32))
    new_open: Mapped[float] = mapped_column(Float)
    new_high: Mapped[float] = mapped_column(Float)
    new_low: Mapped[float] = mapped_column(Float)
    new_close: Mapped[float] = mapped_column(Float)
    new_volume: Mapped[float] = mapped_column(Float)
    new_source: Mapped[str] = mapped_column(String(32))
    corrected_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class QuarantineRow(Base):
    """A record rejected at ingestion, with the reason and its raw payload (nothing dropped)."""

    __tablename__ = "quarantine"
    __table_args__ = (UniqueConstraint("kind", "source", "record_key", "reason"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(64))
    record_key: Mapped[str] = mapped_column(String(256))
    reason: Mapped[str] = mapped_column(String(256))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    quarantined_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class IngestCheckpointRow(Base):
    """Progress of one ingest job (source, kind, symbols, window): units done of units total."""

    __tablename__ = "ingest_checkpoints"

    job_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text)
    units_total: Mapped[int] = mapped_column(Integer)
    units_done: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class UniverseAssetRow(Base):
    """One asset seen at the last universe refresh, included or with the reason it is not."""

    __tablename__ = "universe_assets"

    symbol: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(Text, default="")
    exchange: Mapped[str] = mapped_column(String(16))
    asset_class: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    tradable: Mapped[bool] = mapped_column(Boolean)
    price: Mapped[float | None] = mapped_column(Float, nullable=True)
    excluded_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    refreshed_at: Mapped[datetime] = mapped_column(UTCDateTime())


Index("ix_bars_symbol_timeframe_known", BarRow.symbol, BarRow.timeframe, BarRow.ts_known)
