"""Labels: the direction of the forward return, from bars strictly after the decision time.

Kinds: ``direction`` (binary: 1 when the forward return exceeds the threshold, else 0) and
``ternary`` (1 above the threshold, -1 below minus the threshold, 0 in between). This module
takes plain numbers; the caller reads them from the settings.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

LabelKind = Literal["direction", "ternary"]


def label_threshold_bps(
    flat_threshold_bps: float, cost_aware: bool, commission_bps: float, slippage_bps: float
) -> float:
    """max(flat threshold, round-trip cost when cost-aware), the round trip being
    2 * (commission + slippage) in basis points."""
    cost = 2.0 * (commission_bps + slippage_bps) if cost_aware else 0.0
    return max(float(flat_threshold_bps), cost)


def forward_labels(
    bars: pd.DataFrame, horizon: int, kind: LabelKind = "direction", threshold_bps: float = 0.0
) -> pd.DataFrame:
    """For ONE symbol's decision bars: ``forward_return`` = close[t+h] / close[t] - 1 and its
    ``label`` against ``threshold_bps`` (see module doc). The last ``horizon`` bars have no
    label (NaN)."""
    if kind not in ("direction", "ternary"):
        raise ValueError(f"unknown label kind {kind!r}")
    close = bars["close"].to_numpy(float)
    future = np.concatenate([close[horizon:], np.full(min(horizon, len(close)), np.nan)])
    fwd = future / close - 1.0
    threshold = threshold_bps / 1e4
    label = (fwd > threshold).astype(float)
    if kind == "ternary":
        label -= (fwd < -threshold).astype(float)
    label = np.where(np.isnan(fwd), np.nan, label)
    return pd.DataFrame(
        {"forward_return": fwd, "label": label}, index=pd.DatetimeIndex(bars["ts"], name="ts")
    )


def direction_labels(bars: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Binary labels at threshold 0: ``label`` = 1 when the forward return is positive."""
    return forward_labels(bars, horizon)
