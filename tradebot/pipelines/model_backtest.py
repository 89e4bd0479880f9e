"""Backtest a model through the live trade cycle.

At every decision time the same :func:`~tradebot.pipelines.trade.trade_cycle` the live flow
runs (signal, sizing, risk engine, simulated broker) runs on an in-memory book, on the bars
and feature rows known by then. The result has the layout of the compiled engine's, so the
metrics, per-day tables and HTML report are the ones ``tradebot backtest --signals`` gives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from tradebot.features.feature_store import FeatureStore
from tradebot.features.store import bar_bounds, load_minute_bars
from tradebot.kernel.clock import MarketClock
from tradebot.kernel.db import Database
from tradebot.kernel.domain import Side
from tradebot.kernel.errors import DataError
from tradebot.kernel.home import Home
from tradebot.kernel.settings import TradebotSettings
from tradebot.models import registry
from tradebot.models.registry import ModelInfo
from tradebot.pipelines.backtest import BacktestRun, engine_config
from tradebot.pipelines.backtest_metrics import compute_metrics, daily_breakdown, monthly_returns
from tradebot.pipelines.trade import (
    CycleResult,
    MarketView,
    Predictor,
    require_feature_set,
    trade_cycle,
)
from tradebot.serving.backtest_engine import REASONS, BacktestResult, round_trip_frame
from tradebot.serving.book import MemoryBook

Progress = Callable[[int, int], None]


@dataclass
class ModelBacktest:
    """The book the cycles wrote and the run computed from it."""

    book: MemoryBook
    cycles: list[CycleResult]
    run: BacktestRun


class BarTape:
    """Minute bars in time order, handed to the cycles as each one would have seen them."""

    def __init__(self, bars: pd.DataFrame) -> None:
        ordered = bars.sort_values(["ts_event", "symbol"], kind="stable").reset_index(drop=True)
        self.bars = ordered
        self._ns = pd.DatetimeIndex(ordered["ts_event"]).as_unit("ns").asi8
        self._seen = 0
        self._prices: dict[str, float] = {}
        self._newest: dict[str, pd.Timestamp] = {}

    def _end(self, ts: datetime) -> int:
        return int(np.searchsorted(self._ns, pd.Timestamp(ts).as_unit("ns").value, "left"))

    def view(self, ts: datetime, fills_from: datetime) -> MarketView:
        """What a live cycle at ``ts`` knows: bars that started before ``ts`` (so closed by
        it); fill bars from ``fills_from``. Times must not go backwards."""
        end = self._end(ts)
        if end < self._seen:
            raise ValueError(f"decision times must increase ({ts.isoformat()})")
        fresh = self.bars.iloc[self._seen:end]
        if len(fresh):
            last = fresh.drop_duplicates("symbol", keep="last")
            self._prices.update(zip(last["symbol"], last["close"].astype(float), strict=True))
            self._newest.update(zip(last["symbol"], last["ts_event"], strict=True))
        self._seen = end
        start = self._end(fills_from)
        return MarketView(self.bars.iloc[start:end], dict(self._prices), dict(self._newest))


class RowTape:
    """Feature rows by decision time: ``last(ts, n)`` is what ``online_rows`` gives a live
    cycle at ``ts`` asking for ``n`` decision times of context."""

    def __init__(self, rows: pd.DataFrame) -> None:
        self.rows = rows.sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)
        stamps = pd.DatetimeIndex(self.rows["ts"]).tz_convert("UTC").tz_localize(None)
        stamps = stamps.to_numpy()
        self.times, self.starts = np.unique(stamps, return_index=True)

    def last(self, ts: datetime, n: int) -> pd.DataFrame:
        upto = int(np.searchsorted(self.times, np.datetime64(_naive(ts)), "right"))
        if upto == 0:
            return self.rows.iloc[0:0]
        if n <= 1 and self.times[upto - 1] != np.datetime64(_naive(ts)):
            return self.rows.iloc[0:0]
        first = max(0, upto - max(1, n))
        end = self.starts[upto] if upto < len(self.times) else len(self.rows)
        return self.rows.iloc[self.starts[first]:end]


def _naive(ts: datetime) -> pd.Timestamp:
    """``ts`` as the naive UTC stamp numpy compares with."""
    stamp = pd.Timestamp(ts)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp


def backtest_model(
    settings: TradebotSettings,
    clock: MarketClock,
    bars: pd.DataFrame,
    rows: pd.DataFrame,
    predictor: Predictor,
    times: Sequence[datetime],
    model_version: str | Callable[[datetime], str] = "",
    benchmark_close: pd.Series | None = None,
    progress: Progress | None = None,
) -> ModelBacktest:
    """Run the live trade cycle at each of ``times`` (decision times, increasing) on a fresh
    in-memory book. ``rows`` are the feature rows (``symbol, ts`` and features); ``bars``
    the minute bars (from at least a week before the first time). ``model_version`` names the
    model, per time when it is a function (walk-forward). ``benchmark_close`` (closes
    by time) is the buy-and-hold comparison."""
    if not times:
        raise DataError("no decision times to backtest")
    book, tape, history = MemoryBook(), BarTape(bars), RowTape(rows)
    cycles: list[CycleResult] = []
    positions: list[dict[str, float]] = []
    for k, ts in enumerate(times):
        pending = book.open_orders()
        fills_from = min([r.ts_decision for r in pending], default=ts)
        market = tape.view(ts, fills_from)
        version = model_version(ts) if callable(model_version) else model_version
        result = trade_cycle(book, settings, clock, ts, market,
                             lambda n, ts=ts: history.last(ts, n), predictor, version,
                             ts, lambda ts=ts: ts)
        cycles.append(result)
        positions.append({s: float(p.qty) for s, p in book.positions().items()})
        if progress is not None:
            progress(k + 1, len(times))
    return ModelBacktest(book, cycles, _run(book, positions, bars, settings, benchmark_close))


def fills_frame(book: MemoryBook) -> pd.DataFrame:
    """The book's fills in the engine's layout (signed qty; reason from the order intent)."""
    records = []
    for fill in book.fills:
        order = book.orders.get(fill.client_order_id)
        intent = order.request.intent if order is not None else "signal"
        records.append({
            "ts": pd.Timestamp(fill.ts_fill), "symbol": fill.symbol,
            "qty": float(fill.qty if fill.side is Side.BUY else -fill.qty),
            "price": float(fill.price), "commission": float(fill.commission),
            "reason": intent if intent in REASONS else "signal", "partial": False,
        })
    columns = ["ts", "symbol", "qty", "price", "commission", "reason", "partial"]
    return pd.DataFrame(records, columns=columns)


def _run(book: MemoryBook, positions: list[dict[str, float]], bars: pd.DataFrame,
         settings: TradebotSettings, bench: pd.Series | None) -> BacktestRun:
    snaps = book.snapshots
    index = pd.DatetimeIndex([pd.Timestamp(s.ts) for s in snaps])
    equity = pd.Series([float(s.equity) for s in snaps], index=index, name="equity")
    cash = pd.Series([float(s.cash) for s in snaps], index=index, name="cash")
    gross = pd.Series([float(s.positions_value) for s in snaps], index=index,
                      name="gross_exposure")
    symbols = sorted({s for p in positions for s in p})
    held = pd.DataFrame(positions, index=index, columns=pd.Index(symbols)).fillna(0.0)
    fills = fills_frame(book)
    marks = {s: float(v) for s, v in
             bars.sort_values("ts_event").groupby("symbol")["close"].last().items()}
    trades = round_trip_frame(fills, marks)
    fees = np.zeros(len(index))  # commission paid since the previous cycle
    if len(fills):
        at = index.searchsorted(pd.DatetimeIndex(fills["ts"]), "left")
        fees = np.bincount(np.minimum(at, len(index) - 1), fills["commission"].to_numpy(float),
                           minlength=len(index))
    events = pd.DataFrame(book.risk_events, columns=["ts", "rule", "action", "symbol",
                                                     "client_order_id", "reason"])
    result = BacktestResult(index, symbols, equity, cash, held, fills, trades,
                            pd.Series(fees, index=index, name="fees"),
                            events.rename(columns={"rule": "kind", "reason": "detail"}), gross)
    initial = float(settings.broker.initial_cash)
    notes = [] if bench is not None else [
        f"benchmark {settings.benchmark} is not among the bars: no information ratio"]
    metrics = compute_metrics(equity, trades, fills, gross, bench, initial)
    daily = daily_breakdown(equity, fills, trades, initial_cash=initial)
    monthly = monthly_returns(equity, initial_cash=initial)
    return BacktestRun(result, engine_config(settings), metrics, daily, monthly, bench, notes)


@dataclass(frozen=True)
class Period:
    """Stored data for a backtest over whole sessions: the decision times, the minute bars
    (from the feature warm-up on), the feature rows up to the last decision time (from the
    warm-up on: the context of sequence models) and the benchmark's closes."""

    times: list[datetime]
    bars: pd.DataFrame
    rows: pd.DataFrame
    benchmark_close: pd.Series | None


def load_period(session: Session, store: FeatureStore, symbols: Sequence[str],
                days: Sequence[date]) -> Period:
    """Everything a backtest of ``days`` reads, from the store, as the live cycles read it."""
    clock, settings = store.clock, store.settings
    times = [ts for day in days for ts in clock.decision_times(day)]
    if not times:
        raise DataError("no market sessions in the backtest period")
    first_open = clock.open_close(days[0])[0]
    start = min(store.history_start(times[0]), first_open - timedelta(days=7))
    bars, items = store.load_inputs(session, symbols, start, None, times[-1])
    if bars.empty:
        raise DataError(f"no stored bars for {', '.join(symbols)} between {days[0]} and "
                        f"{days[-1]}: run 'tradebot ingest' for that period first")
    rows = store.compute(bars, items)  # rows before the period: sequence models' context
    rows = rows[rows["ts"] <= pd.Timestamp(times[-1])].reset_index(drop=True)
    bench = load_minute_bars(session, [settings.benchmark], start=first_open, end=times[-1],
                             timeframe=settings.market.base_timeframe)
    close = (pd.Series(bench["close"].to_numpy(float),
                       index=pd.DatetimeIndex(pd.to_datetime(bench["ts_event"], utc=True)))
             if len(bench) else None)
    return Period(times, bars, rows, close)


def backtest_period(store: FeatureStore, period: Period, predictor: Predictor,
                    model_version: str = "", progress: Progress | None = None) -> ModelBacktest:
    """:func:`backtest_model` on a loaded :class:`Period`."""
    return backtest_model(store.settings, store.clock, period.bars, period.rows, predictor,
                          period.times, model_version, benchmark_close=period.benchmark_close,
                          progress=progress)


def period_days(clock: MarketClock, newest_bar: datetime | None, trained_until: datetime | None,
                start: date | None, end: date | None) -> list[date]:
    """Sessions to backtest: ``start``..``end`` when given; by default from the first session
    after the model's training data to the newest stored bar (out of sample)."""
    if newest_bar is None:
        raise DataError("no bars are stored: run 'tradebot ingest' first")
    last = end or clock.session_of(newest_bar)
    if start is None:
        if trained_until is None:
            raise DataError("the model does not record its training window: pass --start")
        start = clock.session_of(trained_until) + timedelta(days=1)
    days = [d for d in clock.sessions_between(start, last) if clock.is_session(d)]
    if not days:
        raise DataError(f"no market sessions with stored bars from {start} to {last}: pass "
                        "--start/--end inside the stored data ('tradebot status' shows it)")
    return days


def backtest_registered(db: Database, home: Home, store: FeatureStore, version: str | None,
                        start: date | None, end: date | None,
                        progress: Progress | None = None) -> tuple[ModelBacktest, ModelInfo]:
    """Backtest a registered model version (None: the champion) on stored data."""
    settings = store.settings
    registry.configure(home.mlflow_tracking_uri, home.mlflow_artifacts, settings.model.experiment)
    model, info = registry.model_version(settings.model.registered_name, version)
    require_feature_set(store, registry.trained_feature_set(model), info.version)
    with db.session() as session:
        _, newest = bar_bounds(session, settings.market.base_timeframe)
        trained = registry.trained_until(info)
        days = period_days(store.clock, newest, trained, start, end)
        period = load_period(session, store, list(settings.symbols), days)
    result = backtest_period(store, period, registry.pyfunc_predictor(model), info.version,
                             progress)
    if trained is not None and period.times[0] <= trained:
        result.run.notes.append(
            f"the period starts before the end of {info.label}'s training data "
            f"({trained.isoformat()}): figures up to then are in-sample")
    return result, info
