"""The XGBoost member: saved with its parameters, continued by an incremental retrain, pruned
through Optuna's XGBoost callback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from tradebot.kernel.settings import TradebotSettings
from tradebot.models.base import Pruning
from tradebot.models.xgb import XGBDirectionModel

SETTINGS = TradebotSettings(model={"xgboost": {"n_estimators": 20, "n_jobs": 1,
                                               "incremental_rounds": 7}})


def _data(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"symbol": "AAA", "ts": pd.date_range(
        "2026-06-01 14:00", periods=n, freq="15min", tz="UTC"), "x": rng.normal(size=n),
        "z": rng.normal(size=n)})
    return frame, (frame["x"] + rng.normal(0, 0.5, n) > 0).to_numpy(int)


def _model() -> XGBDirectionModel:
    params = XGBDirectionModel.default_params(SETTINGS) | {"max_depth": 2, "eta": 0.1}
    return XGBDirectionModel.from_params(params, ["x", "z"], SETTINGS, seed=3)


def test_saved_model_keeps_its_parameters_and_continues_with_them(tmp_path: Path) -> None:
    frame, y = _data()
    model = _model().fit(frame, y)
    model.save(tmp_path / "m")
    loaded = XGBDirectionModel.load(tmp_path / "m")
    assert np.array_equal(loaded.predict_proba(frame), model.predict_proba(frame))
    assert loaded.params["max_depth"] == 2 and loaded.params["eta"] == 0.1
    assert loaded.booster is not None and loaded.booster.num_boosted_rounds() == 20
    newer, y2 = _data(seed=1)
    loaded.continue_fit(newer, y2)
    assert loaded.booster.num_boosted_rounds() == 27  # incremental_rounds
    loaded.continue_fit(newer, y2, steps=3)
    assert loaded.booster.num_boosted_rounds() == 30
    # the added rounds change the model
    assert not np.array_equal(loaded.predict_proba(frame), model.predict_proba(frame))


class _FakeTrial:
    def __init__(self, prune_after: int) -> None:
        self.reported: list[int] = []
        self.prune_after = prune_after

    def report(self, value: float, step: int) -> None:
        self.reported.append(step)

    def should_prune(self) -> bool:
        return len(self.reported) > self.prune_after


def test_pruning_callback_reports_every_tenth_round_with_the_fold_offset() -> None:
    frame, y = _data()
    trial = _FakeTrial(prune_after=1)
    with pytest.raises(optuna.TrialPruned):
        _model().fit(frame, y, valid=(frame, y), pruning=Pruning(trial).at_fold(2, 1000))
    assert trial.reported == [2009, 2019]
