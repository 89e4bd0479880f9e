"""Walk-forward splits never leak the future; the gate promotes only on out-of-sample results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradebot.kernel.settings import GateSettings
from tradebot.models.validation import holdout_split, walk_forward_splits
from tradebot.pipelines.promote import gate_decision


@pytest.fixture
def ts() -> pd.Series:
    times = pd.date_range("2026-06-01 14:00", periods=100, freq="15min", tz="UTC")
    return pd.Series(np.repeat(times, 3))  # three symbols per decision time


def test_walk_forward_folds_train_strictly_before_validation_with_embargo(ts) -> None:
    splits = walk_forward_splits(ts, n_splits=3, embargo=2)
    assert len(splits) == 3
    times = np.sort(ts.unique())
    for split in splits:
        train_max = ts.iloc[split.train].max()
        valid_min = ts.iloc[split.valid].min()
        gap = np.searchsorted(times, valid_min) - np.searchsorted(times, train_max) - 1
        assert gap == 2
        # every symbol row of a decision time lands on the same side
        assert not set(ts.iloc[split.train]) & set(ts.iloc[split.valid])
    # expanding windows
    sizes = [len(s.train) for s in splits]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_holdout_test_window_is_the_final_period(ts) -> None:
    split = holdout_split(ts, test_fraction=0.2, embargo=2)
    assert ts.iloc[split.valid].min() > ts.iloc[split.train].max()
    assert len(ts.iloc[split.valid].unique()) == 20
    assert len(ts.iloc[split.train].unique()) == 78


def test_too_little_data_is_a_clear_error() -> None:
    ts = pd.Series(pd.date_range("2026-06-01", periods=3, freq="15min", tz="UTC"))
    with pytest.raises(ValueError, match="not enough"):
        walk_forward_splits(ts, n_splits=3, embargo=2)


GATE = GateSettings(min_test_auc=0.52, min_test_net_return=0.0, require_beat_champion=True)


@pytest.mark.parametrize(("candidate", "champion", "promote", "reason"), [
    ({"test_auc": 0.56, "test_net_return": 0.01}, None, True, ">= 0.52"),
    ({"test_auc": 0.51, "test_net_return": 0.05}, None, False, "< gate minimum"),
    ({"test_auc": 0.60, "test_net_return": -0.001}, None, False, "net return"),
])
def test_gate_decisions(candidate, champion, promote, reason) -> None:
    decision = gate_decision(candidate, champion, GATE)
    assert decision.promote is promote
    assert reason in decision.reason


def test_gate_without_champion_comparison() -> None:
    gate = GateSettings(min_test_auc=0.5, require_beat_champion=False)
    decision = gate_decision({"test_auc": 0.55, "test_net_return": 0.01}, {"test_auc": 0.9}, gate)
    assert decision.promote
