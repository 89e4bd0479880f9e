"""Per-symbol sentiment features over trailing windows, from items known by the decision time."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

ITEM_COLUMNS = ["kind", "symbols", "ts_known", "score"]


def items_for_symbol(items: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """Items whose comma-separated ``symbols`` field names ``symbol``."""
    if items.empty:
        return items
    mask = items["symbols"].str.split(",").apply(lambda tickers: symbol in tickers)
    return items[mask]


def sentiment_features(
    items: pd.DataFrame, decision_times: pd.DatetimeIndex, windows_minutes: Sequence[int]
) -> pd.DataFrame:
    """Mean score and count per item kind and window, using items with ts_known in (t - w, t].

    ``items`` must already be filtered to one symbol. Mean is NaN when a window is empty.
    """
    out: dict[str, np.ndarray] = {}
    t = pd.DatetimeIndex(decision_times).as_unit("ns").asi8
    for kind in ("news", "post"):
        sub = items[items["kind"] == kind].sort_values("ts_known") if not items.empty else items
        known = (
            pd.DatetimeIndex(sub["ts_known"]).as_unit("ns").asi8
            if len(sub)
            else np.array([], dtype="int64")
        )
        cum = np.concatenate([[0.0], np.cumsum(sub["score"].to_numpy(float))])
        hi = np.searchsorted(known, t, side="right")
        for w in windows_minutes:
            lo = np.searchsorted(known, t - int(w) * 60_000_000_000, side="right")
            count = (hi - lo).astype(float)
            total = cum[hi] - cum[lo]
            with np.errstate(invalid="ignore", divide="ignore"):
                out[f"{kind}_sent_{w}m"] = np.where(count > 0, total / count, np.nan)
            out[f"{kind}_count_{w}m"] = count
    return pd.DataFrame(out, index=decision_times)
