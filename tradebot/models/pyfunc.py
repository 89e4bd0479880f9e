"""The MLflow pyfunc that carries a trained model, its feature list and its thresholds.

Input validation comes from the explicit signature logged with each model (MLflow's one-time
"add type hints" notice at logging time is expected).
"""

import json
from typing import Any

import mlflow.pyfunc
import pandas as pd

from tradebot.models.xgb import XGBDirectionModel


class DirectionPyfunc(mlflow.pyfunc.PythonModel):
    """Input: a frame with the feature columns. Output: a frame with column ``prob_up``."""

    def load_context(self, context: Any) -> None:
        self.model = XGBDirectionModel.load(context.artifacts["booster"])
        with open(context.artifacts["meta"], encoding="utf-8") as fh:
            self.meta = json.load(fh)

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        missing = [c for c in self.meta["features"] if c not in model_input.columns]
        if missing:
            raise ValueError(f"model input lacks features {missing}")
        frame = model_input[self.meta["features"]].astype(float)
        return pd.DataFrame({"prob_up": self.model.predict_proba(frame)})
