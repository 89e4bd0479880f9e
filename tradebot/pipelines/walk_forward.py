"""Walk-forward backtest: retrain every N sessions through the training pipeline's tuning and
fitting, trade each window out of sample through the live trade cycle, stitch the equity.

Window k trades sessions ``[k*N, (k+1)*N)`` of the period with a model tuned and fitted on the
stored, labelled feature rows before the window, minus an embargo of
``max(optuna.embargo_bars, label.horizon_bars)`` decision times whose labels would look into
the window. One book runs through every window, so the equity curve is continuous: positions
and cash carry over when the model changes, as they would live.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from tradebot.features.build import feature_columns
from tradebot.features.feature_store import FeatureStore
from tradebot.features.store import bar_bounds, load_feature_frame
from tradebot.kernel.clock import MarketClock
from tradebot.kernel.db import Database
from tradebot.kernel.errors import DataError
from tradebot.kernel.home import Home
from tradebot.models import registry
from tradebot.models.base import Predictor
from tradebot.pipelines.backtest_logging import log_backtest
from tradebot.pipelines.ensemble_fit import fit_tuned
from tradebot.pipelines.model_backtest import ModelBacktest, backtest_model, load_period

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Window:
    """One retrain: the sessions it traded and the data it learned from."""

    first_session: date
    last_session: date
    train_end: datetime
    train_rows: int
    cv_auc: float
    params: dict[str, float]


@dataclass
class WalkForward:
    windows: list[Window]
    backtest: ModelBacktest

    def windows_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{
            "first_session": w.first_session, "last_session": w.last_session,
            "train_end": w.train_end, "train_rows": w.train_rows, "cv_auc": w.cv_auc,
        } for w in self.windows])


def window_days(days: Sequence[date], sessions: int) -> list[list[date]]:
    """``days`` cut into consecutive windows of ``sessions`` sessions (the last may be short)."""
    return [list(days[k:k + sessions]) for k in range(0, len(days), sessions)]


def training_rows(labelled: pd.DataFrame, before: datetime, embargo: int) -> pd.DataFrame:
    """Labelled rows with ts before ``before``, less the last ``embargo`` decision times."""
    frame = labelled[labelled["ts"] < pd.Timestamp(before)]
    times = np.sort(frame["ts"].unique())
    if embargo and len(times) > embargo:
        frame = frame[frame["ts"] < times[-embargo]]
    return frame.reset_index(drop=True)


def fit_window(frame: pd.DataFrame, store: FeatureStore, home: Home, study_name: str,
               ) -> tuple[Predictor, float, dict[str, float]]:
    """Tune and fit one window's ensemble, as a full retrain does (Optuna per member on
    walk-forward folds, refit on all the rows, weights from the folds' predictions)."""
    fitted = fit_tuned(frame, feature_columns(frame), store.settings, home.optuna_url,
                       study_name)
    cv_auc = max(t.cv_auc for t in fitted.tuned.values())
    weights = {f"weight_{n}": w for n, w in fitted.ensemble.weighting.weights.items()}
    return Predictor.of(fitted.ensemble), float(cv_auc), weights


def walk_forward(db: Database, home: Home, store: FeatureStore, days: Sequence[date],
                 progress: Progress | None = None) -> WalkForward:
    """Retrain every ``backtest.walk_forward_sessions`` sessions of ``days`` and trade each
    window with its own model through the live trade cycle, on one book."""
    settings, clock = store.settings, store.clock
    embargo = max(settings.optuna.embargo_bars, settings.label.horizon_bars)
    chunks = window_days(days, settings.backtest.walk_forward_sessions)
    starts = [clock.decision_times(chunk[0])[0] for chunk in chunks]
    with db.session() as session:  # every window's training rows, read once
        labelled = load_feature_frame(session, store.version, end=starts[-1])
    labelled = labelled.dropna(subset=["label"])
    windows: list[Window] = []
    predictors: list[tuple[datetime, Predictor, str]] = []
    for k, (chunk, first) in enumerate(zip(chunks, starts, strict=True)):
        if progress:
            progress(f"retrain {k + 1}/{len(chunks)} (sessions from {chunk[0]})", k, len(chunks))
        frame = training_rows(labelled, first, embargo)
        if frame["ts"].nunique() < 10:
            raise DataError(f"too few labelled feature rows before {chunk[0]} to train the "
                            "first walk-forward model: start later, or ingest and build "
                            "features for earlier sessions ('tradebot ingest', 'tradebot "
                            "features')")
        study = f"{settings.model.registered_name}-wf-{store.version}-{first:%Y%m%dT%H%M}"
        window_model, cv_auc, params = fit_window(frame, store, home, study)
        windows.append(Window(chunk[0], chunk[-1], frame["ts"].max().to_pydatetime(),
                              len(frame), cv_auc, params))
        predictors.append((first, window_model, f"wf{k + 1}"))

    def pick(ts: datetime) -> tuple[Predictor, str]:
        """The model of the window holding ``ts`` (the last one retrained by then)."""
        return max((item for item in predictors if item[0] <= ts), key=lambda item: item[0],
                   default=predictors[0])[1:]

    def predict(rows: pd.DataFrame) -> np.ndarray:  # the newest rows are the cycle's
        return pick(rows["ts"].max())[0](rows)

    def predict_newest(context: pd.DataFrame) -> np.ndarray:
        return pick(context["ts"].max())[0].newest(context)

    with db.session() as session:
        period = load_period(session, store, list(settings.symbols), list(days))
    done = backtest_model(
        settings, clock, period.bars, period.rows,
        Predictor(predict, max(p.context_bars for _, p, _ in predictors), predict_newest),
        period.times,
        model_version=lambda ts: pick(ts)[1], benchmark_close=period.benchmark_close,
        progress=(lambda i, n: progress("trade cycles", i, n)) if progress else None)
    return WalkForward(windows, done)


def stored_days(db: Database, clock: MarketClock, start: date | None, end: date | None,
                warmup_sessions: int) -> list[date]:
    """Walk-forward sessions: ``start``..``end``, by default from the session
    ``warmup_sessions`` after the first stored bar (the first model's training data) to the
    newest stored bar's."""
    with db.session() as session:
        low, high = bar_bounds(session)
    if low is None or high is None:
        raise DataError("no bars are stored: run 'tradebot ingest' first")
    stored = [d for d in clock.sessions_between(clock.session_of(low), clock.session_of(high))
              if clock.is_session(d)]
    if start is None:
        if len(stored) <= warmup_sessions:
            raise DataError(f"{len(stored)} stored sessions leave none to trade after "
                            f"{warmup_sessions} to train on: ingest more, or pass --start")
        start = stored[warmup_sessions]
    last = end or stored[-1]
    days = [d for d in clock.sessions_between(start, last) if clock.is_session(d)]
    if not days:
        raise DataError(f"no market sessions from {start} to {last}")
    return days


def log_walk_forward(result: WalkForward, home: Home, store: FeatureStore,
                     directory: Path) -> str:
    """Record the walk-forward backtest as an MLflow run of the model's experiment: windows
    and costs as params, ``bt_*`` metrics, the report, trades, days and windows as files."""
    import mlflow

    settings = store.settings
    registry.configure(home.mlflow_tracking_uri, home.mlflow_artifacts, settings.model.experiment)
    first, last = result.windows[0].first_session, result.windows[-1].last_session
    title = f"Walk-forward backtest {first} to {last} ({len(result.windows)} retrains)"
    with mlflow.start_run(run_name=f"walk-forward-{first}-{last}") as run:
        mlflow.set_tags({"tradebot.kind": "walk-forward"})
        mlflow.log_params({
            "walk_forward.windows": len(result.windows),
            "walk_forward.sessions": settings.backtest.walk_forward_sessions,
            "walk_forward.first_session": str(first), "walk_forward.last_session": str(last),
            "features.set_version": store.version, "symbols": ",".join(settings.symbols),
            "broker.commission_bps": settings.broker.commission_bps,
            "broker.slippage_bps": settings.broker.slippage_bps,
        })
        log_backtest(result.backtest.run, title, directory)
        windows = directory / "windows.csv"
        result.windows_frame().to_csv(windows, index=False)
        mlflow.log_artifact(str(windows), "backtest")
    return run.info.run_id
