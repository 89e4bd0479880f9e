"""Protective exits in the trade cycle: a trailing stop, a stop-loss and the drawdown shutdown
fire at the first decision time past their level, fill at the next bar's open and are logged;
the ledger (SQLite and PostgreSQL) records exactly what the in-memory book records."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from tests.kit.trading import bars
from tradebot.kernel.clock import MarketClock
from tradebot.kernel.db import Database
from tradebot.kernel.domain import KillSwitchState, Side, money
from tradebot.kernel.schema import OrderRow, RiskEventRow
from tradebot.kernel.settings import (
    BrokerSettings,
    RiskSettings,
    StrategySettings,
    TradebotSettings,
)
from tradebot.pipelines.model_backtest import BarTape, ModelBacktest, RowTape, backtest_model
from tradebot.pipelines.trade import CycleResult, Predictor, trade_cycle
from tradebot.serving.book import Book, MemoryBook
from tradebot.serving.brokers.simulated import SimulatedBroker
from tradebot.serving.ledger import LedgerBook, load_fills

CLOCK = MarketClock()
SESSIONS = CLOCK.sessions(date(2026, 6, 1), 3)
TIMES = [ts for day in SESSIONS for ts in CLOCK.decision_times(day)]
SYMBOLS = ["AAPL", "MSFT", "NVDA"]
DROP_AT = 70  # NVDA: 120 from the second session's open, -0.4 a minute from minute 70 to 90


def nvda(session: int, minute: int) -> float:
    """100 -> 120 over the first session; in the second 120, then a fall to 90; then 90."""
    if session == 0:
        return 100.0 + 20.0 * minute / 389
    if session == 1:
        return max(90.0, 120.0 - 0.4 * max(0, minute - DROP_AT))
    return 90.0


def price(symbol: str, session: int, minute: int) -> float:
    if symbol == "NVDA":
        return nvda(session, minute)
    base, period = (100.0, 30.0) if symbol == "AAPL" else (50.0, 17.0)
    return base * (1 + 0.002 * math.sin((session * 390 + minute) / period))


def minute_bars() -> pd.DataFrame:
    frames = [bars(symbol, CLOCK.open_close(day)[0], [price(symbol, k, m) for m in range(390)])
              for k, day in enumerate(SESSIONS) for symbol in SYMBOLS]
    return pd.concat(frames, ignore_index=True)


BARS = minute_bars()
# the signal is on at the first decision time only: the bot enters, then holds (P(up) in the
# hysteresis band keeps the current weight: no rebalancing, and no re-entry after an exit)
ROWS = pd.DataFrame([{"symbol": s, "ts": pd.Timestamp(ts), "signal": float(ts == TIMES[0])}
                     for ts in TIMES for s in SYMBOLS])


def _enter_then_hold(rows: pd.DataFrame) -> np.ndarray:
    return np.where(rows["signal"].to_numpy() > 0, 0.6, 0.52)  # enter at ~5.6% (cap 10%)


def _bullish(rows: pd.DataFrame) -> np.ndarray:
    """Always above the entry threshold: rebalances every cycle and re-enters after exits."""
    return np.full(len(rows), 0.9)


enter_then_hold, bullish = Predictor(_enter_then_hold), Predictor(_bullish)


def settings(**risk: float) -> TradebotSettings:
    """Linear sizing (entries at ~5.6 %, never trimmed by the cap as NVDA rises) and no
    portfolio trade stop unless asked: each test isolates one exit rule."""
    risk = {"trade_risk_pct": 0.0, **risk}
    return TradebotSettings(symbols=SYMBOLS, risk=RiskSettings(**risk), broker=BrokerSettings(),
                            strategy=StrategySettings(sizing="linear"))


def backtest(cfg: TradebotSettings) -> ModelBacktest:
    return backtest_model(cfg, CLOCK, BARS, ROWS, enter_then_hold, TIMES, "1")


def last_close(symbol: str, ts: datetime) -> float:
    """The close of the symbol's last bar that started before ``ts``."""
    known = BARS[(BARS["symbol"] == symbol) & (BARS["ts_event"] < pd.Timestamp(ts))]
    return float(known.sort_values("ts_event")["close"].iloc[-1])


def open_at(symbol: str, ts: datetime) -> float:
    (value,) = BARS[(BARS["symbol"] == symbol) & (BARS["ts_event"] == pd.Timestamp(ts))]["open"]
    return float(value)


def intents(book: MemoryBook, intent: str) -> list:
    return sorted((o.request for o in book.orders.values() if o.request.intent == intent),
                  key=lambda r: (r.ts_decision, r.symbol))


def assert_exit_fills_at_next_open(book: MemoryBook, cfg: TradebotSettings, request) -> None:
    (filled,) = [f for f in book.fills if f.client_order_id == request.client_order_id]
    broker = SimulatedBroker(Decimal(0), cfg.broker)
    assert filled.ts_fill == request.ts_decision  # the bar that opens at the decision time
    assert filled.price == broker.fill_price(Side.SELL, open_at(request.symbol, filled.ts_fill))
    assert filled.side is Side.SELL


def first_crossing(level: float) -> datetime:
    """The first decision time after NVDA's top (the second session's open) whose last NVDA
    close is at or below ``level``."""
    top = CLOCK.open_close(SESSIONS[1])[0]
    return next(ts for ts in TIMES if ts > top and last_close("NVDA", ts) <= level)


@pytest.fixture(scope="module")
def trailing() -> tuple[TradebotSettings, ModelBacktest]:
    cfg = settings(trailing_stop_pct=0.1)
    return cfg, backtest(cfg)


def test_trailing_stop_exits_at_the_first_close_below_the_level(trailing) -> None:
    cfg, done = trailing
    book = done.book
    (first,) = intents(book, "trailing_stop")
    assert first.symbol == "NVDA" and first.side is Side.SELL
    entry = next(f for f in book.fills if f.symbol == "NVDA")
    assert first.qty == entry.qty  # the whole position
    # the peak is the top close seen at a decision time (120), far above any fill price
    expected = first_crossing(120 * 0.9)
    assert first.ts_decision == expected
    assert CLOCK.session_of(expected) == SESSIONS[1]
    assert_exit_fills_at_next_open(book, cfg, first)
    events = [e for e in book.risk_events if e["client_order_id"] == first.client_order_id]
    assert [(e["action"], e["rule"]) for e in events] == [("exit", "trailing_stop")]
    assert str(last_close("NVDA", expected)) in events[0]["reason"]
    fills = done.run.result.fills
    assert "trailing_stop" in set(fills["reason"])  # the backtest report shows the exit reason
    assert "trailing_stop" in set(done.run.result.trades["exit_reason"])


def test_the_book_keeps_the_peak_between_cycles(trailing) -> None:
    _, done = trailing
    positions = done.book.positions()
    assert positions["NVDA"].qty == 0 and positions["NVDA"].peak_price == 0
    for symbol in ("AAPL", "MSFT"):
        top = max(last_close(symbol, ts) for ts in TIMES[1:])
        assert positions[symbol].peak_price == money(top)


def test_exits_go_out_without_feature_rows_and_with_a_stale_symbol() -> None:
    cfg = settings(trailing_stop_pct=0.1)
    day2 = CLOCK.open_close(SESSIONS[1])[0]
    rows = ROWS[ROWS["ts"] < pd.Timestamp(day2)]  # no feature rows from the second session on
    gappy = BARS[(BARS["symbol"] != "MSFT") | (BARS["ts_event"] < pd.Timestamp(day2))]
    done = backtest_model(cfg, CLOCK, gappy, rows, enter_then_hold, TIMES, "1")
    (first,) = intents(done.book, "trailing_stop")
    assert first.ts_decision == first_crossing(120 * 0.9)
    (cycle,) = [c for c in done.cycles if c.ts == first.ts_decision]
    assert cycle.status == "traded" and cycle.orders == 1 and cycle.predictions == 0
    assert "NVDA trailing_stop" in cycle.note and "stale: MSFT" in cycle.note
    quiet = [c for c in done.cycles if c.ts > day2 and c.ts != first.ts_decision]
    assert {c.status for c in quiet} <= {"stale", "settled"}


def test_stop_loss_exits_below_the_entry_price() -> None:
    cfg = settings(stop_loss_pct=0.05)
    book = backtest(cfg).book
    entry = next(f for f in book.fills if f.symbol == "NVDA")
    (first,) = intents(book, "stop_loss")
    assert first.symbol == "NVDA" and first.qty == entry.qty
    assert first.ts_decision == first_crossing(float(entry.price) * 0.95)
    assert_exit_fills_at_next_open(book, cfg, first)
    assert next(e["rule"] for e in book.risk_events if e["action"] == "exit") == "stop_loss"


def test_no_exit_orders_while_the_rules_are_off() -> None:
    book = backtest(settings()).book
    assert {o.request.intent for o in book.orders.values()} <= {"entry", "exit"}
    assert not [e for e in book.risk_events if e["action"] == "exit"]
    assert book.switch is KillSwitchState.ACTIVE


def test_drawdown_shutdown_flattens_everything_then_halts() -> None:
    cfg = settings(max_drawdown_pct=0.008)
    book = backtest(cfg).book
    shut = intents(book, "shutdown")
    assert shut, "the crash must breach the drawdown limit"
    ts = shut[0].ts_decision
    assert {r.ts_decision for r in shut} == {ts}
    assert sorted(r.symbol for r in shut) == SYMBOLS  # every held symbol
    assert book.switch is KillSwitchState.HALTED
    assert all(o.request.ts_decision <= ts for o in book.orders.values())
    for request in shut:
        assert_exit_fills_at_next_open(book, cfg, request)
    assert all(p.qty == 0 for p in book.positions().values())
    events = [e for e in book.risk_events if e["action"] == "exit"]
    assert sorted(e["symbol"] for e in events) == SYMBOLS
    assert {e["rule"] for e in events} == {"shutdown"}
    # it is the first cycle whose equity is the limit or more below the running peak
    peak, breached = Decimal(0), []
    for snap in book.snapshots:
        peak = max(peak, snap.equity)
        if (peak - snap.equity) / peak >= Decimal("0.008") and snap.ts < CLOCK.open_close(
                CLOCK.session_of(snap.ts))[1]:
            breached.append(snap.ts)
    assert breached[0] == ts


# -- the ledger records what the in-memory book records ----------------------------------


def _cycle(book: Book, tape: BarTape, cfg: TradebotSettings, ts: datetime,
           predictor: Predictor) -> CycleResult:
    """One cycle as :func:`backtest_model` runs it."""
    pending = book.open_orders()
    market = tape.view(ts, min([r.ts_decision for r in pending], default=ts))
    return trade_cycle(book, cfg, CLOCK, ts, market, lambda n: RowTape(ROWS).last(ts, n),
                       predictor, "1", ts, lambda: ts)


def _positions(book: Book) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
    return {s: (p.qty, p.avg_price, p.peak_price) for s, p in book.positions().items()}


def _run(cfg: TradebotSettings, predictor: Predictor,
         with_book: Callable[[Callable[[Book], Any]], Any]) -> list:
    """Statuses and positions after each cycle, each cycle run on the book ``with_book``
    hands to it."""
    tape, trail = BarTape(BARS), []
    for ts in TIMES:
        trail.append(with_book(lambda book, ts=ts: (
            _cycle(book, tape, cfg, ts, predictor).status, _positions(book))))
    return trail


SCENARIOS: dict[str, tuple[dict[str, float], Predictor]] = {
    # re-entries after each exit, rebalancing every cycle: many orders of every kind
    "stops": ({"trailing_stop_pct": 0.1, "stop_loss_pct": 0.05, "take_profit_pct": 0.15},
              bullish),
    "drawdown": ({"max_drawdown_pct": 0.008, "trailing_stop_pct": 0.1}, enter_then_hold),
}


@pytest.mark.postgres
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_ledger_matches_the_memory_book(database_url: str, scenario: str) -> None:
    risk, predictor = SCENARIOS[scenario]
    cfg = settings(**risk)
    memory = MemoryBook()
    memory_trail = _run(cfg, predictor, lambda step: step(memory))
    db = Database(database_url)

    def in_ledger(step: Callable[[Book], Any]) -> Any:
        with db.session() as session:
            return step(LedgerBook(session))

    try:
        ledger_trail = _run(cfg, predictor, in_ledger)
        with db.session() as session:
            orders = {row.client_order_id: (row.side, row.qty, row.status)
                      for row in session.scalars(select(OrderRow))}
            fills = [(f.client_order_id, f.price, f.qty, f.commission, f.ts_fill)
                     for f in load_fills(session)]
            events = sorted((e.client_order_id, e.rule, e.action, e.reason)
                            for e in session.scalars(select(RiskEventRow)))
            switch = LedgerBook(session).kill_switch()
    finally:
        db.dispose()
    intents_seen = {o.request.intent for o in memory.orders.values()}
    assert intents_seen & {"trailing_stop", "stop_loss", "take_profit", "shutdown"}
    assert ledger_trail == memory_trail  # statuses, qty, avg and peak price after every cycle
    assert orders == {cid: (str(o.request.side), o.request.qty, str(o.status))
                      for cid, o in memory.orders.items()}
    assert fills == sorted(((f.client_order_id, f.price, f.qty, f.commission, f.ts_fill)
                            for f in memory.fills), key=lambda f: f[4])
    assert events == sorted((e["client_order_id"], e["rule"], e["action"], e["reason"])
                            for e in memory.risk_events)
    assert switch is memory.switch
