"""The live cycle against a loopback Alpaca (official TradingClient, real wire format): orders
are placed once under every injected fault, fills and positions are reconciled into the
ledger, a crash between submit and ledger write is healed, and Alpaca's refusals are kept."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.kit.fakes.alpaca_trading import AlpacaTradingFake
from tests.kit.fakes.server import server_error, slow, throttled
from tests.kit.live import OPEN, SYMBOLS, TIMES, LiveRig, live_rig
from tests.kit.trading import order
from tradebot.kernel.domain import KillSwitchState, OrderStatus
from tradebot.kernel.errors import ConfigError
from tradebot.kernel.schema import FillRow, OrderRow, ReconciliationRow
from tradebot.kernel.settings import BrokerSettings
from tradebot.serving.ledger import LedgerBook, get_kill_switch, load_positions
from tradebot.serving.live import open_alpaca

T1, T2, T3 = TIMES[1], TIMES[2], TIMES[3]


@pytest.fixture
def fake():
    with AlpacaTradingFake(cash=100_000) as server:
        yield server


@pytest.fixture
def rig(fake, database_url) -> LiveRig:
    return live_rig(fake, database_url)


def ledger_orders(rig: LiveRig) -> list[OrderRow]:
    with rig.db.session() as session:
        return list(session.scalars(select(OrderRow).order_by(OrderRow.id)))


def assert_one_order_per_decision(rig: LiveRig) -> None:
    ids = [o["client_order_id"] for o in rig.fake.orders]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(o.client_order_id for o in ledger_orders(rig))


def test_cycle_places_one_order_per_symbol_then_takes_in_fills(rig: LiveRig) -> None:
    first = rig.cycle(T1)
    assert first.status == "traded" and first.orders == len(SYMBOLS)
    assert {o["symbol"] for o in rig.fake.orders} == set(SYMBOLS)
    assert all("buy" in first.decisions[s] and "entry" in first.decisions[s] for s in SYMBOLS)
    for placed in rig.fake.orders:
        rig.fake.fill(placed["client_order_id"])
    second = rig.cycle(T2)
    assert second.fills == 0  # Alpaca's fills arrive through reconciliation, not matching
    with rig.db.session() as session:
        fills = list(session.scalars(select(FillRow)))
        positions = load_positions(session)
        statuses = {o.status for o in session.scalars(select(OrderRow))}
    assert len(fills) == len(SYMBOLS)
    assert statuses >= {str(OrderStatus.FILLED)}
    for symbol in SYMBOLS:
        assert positions[symbol].qty == Decimal(str(rig.fake.positions[symbol].qty))
    assert_one_order_per_decision(rig)


def test_rerunning_a_cycle_never_submits_again(rig: LiveRig) -> None:
    rig.cycle(T1)
    placed = rig.fake.created_count()
    again = rig.cycle(T1)
    assert again.status == "skipped"
    assert rig.fake.created_count() == placed


@pytest.mark.parametrize("fault", ["lost_500", "lost_timeout", "throttled", "refused_500"])
def test_faults_on_order_submission_never_duplicate(rig: LiveRig, fault: str) -> None:
    server = rig.fake.server
    if fault == "lost_500":  # Alpaca created the order, the reply was lost: retry -> 422
        rig.fake.after_effect_fault(r"/v2/orders", server_error(500), times=1, method="POST")
    elif fault == "lost_timeout":
        rig.fake.after_effect_fault(r"/v2/orders", slow(1.0), times=1, method="POST")
    elif fault == "throttled":
        server.fail(r"/v2/orders", throttled(0.01), times=2)
    else:
        server.fail(r"/v2/orders", server_error(500), times=1)
    result = rig.cycle(T1)
    assert result.orders == len(SYMBOLS)
    assert rig.fake.created_count() == len(SYMBOLS)
    assert_one_order_per_decision(rig)


def test_crash_between_submit_and_ledger_write_is_healed(rig: LiveRig, monkeypatch) -> None:
    def crash(*args, **kwargs):
        raise RuntimeError("process killed after the broker accepted the order")

    monkeypatch.setattr(LedgerBook, "record_order", crash)
    with pytest.raises(RuntimeError):
        rig.cycle(T1)
    monkeypatch.undo()
    assert rig.fake.created_count() == 1  # the first order reached Alpaca
    assert ledger_orders(rig) == []  # and the ledger write was lost with the transaction
    rig.fake.fill(rig.fake.orders[0]["client_order_id"])
    healed = rig.cycle(T1)  # the re-run: reconciliation adopts the order, nothing is doubled
    assert healed.status == "traded"
    assert rig.fake.created_count() == len(SYMBOLS)
    assert_one_order_per_decision(rig)
    with rig.db.session() as session:
        kinds = [r.kind for r in session.scalars(select(ReconciliationRow))]
        fills = list(session.scalars(select(FillRow)))
    assert "order_missing" in kinds and "fill" in kinds
    assert len(fills) == 1


def test_partial_fills_are_recorded_as_they_come(rig: LiveRig) -> None:
    rig.cycle(T1)
    cid = rig.fake.orders[0]["client_order_id"]
    qty = Decimal(rig.fake.orders[0]["qty"])
    rig.fake.fill(cid, qty=float(qty / 2))
    rig.cycle(T2)
    rig.fake.fill(cid)
    rig.cycle(T3)
    with rig.db.session() as session:
        fills = list(session.scalars(select(FillRow).where(FillRow.client_order_id == cid)))
        (row,) = session.scalars(select(OrderRow).where(OrderRow.client_order_id == cid))
        status = row.status
    assert sum(f.qty for f in fills) == qty and len(fills) == 2
    assert status == str(OrderStatus.FILLED)


def test_refusals_are_kept_with_alpacas_reason(rig: LiveRig) -> None:
    rig.fake.prices["AAPL"] = 100.0
    big = order("AAPL", qty="5000", ts=T1, reference_price=100.0)  # $500k > buying power
    result = rig.live.trading.submit(big)
    assert result.status is OrderStatus.REJECTED and result.broker_order_id is None
    assert "HTTP 403: insufficient buying power" in result.reason
    rig.fake.reject_symbols = {"MSFT"}  # accepted, then rejected by Alpaca
    rig.cycle(T1)
    assert {o["status"] for o in rig.fake.orders if o["symbol"] == "MSFT"} == {"rejected"}
    rig.cycle(T2)  # reconciliation takes the asynchronous rejection in
    msft = [o for o in ledger_orders(rig) if o.symbol == "MSFT"]
    assert [o.status for o in msft] == [str(OrderStatus.REJECTED)] * len(msft)
    assert rig.fake.created_count("AAPL") == 1  # the open AAPL buy is not stacked at T2


def test_pattern_day_trader_refusal_is_recorded(fake, database_url) -> None:
    fake.auto_fill = True
    rig = live_rig(fake, database_url)
    rig.cycle(T1)  # buys, filled at once
    fake.pattern_day_trader_block = True
    result = rig.cycle(T2, prob=0.1)  # sell the same day: Alpaca refuses (403 PDT)
    assert result.orders == len(SYMBOLS)
    refused = [o for o in ledger_orders(rig) if o.side == "sell"]
    assert refused and all(o.status == str(OrderStatus.REJECTED) for o in refused)
    assert all("pattern day trading" in o.reason for o in refused)


def test_alpacas_clock_closed_means_no_trading(rig: LiveRig) -> None:
    rig.fake.clock_open = False
    result = rig.cycle(T1)
    assert result.status == "closed" and "Alpaca's clock" in result.note
    assert rig.fake.created_count() == 0


def test_a_past_decision_time_is_refused(rig: LiveRig) -> None:
    from tests.kit.live import TapeStore, constant, day_bars
    from tradebot.kernel.clock import SimulatedClock
    from tradebot.pipelines.trade import run_trade_cycle

    late = SimulatedClock(T1.replace(hour=T1.hour + 2))
    result = run_trade_cycle(rig.db, TapeStore(rig.settings, day_bars()), T1,  # type: ignore
                             constant(0.9), "1", late, rig.live)
    assert result.status == "closed" and "current decision time" in result.note


def test_a_position_the_ledger_does_not_know_is_adopted_and_recorded(rig: LiveRig) -> None:
    rig.fake.auto_fill = True
    rig.cycle(T1)
    rig.fake.positions["AAPL"].qty += Decimal(3)  # e.g. a trade placed by hand in Alpaca's UI
    held = rig.fake.positions["AAPL"].qty
    rig.cycle(T2)  # reconciles, then trades back towards the target (filled at once)
    rig.cycle(T3, prob=0.52)  # in the hold band: no orders, only the reconciliation
    with rig.db.session() as session:
        rows = list(session.scalars(select(ReconciliationRow).where(
            ReconciliationRow.kind == "position")))
        positions = load_positions(session)
    assert [r.symbol for r in rows] == ["AAPL"]
    assert rows[0].broker_value.startswith(str(held))
    for symbol in SYMBOLS:
        assert positions[symbol].qty == rig.fake.positions[symbol].qty


def test_drawdown_shutdown_cancels_open_orders_and_alerts(rig: LiveRig) -> None:
    rig.cycle(T1)  # open buy orders, not filled
    with rig.db.session() as session:  # a peak far above today's equity: drawdown breached
        from tradebot.kernel.domain import AccountSnapshot

        LedgerBook(session).record_snapshot(AccountSnapshot(
            OPEN, Decimal(200_000), Decimal(200_000), Decimal(0), Decimal(0), Decimal(0)))
    result = rig.cycle(T2)
    assert all(o["status"] == "canceled" for o in rig.fake.orders)
    with rig.db.session() as session:
        assert get_kill_switch(session) is KillSwitchState.HALTED
    (alert,) = rig.alerts
    assert alert[0] == "critical" and "HALTED" in alert[1]
    assert result.orders == 0


def test_live_orders_need_both_the_config_and_the_environment(fake) -> None:
    from tests.kit.live import alpaca_settings

    paper = alpaca_settings(fake)
    assert open_alpaca(paper).live is False
    wants_live = alpaca_settings(fake, broker=BrokerSettings(kind="alpaca", paper=False))
    with pytest.raises(ConfigError, match="TRADEBOT_LIVE_TRADING"):
        open_alpaca(wants_live)
    env_only = alpaca_settings(fake, live_trading=True)
    assert open_alpaca(env_only).live is False  # the config still says paper
    both = alpaca_settings(fake, broker=BrokerSettings(kind="alpaca", paper=False),
                           live_trading=True)
    trading = open_alpaca(both)  # constructed only: no order is ever sent live in tests
    assert trading.live is True
    assert str(trading.client._base_url).startswith("https://api.alpaca.markets")
