"""A machine-readable summary of a tradebot home (the contract behind ``tradebot status``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from tradebot.features.quarantine import quarantine_counts
from tradebot.kernel.db import Database
from tradebot.kernel.home import Home
from tradebot.kernel.schema import (
    BarCorrectionRow,
    BarRow,
    FeatureRow,
    FillRow,
    NewsArticleRow,
    OrderRow,
    PredictionRow,
    QuarantineRow,
    SentimentScoreRow,
    SocialPostRow,
    TradeCycleRow,
)
from tradebot.kernel.settings import TradebotSettings
from tradebot.serving import ledger

COUNTED = {
    "bars": BarRow, "articles": NewsArticleRow, "posts": SocialPostRow,
    "sentiment_scores": SentimentScoreRow, "feature_rows": FeatureRow,
    "predictions": PredictionRow, "orders": OrderRow, "fills": FillRow,
    "quarantined": QuarantineRow, "bar_corrections": BarCorrectionRow,
}
STATUS_VERSION = 1


def _champion(home: Home, settings: TradebotSettings) -> dict[str, Any] | None:
    if not home.mlflow_db.exists():
        return None
    from tradebot.models import registry

    registry.configure(home.mlflow_tracking_uri, home.mlflow_artifacts, settings.model.experiment)
    info = registry.champion(settings.model.registered_name)
    if info is None:
        return None
    keys = ("test_auc", "test_log_loss", "test_accuracy", "test_brier", "test_sharpe",
            "test_net_return", "cv_auc", "bt_total_return", "bt_sharpe", "bt_max_drawdown",
            "bt_n_trades")
    return {"name": info.name, "version": info.version, "run_id": info.run_id,
            "metrics": {k: round(info.metrics[k], 6) for k in keys if k in info.metrics}}


def home_status(db: Database, home: Home, settings: TradebotSettings) -> dict[str, Any]:
    """Champion, row counts, last cycle, equity and P&L, kill switch. Stable keys."""
    with db.session() as session:
        counts = {k: session.scalar(select(func.count()).select_from(m)) or 0
                  for k, m in COUNTED.items()}
        last_cycle = session.scalar(select(func.max(TradeCycleRow.ts_decision)))
        snap = ledger.latest_snapshot(session)
        kill = ledger.get_kill_switch(session)
        quarantined_by_kind = quarantine_counts(session)
    return {
        "status_version": STATUS_VERSION,
        "home": str(home.root),
        "database": make_url(home.database_url).get_backend_name(),
        "champion": _champion(home, settings),
        "counts": counts,
        "quarantined_by_kind": quarantined_by_kind,
        "last_trade_cycle": last_cycle.isoformat() if last_cycle else None,
        "equity": float(snap.equity) if snap else float(settings.broker.initial_cash),
        "realized_pnl": float(snap.realized_pnl) if snap else 0.0,
        "unrealized_pnl": float(snap.unrealized_pnl) if snap else 0.0,
        "kill_switch": str(kill),
    }
