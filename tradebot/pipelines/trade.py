"""Trade cycle: at one decision time, settle fills, predict, size, risk-check, submit, record.

The same function serves the live flow (wall-clock time) and the replay (simulated time);
it reads only data known at ``ts`` and keeps no state outside the ledger, so re-running a
cycle can never place a second order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
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
from tradebot.serving.book import Book, apply_fill
from tradebot.serving.brokers.simulated import SimulatedBroker
from tradebot.serving.exits import exit_decisions, exit_reasons, raise_peaks, shutdown_reasons
from tradebot.serving.ledger import LedgerBook
from tradebot.serving.live import LiveBroker
from tradebot.serving.pdt import day_trades, opened_today
from tradebot.serving.risk import RiskContext, RiskEngine
from tradebot.serving.sizing import orders_for_targets, payoff_ratio, target_weight

__all__ = ["Alert", "BrokerFactory", "CycleResult", "Predictor", "run_trade_cycle",
           "simulated_broker", "trade_cycle"]

BrokerFactory = Callable[[Book], Any]
"""Builds the cycle's broker from the book: ``SimulatedBroker`` (replays, backtests and
``--broker sim``) or :class:`~tradebot.serving.brokers.alpaca.AlpacaBroker`."""
Alert = Callable[[str, str, str], Any]
"""``alert(level, title, body)``: a notification (live only; backtests pass none)."""


def simulated_broker(settings: TradebotSettings) -> BrokerFactory:
    """The simulated broker rebuilt from the book's cash, positions and open orders."""
    initial = money(settings.broker.initial_cash)
    return lambda book: SimulatedBroker(book.cash(initial), settings.broker, book.positions(),
                                        book.open_orders())


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
    decisions: dict[str, str] = field(default_factory=dict)  # per symbol: what and why


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
    live: LiveBroker | None = None,
    alert: Alert | None = None,
) -> CycleResult:
    """The live cycle at decision time ``ts`` (a decision-bar close inside a session), on the
    ledger in ``db``, with the simulated broker or, given ``live``, a real one (Alpaca).

    ``wall`` only stamps bookkeeping times (when the cycle ran); every market decision uses
    ``ts`` and the data known by then. Features come from ``store.online_rows`` on the bounded
    warm-up history, the code ``tradebot check parity`` compares with the training rows.
    With a live broker the ledger is first reconciled with it (committed on its own, so the
    differences stay recorded even if the cycle then fails)."""
    settings, clock = store.settings, store.clock
    started_at = wall.now()
    session_day = clock.session_of(ts)
    open_, close = clock.open_close(session_day)
    if not (open_ < ts <= close) or not clock.is_session(session_day):
        return CycleResult(ts, "closed", note=f"{ts.isoformat()} is outside NYSE hours")
    make_broker: BrokerFactory | None = None
    if live is not None:
        refusal = live.refusal(ts, started_at)
        if refusal:
            return CycleResult(ts, "closed", note=refusal)
        with db.session() as session:
            live.reconcile(session, started_at)
        make_broker = live.broker
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
                           model_version, started_at, wall.now, make_broker, alert)


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
    make_broker: BrokerFactory | None = None,
    alert: Alert | None = None,
) -> CycleResult:
    """One cycle on any :class:`Book`: settle fills, then (before the close) predict, size,
    risk-check and submit; record everything in the book. The live flow and the model
    backtest both run exactly this; ``rows_at(n)`` gives the feature rows of the last ``n``
    decision times up to ``ts`` (the predictor's context).

    Protective exits (stop-loss, trade stop, trailing stop, take-profit, drawdown shutdown)
    flatten their symbols whatever the model says, also in a cycle without feature rows;
    positions keep the highest price seen (raised at every cycle) for the trailing stop. The
    cycle that first breaches the drawdown limit cancels every open order, flattens, persists
    the HALTED kill switch and raises a critical ``alert``."""
    done = book.finished_cycle(ts)
    if done is not None:
        return _skipped(ts, done)
    _, close = clock.open_close(clock.session_of(ts))
    symbols = list(settings.symbols)
    strategy = settings.strategy.name
    broker = (make_broker or simulated_broker(settings))(book)
    fills = _settle(book, broker, market, strategy, started_at)
    prices = market.prices
    snap = broker.snapshot(ts, prices)
    held = raise_peaks(broker.positions(), prices)  # peaks persist through the book
    stale = stale_symbols(market.newest, symbols, ts)
    why = {s: f"stale data ({r}): no new decision" for s, r in stale.items()}
    status, note, n_pred, decisions, n_orders = "settled", "session close: fills settled", 0, [], 0
    if ts < close:
        ctx = _risk_context(book, settings, clock, ts, held, prices, snap.equity, started_at)
        exits = _exits(book, settings, ctx, held, stale, started_at, broker, alert)
        tradable = [s for s in symbols if s not in stale]
        rows, probs = _predict(rows_at, tradable, predictor, ts)
        targets: dict[str, float] = {}
        if not rows.empty:
            payoff = payoff_ratio(book.recent_realized(settings.strategy.payoff_window),
                                  settings.strategy)
            targets = _target_weights(rows, probs, settings, broker, prices, snap.equity, payoff)
            book.record_predictions(
                _prediction_records(rows, probs, targets, settings, model_version, started_at))
            n_pred = len(rows)
            why.update({sym: f"p(up) {p:.3f} -> target {targets[sym]:.1%}"
                        for sym, p in zip(rows["symbol"], probs, strict=True)})
            for symbol in {r.symbol for r in broker.open_orders()} & set(targets):
                del targets[symbol]  # never stack a second order on one still working
                why[symbol] += "; an earlier order is still open at the broker: no new one"
        if targets or exits:
            decisions, n_orders = _trade(book, settings, broker, ctx, targets, exits, held,
                                         started_at, why)
            status, note = "traded", _traded_note(n_orders, stale, exits)
        elif not tradable:
            status = "stale"
            note = "stale data, nothing traded: " + "; ".join(f"{s}: {r}" for s, r in stale.items())
        else:
            status, note = "stale", "no feature row at this time (warm-up or gap)"
    else:
        why = dict.fromkeys(symbols, "session close: fills settled, no new orders")
    for symbol in symbols:
        why.setdefault(symbol, "no feature row at this time: nothing decided")
    book.save_positions(held, prices, ts)
    book.record_snapshot(snap)
    denied = sum(1 for d in decisions if not d.approved)
    book.record_cycle({"ts_decision": ts, "started_at": started_at, "finished_at": finished_at(),
                       "status": status, "model_version": model_version, "n_orders": n_orders,
                       "note": note})
    return CycleResult(ts, status, model_version, n_pred, n_orders, len(fills), denied,
                       snap.equity, note, why)


def _settle(book: Book, broker: Any, market: MarketView, strategy: str,
            now: datetime) -> list:
    """Take in the broker's fills (with the P&L each realized), the bracket legs it created
    and the new status of every order that was open."""
    pending = [r.client_order_id for r in broker.open_orders()]
    before = book.positions()
    fills = broker.settle(market.fill_bars)
    for fill in fills:
        book.record_fill(fill, apply_fill(before, fill))
    for leg in broker.created_orders():
        book.record_order(leg, strategy, now)
    for cid in pending:  # filled, partially filled, canceled or rejected at fill time
        order = broker.get_order(cid)
        if order is not None and order.status is not OrderStatus.NEW:
            book.set_order_status(cid, order.status)
    return fills


def _target_weights(
    rows: pd.DataFrame,
    probs: np.ndarray,
    settings: TradebotSettings,
    broker: Any,
    prices: dict[str, float],
    equity: Decimal,
    payoff: float,
) -> dict[str, float]:
    """Target weight per symbol from P(up) and the recent payoff ratio (Kelly), given the
    current weight (hysteresis band)."""
    positions = broker.positions()
    targets = {}
    for symbol, prob in zip(rows["symbol"], probs, strict=True):
        held = positions.get(symbol)
        current = float(held.market_value(prices[symbol]) / equity) if held and equity else 0.0
        targets[symbol] = target_weight(float(prob), current, settings.strategy, settings.risk,
                                        payoff)
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


def _risk_context(book: Book, settings: TradebotSettings, clock: MarketClock, ts: datetime,
                  held: Mapping[str, Position], prices: dict[str, float], equity: Decimal,
                  now: datetime) -> RiskContext:
    """The risk engine's view of the account at ``ts``: peak and day-start equity, orders in
    the last minute, and the day trades of the PDT window, all from the book."""
    today = clock.session_of(ts)
    open_, _ = clock.open_close(today)
    window = clock.sessions_ending(today, settings.risk.pdt_window_sessions)
    recent = book.fills_since(clock.open_close(window[0])[0])
    return RiskContext(
        ts=ts,
        session_open=clock.is_open(ts),
        equity=equity,
        peak_equity=max(book.peak_equity() or equity, equity),
        day_start_equity=book.day_start_equity(open_) or equity,
        positions={s: p.qty for s, p in held.items()},
        last_prices=prices,
        kill_switch=book.kill_switch(),
        orders_last_minute=book.orders_submitted_since(now - timedelta(minutes=1)),
        day_trades=day_trades(recent, clock.session_of, window),
        opened_today=opened_today(recent, clock.session_of, today),
    )


def _exits(book: Book, settings: TradebotSettings, ctx: RiskContext,
           held: Mapping[str, Position], stale: Mapping[str, str], now: datetime,
           broker: Any, alert: Alert | None) -> dict[str, str]:
    """Exit reason per symbol to flatten: crossed stop/trade-stop/trailing/take-profit levels
    of symbols with fresh bars. On the cycle the drawdown limit is first breached, the kill
    switch goes HALTED, open orders are cancelled, every position is shut down (``ctx`` still
    holds the earlier switch state, so these exits pass the risk engine) and a critical alert
    goes out."""
    exits = {s: r for s, r in exit_reasons(held, ctx.last_prices, settings.risk,
                                           ctx.equity).items() if s not in stale}
    halted = KillSwitchState(ctx.kill_switch) is KillSwitchState.HALTED
    if RiskEngine(settings.risk).drawdown_breached(ctx) and not halted:
        reason = (f"drawdown from peak {ctx.peak_equity} to {ctx.equity} breached the "
                  f"{settings.risk.max_drawdown_pct:.1%} limit at {ctx.ts.isoformat()}")
        book.set_kill_switch(KillSwitchState.HALTED, reason, now)
        cancelled = _cancel_open(book, broker, settings.strategy.name, now)
        exits.update(shutdown_reasons(held, ctx.last_prices))
        if alert is not None:
            alert("critical", "emergency shutdown: kill switch HALTED",
                  f"{reason}. Cancelled {cancelled} open orders; flattening "
                  f"{len(exits)} positions. Resume with 'tradebot killswitch off'.")
    return exits


def _cancel_open(book: Book, broker: Any, strategy: str, now: datetime) -> int:
    """Cancel every open order at the broker and record the outcome; returns how many."""
    cancelled = 0
    for request in broker.open_orders():
        result = broker.cancel(request.client_order_id)
        if result is not None:
            book.record_order(result, strategy, now)
            cancelled += result.status is OrderStatus.CANCELED
    return cancelled


def _trade(
    book: Book,
    settings: TradebotSettings,
    broker: Any,
    ctx: RiskContext,
    targets: dict[str, float],
    exits: dict[str, str],
    held: Mapping[str, Position],
    now: datetime,
    why: dict[str, str],
) -> tuple[list, int]:
    """Size the targets (exit symbols forced flat under their exit intent), log the exits,
    risk-check and submit each order once; ``why`` gets each symbol's outcome."""
    ts = ctx.ts
    goals = {**targets, **dict.fromkeys(exits, 0.0)}
    requests = orders_for_targets(goals, ctx.positions, ctx.last_prices, ctx.equity, ts,
                                  settings.strategy.name, intents=exits)
    for exit_decision in exit_decisions(requests, exits, held, ctx, settings.risk):
        book.record_risk_event(ts, exit_decision, "exit")
    for symbol, rule in exits.items():
        why[symbol] = f"{why.get(symbol, 'no prediction')}; exit: {rule}"
    ordered = {r.symbol for r in requests}
    for symbol in targets:
        if symbol not in ordered:
            why[symbol] += "; no order (already at target)"
    decisions = RiskEngine(settings.risk).check_all(requests, ctx)
    submitted = 0
    for decision in decisions:
        request = decision.request
        if decision.adjusted_qty is not None:
            request = replace(request, qty=decision.adjusted_qty)
        if not decision.approved or decision.rule:
            book.record_risk_event(ts, decision, "reduced" if decision.approved else "denied")
        line = why.get(request.symbol, "")
        if not decision.approved:
            why[request.symbol] = f"{line}; {request.side} denied [{decision.rule}]: " \
                                  f"{decision.reason}"
            continue
        if book.has_order(request.client_order_id):
            why[request.symbol] = f"{line}; {request.side} already submitted: not repeated"
            continue  # this decision was submitted before: never a second order
        result = broker.submit(request)
        book.record_order(result, settings.strategy.name, now)
        submitted += 1  # not in the book: a duplicate here is our own retried request
        text = f"{request.side} {request.qty} ({request.intent}) -> {result.status}"
        if decision.rule:
            text += f" reduced [{decision.rule}]"
        if result.reason:
            text += f": {result.reason}"
        why[request.symbol] = f"{line}; {text}"
    return decisions, submitted
