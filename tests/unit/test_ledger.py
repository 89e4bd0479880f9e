"""Ledger on SQLite: exact Decimals, idempotent writes, state reads, cash reconciliation."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.kit.trading import OPEN, STRATEGY, T0, at, bars, costs, fill, order, sqlite_session
from tradebot.kernel.domain import (
    AccountSnapshot,
    KillSwitchState,
    OrderResult,
    OrderStatus,
    Position,
    RiskDecision,
    Side,
)
from tradebot.kernel.schema import FillRow, OrderRow, RiskEventRow
from tradebot.serving import ledger
from tradebot.serving.brokers.simulated import SimulatedBroker


@pytest.fixture
def session() -> Session:  # type: ignore[misc]
    with sqlite_session() as s:
        yield s


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def snap(ts: datetime, equity: str, cash: str = "1000") -> AccountSnapshot:
    eq = Decimal(equity)
    return AccountSnapshot(ts, Decimal(cash), eq, eq - Decimal(cash), Decimal(0), Decimal(0))


def test_decimals_round_trip_exactly_through_a_committed_sqlite_file(tmp_path: Path) -> None:
    db = str(tmp_path / "ledger.db")
    request = order(qty="12.345678")
    f = fill(qty="12.345678", price="123.4567", commission="0.0123", cid=request.client_order_id)
    s1 = snap(T0, "1234567.8901", cash="0.0001")
    with sqlite_session(db) as s:
        ledger.record_order(s, OrderResult(request, "b-1", OrderStatus.NEW), STRATEGY, T0)
        ledger.record_fill(s, f)
        ledger.save_positions(s, {"AAPL": Position("AAPL", f.qty, f.price)}, {"AAPL": 1.5}, T0)
        ledger.record_snapshot(s, s1)
        s.commit()
    with sqlite_session(db) as s:
        (req_back,) = ledger.open_order_requests(s)
        assert req_back.qty == Decimal("12.345678") and req_back.ts_decision == T0
        assert req_back.client_order_id == request.client_order_id
        pos = ledger.load_positions(s)["AAPL"]
        assert (pos.qty, pos.avg_price) == (Decimal("12.345678"), Decimal("123.4567"))
        assert ledger.latest_snapshot(s) == s1
        expected = Decimal("100") - Decimal("12.345678") * Decimal("123.4567")
        assert ledger.cash_from_ledger(s, Decimal("100")) == expected.quantize(
            Decimal("0.0001")
        ) - Decimal("0.0123")


def test_recording_the_same_order_twice_leaves_one_row_with_the_latest_status(
    session: Session,
) -> None:
    request = order()
    assert ledger.record_order(session, OrderResult(request, "b-1", OrderStatus.NEW), "s", T0)
    filled = OrderResult(request, "b-1", OrderStatus.FILLED, duplicate=True)
    assert not ledger.record_order(session, filled, "s", at(1))
    assert count(session, OrderRow) == 1
    assert session.scalars(select(OrderRow.status)).one() == "filled"
    assert ledger.open_order_requests(session) == []


def test_recording_the_same_fill_twice_leaves_one_row(session: Session) -> None:
    f = fill()
    assert ledger.record_fill(session, f)
    assert not ledger.record_fill(session, f)
    assert ledger.record_fill(session, fill(ts=at(1)))  # a different fill is kept
    assert count(session, FillRow) == 2


def test_open_orders_and_mark_filled(session: Session) -> None:
    a, b = order("AAPL"), order("MSFT", ts=at(15))
    for req in (b, a):
        ledger.record_order(session, OrderResult(req, None, OrderStatus.NEW), "s", T0)
    assert [r.symbol for r in ledger.open_order_requests(session)] == ["AAPL", "MSFT"]
    assert ledger.mark_filled(session, a.client_order_id, OrderStatus.FILLED)
    assert not ledger.mark_filled(session, "tb-unknown", OrderStatus.FILLED)
    assert [r.symbol for r in ledger.open_order_requests(session)] == ["MSFT"]


def test_nothing_is_committed_inside(session: Session) -> None:
    ledger.record_order(session, OrderResult(order(), None, OrderStatus.NEW), "s", T0)
    ledger.set_kill_switch(session, KillSwitchState.HALTED, "test", T0)
    session.rollback()
    assert count(session, OrderRow) == 0
    assert ledger.get_kill_switch(session) is KillSwitchState.ACTIVE


def test_save_positions_replaces_the_stored_set(session: Session) -> None:
    ledger.save_positions(
        session,
        {"AAPL": Position("AAPL", Decimal("3")), "MSFT": Position("MSFT", Decimal("1"))},
        {"AAPL": 100.0},
        T0,
    )
    ledger.save_positions(session, {"MSFT": Position("MSFT", Decimal("2"))}, {}, at(15))
    assert ledger.load_positions(session) == {"MSFT": Position("MSFT", Decimal("2"))}


def test_snapshots_idempotent_latest_peak_and_day_start(session: Session) -> None:
    prev_close = OPEN - timedelta(hours=17, minutes=30)
    ledger.record_snapshot(session, snap(prev_close, "99999.5"))
    assert not ledger.record_snapshot(session, snap(prev_close, "100000"))  # same ts: overwrite
    ledger.record_snapshot(session, snap(T0, "99000"))
    ledger.record_snapshot(session, snap(at(15), "98000"))
    latest = ledger.latest_snapshot(session)
    assert latest is not None and latest.ts == at(15) and latest.equity == Decimal("98000")
    assert ledger.peak_equity(session) == Decimal("100000")  # numeric max, not text max
    assert ledger.day_start_equity(session, OPEN) == Decimal("100000")
    assert ledger.day_start_equity(session, prev_close - timedelta(days=1)) is None


def test_empty_ledger_reads(session: Session) -> None:
    assert ledger.latest_snapshot(session) is None
    assert ledger.peak_equity(session) is None
    assert ledger.get_kill_switch(session) is KillSwitchState.ACTIVE
    assert ledger.cash_from_ledger(session, Decimal("5")) == Decimal("5")


def test_kill_switch_persists_latest_state(session: Session) -> None:
    ledger.set_kill_switch(session, KillSwitchState.REDUCING, "daily loss", T0)
    ledger.set_kill_switch(session, KillSwitchState.HALTED, "drawdown", at(15))
    assert ledger.get_kill_switch(session) is KillSwitchState.HALTED


def test_risk_event_is_stored_with_rule_and_reason(session: Session) -> None:
    request = order()
    decision = RiskDecision(False, request, rule="daily_loss", reason="day loss 2.5%")
    ledger.record_risk_event(session, T0, decision, "denied")
    row = session.scalars(select(RiskEventRow)).one()
    assert (row.rule, row.action, row.symbol) == ("daily_loss", "denied", "AAPL")
    assert row.client_order_id == request.client_order_id and row.reason == "day loss 2.5%"


def test_times_are_stored_as_utc_and_naive_times_rejected(session: Session) -> None:
    eastern = timezone(timedelta(hours=-4))
    ledger.record_snapshot(session, snap(T0.astimezone(eastern), "1"))
    latest = ledger.latest_snapshot(session)
    assert latest is not None and latest.ts == T0 and latest.ts.tzinfo is not None
    assert ledger.day_start_equity(session, T0) == Decimal("1")
    assert ledger.day_start_equity(session, at(-60)) is None
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger.record_snapshot(session, snap(T0.replace(tzinfo=None), "1"))


def test_broker_cash_reconciles_with_the_fills_table(session: Session) -> None:
    b = SimulatedBroker(
        Decimal("10000"), costs(slippage_bps=3.0, commission_bps=1.5, per_share=0.01)
    )
    frame = bars("AAPL", T0, [100.03, 101.17, 99.91, 102.49, 98.77])
    steps = [(Side.BUY, "7.123457"), (Side.BUY, "3.5"), (Side.SELL, "4.2"), (Side.SELL, "6.423457")]
    for i, (side, qty) in enumerate(steps):
        result = b.submit(order(side=side, qty=qty, ts=at(i), intent=f"step{i}"))
        ledger.record_order(session, result, STRATEGY, at(i))
        for f in b.match(frame):
            ledger.record_fill(session, f)
            ledger.record_fill(session, f)  # a retried write changes nothing
            ledger.mark_filled(session, f.client_order_id, OrderStatus.FILLED)
    assert count(session, FillRow) == 4
    assert b.positions()["AAPL"].qty == 0
    assert ledger.cash_from_ledger(session, Decimal("10000")) == b.cash()
    assert b.cash() != Decimal("10000")
