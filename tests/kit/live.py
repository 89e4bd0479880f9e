"""The live trade path without a model or feature build: a feature store double that serves
fixed bars and rows, and an Alpaca account on the loopback fake."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from tests.kit.fakes.alpaca import TEST_KEY, TEST_SECRET
from tests.kit.fakes.alpaca_trading import AlpacaTradingFake
from tests.kit.trading import bars
from tradebot.kernel.clock import MarketClock, SimulatedClock
from tradebot.kernel.db import Database
from tradebot.kernel.settings import (
    AlpacaSource,
    HttpSettings,
    SourcesSettings,
    TradebotSettings,
)
from tradebot.models.base import Predictor
from tradebot.pipelines.trade import CycleResult, run_trade_cycle
from tradebot.serving.live import LiveBroker, open_alpaca

CLOCK = MarketClock()
DAY = date(2026, 6, 1)
OPEN = CLOCK.open_close(DAY)[0]
TIMES = CLOCK.decision_times(DAY)
SYMBOLS = ["AAPL", "MSFT"]
BASE = {"AAPL": 100.0, "MSFT": 50.0}
# fast retries: tests never sleep for seconds
FAST_HTTP = HttpSettings(attempts=3, backoff_seconds=0.01, max_backoff_seconds=0.05,
                         timeout_seconds=0.5, max_retry_after_seconds=0.05)


def day_bars(day: date = DAY) -> pd.DataFrame:
    """A flat-ish minute path per symbol for one session (with the session before it)."""
    frames = []
    for k, session in enumerate(CLOCK.sessions_ending(day, 2)):
        open_ = CLOCK.open_close(session)[0]
        for symbol, base in BASE.items():
            path = base * (1 + 0.001 * np.sin(np.arange(390) / 20 + k))
            frames.append(bars(symbol, open_, list(path)))
    return pd.concat(frames, ignore_index=True)


@dataclass
class TapeStore:
    """The parts of :class:`~tradebot.features.feature_store.FeatureStore` the cycle uses,
    over fixed bars; every decision time has one row per symbol."""

    settings: TradebotSettings
    bars: pd.DataFrame
    clock: MarketClock = CLOCK
    version: str = "test"

    def history_start(self, ts: datetime) -> datetime:
        return ts - timedelta(days=10)

    def load_inputs(self, session: Any, symbols: list[str], start: datetime, end: datetime,
                    ts: datetime) -> tuple[pd.DataFrame, None]:
        known = self.bars["ts_event"] + pd.Timedelta(minutes=1) <= pd.Timestamp(ts)
        frame = self.bars[known & self.bars["symbol"].isin(symbols)]
        return frame.reset_index(drop=True), None

    def online_rows(self, bars: pd.DataFrame, items: Any, ts: datetime, n: int) -> pd.DataFrame:
        times = [t for t in TIMES if t <= ts][-n:]
        return pd.DataFrame([{"symbol": s, "ts": pd.Timestamp(t)}
                             for t in times for s in self.settings.symbols])


def constant(prob: float) -> Predictor:
    return Predictor(lambda rows: np.full(len(rows), prob))


def alpaca_settings(fake: AlpacaTradingFake, **extra: Any) -> TradebotSettings:
    source = AlpacaSource(api_key=TEST_KEY, secret_key=TEST_SECRET, trading_url=fake.url,
                          data_url=fake.url)
    return TradebotSettings(symbols=SYMBOLS, sources=SourcesSettings(alpaca=source,
                                                                     http=FAST_HTTP), **extra)


def last_prices(ts: datetime) -> dict[str, float]:
    frame = day_bars()
    known = frame[frame["ts_event"] + pd.Timedelta(minutes=1) <= pd.Timestamp(ts)]
    last = known.sort_values("ts_event").groupby("symbol").tail(1)
    return dict(zip(last["symbol"], last["close"].astype(float), strict=True))


@dataclass
class LiveRig:
    """One Alpaca-backed account, a ledger, and a way to run the live cycle at a time."""

    fake: AlpacaTradingFake
    settings: TradebotSettings
    db: Database
    live: LiveBroker
    alerts: list[tuple[str, str, str]]

    def cycle(self, ts: datetime, prob: float = 0.9) -> CycleResult:
        self.fake.now = ts + timedelta(seconds=20)
        self.fake.prices.update(last_prices(ts))
        store = TapeStore(self.settings, day_bars())
        return run_trade_cycle(self.db, store, ts, constant(prob), "1",  # type: ignore[arg-type]
                               SimulatedClock(ts + timedelta(seconds=20)), self.live,
                               lambda *a: self.alerts.append(a))


def live_rig(fake: AlpacaTradingFake, database_url: str, **extra: Any) -> LiveRig:
    settings = alpaca_settings(fake, **extra)
    return LiveRig(fake, settings, Database(database_url),
                   LiveBroker(open_alpaca(settings), settings, CLOCK), [])
