"""Backtests recorded with MLflow: trading metrics, the HTML report, trades and days."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pandas as pd

from tradebot.features.feature_store import FeatureStore
from tradebot.kernel.db import Database
from tradebot.pipelines.backtest import BacktestRun, settings_summary
from tradebot.pipelines.backtest_report import write_backtest_report
from tradebot.pipelines.model_backtest import Period, load_period

PREFIX = "bt_"


def finite_metrics(run: BacktestRun, prefix: str = PREFIX) -> dict[str, float]:
    """The run's metrics under ``prefix`` (MLflow takes no NaN: undefined ones are left out)."""
    return {f"{prefix}{k}": float(v) for k, v in run.metrics.items()
            if isinstance(v, int | float) and math.isfinite(v)}


def write_run_files(run: BacktestRun, title: str, directory: Path) -> list[Path]:
    """The report, trades and per-day table of ``run`` as files in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    report = write_backtest_report(directory / "report.html", title, run.metrics,
                                   run.result.equity, run.benchmark_close, run.result.trades,
                                   run.daily, run.monthly, settings_summary(run.config))
    trades = directory / "trades.csv"
    run.result.trades.to_csv(trades, index=False)
    daily = directory / "daily.csv"
    run.daily.to_csv(daily)
    return [Path(report), trades, daily]


def log_backtest(run: BacktestRun, title: str, directory: Path,
                 artifact_path: str = "backtest") -> dict[str, float]:
    """Log ``run`` to the active MLflow run: ``bt_*`` metrics and the files under
    ``artifact_path``. Returns the logged metrics."""
    import mlflow

    metrics = finite_metrics(run)
    mlflow.log_metrics(metrics)
    for path in write_run_files(run, title, directory):
        mlflow.log_artifact(str(path), artifact_path)
    return metrics


def test_window_period(db: Database, store: FeatureStore, test_start: datetime,
                       test_end: datetime) -> Period:
    """The stored data of a model's test window for backtests through the live trade cycle:
    the sessions from ``test_start`` to ``test_end``, decision times before ``test_start``
    left out (the model saw them). Loaded once, it serves the candidate and the champion."""
    clock = store.clock
    days = [d for d in clock.sessions_between(clock.session_of(test_start),
                                              clock.session_of(test_end))
            if clock.is_session(d)]
    with db.session() as session:
        period = load_period(session, store, list(store.settings.symbols), days)
    start = pd.Timestamp(test_start)
    return replace(period, times=[t for t in period.times if pd.Timestamp(t) >= start])
