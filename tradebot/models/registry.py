"""MLflow tracking and registry helpers: experiment set-up, the champion alias, cached loading."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tradebot.kernel.errors import NoChampionError

CHAMPION = "champion"


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
    MlflowClient().set_registered_model_alias(name, CHAMPION, version)


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


def model_version(name: str, version: str | None) -> tuple[Any, ModelInfo]:
    """Load a registered version (None: the champion) and its info."""
    if version is None:
        return ChampionCache().get(name)
    client = MlflowClient()
    try:
        mv = client.get_model_version(name, version)
    except MlflowException:
        raise NoChampionError(f"'{name}' has no version {version} in the registry") from None
    run = client.get_run(mv.run_id) if mv.run_id else None
    info = ModelInfo(name, str(mv.version), mv.run_id or "", dict(run.data.metrics) if run else {})
    return mlflow.pyfunc.load_model(info.uri), info


def pyfunc_predictor(model: Any) -> Callable[[pd.DataFrame], np.ndarray]:
    """P(up) per feature row from a logged tradebot model (its inputs picked by name)."""
    inputs = model.metadata.get_input_schema().input_names()

    def predict(rows: pd.DataFrame) -> np.ndarray:
        return model.predict(rows[inputs])["prob_up"].to_numpy()

    return predict


def trained_feature_set(model: Any) -> str | None:
    """The feature-set version a logged model was trained on (None for older models)."""
    return (model.metadata.metadata or {}).get("feature_set_version")


def trained_until(info: ModelInfo) -> datetime | None:
    """The last decision time of the model's training data (its run's ``data.window``)."""
    if not info.run_id:
        return None
    window = MlflowClient().get_run(info.run_id).data.params.get("data.window", "")
    _, _, end = window.partition("..")
    try:
        return datetime.fromisoformat(end) if end else None
    except ValueError:
        return None
