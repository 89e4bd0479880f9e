"""The feature store API: training frames and online rows from the same feature code.

``training_frame`` and ``online_features`` both read minute bars and scored texts from the
store and run :func:`~tradebot.features.build.build_feature_frame` on a bounded history: the
``features.warmup_sessions`` sessions before the first decision time. Recursive indicators
(Wilder's RSI/ATR/ADX, MACD's EMAs) forget their start geometrically, so with enough warm-up a
row is the same (to ~1e-12) whether it was computed in a long training run or live; ``tradebot
check parity`` measures exactly that.

The feature set is versioned by a hash of its definitions (indicators, sentiment windows,
labels, bar size), recorded with every dataset and training run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy.orm import Session

from tradebot.features.build import build_feature_frame, features_at
from tradebot.features.store import load_minute_bars, load_scored_items
from tradebot.kernel.clock import MarketClock
from tradebot.kernel.settings import TradebotSettings


def feature_set_version(settings: TradebotSettings, scorer: str) -> str:
    """``<features.set_version>-<hash>``: the hash covers every definition a row depends on,
    including the sentiment scorer whose scores the sentiment features average."""
    definition = {
        "features": settings.features.model_dump(mode="json"),
        "scorer": scorer,
        "label": settings.label.model_dump(mode="json"),
        "bar_minutes": settings.market.bar_minutes,
        "benchmark": settings.benchmark,
    }
    digest = hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()
    return f"{settings.features.set_version}-{digest[:10]}"


@dataclass(frozen=True)
class FeatureStore:
    """Point-in-time feature rows for a configuration, read from one database session."""

    settings: TradebotSettings
    clock: MarketClock
    scorer: str

    def history_start(self, first: datetime) -> datetime:
        """Where the warm-up history of a row at ``first`` begins (a session open)."""
        sessions = self.settings.features.warmup_sessions
        day = self.clock.session_of(first - timedelta(minutes=1))
        label = pd.Timestamp(day)
        start = self.clock.calendar.session_offset(label, -sessions) if sessions else label
        return self.clock.open_close(start.date())[0]

    @property
    def version(self) -> str:
        """The feature-set version of the rows this store builds."""
        return feature_set_version(self.settings, self.scorer)

    def load_inputs(self, session: Session, symbols: Sequence[str], history_start: datetime,
                    known_by: datetime | None, bars_end: datetime | None
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Minute bars from ``history_start`` up to ``bars_end`` and the texts scored by this
        store's scorer known by ``known_by`` (None: no bound) and after ``history_start``."""
        bars = load_minute_bars(session, symbols, start=history_start, end=bars_end,
                                timeframe=self.settings.market.base_timeframe)
        items = load_scored_items(session, self.scorer, known_by=known_by)
        if not items.empty:
            items = items[items["ts_known"] > pd.Timestamp(history_start)]
        return bars, items

    def compute(self, bars: pd.DataFrame, items: pd.DataFrame,
                drop_warmup: bool = True) -> pd.DataFrame:
        """The feature code every path runs (training, online, checks)."""
        return build_feature_frame(bars, items, self.settings.features, self.settings.label,
                                   self.settings.market.bar_minutes, broker=self.settings.broker,
                                   benchmark=self.settings.benchmark, drop_warmup=drop_warmup)

    def training_frame(self, session: Session, symbols: Sequence[str], start: datetime,
                       end: datetime) -> pd.DataFrame:
        """Features and labels for decision times in [start, end). Labels look past ``end``
        (the horizon), features never do."""
        horizon = timedelta(days=7)  # enough bars after ``end`` for any label horizon
        bars, items = self.load_inputs(session, symbols, self.history_start(start), None,
                                       end + horizon)
        frame = self.compute(bars, items)
        inside = (frame["ts"] >= pd.Timestamp(start)) & (frame["ts"] < pd.Timestamp(end))
        return frame[inside].reset_index(drop=True)

    def online_features(self, session: Session, symbols: Sequence[str],
                        asof: datetime) -> pd.DataFrame:
        """The rows at decision time ``asof`` from data known by then (no labels)."""
        bars, items = self.load_inputs(session, symbols, self.history_start(asof), asof, asof)
        return self.online_rows(bars, items, asof)

    def online_rows(self, bars: pd.DataFrame, items: pd.DataFrame, asof: datetime,
                    context_bars: int = 1) -> pd.DataFrame:
        """:meth:`online_features` on inputs already loaded with :meth:`load_inputs` (the trade
        cycle also needs the bars for fills and prices). Data after ``asof`` is cut here too.
        ``context_bars > 1`` adds the rows of the decision times before ``asof`` (a sequence
        model's history), computed from the same data known by ``asof``."""
        cfg = self.settings
        rows = features_at(bars, items, asof, cfg.features, cfg.label, cfg.market.bar_minutes,
                           benchmark=cfg.benchmark, context_bars=context_bars)
        return rows.reset_index(drop=True)
