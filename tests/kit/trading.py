"""Factories for trading tests: times, order requests, fills, positions, 1-minute bars,
settings, risk contexts, and an in-memory SQLite ledger session."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from tradebot.kernel.domain import (
    Fill,
    KillSwitchState,
    OrderRequest,
    Position,
    Side,
    client_order_id,
)
from tradebot.kernel.schema import Base
from tradebot.kernel.settings import BrokerSettings, RiskSettings, StrategySettings
from tradebot.serving.risk import RiskContext

STRATEGY = "test-strategy"
# A session open (9:30 ET on Monday 2026-06-01) and the first 15-minute decision time.
OPEN = datetime(2026, 6, 1, 13, 30, tzinfo=UTC)
T0 = OPEN + timedelta(minutes=15)


def at(minutes: int, base: datetime = T0) -> datetime:
    """``base`` shifted by ``minutes``."""
    return base + timedelta(minutes=minutes)


def order(
    symbol: str = "AAPL",
    side: Side = Side.BUY,
    qty: str | Decimal = "10",
    ts: datetime = T0,
    intent: str = "entry",
    reference_price: float = 100.0,
    strategy: str = STRATEGY,
) -> OrderRequest:
    """A market order request with the kernel's deterministic client_order_id."""
    return OrderRequest(
        client_order_id=client_order_id(strategy, symbol, ts, intent),
        symbol=symbol,
        side=side,
        qty=Decimal(str(qty)),
        ts_decision=ts,
        intent=intent,
        reference_price=reference_price,
    )


def fill(
    symbol: str = "AAPL",
    side: Side = Side.BUY,
    qty: str | Decimal = "10",
    price: str | Decimal = "100.0000",
    commission: str | Decimal = "0.1000",
    ts: datetime = T0,
    cid: str | None = None,
) -> Fill:
    cid = cid or client_order_id(STRATEGY, symbol, ts, "entry" if side is Side.BUY else "exit")
    return Fill(
        client_order_id=cid,
        broker_order_id="sim-" + cid[-16:],
        symbol=symbol,
        side=side,
        qty=Decimal(str(qty)),
        price=Decimal(str(price)),
        commission=Decimal(str(commission)),
        ts_fill=ts,
    )


def bars(
    symbol: str,
    start: datetime,
    opens: Sequence[float],
    *,
    volume: float = 1_000.0,
) -> pd.DataFrame:
    """1-minute UTC bars starting at ``start``; close of bar i = open of bar i+1."""
    rows = []
    for i, open_ in enumerate(opens):
        close = opens[i + 1] if i + 1 < len(opens) else open_
        rows.append(
            {
                "symbol": symbol,
                "ts_event": pd.Timestamp(start + timedelta(minutes=i)),
                "open": float(open_),
                "high": max(open_, close) + 0.05,
                "low": min(open_, close) - 0.05,
                "close": float(close),
                "volume": volume,
            }
        )
    return pd.DataFrame(rows)


def long_position(
    symbol: str = "AAPL", qty: str = "10", avg: str = "100", peak: str = "120"
) -> Position:
    """A long position (no realized P&L yet)."""
    return Position(symbol, Decimal(qty), Decimal(avg), Decimal(0), Decimal(peak))


def risk_settings(**overrides: Any) -> RiskSettings:
    return RiskSettings(**overrides)


def strategy_settings(**overrides: Any) -> StrategySettings:
    return StrategySettings(**overrides)


def costs(
    slippage_bps: float = 2.0, commission_bps: float = 1.0, per_share: float = 0.0
) -> BrokerSettings:
    return BrokerSettings(
        slippage_bps=slippage_bps, commission_bps=commission_bps, commission_per_share=per_share
    )


def risk_context(
    *,
    equity: str | Decimal = "100000",
    peak_equity: str | Decimal | None = None,
    day_start_equity: str | Decimal | None = None,
    positions: Mapping[str, str | Decimal] | None = None,
    last_prices: Mapping[str, float] | None = None,
    kill_switch: KillSwitchState = KillSwitchState.ACTIVE,
    session_open: bool = True,
    orders_this_cycle: int = 0,
    orders_last_minute: int = 0,
    day_trades: int = 0,
    opened_today: Iterable[str] = (),
    ts: datetime = T0,
) -> RiskContext:
    """A healthy context by default: market open, no drawdown, AAPL last traded at 100."""
    eq = Decimal(str(equity))
    return RiskContext(
        ts=ts,
        session_open=session_open,
        equity=eq,
        peak_equity=Decimal(str(peak_equity)) if peak_equity is not None else eq,
        day_start_equity=Decimal(str(day_start_equity)) if day_start_equity is not None else eq,
        positions={s: Decimal(str(q)) for s, q in (positions or {}).items()},
        last_prices=dict(last_prices) if last_prices is not None else {"AAPL": 100.0},
        kill_switch=kill_switch,
        orders_this_cycle=orders_this_cycle,
        orders_last_minute=orders_last_minute,
        day_trades=day_trades,
        opened_today=frozenset(opened_today),
    )


@contextmanager
def sqlite_session(path: str = ":memory:") -> Iterator[Session]:
    """A session on a fresh SQLite database with every table created."""
    engine = create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()
