"""The trading book: where a trade cycle reads and records account state.

The live flow keeps its book in the database (:class:`~tradebot.serving.ledger.LedgerBook`);
a backtest keeps it in memory (:class:`MemoryBook`). The trade cycle sees only this protocol,
so the same signal, sizing, risk and broker code runs in both, and the parity test compares
what the two books hold after the same period.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from tradebot.kernel.domain import (
    AccountSnapshot,
    Fill,
    KillSwitchState,
    OrderRequest,
    OrderResult,
    OrderStatus,
    Position,
    RiskDecision,
    Side,
)
from tradebot.serving.brokers.base import fill_cash_delta, fill_id

FINISHED = ("traded", "settled", "stale")  # a cycle in one of these states never runs again


def apply_fill(positions: dict[str, Position], fill: Fill) -> Decimal | None:
    """Apply ``fill`` to ``positions`` (in place); return the P&L it realized when it closed
    part of a position, None when it opened or added to one."""
    position = positions.setdefault(fill.symbol, Position(fill.symbol))
    closing = (position.qty > 0 and fill.side is Side.SELL) or (
        position.qty < 0 and fill.side is Side.BUY)
    realized = position.apply(fill)
    return realized if closing else None


class Book(Protocol):
    """Account state a trade cycle reads and the records it writes. Writes are idempotent:
    orders by client_order_id, fills by fill id, snapshots and cycles by time."""

    def finished_cycle(self, ts: datetime) -> tuple[str, str] | None:
        """(status, model version) of a cycle at ``ts`` that already finished, else None."""
        ...

    def cash(self, initial: Decimal) -> Decimal: ...

    def positions(self) -> dict[str, Position]: ...

    def open_orders(self) -> list[OrderRequest]: ...

    def has_order(self, client_order_id: str) -> bool: ...

    def record_order(self, result: OrderResult, strategy: str, submitted_at: datetime) -> None: ...

    def set_order_status(self, client_order_id: str, status: OrderStatus) -> None: ...

    def record_fill(self, fill: Fill, realized_pnl: Decimal | None = None) -> None:
        """Store a fill once; ``realized_pnl`` is what it closed (None for an opening fill)."""
        ...

    def fills_since(self, since: datetime) -> list[Fill]:
        """Fills at or after ``since``, oldest first (day-trade counting)."""
        ...

    def recent_realized(self, limit: int) -> list[Decimal]:
        """Realized P&L of the last ``limit`` closing fills, oldest first (payoff ratio)."""
        ...

    def orders_submitted_since(self, since: datetime) -> int:
        """Orders submitted at or after ``since`` (the per-minute order limit)."""
        ...

    def save_positions(self, positions: Mapping[str, Position], prices: Mapping[str, float],
                       ts: datetime) -> None: ...

    def record_snapshot(self, snap: AccountSnapshot) -> None: ...

    def peak_equity(self) -> Decimal | None: ...

    def day_start_equity(self, session_open: datetime) -> Decimal | None: ...

    def kill_switch(self) -> KillSwitchState: ...

    def set_kill_switch(self, state: KillSwitchState, reason: str, ts: datetime) -> None: ...

    def record_risk_event(self, ts: datetime, decision: RiskDecision, action: str) -> None: ...

    def record_predictions(self, records: list[dict[str, Any]]) -> None: ...

    def record_cycle(self, record: dict[str, Any]) -> None: ...


@dataclass
class OrderRecord:
    """An order as a book holds it (the ``orders`` table's columns)."""

    request: OrderRequest
    broker_order_id: str | None
    status: OrderStatus
    reason: str
    strategy: str
    submitted_at: datetime


class MemoryBook:
    """A :class:`Book` in memory, for backtests: the same records the ledger tables hold."""

    def __init__(self) -> None:
        self.orders: dict[str, OrderRecord] = {}
        self.fills: list[Fill] = []
        self.snapshots: list[AccountSnapshot] = []
        self._snapshot_times: list[datetime] = []
        self.risk_events: list[dict[str, Any]] = []
        self.predictions: list[dict[str, Any]] = []
        self.cycles: dict[datetime, dict[str, Any]] = {}
        self.switch = KillSwitchState.ACTIVE
        self.switch_reason = ""
        self._positions: dict[str, Position] = {}
        self._fill_ids: set[str] = set()
        self._fill_times: list[datetime] = []
        self.realized: list[Decimal] = []
        self._submit_times: list[datetime] = []
        self._cash_delta = Decimal(0)
        self._peak: Decimal | None = None

    def finished_cycle(self, ts: datetime) -> tuple[str, str] | None:
        row = self.cycles.get(ts)
        if row is None or row["status"] not in FINISHED:
            return None
        return row["status"], row["model_version"]

    def cash(self, initial: Decimal) -> Decimal:
        return initial + self._cash_delta

    def positions(self) -> dict[str, Position]:
        return {s: replace(p) for s, p in self._positions.items()}

    def open_orders(self) -> list[OrderRequest]:
        pending = [o for o in self.orders.values()
                   if o.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)]
        return [o.request for o in sorted(pending, key=lambda o: o.request.ts_decision)]

    def has_order(self, client_order_id: str) -> bool:
        return client_order_id in self.orders

    def record_order(self, result: OrderResult, strategy: str, submitted_at: datetime) -> None:
        cid = result.request.client_order_id
        known = self.orders.get(cid)
        if known is not None:
            known.status = result.status
            known.broker_order_id = result.broker_order_id or known.broker_order_id
            known.reason = result.reason or known.reason
            return
        self.orders[cid] = OrderRecord(result.request, result.broker_order_id, result.status,
                                       result.reason, strategy, submitted_at)
        bisect.insort(self._submit_times, submitted_at)

    def set_order_status(self, client_order_id: str, status: OrderStatus) -> None:
        known = self.orders.get(client_order_id)
        if known is not None:
            known.status = OrderStatus(status)

    def record_fill(self, fill: Fill, realized_pnl: Decimal | None = None) -> None:
        fid = fill_id(fill)
        if fid in self._fill_ids:
            return
        self._fill_ids.add(fid)
        at = bisect.bisect_right(self._fill_times, fill.ts_fill)
        self.fills.insert(at, fill)
        self._fill_times.insert(at, fill.ts_fill)
        self._cash_delta += fill_cash_delta(fill)
        if realized_pnl is not None:
            self.realized.append(realized_pnl)

    def fills_since(self, since: datetime) -> list[Fill]:
        return self.fills[bisect.bisect_left(self._fill_times, since):]

    def recent_realized(self, limit: int) -> list[Decimal]:
        return self.realized[-limit:] if limit > 0 else []

    def orders_submitted_since(self, since: datetime) -> int:
        return len(self._submit_times) - bisect.bisect_left(self._submit_times, since)

    def save_positions(self, positions: Mapping[str, Position], prices: Mapping[str, float],
                       ts: datetime) -> None:
        self._positions = {s: replace(p) for s, p in positions.items()}

    def record_snapshot(self, snap: AccountSnapshot) -> None:
        times = self._snapshot_times
        at = bisect.bisect_left(times, snap.ts)
        if at < len(times) and times[at] == snap.ts:
            self.snapshots[at] = snap
        else:
            self.snapshots.insert(at, snap)
            times.insert(at, snap.ts)
        self._peak = snap.equity if self._peak is None else max(self._peak, snap.equity)

    def peak_equity(self) -> Decimal | None:
        return self._peak

    def day_start_equity(self, session_open: datetime) -> Decimal | None:
        at = bisect.bisect_right(self._snapshot_times, session_open)
        return self.snapshots[at - 1].equity if at else None

    def kill_switch(self) -> KillSwitchState:
        return self.switch

    def set_kill_switch(self, state: KillSwitchState, reason: str, ts: datetime) -> None:
        self.switch, self.switch_reason = KillSwitchState(state), reason

    def record_risk_event(self, ts: datetime, decision: RiskDecision, action: str) -> None:
        self.risk_events.append({
            "ts": ts, "rule": decision.rule or ("approved" if decision.approved else "denied"),
            "action": action, "symbol": decision.request.symbol,
            "client_order_id": decision.request.client_order_id, "reason": decision.reason,
        })

    def record_predictions(self, records: list[dict[str, Any]]) -> None:
        self.predictions.extend(records)

    def record_cycle(self, record: dict[str, Any]) -> None:
        self.cycles[record["ts_decision"]] = dict(record)
