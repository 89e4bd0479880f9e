"""Feature step: build point-in-time feature rows for all stored bars and save them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tradebot.features.build import build_feature_frame, feature_columns
from tradebot.features.sentiment import LexiconScorer
from tradebot.features.store import load_minute_bars, load_scored_items, save_feature_rows
from tradebot.kernel.db import Database
from tradebot.kernel.errors import DataError
from tradebot.kernel.settings import TradebotSettings


@dataclass(frozen=True)
class FeatureSummary:
    rows: int
    symbols: int
    features: list[str]
    first_ts: datetime
    last_ts: datetime


def build_features(
    db: Database, settings: TradebotSettings, symbols: list[str], now: datetime,
    scorer_name: str = LexiconScorer.name,
) -> FeatureSummary:
    """Compute and upsert feature rows (re-running over the same data changes nothing)."""
    with db.session() as session:
        bars = load_minute_bars(session, symbols, timeframe=settings.market.base_timeframe)
        items = load_scored_items(session, scorer_name)
    if bars.empty:
        raise DataError(
            f"no bars stored for {', '.join(symbols)}: run 'tradebot ingest' first"
        )
    frame = build_feature_frame(
        bars, items, settings.features, settings.label, settings.market.bar_minutes,
        broker=settings.broker, benchmark=settings.benchmark,
    )
    if frame.empty:
        raise DataError("not enough bars to compute features (indicator warm-up not reached)")
    with db.session() as session:
        save_feature_rows(session, frame, settings.features.set_version, now)
    return FeatureSummary(
        len(frame), frame["symbol"].nunique(), feature_columns(frame),
        frame["ts"].min().to_pydatetime(), frame["ts"].max().to_pydatetime(),
    )
