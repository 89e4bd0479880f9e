"""MLflow tracking and registry helpers: experiment set-up, the champion and challenger aliases,
version tags and listing, cached loading."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tradebot.kernel.errors import NoChampionError
from tradebot.models.base import Predictor

CHAMPION = "champion"
CHALLENGER = "challenger"
TAG_DECISION = "gate.decision"
TAG_REASON = "gate.reason"
TAG_CHAMPION = "gate.champion_version"
KEY_METRICS = ("test_auc", "bt_sharpe", "bt_total_return", "bt_max_drawdown", "bt_n_trades")
TAG_VALUE_LIMIT = 5000  # MLflow's model version tag values are bounded


def configure(tracking_uri: str, artifacts: Path, experiment: str) -> str:
    """Point MLflow at the home's store; create the experiment with artifacts under the home."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    found = mlflow.get_experiment_by_name(experiment)
    if found is not None:
        experiment_id = found.experiment_id
    else:
        artifacts.mkdir(parents=True, exist_ok=True)
        experiment_id = mlflow.create_experiment(experiment, artifact_location=artifacts.as_uri())
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    run_id: str
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"


def champion(name: str) -> ModelInfo | None:
    """The model version holding the champion alias, with its run's metrics; None if none."""
    client = MlflowClient()
    try:
        mv = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    run = client.get_run(mv.run_id) if mv.run_id else None
    metrics = dict(run.data.metrics) if run else {}
    return ModelInfo(name, str(mv.version), mv.run_id or "", metrics)


def promote(name: str, version: str) -> None:
    """Move the champion alias to ``version``."""
    set_alias(name, CHAMPION, version)


def set_alias(name: str, alias: str, version: str) -> None:
    """Point ``alias`` at ``version`` (an alias names one version: it moves)."""
    MlflowClient().set_registered_model_alias(name, alias, version)


def tag_version(name: str, version: str, tags: Mapping[str, str]) -> None:
    """Set tags on a registered version (values cut to MLflow's limit)."""
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value)[:TAG_VALUE_LIMIT])


class ChampionCache:
    """Keeps the loaded champion in memory; reloads only when the alias moves."""

    def __init__(self) -> None:
        self._info: ModelInfo | None = None
        self._model: Any = None

    def get(self, name: str) -> tuple[Any, ModelInfo]:
        info = champion(name)
        if info is None:
            raise NoChampionError(
                f"no model holds the '{CHAMPION}' alias of '{name}' yet: "
                "run 'tradebot train' (or 'tradebot demo') first"
            )
        if self._info is None or self._info.version != info.version:
            self._model = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}")
            self._info = info
        return self._model, info


def version_info(name: str, version: str) -> ModelInfo:
    """A registered version's info and run metrics, without loading the model."""
    client = MlflowClient()
    try:
        mv = client.get_model_version(name, version)
    except MlflowException:
        raise NoChampionError(f"'{name}' has no version {version} in the registry") from None
    run = client.get_run(mv.run_id) if mv.run_id else None
    return ModelInfo(name, str(mv.version), mv.run_id or "", dict(run.data.metrics) if run else {})


def model_version(name: str, version: str | None) -> tuple[Any, ModelInfo]:
    """Load a registered version (None: the champion) and its info."""
    if version is None:
        return ChampionCache().get(name)
    info = version_info(name, version)
    return mlflow.pyfunc.load_model(info.uri), info


@dataclass(frozen=True)
class VersionSummary:
    """One registered version as ``tradebot models`` shows it."""

    version: str
    aliases: list[str]
    created: datetime
    run_id: str
    gate_decision: str | None
    gate_reason: str | None
    metrics: dict[str, float | None]


def list_versions(name: str) -> list[VersionSummary]:
    """Every registered version of ``name``, newest first, with its aliases, gate decision and
    key run metrics (None when not logged). Empty when the model is not registered."""
    client = MlflowClient()
    try:
        aliases = client.get_registered_model(name).aliases
    except MlflowException:
        return []
    return [_summary(client, mv, aliases) for mv in _all_versions(client, name)]


def _all_versions(client: MlflowClient, name: str) -> list[Any]:
    """All versions of ``name`` (every page), highest version number first."""
    found: list[Any] = []
    token: str | None = None
    while True:
        page = client.search_model_versions(f"name = '{name}'", page_token=token)
        found += [mv for mv in page if mv.name == name]
        token = page.token
        if not token:
            return sorted(found, key=lambda mv: int(mv.version), reverse=True)


def _run_metrics(client: MlflowClient, run_id: str | None) -> dict[str, float]:
    """The run's metrics; empty for no run or one that was deleted for good."""
    if not run_id:
        return {}
    try:
        return dict(client.get_run(run_id).data.metrics)
    except MlflowException:
        return {}


def _summary(client: MlflowClient, mv: Any, aliases: Mapping[str, str]) -> VersionSummary:
    metrics = _run_metrics(client, mv.run_id)
    tags = dict(mv.tags or {})
    return VersionSummary(
        version=str(mv.version),
        aliases=sorted(a for a, v in aliases.items() if str(v) == str(mv.version)),
        created=datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC),
        run_id=mv.run_id or "",
        gate_decision=tags.get(TAG_DECISION),
        gate_reason=tags.get(TAG_REASON),
        metrics={k: metrics.get(k) for k in KEY_METRICS},
    )


def pyfunc_predictor(model: Any) -> Predictor:
    """P(up) per feature row from a logged tradebot model (its inputs picked by name), with
    the rows of context per symbol it reads (``context_bars`` in its metadata; 1 if absent)."""
    inputs = model.metadata.get_input_schema().input_names()

    def inputs_of(rows: pd.DataFrame) -> pd.DataFrame:
        frame = rows[inputs]
        if "ts" in inputs and getattr(frame["ts"].dt, "tz", None) is not None:
            frame = frame.assign(ts=frame["ts"].dt.tz_convert("UTC").dt.tz_localize(None))
        return frame

    def predict(rows: pd.DataFrame) -> np.ndarray:
        return model.predict(inputs_of(rows))["prob_up"].to_numpy()

    def predict_newest(context: pd.DataFrame) -> np.ndarray:
        return model.predict(inputs_of(context), params={"newest_only": True})[
            "prob_up"].to_numpy()

    context = int((model.metadata.metadata or {}).get("context_bars", 1))
    takes_newest = model.metadata.get_params_schema() is not None
    return Predictor(predict, context, predict_newest if takes_newest else None)


def trained_feature_set(model: Any) -> str | None:
    """The feature-set version a logged model was trained on (None for older models)."""
    return (model.metadata.metadata or {}).get("feature_set_version")


def unwrap_ensemble(model: Any) -> Any:
    """The :class:`~tradebot.models.ensemble.Ensemble` inside a loaded pyfunc; None for a
    version logged before the ensemble (XGBoost alone)."""
    return getattr(model.unwrap_python_model(), "ensemble", None)


def run_param(info: ModelInfo, key: str) -> str | None:
    """A param of the version's training run (None when absent)."""
    if not info.run_id:
        return None
    return MlflowClient().get_run(info.run_id).data.params.get(key)


def trained_until(info: ModelInfo) -> datetime | None:
    """The last decision time of the model's training data (its run's ``data.window``)."""
    _, _, end = (run_param(info, "data.window") or "").partition("..")
    try:
        return datetime.fromisoformat(end) if end else None
    except ValueError:
        return None
