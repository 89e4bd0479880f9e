"""Storage on SQLite and PostgreSQL: migrations, upsert idempotency, exact money, UTC times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select

from tests.kit.market import tiny_market
from tradebot.features.store import load_minute_bars, save_bars
from tradebot.kernel.db import Database, current_revision, head_revision, migrate
from tradebot.kernel.domain import Fill, Side
from tradebot.kernel.schema import BarCorrectionRow, BarRow, Base, FillRow
from tradebot.serving import ledger

pytestmark = pytest.mark.postgres

TABLES = {"bars", "news_articles", "social_posts", "sentiment_scores", "feature_rows",
          "predictions", "orders", "fills", "positions", "account_snapshots", "risk_events",
          "kill_switch", "model_promotions", "trade_cycles"}


def test_migrations_create_every_table_and_match_the_models(database_url) -> None:
    db = Database(database_url)
    assert current_revision(db.engine) == head_revision()
    assert set(inspect(db.engine).get_table_names()) >= TABLES
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"
    migrate(db.engine)  # idempotent
    assert current_revision(db.engine) == head_revision()
    db.dispose()


def test_migrations_downgrade_and_upgrade_again(database_url) -> None:
    from alembic import command

    from tradebot.kernel.db import _alembic_config

    db = Database(database_url)
    db.engine  # noqa: B018
    cfg = _alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert not TABLES & set(inspect(db.engine).get_table_names())
    migrate(db.engine)
    assert set(inspect(db.engine).get_table_names()) >= TABLES
    db.dispose()


def test_bar_writes_are_idempotent_and_restatements_become_corrections(database_url) -> None:
    db = Database(database_url)
    bars = tiny_market(n_sessions=3).bars
    now = datetime(2026, 11, 21, tzinfo=UTC)
    with db.session() as s:
        first = save_bars(s, bars, "1Min", "synthetic", now)
    with db.session() as s:
        again = save_bars(s, bars, "1Min", "synthetic", now)
    assert (first.inserted, again.inserted, again.unchanged) == (len(bars), 0, len(bars))
    with db.session() as s:
        stored = load_minute_bars(s, ["QQQ", "AAPL"])
    assert stored["close"].sum() == pytest.approx(bars["close"].sum())
    restated = bars.iloc[:5].assign(high=bars["high"].iloc[:5] * 2)
    with db.session() as s:
        counts = save_bars(s, restated, "1Min", "vendor-fix", now)
    assert (counts.inserted, counts.unchanged, counts.corrected) == (0, 0, 5)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(BarRow)) == len(bars)
        corrections = s.scalars(select(BarCorrectionRow)).all()
        stored = load_minute_bars(s, ["QQQ", "AAPL"])
    assert len(corrections) == 5
    assert corrections[0].old_high == pytest.approx(bars["high"].iloc[0])
    assert corrections[0].new_high == pytest.approx(2 * bars["high"].iloc[0])
    assert stored["high"].sum() == pytest.approx(bars["high"].sum() + restated["high"].sum() / 2)
    assert str(stored["ts_event"].dt.tz) == "UTC"
    assert (stored["ts_known"] - stored["ts_event"] == timedelta(minutes=1)).all()
    db.dispose()


def test_money_is_exact_and_times_are_utc(database_url) -> None:
    db = Database(database_url)
    ts = datetime(2026, 6, 2, 9, 45, tzinfo=UTC)
    fills = [Fill(f"c{i}", f"b{i}", "AAPL", Side.BUY, Decimal("0.1"), Decimal("100.1001"),
                  Decimal("0.0001"), ts + timedelta(minutes=i)) for i in range(10)]
    with db.session() as s:
        for fill in fills:
            ledger.record_fill(s, fill)
            ledger.record_fill(s, fill)  # a retried write records nothing new
    with db.session() as s:
        rows = s.scalars(select(FillRow).order_by(FillRow.ts_fill)).all()
        assert len(rows) == 10
        total = sum((r.qty * r.price + r.commission for r in rows), Decimal(0))
        assert total == Decimal("100.10110")
        assert rows[0].ts_fill == ts and rows[0].ts_fill.tzinfo is not None
        cash = ledger.cash_from_ledger(s, Decimal("1000"))
    # each fill settles its notional rounded to 1/100 cent: 0.1 * 100.1001 -> 10.0100
    assert cash == Decimal("1000") - 10 * (Decimal("10.0100") + Decimal("0.0001"))
    db.dispose()


def test_a_failed_transaction_leaves_no_partial_writes(database_url) -> None:
    db = Database(database_url)
    bars = tiny_market(n_sessions=3).bars
    with pytest.raises(RuntimeError), db.session() as s:
        save_bars(s, bars, "1Min", "synthetic", datetime(2026, 11, 21, tzinfo=UTC))
        raise RuntimeError("crash mid-ingest")
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(BarRow)) == 0
    db.dispose()
