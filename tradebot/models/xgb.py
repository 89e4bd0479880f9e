"""XGBoost direction classifier behind the model interface (see :mod:`tradebot.models.base`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import xgboost as xgb
from optuna_integration import XGBoostPruningCallback

from tradebot.kernel.settings import TradebotSettings, XGBoostSettings
from tradebot.models.base import Pruning

BOOSTER_FILE = "booster.json"
PARAMS_FILE = "params.json"
PRUNING_EVERY = 10  # boosting rounds between reports to the Optuna trial


class XGBDirectionModel:
    """Binary classifier of the forward-return direction on the tabular features; P(up)."""

    family = "xgboost"
    context_bars = 1

    def __init__(self, params: dict[str, Any], n_estimators: int, seed: int = 0,
                 features: list[str] | None = None, incremental_rounds: int = 50) -> None:
        self.params = {"objective": "binary:logistic", "eval_metric": "auc",
                       "tree_method": "hist", "seed": seed, **params}
        self.n_estimators = n_estimators
        self.incremental_rounds = incremental_rounds
        self.booster: xgb.Booster | None = None
        self.features: list[str] = list(features or [])

    def _matrix(self, frame: pd.DataFrame, y: np.ndarray | pd.Series | None = None
                ) -> xgb.DMatrix:
        if not self.features:
            self.features = [c for c in frame.columns if c not in ("symbol", "ts")]
        label = None if y is None else np.asarray(y, float)
        return xgb.DMatrix(frame[self.features].to_numpy(float), label=label,
                           feature_names=self.features)

    def fit(self, frame: pd.DataFrame, y: np.ndarray | pd.Series, *,
            valid: tuple[pd.DataFrame, np.ndarray] | None = None,
            pruning: Pruning | None = None) -> XGBDirectionModel:
        """Boost ``n_estimators`` rounds; with ``valid`` and ``pruning``, Optuna's
        ``XGBoostPruningCallback`` watches the validation AUC round by round."""
        dtrain = self._matrix(frame, y)
        evals, callbacks = [], []
        if valid is not None and pruning is not None:
            evals = [(self._matrix(valid[0], valid[1]), "validation")]
            callbacks = [XGBoostPruningCallback(pruning.thinned(PRUNING_EVERY),  # type: ignore[arg-type]
                                                "validation-auc")]
        self.booster = xgb.train(self.params, dtrain, num_boost_round=self.n_estimators,
                                 evals=evals, callbacks=callbacks, verbose_eval=False)
        return self

    def continue_fit(self, frame: pd.DataFrame, y: np.ndarray | pd.Series,
                     steps: int | None = None) -> XGBDirectionModel:
        """Incremental retrain: add ``steps`` (default ``incremental_rounds``) rounds to the
        fitted booster, with the parameters it was trained with."""
        if self.booster is None:
            raise RuntimeError("model is not fitted")
        self.booster = xgb.train(self.params, self._matrix(frame, y),
                                 num_boost_round=steps or self.incremental_rounds,
                                 xgb_model=self.booster)
        return self

    def predict_proba(self, frame: pd.DataFrame, at: np.ndarray | None = None) -> np.ndarray:
        """P(up) per row of ``frame``, or of the rows at positions ``at``."""
        if self.booster is None:
            raise RuntimeError("model is not fitted")
        if at is not None:
            frame = frame.iloc[at]
        return self.booster.predict(self._matrix(frame)).astype(float)

    def importance(self) -> dict[str, float]:
        """Total gain per feature (features never split on are absent)."""
        if self.booster is None:
            raise RuntimeError("model is not fitted")
        return {k: float(v) for k, v in self.booster.get_score(importance_type="total_gain")
                .items()}

    def save(self, directory: Path) -> None:
        if self.booster is None:
            raise RuntimeError("model is not fitted")
        directory.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(directory / BOOSTER_FILE))
        (directory / PARAMS_FILE).write_text(json.dumps(
            {"params": self.params, "n_estimators": self.n_estimators,
             "incremental_rounds": self.incremental_rounds}, indent=2, default=str))

    @classmethod
    def load(cls, directory: Path) -> XGBDirectionModel:
        """The saved booster and the parameters it was trained with (an incremental retrain
        continues with them); a bare booster file loads with default parameters."""
        path = Path(directory)
        saved = path / PARAMS_FILE if path.is_dir() else None
        meta = json.loads(saved.read_text()) if saved and saved.exists() else {}
        model = cls(meta.get("params", {}), n_estimators=meta.get("n_estimators", 0),
                    incremental_rounds=meta.get("incremental_rounds", 50))
        model.booster = xgb.Booster()
        model.booster.load_model(str(path / BOOSTER_FILE if path.is_dir() else path))
        model.features = list(model.booster.feature_names or [])
        return model

    @staticmethod
    def search_space(trial: optuna.Trial, settings: TradebotSettings) -> dict[str, Any]:
        """Optuna search space around the configured defaults."""
        base = settings.model.xgboost
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
    def default_params(settings: TradebotSettings) -> dict[str, Any]:
        base = settings.model.xgboost
        return {"max_depth": base.max_depth, "eta": base.learning_rate,
                "n_estimators": base.n_estimators, "subsample": 1.0, "colsample_bytree": 1.0,
                "min_child_weight": 1.0, "lambda": 1.0}

    @classmethod
    def from_params(cls, params: dict[str, Any], features: list[str], settings: TradebotSettings,
                    seed: int) -> XGBDirectionModel:
        base: XGBoostSettings = settings.model.xgboost
        params = dict(params)
        n_estimators = int(params.pop("n_estimators", base.n_estimators))
        return cls({**params, "nthread": base.n_jobs}, n_estimators=n_estimators, seed=seed,
                   features=features, incremental_rounds=base.incremental_rounds)
