"""Ensemble weighting: skill from recent out-of-sample rows, regimes, the confidence hold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradebot.kernel.settings import TradebotSettings
from tradebot.models.ensemble import Ensemble, Weighting, recency_weights
from tradebot.models.xgb import XGBDirectionModel


def _oos(n_days: int = 10, per_day: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2026-06-01", periods=n_days, tz="America/New_York")
    ts = np.repeat(days + pd.Timedelta(hours=11), per_day).tz_convert("UTC")
    label = rng.integers(0, 2, len(ts))
    noise = rng.normal(0, 1, len(ts))
    return pd.DataFrame({
        "ts": ts, "label": label,
        "good": 1 / (1 + np.exp(-(2.0 * (label - 0.5) + noise))),   # informative
        "weak": 1 / (1 + np.exp(-(0.3 * (label - 0.5) + noise))),   # a little
        "noise": rng.uniform(0, 1, len(ts)),                        # chance
        "vol": rng.uniform(0, 1, len(ts)),
    })


def test_better_members_get_more_weight_and_chance_gets_none() -> None:
    oos = _oos()
    w = Weighting.fit(oos, ["good", "weak", "noise"], half_life_sessions=5).weights
    assert sum(w.values()) == pytest.approx(1.0)
    assert w["good"] > w["weak"] > 0
    assert w["noise"] < 0.05


def test_recent_sessions_count_more() -> None:
    oos = _oos(n_days=10)
    days = oos["ts"].dt.tz_convert("America/New_York").dt.date
    recent = days >= sorted(set(days))[-3]
    # "flip" is informative only in the last three sessions, "early" only before them
    oos["flip"] = np.where(recent, oos["good"], oos["noise"])
    oos["early"] = np.where(recent, oos["noise"], oos["good"])
    fast = Weighting.fit(oos, ["flip", "early"], half_life_sessions=1).weights
    slow = Weighting.fit(oos, ["flip", "early"], half_life_sessions=1000).weights
    assert fast["flip"] > fast["early"]
    assert slow["early"] > slow["flip"]
    age = recency_weights(oos["ts"], 2.0)
    assert age.max() == 1.0 and age.min() == pytest.approx(0.5 ** (9 / 2))


def test_regime_weights_follow_the_member_that_works_in_each_regime() -> None:
    oos = _oos(per_day=200)
    high = oos["vol"] > 0.5
    oos["calm"] = np.where(high, oos["noise"], oos["good"])
    oos["storm"] = np.where(high, oos["good"], oos["noise"])
    w = Weighting.fit(oos, ["calm", "storm"], 5, regime_feature="vol")
    assert w.regime_weights["low"]["calm"] > 0.8 and w.regime_weights["high"]["storm"] > 0.8
    probs = pd.DataFrame({"calm": [0.9, 0.9], "storm": [0.1, 0.1]})
    mixed = w.combine(probs, pd.DataFrame({"vol": [0.1, 0.9]}))
    assert mixed[0] > 0.7 and mixed[1] < 0.3


def test_all_at_chance_means_equal_weights() -> None:
    oos = _oos()
    w = Weighting.fit(oos, ["noise"], 5).weights
    assert w == {"noise": 1.0}
    oos["noise2"] = np.random.default_rng(3).uniform(0, 1, len(oos))
    oos["label"] = 1
    w2 = Weighting.fit(oos, ["noise", "noise2"], 5).weights
    assert w2 == {"noise": 0.5, "noise2": 0.5}


def _frame(n: int = 400, seed: int = 1) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    ts = pd.date_range("2026-06-01 14:00", periods=n, freq="15min", tz="UTC")
    frame = pd.DataFrame({"symbol": "AAA", "ts": ts, "x": x, "z": rng.normal(size=n)})
    return frame, (x + rng.normal(0, 0.5, n) > 0).astype(int)


def test_confidence_threshold_holds_and_save_load_round_trips(tmp_path: Path) -> None:
    frame, y = _frame()
    settings = TradebotSettings(model={"xgboost": {"n_estimators": 20, "n_jobs": 1}})
    model = XGBDirectionModel.from_params(XGBDirectionModel.default_params(settings),
                                          ["x", "z"], settings, seed=0).fit(frame, y)
    ensemble = Ensemble({"xgboost": model}, Weighting({"xgboost": 1.0}), min_confidence=0.2,
                        hold_probability=0.5)
    raw, traded = ensemble.raw_proba(frame), ensemble.predict_proba(frame)
    unsure = np.abs(raw - 0.5) < 0.2
    assert unsure.any() and (~unsure).any()
    assert np.all(traded[unsure] == 0.5)
    assert np.array_equal(traded[~unsure], raw[~unsure])
    at = np.array([3, 7, 11])
    assert np.array_equal(ensemble.predict_proba(frame, at), traded[at])
    ensemble.save(tmp_path / "e")
    again = Ensemble.load(tmp_path / "e")
    assert np.array_equal(again.predict_proba(frame), traded)
    assert again.features == ["x", "z"] and again.context_bars == 1
