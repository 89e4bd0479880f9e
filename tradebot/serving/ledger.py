"""The trading ledger: orders, fills, positions, account snapshots, risk events, kill switch.

Every function takes a SQLAlchemy ``Session``; the caller owns the transaction (nothing here
commits; writes are flushed). Writes are idempotent (orders by client_order_id, fills by
fill id, snapshots by ts), so a retried cycle never duplicates a row. Money stays ``Decimal``.
SQL is dialect-neutral (SQLite and PostgreSQL); datetimes are stored and returned in UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tradebot.kernel.db import upsert
from tradebot.kernel.domain import (
    AccountSnapshot,
    Fill,
    KillSwitchState,
    OrderRequest,
    OrderResult,
    OrderStatus,
    OrderType,
    Position,
    RiskDecision,
    Side,
)
from tradebot.kernel.schema import (
    AccountSnapshotRow,
    FillRow,
    KillSwitchRow,
    OrderRow,
    PositionRow,
    PredictionRow,
    RiskEventRow,
    TradeCycleRow,
)
from tradebot.serving.book import FINISHED
from tradebot.serving.brokers.base import fill_cash_delta, fill_id

KILL_SWITCH_ROW_ID = 1


def _to_db(ts: datetime) -> datetime:
    """Reject naive times here, before the session flushes (the UTCDateTime column type
    also normalises to UTC and hands back aware values on every backend)."""
    if ts.tzinfo is None:
        raise ValueError(f"ledger times must be timezone-aware, got naive {ts.isoformat()}")
    return ts.astimezone(UTC)


# -- orders and fills ----------------------------------------------------------------------


def record_order(
    session: Session, result: OrderResult, strategy: str, submitted_at: datetime
) -> bool:
    """Insert the order, or update status/broker id/reason of the existing row with the same
    client_order_id. Returns True when a row was created."""
    req = result.request
    row = session.scalars(
        select(OrderRow).where(OrderRow.client_order_id == req.client_order_id)
    ).one_or_none()
    if row is not None:
        row.status = str(result.status)
        row.broker_order_id = result.broker_order_id or row.broker_order_id
        row.reason = result.reason or row.reason
        session.flush()
        return False
    session.add(
        OrderRow(
            client_order_id=req.client_order_id,
            broker_order_id=result.broker_order_id,
            strategy=strategy,
            symbol=req.symbol,
            side=str(req.side),
            qty=req.qty,
            order_type=str(req.order_type),
            limit_price=req.limit_price,
            stop_price=req.stop_price,
            trail_percent=req.trail_percent,
            take_profit_price=req.take_profit_price,
            stop_loss_price=req.stop_loss_price,
            parent_client_order_id=req.parent_client_order_id,
            intent=req.intent,
            status=str(result.status),
            reason=result.reason,
            ts_decision=_to_db(req.ts_decision),
            submitted_at=_to_db(submitted_at),
        )
    )
    session.flush()
    return True


def mark_filled(session: Session, client_order_id: str, status: OrderStatus | str) -> bool:
    """Set an order's status (e.g. filled, rejected). Returns False if the order is unknown."""
    row = session.scalars(
        select(OrderRow).where(OrderRow.client_order_id == client_order_id)
    ).one_or_none()
    if row is None:
        return False
    row.status = str(OrderStatus(status))
    session.flush()
    return True


OPEN_STATUSES = (str(OrderStatus.NEW), str(OrderStatus.PARTIALLY_FILLED))


def _request(row: OrderRow) -> OrderRequest:
    """The request an order row stores (``reference_price`` is not stored: 0)."""
    return OrderRequest(
        client_order_id=row.client_order_id,
        symbol=row.symbol,
        side=Side(row.side),
        qty=row.qty,
        ts_decision=row.ts_decision,
        order_type=OrderType(row.order_type),
        limit_price=row.limit_price,
        intent=row.intent or "rebalance",
        stop_price=row.stop_price,
        trail_percent=row.trail_percent,
        take_profit_price=row.take_profit_price,
        stop_loss_price=row.stop_loss_price,
        parent_client_order_id=row.parent_client_order_id,
    )


def open_order_requests(session: Session) -> list[OrderRequest]:
    """Requests of orders still open (new or partially filled), oldest decision first."""
    rows = session.scalars(
        select(OrderRow)
        .where(OrderRow.status.in_(OPEN_STATUSES))
        .order_by(OrderRow.ts_decision, OrderRow.id)
    )
    return [_request(row) for row in rows]


def orders_submitted_since(session: Session, since: datetime) -> int:
    """How many orders were submitted at or after ``since`` (the per-minute rate limit)."""
    rows = session.scalars(select(OrderRow.id).where(OrderRow.submitted_at >= _to_db(since)))
    return len(list(rows))


def record_fill(session: Session, fill: Fill, realized_pnl: Decimal | None = None) -> bool:
    """Insert a fill unless its id is already stored. Returns True when a row was created.
    ``realized_pnl`` is the P&L the fill closed (None for an opening fill)."""
    fid = fill_id(fill)
    if session.scalars(select(FillRow.id).where(FillRow.fill_id == fid)).first() is not None:
        return False
    session.add(
        FillRow(
            fill_id=fid,
            client_order_id=fill.client_order_id,
            broker_order_id=fill.broker_order_id,
            symbol=fill.symbol,
            side=str(fill.side),
            qty=fill.qty,
            price=fill.price,
            commission=fill.commission,
            ts_fill=_to_db(fill.ts_fill),
            realized_pnl=realized_pnl,
        )
    )
    session.flush()
    return True


def _fill(row: FillRow) -> Fill:
    return Fill(
        client_order_id=row.client_order_id,
        broker_order_id=row.broker_order_id,
        symbol=row.symbol,
        side=Side(row.side),
        qty=row.qty,
        price=row.price,
        commission=row.commission,
        ts_fill=row.ts_fill,
    )


def fills_since(session: Session, since: datetime) -> list[Fill]:
    """Fills at or after ``since`` in fill-time order."""
    rows = session.scalars(
        select(FillRow).where(FillRow.ts_fill >= _to_db(since))
        .order_by(FillRow.ts_fill, FillRow.id)
    )
    return [_fill(row) for row in rows]


def order_fills(session: Session, client_order_id: str) -> list[Fill]:
    """The fills of one order, oldest first."""
    rows = session.scalars(
        select(FillRow).where(FillRow.client_order_id == client_order_id)
        .order_by(FillRow.ts_fill, FillRow.id)
    )
    return [_fill(row) for row in rows]


def recent_realized(session: Session, limit: int) -> list[Decimal]:
    """Realized P&L of the last ``limit`` closing fills, oldest first."""
    rows = session.scalars(
        select(FillRow.realized_pnl).where(FillRow.realized_pnl.is_not(None))
        .order_by(FillRow.ts_fill.desc(), FillRow.id.desc()).limit(limit)
    )
    return list(rows)[::-1]


def load_fills(session: Session) -> list[Fill]:
    """All recorded fills in fill-time order."""
    rows = session.scalars(select(FillRow).order_by(FillRow.ts_fill, FillRow.id))
    return [_fill(row) for row in rows]


def cash_from_ledger(session: Session, initial_cash: Decimal) -> Decimal:
    """Initial cash minus buys plus sells minus commissions, exactly, from the fills table."""
    return initial_cash + sum((fill_cash_delta(f) for f in load_fills(session)), Decimal(0))


# -- positions and account snapshots -------------------------------------------------------


def save_positions(
    session: Session,
    positions: Mapping[str, Position],
    last_prices: Mapping[str, float],
    ts: datetime,
) -> None:
    """Replace the stored positions with ``positions`` (symbols not in it are deleted)."""
    stamp = _to_db(ts)
    existing = {row.symbol: row for row in session.scalars(select(PositionRow))}
    for symbol, row in existing.items():
        if symbol not in positions:
            session.delete(row)
    for symbol, pos in positions.items():
        row = existing.get(symbol)
        if row is None:
            row = PositionRow(symbol=symbol, last_price=0.0)
            session.add(row)
        row.qty = pos.qty
        row.avg_price = pos.avg_price
        row.realized_pnl = pos.realized_pnl
        row.peak_price = pos.peak_price
        row.last_price = float(last_prices.get(symbol, row.last_price or 0.0))
        row.updated_at = stamp
    session.flush()


def load_positions(session: Session) -> dict[str, Position]:
    rows = session.scalars(select(PositionRow).order_by(PositionRow.symbol))
    return {
        row.symbol: Position(row.symbol, row.qty, row.avg_price, row.realized_pnl, row.peak_price)
        for row in rows
    }


def record_snapshot(session: Session, snap: AccountSnapshot) -> bool:
    """Insert the snapshot, or overwrite the one already stored at the same ts.
    Returns True when a row was created."""
    ts = _to_db(snap.ts)
    row = session.scalars(
        select(AccountSnapshotRow).where(AccountSnapshotRow.ts == ts)
    ).one_or_none()
    created = row is None
    if row is None:
        row = AccountSnapshotRow(ts=ts)
        session.add(row)
    row.cash = snap.cash
    row.equity = snap.equity
    row.positions_value = snap.positions_value
    row.realized_pnl = snap.realized_pnl
    row.unrealized_pnl = snap.unrealized_pnl
    session.flush()
    return created


def _snapshot(row: AccountSnapshotRow) -> AccountSnapshot:
    return AccountSnapshot(
        ts=row.ts,
        cash=row.cash,
        equity=row.equity,
        positions_value=row.positions_value,
        realized_pnl=row.realized_pnl,
        unrealized_pnl=row.unrealized_pnl,
    )


def latest_snapshot(session: Session) -> AccountSnapshot | None:
    row = session.scalars(
        select(AccountSnapshotRow).order_by(AccountSnapshotRow.ts.desc()).limit(1)
    ).first()
    return None if row is None else _snapshot(row)


def peak_equity(session: Session) -> Decimal | None:
    """Highest recorded equity (computed in Python: SQLite stores decimals as text)."""
    values = list(session.scalars(select(AccountSnapshotRow.equity)))
    return max(values) if values else None


def day_start_equity(session: Session, session_open_ts: datetime) -> Decimal | None:
    """Equity of the last snapshot at or before the session open, else None."""
    row = session.scalars(
        select(AccountSnapshotRow)
        .where(AccountSnapshotRow.ts <= _to_db(session_open_ts))
        .order_by(AccountSnapshotRow.ts.desc())
        .limit(1)
    ).first()
    return None if row is None else row.equity


# -- risk events and kill switch -----------------------------------------------------------


def record_risk_event(session: Session, ts: datetime, decision: RiskDecision, action: str) -> None:
    """Store one risk verdict (e.g. action "denied" or "reduced") with its rule and reason."""
    rule = decision.rule or ("approved" if decision.approved else "denied")
    session.add(
        RiskEventRow(
            ts=_to_db(ts),
            rule=rule,
            action=action,
            symbol=decision.request.symbol,
            client_order_id=decision.request.client_order_id,
            reason=decision.reason,
        )
    )
    session.flush()


def kill_switch_row(session: Session) -> KillSwitchRow | None:
    """The stored kill-switch row (state, reason, when), None when never set."""
    return session.get(KillSwitchRow, KILL_SWITCH_ROW_ID)


def get_kill_switch(session: Session) -> KillSwitchState:
    """The persisted kill-switch state; ACTIVE when none was ever set."""
    row = session.get(KillSwitchRow, KILL_SWITCH_ROW_ID)
    return KillSwitchState.ACTIVE if row is None else KillSwitchState(row.state)


def set_kill_switch(
    session: Session, state: KillSwitchState | str, reason: str, ts: datetime
) -> None:
    row = session.get(KillSwitchRow, KILL_SWITCH_ROW_ID)
    if row is None:
        row = KillSwitchRow(id=KILL_SWITCH_ROW_ID)
        session.add(row)
    row.state = str(KillSwitchState(state))
    row.reason = reason
    row.updated_at = _to_db(ts)
    session.flush()


# -- the ledger as a trade cycle's book ----------------------------------------------------


class LedgerBook:
    """The :class:`~tradebot.serving.book.Book` of the live flow: the ledger tables, read and
    written through one session (the caller commits)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def finished_cycle(self, ts: datetime) -> tuple[str, str] | None:
        row = self.session.scalars(
            select(TradeCycleRow).where(TradeCycleRow.ts_decision == _to_db(ts))).first()
        if row is None or row.status not in FINISHED:
            return None
        return row.status, row.model_version

    def cash(self, initial: Decimal) -> Decimal:
        return cash_from_ledger(self.session, initial)

    def positions(self) -> dict[str, Position]:
        return load_positions(self.session)

    def open_orders(self) -> list[OrderRequest]:
        return open_order_requests(self.session)

    def has_order(self, client_order_id: str) -> bool:
        return self.session.scalars(
            select(OrderRow.id).where(OrderRow.client_order_id == client_order_id)
        ).first() is not None

    def record_order(self, result: OrderResult, strategy: str, submitted_at: datetime) -> None:
        record_order(self.session, result, strategy, submitted_at)

    def set_order_status(self, client_order_id: str, status: OrderStatus) -> None:
        mark_filled(self.session, client_order_id, status)

    def record_fill(self, fill: Fill, realized_pnl: Decimal | None = None) -> None:
        record_fill(self.session, fill, realized_pnl)

    def fills_since(self, since: datetime) -> list[Fill]:
        return fills_since(self.session, since)

    def recent_realized(self, limit: int) -> list[Decimal]:
        return recent_realized(self.session, limit)

    def orders_submitted_since(self, since: datetime) -> int:
        return orders_submitted_since(self.session, since)

    def save_positions(self, positions: Mapping[str, Position], prices: Mapping[str, float],
                       ts: datetime) -> None:
        save_positions(self.session, positions, prices, ts)

    def record_snapshot(self, snap: AccountSnapshot) -> None:
        record_snapshot(self.session, snap)

    def peak_equity(self) -> Decimal | None:
        return peak_equity(self.session)

    def day_start_equity(self, session_open: datetime) -> Decimal | None:
        return day_start_equity(self.session, session_open)

    def kill_switch(self) -> KillSwitchState:
        return get_kill_switch(self.session)

    def set_kill_switch(self, state: KillSwitchState, reason: str, ts: datetime) -> None:
        set_kill_switch(self.session, state, reason, ts)

    def record_risk_event(self, ts: datetime, decision: RiskDecision, action: str) -> None:
        record_risk_event(self.session, ts, decision, action)

    def record_predictions(self, records: list[dict[str, Any]]) -> None:
        upsert(self.session, PredictionRow.__table__, records,
               ["symbol", "ts_decision", "model_name", "model_version"])

    def record_cycle(self, record: dict[str, Any]) -> None:
        upsert(self.session, TradeCycleRow.__table__, [record], ["ts_decision"],
               update=["status", "n_orders", "note", "finished_at"])
