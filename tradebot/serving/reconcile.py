"""Reconcile the ledger with Alpaca: adopt orders the ledger missed, take in fills and status
changes, and align positions with the broker's; every difference is recorded.

Runs before each live cycle (and so at process start). It is what heals a crash between an
order's submission and its ledger write: the next run finds the order at Alpaca by its
client_order_id prefix and adopts it, so it is neither lost nor placed again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from alpaca.trading.models import Order
from sqlalchemy import select
from sqlalchemy.orm import Session

from tradebot.kernel.domain import Position
from tradebot.kernel.schema import OrderRow, ReconciliationRow
from tradebot.serving.book import apply_fill
from tradebot.serving.brokers.alpaca import (
    AlpacaTrading,
    new_fill,
    order_status,
    request_of,
    result_of,
)
from tradebot.serving.ledger import (
    OPEN_STATUSES,
    cash_from_ledger,
    load_positions,
    mark_filled,
    order_fills,
    record_fill,
    record_order,
    save_positions,
)

ORDER_PREFIX = "tb-"  # every client_order_id the platform makes starts with this
CASH_TOLERANCE = Decimal("0.01")


@dataclass(frozen=True)
class Difference:
    """One way the ledger and the broker disagreed, and what reconciliation did."""

    kind: str  # order_missing | order_unknown | status | fill | position | cash
    symbol: str | None
    client_order_id: str | None
    ledger_value: str
    broker_value: str
    action: str


def _ours(orders: list[Order]) -> dict[str, tuple[Order, str | None]]:
    """Our orders (and their bracket legs) by client_order_id, with the leg's parent."""
    found: dict[str, tuple[Order, str | None]] = {}
    for order in orders:
        if not order.client_order_id.startswith(ORDER_PREFIX):
            continue
        found[order.client_order_id] = (order, None)
        for leg in order.legs or []:
            found[leg.client_order_id] = (leg, order.client_order_id)
    return found


def reconcile_alpaca(session: Session, trading: AlpacaTrading, ts: datetime, since: datetime,
                     strategy: str, initial_cash: Decimal) -> list[Difference]:
    """Bring the ledger in ``session`` in line with Alpaca at ``ts`` (orders listed from
    ``since``); the caller commits. Returns the differences found (also stored)."""
    diffs: list[Difference] = []
    listed = _ours(trading.orders_since(since))
    rows = {r.client_order_id: r for r in session.scalars(
        select(OrderRow).where(OrderRow.client_order_id.in_(list(listed))
                               | OrderRow.status.in_(OPEN_STATUSES)))}
    positions = load_positions(session)
    for cid, (order, parent) in listed.items():
        if cid not in rows:
            result = result_of(order, request_of(order, parent))
            record_order(session, result, strategy, result.request.ts_decision)
            mark_reason(session, cid, "adopted by reconciliation: missing from the ledger")
            diffs.append(Difference("order_missing", order.symbol, cid, "", str(result.status),
                                    "adopted into the ledger"))
    for cid, row in rows.items():
        order = listed[cid][0] if cid in listed else trading.order(cid)
        if order is None:
            if row.status in OPEN_STATUSES:
                mark_filled(session, cid, "canceled")
                mark_reason(session, cid, "unknown to the broker: never placed")
                diffs.append(Difference("order_unknown", row.symbol, cid, row.status, "",
                                        "marked canceled"))
            continue
        diffs.extend(_take_in(session, positions, order, row.status))
    for cid, (order, _) in listed.items():
        if cid not in rows:
            diffs.extend(_take_in(session, positions, order, "new"))
    diffs.extend(_align_positions(trading, positions))
    save_positions(session, positions, {}, ts)
    diffs.extend(_cash(session, trading, initial_cash))
    for diff in diffs:
        session.add(ReconciliationRow(ts=ts, broker=trading.name, **diff.__dict__))
    session.flush()
    return diffs


def mark_reason(session: Session, client_order_id: str, reason: str) -> None:
    row = session.scalars(
        select(OrderRow).where(OrderRow.client_order_id == client_order_id)).one()
    row.reason = reason


def _take_in(session: Session, positions: dict[str, Position], order: Order,
             ledger_status: str) -> list[Difference]:
    """Record the part of ``order``'s fill the ledger lacks, and its new status."""
    diffs = []
    cid = order.client_order_id
    fill = new_fill(order, order_fills(session, cid))
    if fill is not None:
        record_fill(session, fill, apply_fill(positions, fill))
        diffs.append(Difference("fill", fill.symbol, cid, "", f"{fill.qty} @ {fill.price}",
                                "fill recorded"))
    status = str(order_status(order.status))
    if status != ledger_status:
        mark_filled(session, cid, status)
    return diffs


def _align_positions(trading: AlpacaTrading, positions: dict[str, Position]
                     ) -> list[Difference]:
    """Adopt Alpaca's quantity (and average price) where the ledger's differs."""
    diffs = []
    broker = trading.positions()
    for symbol in sorted(set(broker) | {s for s, p in positions.items() if p.qty != 0}):
        qty, avg = broker.get(symbol, (Decimal(0), Decimal(0)))
        mine = positions.get(symbol, Position(symbol))
        if mine.qty == qty:
            continue
        diffs.append(Difference("position", symbol, None, f"{mine.qty} @ {mine.avg_price}",
                                f"{qty} @ {avg}", "ledger set to the broker's position"))
        if qty == 0:
            positions.pop(symbol, None)
            continue
        peak = max(mine.peak_price, avg) if mine.qty > 0 else avg
        positions[symbol] = Position(symbol, qty, avg, mine.realized_pnl, peak)
    return diffs


def _cash(session: Session, trading: AlpacaTrading, initial_cash: Decimal) -> list[Difference]:
    """Record a cash difference once (until it changes): equity uses the broker's cash."""
    broker_cash = trading.account().cash
    ledger_cash = cash_from_ledger(session, initial_cash)
    if abs(broker_cash - ledger_cash) <= CASH_TOLERANCE:
        return []
    last = session.scalars(select(ReconciliationRow).where(ReconciliationRow.kind == "cash")
                           .order_by(ReconciliationRow.id.desc()).limit(1)).first()
    diff = Difference("cash", None, None, str(ledger_cash), str(broker_cash),
                      "equity uses the broker's cash")
    if last is not None and (last.ledger_value, last.broker_value) == (
            diff.ledger_value, diff.broker_value):
        return []
    return [diff]
