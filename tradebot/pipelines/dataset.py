"""Feature step: build point-in-time feature rows for all stored bars and save them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tradebot.features.build import feature_columns
from tradebot.features.feature_store import FeatureStore
from tradebot.features.store import load_minute_bars, load_scored_items, save_feature_rows
from tradebot.kernel.db import Database
from tradebot.kernel.errors import DataError


@dataclass(frozen=True)
class FeatureSummary:
    rows: int
    symbols: int
    features: list[str]
    first_ts: datetime
    last_ts: datetime
    feature_set_version: str
    warmup_rows_dropped: int


def build_features(
    db: Database, store: FeatureStore, symbols: list[str], now: datetime,
) -> FeatureSummary:
    """Compute and upsert feature rows under the store's feature-set version (re-running over
    the same data changes nothing)."""
    settings = store.settings
    with db.session() as session:
        bars = load_minute_bars(session, symbols, timeframe=settings.market.base_timeframe)
        items = load_scored_items(session, store.scorer)
    if bars.empty:
        raise DataError(
            f"no bars stored for {', '.join(symbols)}: run 'tradebot ingest' first"
        )
    frame = store.compute(bars, items)
    if frame.empty:
        raise DataError("not enough bars to compute features (indicator warm-up not reached)")
    with db.session() as session:
        save_feature_rows(session, frame, store.version, now)
    return FeatureSummary(
        len(frame), frame["symbol"].nunique(), feature_columns(frame),
        frame["ts"].min().to_pydatetime(), frame["ts"].max().to_pydatetime(),
        store.version, sum(frame.attrs.get("warmup_rows_dropped", {}).values()),
    )
