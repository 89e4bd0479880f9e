"""Each figure builder writes a valid PNG, for normal and degenerate input alike."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradebot.models import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RNG = np.random.default_rng(0)
Y = RNG.integers(0, 2, 300)
PROB = np.clip(0.5 + 0.3 * (Y - 0.5) + RNG.normal(0, 0.15, 300), 0, 1)
TIMES = pd.date_range("2026-03-02 14:30", periods=120, freq="15min", tz="UTC")
EQUITY = pd.Series(1000 * np.cumprod(1 + RNG.normal(0, 0.002, 120)), index=TIMES)
BENCH = pd.Series(np.cumprod(1 + RNG.normal(0, 0.002, 120)), index=TIMES)
EQUITY_NAN = EQUITY.copy()
EQUITY_NAN.iloc[[0, 5, 50]] = np.nan
BENCH_NAN = BENCH.copy()
BENCH_NAN.iloc[:3] = np.nan


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000


CASES: dict[str, Callable[[Path], Path]] = {
    "confusion": lambda p: plots.confusion_matrix_png(Y, PROB, 0.55, p),
    "confusion_one_class": lambda p: plots.confusion_matrix_png(np.ones(50), PROB[:50], 0.5, p),
    "confusion_constant": lambda p: plots.confusion_matrix_png(Y, np.full(300, 0.5), 0.6, p),
    "confusion_empty": lambda p: plots.confusion_matrix_png(np.array([]), np.array([]), 0.5, p),
    "calibration": lambda p: plots.calibration_png(Y, PROB, p),
    "calibration_one_class": lambda p: plots.calibration_png(np.zeros(50), PROB[:50], p),
    "calibration_constant": lambda p: plots.calibration_png(Y, np.full(300, 0.5), p, bins=5),
    "calibration_empty": lambda p: plots.calibration_png(np.array([]), np.array([]), p),
    "calibration_nan": lambda p: plots.calibration_png(Y, np.where(Y, np.nan, PROB), p),
    "importance": lambda p: plots.feature_importance_png(
        {f"feature_{i}": float(v) for i, v in enumerate(RNG.random(40))}, p),
    "importance_few": lambda p: plots.feature_importance_png({"a": 0.2, "b": np.nan}, p, top=5),
    "importance_empty": lambda p: plots.feature_importance_png({}, p),
    "equity": lambda p: plots.equity_curve_png(EQUITY, BENCH, p, "Backtest"),
    "equity_no_benchmark": lambda p: plots.equity_curve_png(EQUITY, None, p, "Backtest"),
    "equity_nan": lambda p: plots.equity_curve_png(EQUITY_NAN, BENCH_NAN, p, "With gaps"),
    "equity_all_nan": lambda p: plots.equity_curve_png(EQUITY * np.nan, BENCH, p, "Empty"),
    "equity_zero_benchmark": lambda p: plots.equity_curve_png(EQUITY, BENCH * 0, p, "Zero"),
    "equity_int_index": lambda p: plots.equity_curve_png(EQUITY.reset_index(drop=True), None,
                                                         p, "Bars"),
    "weights": lambda p: plots.member_weights_png(
        {"xgboost": 0.5, "lstm": 0.3, "transformer": 0.2}, p, "Member weights"),
    "weights_edge": lambda p: plots.member_weights_png({"a": np.nan, "b": -0.1}, p, "Odd"),
    "weights_empty": lambda p: plots.member_weights_png({}, p, "None"),
}


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("case", CASES)
def test_writes_png(case: str, tmp_path: Path) -> None:
    target = tmp_path / "figures" / f"{case}.png"
    assert CASES[case](target) == target
    _assert_png(target)
