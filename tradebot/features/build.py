"""One function builds feature rows for training and for live serving: the same code path.

A row at decision time ``t`` is computed only from minute bars known by ``t`` (ts_event < t)
and text items known by ``t``; its label uses decision bars strictly after ``t``.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from tradebot.features.bars import resample_bars
from tradebot.features.cross_section import cross_sectional_features
from tradebot.features.labels import forward_labels, label_threshold_bps
from tradebot.features.sentiment_features import (
    extended_sentiment_features,
    items_for_symbol,
    sentiment_features,
)
from tradebot.features.technical import technical_features
from tradebot.kernel.errors import ConfigError
from tradebot.kernel.settings import (
    BrokerSettings,
    FeatureSettings,
    LabelSettings,
    TradebotSettings,
)

KEY_COLUMNS = ["symbol", "ts"]
TARGET_COLUMNS = ["label", "forward_return"]
DEFAULT_BENCHMARK: str = TradebotSettings.model_fields["benchmark"].default


def _threshold_bps(label: LabelSettings, broker: BrokerSettings | None) -> float:
    if label.cost_aware and broker is None:
        raise ConfigError("label.cost_aware needs the broker costs: pass broker=settings.broker "
                          "to build_feature_frame")
    commission, slippage = (broker.commission_bps, broker.slippage_bps) if broker else (0.0, 0.0)
    return label_threshold_bps(label.flat_threshold_bps, label.cost_aware, commission, slippage)


def _return_horizons(features: FeatureSettings) -> list[int]:
    horizons = sorted({int(s.params.get("periods", 1)) for s in features.indicators
                       if s.name == "return"})
    if not horizons:
        raise ConfigError("features.cross_sectional needs at least one 'return' indicator")
    return horizons


def build_feature_frame(
    minute_bars: pd.DataFrame,
    items: pd.DataFrame,
    features: FeatureSettings,
    label: LabelSettings,
    bar_minutes: int,
    *,
    broker: BrokerSettings | None = None,
    benchmark: str = DEFAULT_BENCHMARK,
    drop_warmup: bool = True,
) -> pd.DataFrame:
    """Feature rows (plus label and forward_return) for every symbol and decision time.

    Rows where any technical feature is undefined (the indicators' warm-up) are dropped, never
    filled; ``frame.attrs["warmup_rows_dropped"]`` maps each symbol to the number dropped.
    ``broker`` supplies the costs of a cost-aware label; ``benchmark`` is the symbol the
    cross-sectional ``rel_return_<n>`` features are measured against. ``drop_warmup=False``
    keeps every row (the checks compare rows a leak would otherwise drop).
    """
    bars = resample_bars(minute_bars, bar_minutes)
    windows = sorted({bar_minutes, features.sentiment_window_minutes})
    threshold = _threshold_bps(label, broker)
    frames = []
    dropped: dict[str, int] = {}
    warmup_columns: list[str] = []
    for symbol, sym_bars in bars.groupby("symbol", sort=True):
        sym_bars = sym_bars.sort_values("ts").reset_index(drop=True)
        tech = technical_features(sym_bars, features.indicators)
        sym_items = items_for_symbol(items, str(symbol))
        sent = sentiment_features(sym_items, tech.index, windows)
        if features.sentiment_extended:
            sent = sent.join(extended_sentiment_features(
                sym_items, tech.index, features.sentiment_half_life_minutes,
                features.sentiment_window_minutes, features.sentiment_baseline_minutes))
        labels = forward_labels(sym_bars, label.horizon_bars, label.kind, threshold)
        joined = tech.join(sent).join(labels)
        warmup_columns = list(tech.columns)
        frame = joined.dropna(subset=list(tech.columns)) if drop_warmup else joined
        dropped[str(symbol)] = len(joined) - len(frame)
        frame.insert(0, "symbol", symbol)
        frames.append(frame.reset_index())
    if not frames:
        out = pd.DataFrame(columns=KEY_COLUMNS + TARGET_COLUMNS)
    else:
        out = pd.concat(frames, ignore_index=True)
        if features.cross_sectional:
            out = cross_sectional_features(out, benchmark, _return_horizons(features))
    out.attrs["warmup_rows_dropped"] = dropped
    out.attrs["warmup_columns"] = warmup_columns  # a row is warm when all of these are defined
    return out


def feature_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in KEY_COLUMNS + TARGET_COLUMNS]


def features_at(
    minute_bars: pd.DataFrame,
    items: pd.DataFrame,
    ts: datetime,
    features: FeatureSettings,
    label: LabelSettings,
    bar_minutes: int,
    *,
    benchmark: str = DEFAULT_BENCHMARK,
    context_bars: int = 1,
) -> pd.DataFrame:
    """Live serving: rows at decision time ``ts`` from data known by ``ts`` (no label); with
    ``context_bars > 1`` also the rows of the ``context_bars - 1`` decision times before."""
    known_bars = minute_bars[minute_bars["ts_event"] < pd.Timestamp(ts)]
    known_items = items[items["ts_known"] <= pd.Timestamp(ts)] if not items.empty else items
    # The labels are dropped below, so their cost-aware threshold does not matter here.
    label = label.model_copy(update={"cost_aware": False})
    frame = build_feature_frame(known_bars, known_items, features, label, bar_minutes,
                                benchmark=benchmark)
    if context_bars <= 1:
        return frame[frame["ts"] == pd.Timestamp(ts)].drop(columns=TARGET_COLUMNS)
    frame = frame[frame["ts"] <= pd.Timestamp(ts)]
    times = frame["ts"].drop_duplicates().nlargest(context_bars)
    return frame[frame["ts"].isin(times)].drop(columns=TARGET_COLUMNS)
