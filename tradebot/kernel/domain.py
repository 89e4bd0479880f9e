"""Domain types shared by backtest and live: bars, orders, fills, positions, account state."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    TRAILING_STOP = "trailing_stop"


class OrderStatus(StrEnum):
    NEW = "new"
    FILLED = "filled"
    PARTIALLY_FILLED = "partially_filled"
    REJECTED = "rejected"
    CANCELED = "canceled"


class KillSwitchState(StrEnum):
    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


MONEY_QUANT = Decimal("0.0001")
QTY_QUANT = Decimal("0.000001")


def money(value: float | Decimal | str) -> Decimal:
    """Exact money amount rounded to 1/100 of a cent (banker's rounding)."""
    return Decimal(str(value)).quantize(MONEY_QUANT, rounding=ROUND_HALF_EVEN)


def quantity(value: float | Decimal | str) -> Decimal:
    """Share quantity rounded to the broker's fractional increment (1e-6)."""
    return Decimal(str(value)).quantize(QTY_QUANT, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar: ``ts_event`` is its open time, ``ts_known`` its close (when it is known)."""

    symbol: str
    timeframe: str
    ts_event: datetime
    ts_known: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float


def client_order_id(strategy: str, symbol: str, bar_time: datetime, intent: str) -> str:
    """Deterministic order id: the same (strategy, symbol, bar, intent) always maps to one id.

    A retried or re-run cycle therefore cannot create a second order for the same decision.
    """
    key = f"{strategy}|{symbol}|{bar_time.isoformat()}|{intent}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return f"tb-{symbol.replace('/', '')[:10]}-{digest}"


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order the strategy wants to place, before the risk engine and the broker see it.

    ``limit_price`` is set for limit orders, ``stop_price`` for stop orders and
    ``trail_percent`` (e.g. ``Decimal("2")`` for 2 %) for trailing stops. An entry with both
    ``take_profit_price`` and ``stop_loss_price`` is a bracket: once it fills, a take-profit
    limit and a stop-loss stop close the position, whichever triggers first cancelling the
    other. ``parent_client_order_id`` marks such a leg.
    """

    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    ts_decision: datetime
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    intent: str = "rebalance"
    reference_price: float = 0.0
    stop_price: Decimal | None = None
    trail_percent: Decimal | None = None
    take_profit_price: Decimal | None = None
    stop_loss_price: Decimal | None = None
    parent_client_order_id: str | None = None

    @property
    def is_bracket(self) -> bool:
        return self.take_profit_price is not None and self.stop_loss_price is not None


@dataclass(frozen=True, slots=True)
class Fill:
    client_order_id: str
    broker_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    commission: Decimal
    ts_fill: datetime


@dataclass(frozen=True, slots=True)
class OrderResult:
    """What the broker said about an order request."""

    request: OrderRequest
    broker_order_id: str | None
    status: OrderStatus
    fills: tuple[Fill, ...] = ()
    reason: str = ""
    duplicate: bool = False


@dataclass(slots=True)
class Position:
    """A position (average-cost); ``peak_price`` is the highest price seen since it opened."""

    symbol: str
    qty: Decimal = Decimal(0)
    avg_price: Decimal = Decimal(0)
    realized_pnl: Decimal = Decimal(0)
    peak_price: Decimal = Decimal(0)

    def market_value(self, price: float) -> Decimal:
        return money(self.qty * Decimal(str(price)))

    def unrealized_pnl(self, price: float) -> Decimal:
        return money(self.qty * (Decimal(str(price)) - self.avg_price))

    def apply(self, fill: Fill) -> Decimal:
        """Apply a fill (average-cost method); return the realized P&L it produced.

        Opening (from flat, or the remainder of a reversal) sets ``peak_price`` to the fill
        price, adding raises it to the fill price if higher, closing to zero resets it to 0.
        """
        signed = fill.qty if fill.side is Side.BUY else -fill.qty
        realized = Decimal(0)
        if self.qty == 0 or (self.qty > 0) == (signed > 0):
            self.peak_price = fill.price if self.qty == 0 else max(self.peak_price, fill.price)
            new_qty = self.qty + signed
            cost = self.avg_price * abs(self.qty) + fill.price * abs(signed)
            self.avg_price = cost / abs(new_qty)
            self.qty = new_qty
        else:
            closing = min(abs(signed), abs(self.qty))
            direction = Decimal(1) if self.qty > 0 else Decimal(-1)
            realized = money(closing * (fill.price - self.avg_price) * direction)
            self.qty += signed
            if self.qty == 0:
                self.avg_price = self.peak_price = Decimal(0)
            elif (self.qty > 0) != (direction > 0):
                self.avg_price = self.peak_price = fill.price
        self.avg_price = self.avg_price.quantize(MONEY_QUANT)
        self.peak_price = self.peak_price.quantize(MONEY_QUANT)
        self.realized_pnl += realized
        return realized


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    ts: datetime
    cash: Decimal
    equity: Decimal
    positions_value: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """The risk engine's verdict on one order request."""

    approved: bool
    request: OrderRequest
    rule: str = ""
    reason: str = ""
    adjusted_qty: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Signal:
    """A model's view of one symbol at a decision time."""

    symbol: str
    ts_decision: datetime
    prob_up: float
    target_weight: float
    model_version: str = ""
    extras: dict[str, float] = field(default_factory=dict)
