"""XGBoost direction classifier behind the model interface (fit / predict_proba / save / load)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import xgboost as xgb

from tradebot.kernel.settings import XGBoostSettings


class XGBDirectionModel:
    """Binary classifier of the forward-return direction; predicts P(up)."""

    family = "xgboost"

    def __init__(self, params: dict[str, Any], n_estimators: int, seed: int = 0) -> None:
        self.params = {"objective": "binary:logistic", "eval_metric": "logloss",
                       "tree_method": "hist", "seed": seed, **params}
        self.n_estimators = n_estimators
        self.booster: xgb.Booster | None = None
        self.features: list[str] = []

    def fit(self, X: pd.DataFrame, y: pd.Series | np.ndarray) -> XGBDirectionModel:
        self.features = list(X.columns)
        dtrain = xgb.DMatrix(X.to_numpy(float), label=np.asarray(y, float),
                             feature_names=self.features)
        self.booster = xgb.train(self.params, dtrain, num_boost_round=self.n_estimators)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if self.booster is None:
            raise RuntimeError("model is not fitted")
        matrix = xgb.DMatrix(X[self.features].to_numpy(float), feature_names=self.features)
        return self.booster.predict(matrix)

    def save(self, path: Path) -> Path:
        if self.booster is None:
            raise RuntimeError("model is not fitted")
        self.booster.save_model(str(path))
        return path

    @classmethod
    def load(cls, path: Path) -> XGBDirectionModel:
        model = cls({}, n_estimators=0)
        model.booster = xgb.Booster()
        model.booster.load_model(str(path))
        model.features = list(model.booster.feature_names or [])
        return model

    @staticmethod
    def search_space(trial: optuna.Trial, base: XGBoostSettings) -> dict[str, Any]:
        """Optuna search space around the configured defaults."""
        return {
            "max_depth": trial.suggest_int("max_depth", 2, max(6, base.max_depth)),
            "eta": trial.suggest_float("eta", 0.01, 0.3, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
            "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 50.0, log=True),
            "lambda": trial.suggest_float("lambda", 1e-3, 10.0, log=True),
            "n_estimators": trial.suggest_int("n_estimators", 50, max(100, base.n_estimators)),
        }

    @staticmethod
    def default_params(base: XGBoostSettings) -> dict[str, Any]:
        return {"max_depth": base.max_depth, "eta": base.learning_rate,
                "n_estimators": base.n_estimators}

    @classmethod
    def from_params(cls, params: dict[str, Any], n_jobs: int, seed: int) -> XGBDirectionModel:
        params = dict(params)
        n_estimators = int(params.pop("n_estimators"))
        return cls({**params, "nthread": n_jobs}, n_estimators=n_estimators, seed=seed)
