"""Any scikit-learn classifier named in the config, behind the :class:`DirectionModel` interface.

The estimator runs inside a pipeline that standardises the features (optional) and then sets
missing values to 0, so NaN features never reach it. ``[model.sklearn.NAME].search`` declares
the Optuna space; :func:`search_distributions` checks it up front.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import optuna
import pandas as pd
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from sklearn.base import is_classifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from tradebot.kernel.errors import ConfigError
from tradebot.kernel.model_settings import SklearnSettings
from tradebot.models.base import Pruning
from tradebot.models.evaluation import auc

MODEL_FILE = "model.joblib"
META_FILE = "meta.json"


class SklearnDirectionModel:
    """A scikit-learn classifier of the forward-return direction; predicts P(up)."""

    family = "sklearn"

    def __init__(self, pipeline: Pipeline, features: list[str], estimator: str,
                 params: dict[str, Any], fitted: bool = False) -> None:
        self.pipeline = pipeline
        self.features = list(features)
        self.estimator = estimator
        self.params = dict(params)
        self.fitted = fitted

    @classmethod
    def from_params(cls, params: dict[str, Any], features: list[str], spec: SklearnSettings,
                    seed: int) -> SklearnDirectionModel:
        """Build ``spec.estimator`` with ``spec.params | params``; ``random_state=seed`` unless
        the estimator has no such parameter or the config sets it."""
        merged = spec.params | params
        estimator = build_estimator(spec.estimator, merged, seed)
        return cls(make_pipeline(estimator, spec.scale), features, spec.estimator, merged)

    @property
    def context_bars(self) -> int:
        return 1

    @property
    def final_estimator(self) -> Any:
        return self.pipeline.steps[-1][1]

    def fit(self, frame: pd.DataFrame, y: np.ndarray, *,
            valid: tuple[pd.DataFrame, np.ndarray] | None = None,
            pruning: Pruning | None = None) -> SklearnDirectionModel:
        """Fit on ``frame``; with ``valid`` and ``pruning``, report the validation AUC once."""
        with _all_nan_columns_quiet():
            self.pipeline.fit(self._matrix(frame), _labels(y))
        self.fitted = True
        if valid is not None and pruning is not None:
            valid_frame, valid_y = valid
            pruning.epoch_end(0, auc(_labels(valid_y), self.predict_proba(valid_frame)))
        return self

    def continue_fit(self, frame: pd.DataFrame, y: np.ndarray,
                     steps: int | None = None) -> SklearnDirectionModel:
        """Incremental retrain (one pass; ``steps`` is not used). An estimator with
        ``partial_fit`` (SGD, naive Bayes, MLP, ...) takes a further pass over the data, the
        fitted scaler kept as is; any other estimator has no incremental mode and is refitted
        from scratch on ``frame`` alone."""
        final = self.final_estimator
        if not self.fitted or not hasattr(final, "partial_fit"):
            return self.fit(frame, y)
        with _all_nan_columns_quiet():
            X = self.pipeline[:-1].transform(self._matrix(frame))
        classes = getattr(final, "classes_", np.array([0, 1]))
        final.partial_fit(X, _labels(y), classes=classes)
        return self

    def predict_proba(self, frame: pd.DataFrame, at: np.ndarray | None = None) -> np.ndarray:
        """P(up) per row of ``frame``, or of the rows at positions ``at`` (0 if the training
        data held no up rows)."""
        if not self.fitted:
            raise RuntimeError("model is not fitted")
        if at is not None:
            frame = frame.iloc[at]
        with _all_nan_columns_quiet():
            proba = self.pipeline.predict_proba(self._matrix(frame))
        classes = list(self.pipeline.classes_)
        if 1 not in classes:
            return np.zeros(len(frame), dtype=np.float64)
        return np.ascontiguousarray(proba[:, classes.index(1)], dtype=np.float64)

    def save(self, directory: Path) -> None:
        if not self.fitted:
            raise RuntimeError("model is not fitted")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        joblib.dump(self.pipeline, directory / MODEL_FILE)
        meta = {"family": self.family, "features": self.features, "estimator": self.estimator,
                "params": self.params}
        (directory / META_FILE).write_text(json.dumps(meta, indent=2, default=str),
                                           encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> SklearnDirectionModel:
        directory = Path(directory)
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        pipeline = joblib.load(directory / MODEL_FILE)
        return cls(pipeline, meta["features"], meta["estimator"], meta["params"], fitted=True)

    @staticmethod
    def search_space(trial: optuna.Trial, spec: SklearnSettings) -> dict[str, Any]:
        """Sample one point of the space ``spec.search`` declares."""
        params: dict[str, Any] = {}
        for name, dist in search_distributions(spec).items():
            if isinstance(dist, IntDistribution):
                params[name] = trial.suggest_int(name, dist.low, dist.high, log=dist.log)
            elif isinstance(dist, FloatDistribution):
                params[name] = trial.suggest_float(name, dist.low, dist.high, log=dist.log)
            else:
                assert isinstance(dist, CategoricalDistribution)
                params[name] = trial.suggest_categorical(name, list(dist.choices))
        return params

    @staticmethod
    def default_params(spec: SklearnSettings) -> dict[str, Any]:
        """No tuned parameters: the fixed ones already sit in ``spec.params``."""
        return {}

    def _matrix(self, frame: pd.DataFrame) -> np.ndarray:
        X = frame[self.features].to_numpy(dtype=np.float64, copy=True)
        X[~np.isfinite(X)] = np.nan
        return X


def import_estimator(path: str) -> type:
    """The classifier class at ``path`` (e.g. ``sklearn.linear_model.LogisticRegression``)."""
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise ConfigError(f"estimator {path!r} is not an import path like "
                          "'sklearn.linear_model.LogisticRegression'")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import estimator {path!r}: {exc}") from exc
    if not isinstance(obj, type):
        raise ConfigError(f"estimator {path!r} is not a class")
    return obj


def build_estimator(path: str, params: dict[str, Any], seed: int) -> Any:
    """An instance of the classifier at ``path``, checked to be a classifier with
    ``predict_proba``; ``random_state`` defaults to ``seed`` where the estimator has one."""
    estimator_cls = import_estimator(path)
    try:
        estimator = estimator_cls(**params)
        accepted = estimator.get_params()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"cannot build estimator {path!r} with {params}: {exc}") from exc
    if not is_classifier(estimator):
        raise ConfigError(f"estimator {path!r} is not a scikit-learn classifier")
    if not hasattr(estimator, "predict_proba"):
        raise ConfigError(f"estimator {path!r} has no predict_proba with {params} (e.g. SVC "
                          "needs probability = true)")
    if "random_state" in accepted and "random_state" not in params:
        estimator.set_params(random_state=seed)
    return estimator


def make_pipeline(estimator: Any, scale: bool) -> Pipeline:
    """``estimator`` behind an optional standardisation and a NaN → 0 imputation (after the
    scaler, which ignores NaN when it fits)."""
    impute = SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True)
    steps: list[tuple[str, Any]] = [("scale", StandardScaler())] if scale else []
    return Pipeline([*steps, ("impute", impute), ("model", estimator)])


def search_distributions(spec: SklearnSettings) -> dict[str, BaseDistribution]:
    """The Optuna distribution of each ``spec.search`` entry: ``[low, high]`` (int if both
    bounds are, else float), ``[low, high, "log"]``, or ``["choice", a, b, ...]``."""
    return {name: _distribution(name, entry) for name, entry in spec.search.items()}


def _distribution(name: str, entry: list[Any]) -> BaseDistribution:
    where = f"[model.sklearn] search entry {name!r} = {entry!r}"
    if not isinstance(entry, list) or len(entry) < 2:
        raise ConfigError(f"{where}: use [low, high], [low, high, 'log'] or "
                          "['choice', a, b, ...]")
    if entry[0] == "choice":
        choices = entry[1:]
        bad = [c for c in choices if c is not None and not isinstance(c, bool | int | float | str)]
        if bad:
            raise ConfigError(f"{where}: choices must be numbers, strings, booleans; got {bad}")
        return CategoricalDistribution(choices)
    if len(entry) > 3 or (len(entry) == 3 and entry[2] != "log"):
        raise ConfigError(f"{where}: the third item may only be 'log'")
    low, high = entry[0], entry[1]
    if not all(_is_number(v) for v in (low, high)):
        raise ConfigError(f"{where}: bounds must be numbers")
    log = len(entry) == 3
    try:
        if isinstance(low, int) and isinstance(high, int):
            return IntDistribution(low, high, log=log)
        return FloatDistribution(float(low), float(high), log=log)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _all_nan_columns_quiet() -> np.errstate:
    """Silence numpy's 0/0 warnings from the scaler on a feature that is NaN throughout (its
    mean is NaN, and the imputer then sets it to 0)."""
    return np.errstate(invalid="ignore", divide="ignore")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _labels(y: np.ndarray | pd.Series) -> np.ndarray:
    return np.asarray(y, dtype=np.float64).astype(np.int64)
