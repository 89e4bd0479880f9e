"""Train step: fit the ensemble (full, emergency or incremental retrain), evaluate it on a
test window tuning never saw, backtest it there through the live trade cycle, log the members
and the ensemble to MLflow, register it and let the promotion gate decide."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradebot.features.build import feature_columns
from tradebot.features.feature_store import FeatureStore
from tradebot.features.store import load_feature_frame
from tradebot.kernel.db import Database
from tradebot.kernel.errors import ConfigError, DataError
from tradebot.kernel.home import Home
from tradebot.kernel.settings import TradebotSettings
from tradebot.models import registry
from tradebot.models.base import Predictor, predict_after
from tradebot.models.evaluation import classification_metrics, trading_metrics
from tradebot.models.validation import holdout_split
from tradebot.pipelines.backtest_logging import finite_metrics, test_window_period, write_run_files
from tradebot.pipelines.ensemble_fit import MODES, FittedEnsemble, fit_incremental, fit_tuned
from tradebot.pipelines.model_backtest import backtest_period
from tradebot.pipelines.promote import champion_unscored, compare_champion, judge, record_decision
from tradebot.pipelines.train_logging import RunContext, dataset_hash, log_ensemble, log_member
from tradebot.pipelines.tuning import embargo_bars

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class TrainResult:
    model_name: str
    version: str
    run_id: str
    promoted: bool
    gate_reason: str
    metrics: dict[str, float]
    params: dict[str, Any]
    features: list[str] = field(default_factory=list)
    n_dev: int = 0
    n_test: int = 0
    mode: str = "full"
    weights: dict[str, float] = field(default_factory=dict)
    member_metrics: dict[str, dict[str, float]] = field(default_factory=dict)


def result_markdown(result: TrainResult) -> str:
    """The training outcome as markdown (out-of-sample metrics and the gate's verdict)."""
    verdict = "promoted to champion" if result.promoted else "not promoted"
    lines = [f"# {result.model_name} v{result.version} ({result.mode} retrain): {verdict}", "",
             result.gate_reason, "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4f} |" for k, v in sorted(result.metrics.items())]
    if result.member_metrics:
        lines += ["", "| member | weight | test AUC | cv AUC |", "|---|---|---|---|"]
        for name, m in result.member_metrics.items():
            lines.append(f"| {name} | {result.weights.get(name, 0.0):.3f} | "
                         f"{m.get('test_auc', float('nan')):.4f} | "
                         f"{m.get('cv_auc', float('nan')):.4f} |")
    return "\n".join(lines)


def _labelled_frame(db: Database, feature_version: str, train_end: datetime) -> pd.DataFrame:
    with db.session() as session:
        frame = load_feature_frame(session, feature_version, end=train_end)
    frame = frame.dropna(subset=["label"]).reset_index(drop=True)
    if frame.empty:
        raise DataError(f"no labelled feature rows of feature set {feature_version} before the "
                        "training cut-off: run 'tradebot ingest' and 'tradebot features' first")
    return frame


def _fingerprint(frame: pd.DataFrame, features: list[str], feature_version: str,
                 settings: TradebotSettings, mode: str, names: list[str] | None) -> str:
    window = f"{frame['ts'].min().isoformat()}..{frame['ts'].max().isoformat()}"
    return hashlib.sha256(json.dumps(
        [window, len(frame), features, feature_version, settings.model.model_dump(),
         settings.optuna.model_dump(), mode, names], sort_keys=True, default=str,
    ).encode()).hexdigest()[:12]


def _fit(home: Home, settings: TradebotSettings, dev: pd.DataFrame,
         features: list[str], fingerprint: str, mode: str, names: list[str] | None,
         progress: Progress | None) -> FittedEnsemble:
    if mode != "incremental":
        return fit_tuned(dev, features, settings, home.optuna_url,
                         f"{settings.model.registered_name}-{fingerprint}",
                         emergency=mode == "emergency", names=names, progress=progress)
    model, info = registry.model_version(settings.model.registered_name, None)
    previous = registry.unwrap_ensemble(model)
    since = registry.run_param(info, "data.test_start")
    if previous is None or since is None:
        raise DataError(f"the champion ({info.label}) predates the ensemble: an incremental "
                        "retrain needs an ensemble to continue; run 'tradebot train --mode full'")
    return fit_incremental(previous, dev, datetime.fromisoformat(since), settings, names)


def train_and_register(
    db: Database, home: Home, settings: TradebotSettings, train_end: datetime, now: datetime,
    progress: Progress | None = None, *, feature_version: str, store: FeatureStore | None = None,
    mode: str = "full", models: list[str] | None = None,
) -> TrainResult:
    """Fit the ensemble on the ``feature_version`` rows before ``train_end`` (``mode``: full,
    emergency or incremental; ``models``: a subset of the members), evaluate it on the test
    window, log, register and gate it. With ``store`` (and ``backtest.after_training``) the
    ensemble also trades its test window through the live trade cycle; the ``bt_*`` metrics
    and the report go to its MLflow run, and the gate compares them with the champion's on
    the same window. Aliases move only after the decision is tagged and stored: a run that
    fails or is killed before then leaves them where they were."""
    if mode not in MODES:
        raise ConfigError(f"unknown training mode {mode!r}: use one of {list(MODES)}")
    if settings.label.kind == "ternary":
        raise ConfigError("label.kind='ternary' is computed and stored but the current model "
                          "trains binary labels; use label.kind='direction'")
    registry.configure(home.mlflow_tracking_uri, home.mlflow_artifacts, settings.model.experiment)
    frame = _labelled_frame(db, feature_version, train_end)
    features = feature_columns(frame)
    split = holdout_split(frame["ts"], settings.optuna.test_fraction, embargo_bars(settings))
    dev, test = frame.iloc[split.train], frame.iloc[split.valid]
    fingerprint = _fingerprint(frame, features, feature_version, settings, mode, models)
    fitted = _fit(home, settings, dev, features, fingerprint, mode, models, progress)
    ensemble = fitted.ensemble

    ctx = RunContext(mode, fingerprint, f"{frame['ts'].min().isoformat()}.."
                     f"{frame['ts'].max().isoformat()}", dataset_hash(frame), feature_version,
                     features, dev, test)
    y_test = test["label"].to_numpy(int)
    member_runs, member_metrics = {}, {}
    test_member = {n: predict_after(m, dev, test) for n, m in ensemble.members.items()}
    for name, model in ensemble.members.items():
        tuned = fitted.tuned.get(name)
        m = {f"test_{k}": v for k, v in classification_metrics(y_test, test_member[name]).items()}
        if tuned is not None:
            m["cv_auc"] = tuned.cv_auc
        member_metrics[name] = m
        trials = (tuned.study.trials_dataframe(attrs=("number", "value", "params", "state"))
                  if tuned is not None else None)
        member_runs[name] = log_member(home, settings, ctx, name, model,
                                       fitted.params.get(name, {}), m, test_member[name], trials)

    raw = ensemble.weighting.combine(pd.DataFrame(test_member, index=test.index), test)
    held = ensemble.hold(raw)
    cost_bps = settings.broker.commission_bps + settings.broker.slippage_bps
    metrics = {f"test_{k}": v for k, v in classification_metrics(y_test, raw).items()}
    metrics |= {f"test_{k}": v for k, v in trading_metrics(
        test, held, settings.strategy.entry_probability, cost_bps).items()}
    cv = [m["cv_auc"] for m in member_metrics.values() if "cv_auc" in m]
    if cv:
        metrics["cv_auc"] = float(np.max(cv))

    name = settings.model.registered_name
    with tempfile.TemporaryDirectory() as scratch:
        files: list[Path] = []
        equity = None
        if store is not None and settings.backtest.after_training:
            period = test_window_period(db, store, test["ts"].min(), test["ts"].max())
            done = backtest_period(store, period, Predictor.of(ensemble), "candidate")
            metrics |= finite_metrics(done.run)
            files = write_run_files(done.run, f"Test-window backtest: ensemble-{fingerprint} "
                                    "through the live trade cycle", Path(scratch) / "backtest")
            equity = (done.run.result.equity, done.run.benchmark_close)
            comparison = compare_champion(store, period, name)
        else:
            comparison = champion_unscored(name)
        decision = judge(metrics, comparison, settings.gate)
        info = log_ensemble(home, settings, ctx, ensemble,
                            {"gate.champion_version": comparison.tag},
                            metrics | comparison.run_metrics(), raw, member_runs, files, equity)
    record_decision(db, now, info, decision, comparison, info.metrics)
    return TrainResult(info.name, info.version, info.run_id, decision.promote, decision.reason,
                       metrics, fitted.params, features, len(dev), len(test), fitted.mode,
                       dict(ensemble.weighting.weights), member_metrics)
