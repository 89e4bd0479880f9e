"""The MLflow pyfuncs that carry a trained model, its feature list and its thresholds.

:class:`EnsemblePyfunc` is what training logs: the ensemble with its members. Its input is a
frame of feature rows with ``symbol`` and ``ts`` (sequence members read each row's earlier
rows of the same symbol from the frame); its output has ``prob_up`` (what the strategy trades
on, the hold value below the confidence threshold) and ``prob_raw`` (the weighted P(up)), per
row, or only for the newest rows with the ``newest_only`` param.
:class:`DirectionPyfunc` loads versions registered before the ensemble (XGBoost alone).

Input validation comes from the explicit signature logged with each model (MLflow's one-time
"add type hints" notice at logging time is expected).
"""

import json
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd

from tradebot.models.base import newest_rows
from tradebot.models.ensemble import Ensemble
from tradebot.models.xgb import XGBDirectionModel


def _require(frame: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"model input lacks columns {missing}")


class EnsemblePyfunc(mlflow.pyfunc.PythonModel):
    """The ensemble as one MLflow model (artifact ``ensemble``: its directory)."""

    def load_context(self, context: Any) -> None:
        self.ensemble = Ensemble.load(Path(context.artifacts["ensemble"]))
        with open(context.artifacts["meta"], encoding="utf-8") as fh:
            self.meta = json.load(fh)

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        """``params={"newest_only": True}``: only the rows at the newest ``ts`` are predicted
        (and returned); the others are the sequence members' context."""
        _require(model_input, ["symbol", "ts", *self.ensemble.features])
        frame = model_input.reset_index(drop=True)
        at = newest_rows(frame) if (params or {}).get("newest_only") else None
        raw = self.ensemble.raw_proba(frame, at)
        return pd.DataFrame({"prob_up": self.ensemble.hold(raw), "prob_raw": raw})


class DirectionPyfunc(mlflow.pyfunc.PythonModel):
    """Input: a frame with the feature columns. Output: a frame with column ``prob_up``."""

    def load_context(self, context: Any) -> None:
        self.model = XGBDirectionModel.load(context.artifacts["booster"])
        with open(context.artifacts["meta"], encoding="utf-8") as fh:
            self.meta = json.load(fh)

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        _require(model_input, self.meta["features"])
        frame = model_input[self.meta["features"]].astype(float)
        return pd.DataFrame({"prob_up": self.model.predict_proba(frame)})
