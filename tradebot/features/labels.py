"""Labels: the direction of the forward return, from bars strictly after the decision time."""

from __future__ import annotations

import numpy as np
import pandas as pd


def direction_labels(bars: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """For ONE symbol's decision bars: ``forward_return`` = close[t+h] / close[t] - 1 and
    ``label`` = 1 when it is positive. The last ``horizon`` bars have no label (NaN)."""
    close = bars["close"].to_numpy(float)
    future = np.concatenate([close[horizon:], np.full(min(horizon, len(close)), np.nan)])
    fwd = future / close - 1.0
    label = np.where(np.isnan(fwd), np.nan, (fwd > 0).astype(float))
    return pd.DataFrame(
        {"forward_return": fwd, "label": label}, index=pd.DatetimeIndex(bars["ts"], name="ts")
    )
