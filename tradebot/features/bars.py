"""Resample 1-minute bars to decision bars labelled by their close time."""

from __future__ import annotations

import pandas as pd

BAR_COLUMNS = ["symbol", "ts_event", "open", "high", "low", "close", "volume"]


def resample_bars(minute_bars: pd.DataFrame, bar_minutes: int) -> pd.DataFrame:
    """Aggregate 1-minute bars into ``bar_minutes`` bars.

    Output column ``ts`` is the bar's close, i.e. the decision time at which the whole bar is
    known: minutes with ``ts_event`` in ``[ts - bar_minutes, ts)`` (each known at ts_event + 1m).
    Buckets with no trading (nights, weekends, holidays) are dropped.
    """
    missing = [c for c in BAR_COLUMNS if c not in minute_bars.columns]
    if missing:
        raise ValueError(f"minute bars lack columns {missing}")
    if minute_bars.empty:
        cols = ["symbol", "ts", "open", "high", "low", "close", "volume", "vwap"]
        return pd.DataFrame(columns=cols)
    frames = []
    rule = f"{bar_minutes}min"
    for symbol, group in minute_bars.groupby("symbol", sort=True):
        g = group.set_index("ts_event").sort_index()
        notional = (g["close"] * g["volume"]).resample(rule, label="right", closed="left").sum()
        agg = g.resample(rule, label="right", closed="left").agg(
            {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
        )
        agg["vwap"] = notional / agg["volume"].where(agg["volume"] > 0)
        agg = agg.dropna(subset=["close"])
        agg.insert(0, "symbol", symbol)
        frames.append(agg.rename_axis("ts").reset_index())
    return pd.concat(frames, ignore_index=True)
