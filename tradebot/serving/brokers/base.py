"""The one broker interface shared by the simulated broker (backtest) and Alpaca (live)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from tradebot.kernel.domain import Fill, OrderRequest, OrderResult, Position, Side, money


@runtime_checkable
class Broker(Protocol):
    """Places orders and reports account state. Submission is idempotent by client_order_id."""

    name: str

    def submit(self, request: OrderRequest) -> OrderResult:
        """Place an order. Re-submitting a known ``client_order_id`` never creates a second
        order: it returns the existing order with ``duplicate=True``."""
        ...

    def get_order(self, client_order_id: str) -> OrderResult | None:
        """The broker's current view of an order, or None if it does not know the id."""
        ...

    def positions(self) -> dict[str, Position]:
        """Current positions by symbol (copies: mutating them does not touch the broker)."""
        ...

    def cash(self) -> Decimal:
        """Cash balance."""
        ...

    def open_orders(self) -> list[OrderRequest]:
        """Requests accepted but not yet filled, rejected or canceled."""
        ...


def fill_cash_delta(fill: Fill) -> Decimal:
    """Cash change a fill causes: -(notional + commission) for a buy, notional - commission
    for a sell, with the notional rounded by :func:`money`. The broker and the ledger both use
    this, so broker cash always reconciles exactly with the fills table."""
    notional = money(fill.qty * fill.price)
    return -(notional + fill.commission) if fill.side is Side.BUY else notional - fill.commission


def fill_id(fill: Fill) -> str:
    """Deterministic fill id from the fill's identity (the kernel ``Fill`` carries none)."""
    key = "|".join(
        [
            fill.broker_order_id,
            fill.client_order_id,
            _utc_iso(fill.ts_fill),
            format(fill.qty.normalize(), "f"),
            format(fill.price.normalize(), "f"),
        ]
    )
    return "fill-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def _utc_iso(ts: datetime) -> str:
    return (ts.astimezone(UTC) if ts.tzinfo is not None else ts).isoformat()
