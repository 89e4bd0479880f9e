"""Trade cycle: at one decision time, settle fills, predict, size, risk-check, submit, record.

The same function serves the live flow (wall-clock time) and the replay (simulated time);
it reads only data known at ``ts`` and keeps no state outside the ledger, so re-running a
cycle can never place a second order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from tradebot.features.feature_store import FeatureStore
from tradebot.kernel.clock import Clock, MarketClock
from tradebot.kernel.db import Database
from tradebot.kernel.domain import KillSwitchState, OrderStatus, Position, money
from tradebot.kernel.errors import ConfigError, DataError
from tradebot.kernel.settings import TradebotSettings
from tradebot.models.base import Predictor
from tradebot.serving.book import Book
from tradebot.serving.brokers.simulated import SimulatedBroker
from tradebot.serving.exits import exit_decisions, exit_reasons, raise_peaks, shutdown_reasons
from tradebot.serving.ledger import LedgerBook
from tradebot.serving.risk import RiskContext, RiskEngine
from tradebot.serving.sizing import orders_for_targets, target_weight

__all__ = ["CycleResult", "Predictor", "run_trade_cycle", "trade_cycle"]


@dataclass(frozen=True)
class CycleResult:
    ts: datetime
    status: str  # traded | settled | stale | closed | skipped
    model_version: str = ""
    predictions: int = 0
    orders: int = 0
    fills: int = 0
    denied: int = 0
    equity: Decimal = Decimal(0)
    note: str = ""


def last_prices(bars: pd.DataFrame) -> dict[str, float]:
    """The last close per symbol."""
    last = bars.sort_values("ts_event").groupby("symbol").tail(1)
    return dict(zip(last["symbol"], last["close"].astype(float), strict=True))


def newest_bar_times(bars: pd.DataFrame) -> dict[str, pd.Timestamp]:
    """The newest bar start time per symbol."""
    return bars.groupby("symbol")["ts_event"].max().to_dict()


def stale_symbols(newest: Mapping[str, pd.Timestamp], symbols: list[str],
                  ts: datetime) -> dict[str, str]:
    """Symbols whose newest minute bar is older than the minute before ``ts``."""
    cutoff = pd.Timestamp(ts) - timedelta(minutes=2)
    stale = {}
    for symbol in symbols:
        last = newest.get(symbol)
        if last is None or last < cutoff:
            stale[symbol] = "no bars" if last is None else f"last bar {last.isoformat()}"
    return stale


@dataclass(frozen=True)
class MarketView:
    """What a cycle knows of the market at its decision time: bars that can fill the open
    orders (every bar from their decision times up to now), the last close and the newest bar
    time of each symbol."""

    fill_bars: pd.DataFrame
    prices: dict[str, float]
    newest: dict[str, pd.Timestamp]

    @classmethod
    def from_bars(cls, bars: pd.DataFrame, fills_from: datetime) -> MarketView:
        """The view of ``bars`` (all known at the decision time); fills from ``fills_from``."""
        return cls(bars[bars["ts_event"] >= pd.Timestamp(fills_from)], last_prices(bars),
                   newest_bar_times(bars))


def require_feature_set(store: FeatureStore, trained_on: str | None, model_version: str) -> None:
    """Refuse a model trained on other feature rows than the configuration builds (a model
    logged before versions were recorded carries none and is accepted)."""
    if trained_on is not None and trained_on != store.version:
        raise ConfigError(
            f"the champion (v{model_version}) was trained on feature set {trained_on} but the "
            f"configuration builds {store.version}: retrain ('tradebot train') or restore the "
            "feature and sentiment settings it was trained with"
        )


def run_trade_cycle(
    db: Database,
    store: FeatureStore,
    ts: datetime,
    predictor: Predictor,
    model_version: str,
    wall: Clock,
) -> CycleResult:
    """The live cycle at decision time ``ts`` (a decision-bar close inside a session), on the
    ledger in ``db``.

    ``wall`` only stamps bookkeeping times (when the cycle ran); every market decision uses
    ``ts`` and the data known by then. Features come from ``store.online_rows`` on the bounded
    warm-up history, the code ``tradebot check parity`` compares with the training rows."""
    settings, clock = store.settings, store.clock
    started_at = wall.now()
    session_day = clock.session_of(ts)
    open_, close = clock.open_close(session_day)
    if not (open_ < ts <= close) or not clock.is_session(session_day):
        return CycleResult(ts, "closed", note=f"{ts.isoformat()} is outside NYSE hours")
    symbols = list(settings.symbols)
    with db.session() as session:
        book = LedgerBook(session)
        done = book.finished_cycle(ts)
        if done is not None:
            return _skipped(ts, done)
        # the warm-up history starts >= 1 session before ``ts``, so it covers the fill window
        history_start = min(store.history_start(ts), open_ - timedelta(days=7))
        bars, items = store.load_inputs(session, symbols, history_start, ts, ts)
        if bars.empty:
            raise DataError(f"no bars known at {ts.isoformat()}: run 'tradebot ingest' first")
        market = MarketView.from_bars(bars, open_ - timedelta(days=7))
        return trade_cycle(book, settings, clock, ts, market,
                           lambda n: store.online_rows(bars, items, ts, n), predictor,
                           model_version, started_at, wall.now)


def _skipped(ts: datetime, done: tuple[str, str]) -> CycleResult:
    status, version = done
    return CycleResult(ts, "skipped", version,
                       note=f"cycle already ran ({status}); nothing re-submitted")


def trade_cycle(
    book: Book,
    settings: TradebotSettings,
    clock: MarketClock,
    ts: datetime,
    market: MarketView,
    rows_at: Callable[[int], pd.DataFrame],
    predictor: Predictor,
    model_version: str,
    started_at: datetime,
    finished_at: Callable[[], datetime],
) -> CycleResult:
    """One cycle on any :class:`Book`: settle fills, then (before the close) predict, size,
    risk-check and submit; record everything in the book. The live flow and the model
    backtest both run exactly this; ``rows_at(n)`` gives the feature rows of the last ``n``
    decision times up to ``ts`` (the predictor's context).

    Protective exits (stop-loss, trailing stop, take-profit, drawdown shutdown) flatten their
    symbols whatever the model says, also in a cycle without feature rows; positions keep the
    highest price seen (raised at every cycle) for the trailing stop."""
    done = book.finished_cycle(ts)
    if done is not None:
        return _skipped(ts, done)
    _, close = clock.open_close(clock.session_of(ts))
    symbols = list(settings.symbols)
    initial = money(settings.broker.initial_cash)
    broker = SimulatedBroker(book.cash(initial), settings.broker, book.positions(),
                             book.open_orders())
    pending = [r.client_order_id for r in broker.open_orders()]
    fills = broker.match(market.fill_bars)
    for fill in fills:
        book.record_fill(fill)
    for cid in pending:  # filled, partially filled, or rejected at fill time
        order = broker.get_order(cid)
        if order is not None and order.status is not OrderStatus.NEW:
            book.set_order_status(cid, order.status)
    prices = market.prices
    snap = broker.snapshot(ts, prices)
    held = raise_peaks(broker.positions(), prices)  # peaks persist through the book
    stale = stale_symbols(market.newest, symbols, ts)
    status, note, n_pred, decisions, n_orders = "settled", "session close: fills settled", 0, [], 0
    if ts < close:
        ctx = _risk_context(book, clock, ts, held, prices, snap.equity)
        exits = _exits(book, settings, ctx, held, stale, started_at)
        tradable = [s for s in symbols if s not in stale]
        rows, probs = _predict(rows_at, tradable, predictor, ts)
        targets: dict[str, float] = {}
        if not rows.empty:
            targets = _target_weights(rows, probs, settings, broker, prices, snap.equity)
            book.record_predictions(
                _prediction_records(rows, probs, targets, settings, model_version, started_at))
            n_pred = len(rows)
        if targets or exits:
            decisions, n_orders = _trade(book, settings, broker, ctx, targets, exits, held,
                                         started_at)
            status, note = "traded", _traded_note(n_orders, stale, exits)
        elif not tradable:
            status = "stale"
            note = "stale data, nothing traded: " + "; ".join(f"{s}: {r}" for s, r in stale.items())
        else:
            status, note = "stale", "no feature row at this time (warm-up or gap)"
    book.save_positions(held, prices, ts)
    book.record_snapshot(snap)
    denied = sum(1 for d in decisions if not d.approved)
    book.record_cycle({"ts_decision": ts, "started_at": started_at, "finished_at": finished_at(),
                       "status": status, "model_version": model_version, "n_orders": n_orders,
                       "note": note})
    return CycleResult(
        ts, status, model_version, n_pred, n_orders, len(fills), denied, snap.equity, note
    )


def _target_weights(
    rows: pd.DataFrame,
    probs: np.ndarray,
    settings: TradebotSettings,
    broker: SimulatedBroker,
    prices: dict[str, float],
    equity: Decimal,
) -> dict[str, float]:
    """Target weight per symbol from P(up), given the current weight (hysteresis band)."""
    positions = broker.positions()
    targets = {}
    for symbol, prob in zip(rows["symbol"], probs, strict=True):
        held = positions.get(symbol)
        current = float(held.market_value(prices[symbol]) / equity) if held and equity else 0.0
        targets[symbol] = target_weight(float(prob), current, settings.strategy, settings.risk)
    return targets


def _prediction_records(
    rows: pd.DataFrame,
    probs: np.ndarray,
    targets: dict[str, float],
    settings: TradebotSettings,
    model_version: str,
    created_at: datetime,
) -> list[dict[str, Any]]:
    return [
        {
            "symbol": symbol,
            "ts_decision": pd.Timestamp(ts).to_pydatetime(),
            "model_name": settings.model.registered_name,
            "model_version": model_version,
            "prob_up": float(prob),
            "target_weight": targets[symbol],
            "created_at": created_at,
        }
        for symbol, ts, prob in zip(rows["symbol"], rows["ts"], probs, strict=True)
    ]


def _predict(rows_at: Callable[[int], pd.DataFrame], tradable: list[str], predictor: Predictor,
             ts: datetime) -> tuple[pd.DataFrame, np.ndarray]:
    """The tradable symbols' feature rows at ``ts`` and their P(up). ``rows_at(n)`` gives the
    rows of the last ``n`` decision times up to ``ts``: sequence models read that context."""
    if not tradable:
        return pd.DataFrame(), np.empty(0)
    context = rows_at(predictor.context_bars)
    context = context[context["symbol"].isin(tradable)].reset_index(drop=True)
    now = (context["ts"] == pd.Timestamp(ts)).to_numpy() if len(context) else np.zeros(0, bool)
    if not now.any():
        return pd.DataFrame(), np.empty(0)
    return context[now].reset_index(drop=True), predictor.newest(context)


def _traded_note(n_orders: int, stale: Mapping[str, str], exits: Mapping[str, str]) -> str:
    note = f"{n_orders} orders"
    if exits:
        note += "; exits: " + ", ".join(f"{s} {r}" for s, r in sorted(exits.items()))
    return note + (f"; stale: {', '.join(stale)}" if stale else "")


def _risk_context(book: Book, clock: MarketClock, ts: datetime, held: Mapping[str, Position],
                  prices: dict[str, float], equity: Decimal) -> RiskContext:
    """The risk engine's view of the account at ``ts`` (peak and day start from the book)."""
    open_, _ = clock.open_close(clock.session_of(ts))
    return RiskContext(
        ts=ts,
        session_open=clock.is_open(ts),
        equity=equity,
        peak_equity=max(book.peak_equity() or equity, equity),
        day_start_equity=book.day_start_equity(open_) or equity,
        positions={s: p.qty for s, p in held.items()},
        last_prices=prices,
        kill_switch=book.kill_switch(),
    )


def _exits(book: Book, settings: TradebotSettings, ctx: RiskContext,
           held: Mapping[str, Position], stale: Mapping[str, str], now: datetime) -> dict[str, str]:
    """Exit reason per symbol to flatten: crossed stop/trailing/take-profit levels of symbols
    with fresh bars; on the cycle the drawdown limit is first breached, the kill switch goes
    HALTED and every position is shut down (``ctx`` still holds the earlier switch state, so
    these exits pass the risk engine)."""
    exits = {s: r for s, r in exit_reasons(held, ctx.last_prices, settings.risk).items()
             if s not in stale}
    halted = KillSwitchState(ctx.kill_switch) is KillSwitchState.HALTED
    if RiskEngine(settings.risk).drawdown_breached(ctx) and not halted:
        book.set_kill_switch(KillSwitchState.HALTED, f"drawdown from peak {ctx.peak_equity} "
                             f"breached at {ctx.ts.isoformat()}", now)
        exits.update(shutdown_reasons(held, ctx.last_prices))
    return exits


def _trade(
    book: Book,
    settings: TradebotSettings,
    broker: SimulatedBroker,
    ctx: RiskContext,
    targets: dict[str, float],
    exits: dict[str, str],
    held: Mapping[str, Position],
    now: datetime,
) -> tuple[list, int]:
    """Size the targets (exit symbols forced flat under their exit intent), log the exits,
    risk-check and submit each order once."""
    ts = ctx.ts
    goals = {**targets, **dict.fromkeys(exits, 0.0)}
    requests = orders_for_targets(goals, ctx.positions, ctx.last_prices, ctx.equity, ts,
                                  settings.strategy.name, intents=exits)
    for exit_decision in exit_decisions(requests, exits, held, ctx, settings.risk):
        book.record_risk_event(ts, exit_decision, "exit")
    decisions = RiskEngine(settings.risk).check_all(requests, ctx)
    submitted = 0
    for decision in decisions:
        request = decision.request
        if decision.adjusted_qty is not None:
            request = replace(request, qty=decision.adjusted_qty)
        if not decision.approved or decision.rule:
            book.record_risk_event(ts, decision, "reduced" if decision.approved else "denied")
        if not decision.approved:
            continue
        if book.has_order(request.client_order_id):
            continue  # this decision was submitted before: never a second order
        result = broker.submit(request)
        book.record_order(result, settings.strategy.name, now)
        submitted += 0 if result.duplicate else 1
    return decisions, submitted
