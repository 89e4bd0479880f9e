"""Train step: Optuna on walk-forward folds, final fit, test-window evaluation, MLflow logging,
registration and the promotion gate."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from tradebot.features.build import feature_columns
from tradebot.features.feature_store import FeatureStore
from tradebot.features.store import load_feature_frame
from tradebot.kernel.db import Database
from tradebot.kernel.errors import ConfigError, DataError
from tradebot.kernel.home import Home
from tradebot.kernel.settings import TradebotSettings
from tradebot.models import registry
from tradebot.models.evaluation import classification_metrics, trading_metrics
from tradebot.models.validation import holdout_split, walk_forward_splits
from tradebot.models.xgb import XGBDirectionModel
from tradebot.pipelines.backtest_logging import (
    finite_metrics,
    test_window_period,
    write_run_files,
)
from tradebot.pipelines.model_backtest import backtest_period
from tradebot.pipelines.promote import (
    ChampionComparison,
    champion_unscored,
    compare_champion,
    judge,
    record_decision,
)

Progress = Callable[[int, int], None]
PIP_REQUIREMENTS = ["xgboost-cpu>=3.2,<3.3", "pandas", "numpy", "mlflow>=3.17,<3.18"]


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


def _code_version() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=Path(__file__).parent, check=False)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def result_markdown(result: TrainResult) -> str:
    """The training outcome as markdown (out-of-sample metrics and the gate's verdict)."""
    verdict = "promoted to champion" if result.promoted else "not promoted"
    lines = [f"# {result.model_name} v{result.version}: {verdict}", "", result.gate_reason, "",
             "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4f} |" for k, v in sorted(result.metrics.items())]
    return "\n".join(lines)


def tune(
    dev: pd.DataFrame, features: list[str], settings: TradebotSettings, storage: str,
    study_name: str, progress: Progress | None = None,
) -> tuple[dict[str, Any], optuna.Study]:
    """Optuna search over XGBoost params, scored by mean AUC over walk-forward folds.

    The study lives in RDB storage; re-running the same training resumes it."""
    opt, xgb_cfg = settings.optuna, settings.model.xgboost
    splits = walk_forward_splits(dev["ts"], opt.n_splits, opt.embargo_bars)
    X, y = dev[features], dev["label"].to_numpy(int)

    def objective(trial: optuna.Trial) -> float:
        params = XGBDirectionModel.search_space(trial, xgb_cfg)
        scores = []
        for k, split in enumerate(splits):
            model = XGBDirectionModel.from_params(params, xgb_cfg.n_jobs, opt.seed)
            model.fit(X.iloc[split.train], y[split.train])
            prob = model.predict_proba(X.iloc[split.valid])
            scores.append(classification_metrics(y[split.valid], prob)["auc"])
            trial.report(float(np.mean(scores)), k)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(scores))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name, storage=storage, direction="maximize", load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=opt.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3),
    )
    done = len([t for t in study.trials if t.state.is_finished()])
    remaining = max(0, opt.n_trials - done)
    if done == 0:
        study.enqueue_trial(XGBDirectionModel.default_params(xgb_cfg) | {
            "subsample": 1.0, "colsample_bytree": 1.0, "min_child_weight": 1.0, "lambda": 1.0})
    callbacks = [lambda s, t: progress(len(s.trials), opt.n_trials)] if progress else []
    if remaining:
        study.optimize(objective, n_trials=remaining, timeout=opt.timeout_seconds,
                       callbacks=callbacks, gc_after_trial=False)
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        raise DataError("no Optuna trial completed: raise optuna.timeout_seconds")
    return dict(study.best_params), study


def train_and_register(
    db: Database, home: Home, settings: TradebotSettings, train_end: datetime, now: datetime,
    progress: Progress | None = None, *, feature_version: str, store: FeatureStore | None = None,
) -> TrainResult:
    """Tune, fit and evaluate on the ``feature_version`` rows before ``train_end``; log,
    register and gate the model. With ``store`` (and ``backtest.after_training``), the model
    also trades its test window through the live trade cycle; the ``bt_*`` metrics and the
    report go to its MLflow run, and the gate compares them with the champion's on the same
    window (``champion_bt_*``). Aliases move only after the decision is tagged and stored."""
    if settings.label.kind == "ternary":
        raise ConfigError("label.kind='ternary' is computed and stored but the current model "
                          "trains binary labels; use label.kind='direction'")
    with db.session() as session:
        frame = load_feature_frame(session, feature_version, end=train_end)
    frame = frame.dropna(subset=["label"]).reset_index(drop=True)
    if frame.empty:
        raise DataError(f"no labelled feature rows of feature set {feature_version} before the "
                        "training cut-off: run 'tradebot ingest' and 'tradebot features' first")
    features = feature_columns(frame)
    opt = settings.optuna
    split = holdout_split(frame["ts"], opt.test_fraction, opt.embargo_bars)
    dev, test = frame.iloc[split.train], frame.iloc[split.valid]
    window = f"{frame['ts'].min().isoformat()}..{frame['ts'].max().isoformat()}"
    fingerprint = hashlib.sha256(json.dumps(
        [window, len(frame), features, feature_version, settings.model.model_dump(),
         opt.model_dump()],
        sort_keys=True, default=str).encode()).hexdigest()[:12]
    best, study = tune(dev, features, settings, home.optuna_url,
                       f"{settings.model.registered_name}-{fingerprint}", progress)

    model = XGBDirectionModel.from_params(best, settings.model.xgboost.n_jobs, opt.seed)
    model.fit(dev[features], dev["label"].to_numpy(int))
    prob = model.predict_proba(test[features])
    cost_bps = settings.broker.commission_bps + settings.broker.slippage_bps
    metrics = {f"test_{k}": v for k, v in classification_metrics(test["label"], prob).items()}
    metrics |= {f"test_{k}": v for k, v in trading_metrics(
        test, prob, settings.strategy.entry_probability, cost_bps).items()}
    metrics["cv_auc"] = float(study.best_value)

    name = settings.model.registered_name
    registry.configure(home.mlflow_tracking_uri, home.mlflow_artifacts, settings.model.experiment)
    with tempfile.TemporaryDirectory() as scratch:
        files: list[Path] = []
        if store is not None and settings.backtest.after_training:
            start, end = test["ts"].min(), test["ts"].max()
            period = test_window_period(db, store, start, end)  # candidate and champion
            done = backtest_period(store, period, lambda rows: model.predict_proba(
                rows[features]), "candidate")
            metrics |= finite_metrics(done.run)
            files = write_run_files(done.run, f"Test-window backtest: xgb-{fingerprint} "
                                    "through the live trade cycle", Path(scratch) / "backtest")
            comparison = compare_champion(store, period, name)
        else:
            comparison = champion_unscored(name)
        decision = judge(metrics, comparison, settings.gate)
        info = _log_to_mlflow(model, features, best, metrics | comparison.run_metrics(), study,
                              settings, dev, test, window, fingerprint, feature_version, files,
                              comparison)
    record_decision(db, now, info, decision, comparison, info.metrics)
    return TrainResult(info.name, info.version, info.run_id, decision.promote, decision.reason,
                       metrics, best, features, len(dev), len(test))


def _log_to_mlflow(
    model: XGBDirectionModel, features: list[str], params: dict[str, Any],
    metrics: dict[str, float], study: optuna.Study, settings: TradebotSettings,
    dev: pd.DataFrame, test: pd.DataFrame, window: str, fingerprint: str, feature_version: str,
    backtest_files: list[Path], comparison: ChampionComparison,
) -> registry.ModelInfo:
    import mlflow
    from mlflow.models import infer_signature

    from tradebot.models import pyfunc_entry

    name = settings.model.registered_name
    with mlflow.start_run(run_name=f"xgb-{fingerprint}") as run, \
            tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params({f"xgb.{k}": v for k, v in params.items()})
        mlflow.log_params({
            "data.window": window, "data.dev_rows": len(dev), "data.test_rows": len(test),
            "data.test_start": test["ts"].min().isoformat(), "features.count": len(features),
            "features.set_version": feature_version,
            "label.kind": settings.label.kind, "label.horizon_bars": settings.label.horizon_bars,
            "optuna.trials": len(study.trials), "optuna.study": study.study_name,
            "strategy.entry_probability": settings.strategy.entry_probability,
            "symbols": ",".join(sorted(dev["symbol"].unique())),
            "gate.champion_version": comparison.tag,
        })
        mlflow.log_metrics(metrics)
        mlflow.set_tags({"code_version": _code_version(), "model_family": model.family,
                         "tradebot.fingerprint": fingerprint})
        booster = model.save(Path(tmp) / "booster.json")
        meta = Path(tmp) / "meta.json"
        meta.write_text(json.dumps({
            "features": features, "feature_set_version": feature_version,
            "label": settings.label.model_dump(), "entry_probability":
            settings.strategy.entry_probability, "exit_probability":
            settings.strategy.exit_probability}, indent=2))
        trials = study.trials_dataframe(attrs=("number", "value", "params", "state"))
        mlflow.log_text(trials.to_csv(index=False), "optuna_trials.csv")
        mlflow.log_text(json.dumps(settings.masked(), indent=2, default=str), "config.json")
        for path in backtest_files:
            mlflow.log_artifact(str(path), "backtest")
        sample = test[features].head(5).astype(float)
        signature = infer_signature(sample, pd.DataFrame({"prob_up": model.predict_proba(sample)}))
        logged = mlflow.pyfunc.log_model(
            name="model", python_model=pyfunc_entry.__file__,
            artifacts={"booster": str(booster), "meta": str(meta)},
            signature=signature, input_example=sample, pip_requirements=PIP_REQUIREMENTS,
            registered_model_name=name,
            metadata={"feature_set_version": feature_version},
        )
    version = str(logged.registered_model_version)
    return registry.ModelInfo(name, version, run.info.run_id, metrics)
