"""MLflow records of a training run: one run per member in its family's experiment
(``<experiment>-<member>``) and the ensemble's run in ``<experiment>``, which logs and
registers the pyfunc carrying the members."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

from tradebot.kernel.home import Home
from tradebot.kernel.settings import TradebotSettings
from tradebot.models import plots, registry
from tradebot.models.base import DirectionModel
from tradebot.models.ensemble import Ensemble

PIP_REQUIREMENTS = ["xgboost-cpu>=3.2,<3.3", "torch>=2.4,<2.14", "scikit-learn>=1.5", "pandas",
                    "numpy", "mlflow>=3.17,<3.18"]


def code_version() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=Path(__file__).parent, check=False)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def dataset_hash(frame: pd.DataFrame) -> str:
    """A content hash of the training rows (keys, features and labels)."""
    values = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(values.tobytes()).hexdigest()[:16]


@dataclass(frozen=True)
class RunContext:
    """What every run of one training records about its data and code."""

    mode: str
    fingerprint: str
    window: str
    dataset_hash: str
    feature_version: str
    features: list[str]
    dev: pd.DataFrame
    test: pd.DataFrame

    def params(self, settings: TradebotSettings) -> dict[str, Any]:
        return {
            "train.mode": self.mode, "data.window": self.window, "data.hash": self.dataset_hash,
            "data.dev_rows": len(self.dev), "data.test_rows": len(self.test),
            "data.test_start": self.test["ts"].min().isoformat(),
            "features.count": len(self.features), "features.set_version": self.feature_version,
            "label.kind": settings.label.kind, "label.horizon_bars": settings.label.horizon_bars,
            "symbols": ",".join(sorted(self.dev["symbol"].unique())),
        }

    def tags(self) -> dict[str, str]:
        return {"code_version": code_version(), "tradebot.fingerprint": self.fingerprint,
                "tradebot.mode": self.mode}


def _use_experiment(home: Home, name: str) -> None:
    registry.configure(home.mlflow_tracking_uri, home.mlflow_artifacts, name)


def _classification_plots(y: np.ndarray, prob: np.ndarray, threshold: float,
                          folder: Path) -> list[Path]:
    return [plots.confusion_matrix_png(y, prob, threshold, folder / "confusion_matrix.png"),
            plots.calibration_png(y, prob, folder / "calibration.png")]


def log_member(home: Home, settings: TradebotSettings, ctx: RunContext, name: str,
               model: DirectionModel, params: dict[str, Any], metrics: dict[str, float],
               test_prob: np.ndarray, trials: pd.DataFrame | None) -> str:
    """One member's run in ``<experiment>-<name>``: its params, out-of-sample metrics, the
    data/code record, plots and Optuna trials. Returns the run id."""
    _use_experiment(home, f"{settings.model.experiment}-{name}")
    with mlflow.start_run(run_name=f"{name}-{ctx.fingerprint}") as run, \
            tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params({f"{name}.{k}": v for k, v in params.items()} | ctx.params(settings)
                          | {"model.family": model.family})
        mlflow.log_metrics(metrics)
        mlflow.set_tags(ctx.tags() | {"model_family": model.family})
        folder = Path(tmp)
        files = _classification_plots(ctx.test["label"].to_numpy(int), test_prob,
                                      settings.strategy.entry_probability, folder)
        importance = getattr(model, "importance", None)
        if importance is not None:
            files.append(plots.feature_importance_png(importance(), folder / "importance.png"))
        for path in files:
            mlflow.log_artifact(str(path), "plots")
        if trials is not None:
            mlflow.log_text(trials.to_csv(index=False), "optuna_trials.csv")
        _log_config(settings)
    return run.info.run_id


def _log_config(settings: TradebotSettings) -> None:
    """The effective config, secrets masked."""
    mlflow.log_text(json.dumps(settings.masked(), indent=2, default=str), "config.json")


def log_ensemble(home: Home, settings: TradebotSettings, ctx: RunContext, ensemble: Ensemble,
                 params: dict[str, Any], metrics: dict[str, float], test_prob: np.ndarray,
                 member_runs: dict[str, str], backtest_files: list[Path],
                 equity: tuple[pd.Series, pd.Series | None] | None) -> registry.ModelInfo:
    """The ensemble's run in ``<experiment>``: members' run ids, weights, metrics (with the
    test-window backtest's), plots, config; logs and registers the pyfunc."""
    from tradebot.models import pyfunc_entry

    name = settings.model.registered_name
    _use_experiment(home, settings.model.experiment)
    with mlflow.start_run(run_name=f"ensemble-{ctx.fingerprint}") as run, \
            tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        weights = ensemble.weighting.weights
        mlflow.log_params(params | ctx.params(settings) | {
            "ensemble.members": ",".join(ensemble.members),
            "ensemble.min_confidence": ensemble.min_confidence,
            "ensemble.regime_feature": ensemble.weighting.regime_feature or "",
            "strategy.entry_probability": settings.strategy.entry_probability,
        } | {f"member_run.{n}": r for n, r in member_runs.items()})
        mlflow.log_metrics(metrics | {f"weight_{n}": w for n, w in weights.items()})
        mlflow.set_tags(ctx.tags() | {"model_family": "ensemble"})
        files = _classification_plots(ctx.test["label"].to_numpy(int), test_prob,
                                      settings.strategy.entry_probability, folder)
        files.append(plots.member_weights_png(weights, folder / "member_weights.png",
                                              "Ensemble member weights"))
        if equity is not None:
            files.append(plots.equity_curve_png(equity[0], equity[1], folder / "equity.png",
                                                "Test-window backtest after costs"))
        for path in files:
            mlflow.log_artifact(str(path), "plots")
        for path in backtest_files:
            mlflow.log_artifact(str(path), "backtest")
        _log_config(settings)
        info = _log_pyfunc(ensemble, ctx, settings, folder, name, pyfunc_entry.__file__)
    return registry.ModelInfo(name, info, run.info.run_id, metrics)


def _log_pyfunc(ensemble: Ensemble, ctx: RunContext, settings: TradebotSettings, folder: Path,
                name: str, entry: str) -> str:
    ensemble.save(folder / "ensemble")
    meta = folder / "meta.json"
    meta.write_text(json.dumps({
        "features": ensemble.features, "feature_set_version": ctx.feature_version,
        "label": settings.label.model_dump(), "members": list(ensemble.members),
        "entry_probability": settings.strategy.entry_probability,
        "exit_probability": settings.strategy.exit_probability,
        "min_confidence": ensemble.min_confidence, "context_bars": ensemble.context_bars},
        indent=2))
    columns = ["symbol", "ts", *ensemble.features]
    sample = ctx.test[columns].head(5).copy()
    sample["ts"] = sample["ts"].dt.tz_convert("UTC").dt.tz_localize(None)
    sample[ensemble.features] = sample[ensemble.features].astype(float)
    raw = ensemble.raw_proba(sample)
    signature = infer_signature(sample, pd.DataFrame({"prob_up": ensemble.hold(raw),
                                                      "prob_raw": raw}),
                                params={"newest_only": False})
    logged = mlflow.pyfunc.log_model(
        name="model", python_model=entry,
        artifacts={"ensemble": str(folder / "ensemble"), "meta": str(meta)},
        signature=signature, input_example=sample, pip_requirements=PIP_REQUIREMENTS,
        registered_model_name=name,
        metadata={"feature_set_version": ctx.feature_version,
                  "context_bars": ensemble.context_bars},
    )
    return str(logged.registered_model_version)
