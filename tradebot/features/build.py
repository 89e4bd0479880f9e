"""One function builds feature rows for training and for live serving: the same code path.

A row at decision time ``t`` is computed only from minute bars known by ``t`` (ts_event < t)
and text items known by ``t``; its label uses decision bars strictly after ``t``.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from tradebot.features.bars import resample_bars
from tradebot.features.labels import direction_labels
from tradebot.features.sentiment_features import items_for_symbol, sentiment_features
from tradebot.features.technical import technical_features
from tradebot.kernel.settings import FeatureSettings, LabelSettings

KEY_COLUMNS = ["symbol", "ts"]
TARGET_COLUMNS = ["label", "forward_return"]


def build_feature_frame(
    minute_bars: pd.DataFrame,
    items: pd.DataFrame,
    features: FeatureSettings,
    label: LabelSettings,
    bar_minutes: int,
) -> pd.DataFrame:
    """Feature rows (plus label and forward_return) for every symbol and decision time.

    Rows inside the indicators' warm-up (any technical feature undefined) are dropped.
    """
    bars = resample_bars(minute_bars, bar_minutes)
    windows = sorted({bar_minutes, features.sentiment_window_minutes})
    frames = []
    for symbol, sym_bars in bars.groupby("symbol", sort=True):
        sym_bars = sym_bars.sort_values("ts").reset_index(drop=True)
        tech = technical_features(sym_bars, features.indicators)
        sent = sentiment_features(items_for_symbol(items, str(symbol)), tech.index, windows)
        labels = direction_labels(sym_bars, label.horizon_bars)
        frame = tech.join(sent).join(labels).dropna(subset=list(tech.columns))
        frame.insert(0, "symbol", symbol)
        frames.append(frame.reset_index())
    if not frames:
        return pd.DataFrame(columns=KEY_COLUMNS + TARGET_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def feature_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in KEY_COLUMNS + TARGET_COLUMNS]


def features_at(
    minute_bars: pd.DataFrame,
    items: pd.DataFrame,
    ts: datetime,
    features: FeatureSettings,
    label: LabelSettings,
    bar_minutes: int,
) -> pd.DataFrame:
    """Live serving: rows at decision time ``ts`` from data known by ``ts`` (no label)."""
    known_bars = minute_bars[minute_bars["ts_event"] < pd.Timestamp(ts)]
    known_items = items[items["ts_known"] <= pd.Timestamp(ts)] if not items.empty else items
    frame = build_feature_frame(known_bars, known_items, features, label, bar_minutes)
    return frame[frame["ts"] == pd.Timestamp(ts)].drop(columns=TARGET_COLUMNS)
