"""Simulated broker: idempotent submit, next-bar-open fills with exact costs, no shorting."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pandas as pd
import pytest

from tests.kit.trading import T0, at, bars, costs, order
from tradebot.kernel.domain import OrderStatus, Position, Side
from tradebot.serving.brokers.base import Broker
from tradebot.serving.brokers.simulated import SimulatedBroker

COSTS = costs(slippage_bps=2.0, commission_bps=1.0, per_share=0.005)


def broker(cash: str = "100000", **positions: str) -> SimulatedBroker:
    held = {s: Position(s, Decimal(q), Decimal("90")) for s, q in positions.items()}
    return SimulatedBroker(Decimal(cash), COSTS, positions=held)


def test_implements_the_broker_protocol() -> None:
    assert isinstance(broker(), Broker)
    assert broker().name == "simulated"


def test_resubmitting_the_same_client_order_id_never_creates_a_second_order() -> None:
    b = broker()
    first = b.submit(order(qty="10"))
    again = b.submit(order(qty="10"))
    assert first.status is OrderStatus.NEW and not first.duplicate
    assert again.duplicate and again.broker_order_id == first.broker_order_id
    assert len(b.open_orders()) == 1
    fills = b.match(bars("AAPL", T0, [100.0, 101.0]))
    assert len(fills) == 1 and b.positions()["AAPL"].qty == Decimal("10")
    assert b.submit(order(qty="10")).status is OrderStatus.FILLED  # still no second order
    assert b.match(bars("AAPL", at(1), [102.0])) == []


def test_broker_order_id_is_sim_plus_sha256_prefix() -> None:
    request = order()
    expected = "sim-" + hashlib.sha256(request.client_order_id.encode()).hexdigest()[:16]
    assert broker().submit(request).broker_order_id == expected


def test_buy_fills_at_the_decision_bar_open_with_exact_slippage_and_commission() -> None:
    b = broker()
    b.submit(order(qty="10", ts=T0))
    # Bars before the decision (T0-2, T0-1) must not be used; the T0 bar opens at 100.25.
    fills = b.match(bars("AAPL", at(-2), [99.0, 99.5, 100.25, 101.0]))
    (f,) = fills
    assert f.ts_fill == T0
    assert f.price == Decimal("100.2700")  # 100.25 * 1.0002 = 100.27005 -> half-even
    # 0.005 * 10 + 1bp * 10 * 100.27 = 0.05 + 0.10027 = 0.15027 -> 0.1503
    assert f.commission == Decimal("0.1503")
    assert b.cash() == Decimal("100000") - Decimal("1002.7000") - Decimal("0.1503")
    pos = b.positions()["AAPL"]
    assert (pos.qty, pos.avg_price) == (Decimal("10"), Decimal("100.2700"))
    assert b.get_order(f.client_order_id).status is OrderStatus.FILLED  # type: ignore[union-attr]
    assert b.open_orders() == []


def test_the_spread_moves_each_fill_by_half_of_it() -> None:
    wide = COSTS.model_copy(update={"spread_bps": 10.0})
    b = SimulatedBroker(Decimal("100000"), wide,
                        positions={"MSFT": Position("MSFT", Decimal("5"), Decimal("90"))})
    b.submit(order(qty="10", ts=T0))
    b.submit(order(symbol="MSFT", side=Side.SELL, qty="5", ts=T0, intent="exit"))
    fills = {f.symbol: f for f in b.match(pd.concat([bars("AAPL", T0, [100.0]),
                                                     bars("MSFT", T0, [200.0])]))}
    assert fills["AAPL"].price == Decimal("100.0700")  # 2 bps + 10 / 2 bps above
    assert fills["MSFT"].price == Decimal("199.8600")  # 7 bps below


def test_sell_receives_less_and_realizes_pnl() -> None:
    b = broker(AAPL="10")
    b.submit(order(side=Side.SELL, qty="4", intent="exit"))
    (f,) = b.match(bars("AAPL", T0, [101.0]))
    assert f.price == Decimal("100.9798")  # 101 * 0.9998
    assert f.commission == Decimal("0.0604")  # 0.02 + 4 * 100.9798 / 1e4 = 0.06039192
    assert b.cash() == Decimal("100000") + Decimal("403.9192") - f.commission
    pos = b.positions()["AAPL"]
    assert pos.qty == Decimal("6") and pos.realized_pnl == Decimal("43.9192")


def test_no_fill_from_bars_before_the_decision() -> None:
    b = broker()
    b.submit(order(ts=T0))
    assert b.match(bars("AAPL", at(-5), [99.0] * 5)) == []  # last bar opens at T0-1
    assert len(b.open_orders()) == 1 and b.cash() == Decimal("100000")
    assert b.match(bars("MSFT", T0, [50.0])) == []  # another symbol's bar never fills it
    (f,) = b.match(bars("AAPL", at(3), [105.0]))
    assert f.ts_fill == at(3)


def test_unsorted_bars_still_fill_at_the_first_bar_after_the_decision() -> None:
    frame = pd.concat([bars("AAPL", at(2), [103.0]), bars("AAPL", at(-1), [99.0, 100.0])])
    b = SimulatedBroker(Decimal("100000"), costs(0.0, 0.0))
    b.submit(order())
    (f,) = b.match(frame)
    assert (f.ts_fill, f.price) == (T0, Decimal("100.0000"))


def test_sell_beyond_held_quantity_is_rejected_with_a_reason() -> None:
    b = broker(AAPL="5")
    naked = b.submit(order("MSFT", Side.SELL, "1", intent="exit"))
    assert naked.status is OrderStatus.REJECTED and "no shorting" in naked.reason
    assert b.submit(order(side=Side.SELL, qty="3", intent="exit")).status is OrderStatus.NEW
    second = b.submit(order(side=Side.SELL, qty="3", intent="exit2"))
    assert second.status is OrderStatus.REJECTED  # 3 of the 5 are already being sold
    assert b.submit(order(side=Side.SELL, qty="3", intent="exit2")).duplicate


def test_buy_beyond_cash_is_rejected_at_fill_time() -> None:
    b = broker(cash="500")
    b.submit(order(qty="10"))
    assert b.match(bars("AAPL", T0, [100.0])) == []
    result = b.get_order(order(qty="10").client_order_id)
    assert result is not None and result.status is OrderStatus.REJECTED
    assert "insufficient cash" in result.reason and b.cash() == Decimal("500")


def test_restored_open_orders_fill_and_runs_are_deterministic() -> None:
    requests = [order("AAPL", qty="2"), order("MSFT", qty="1.5")]
    frame = pd.concat([bars("AAPL", T0, [100.0]), bars("MSFT", T0, [400.0])])
    runs = []
    for _ in range(2):
        b = SimulatedBroker(Decimal("10000"), COSTS, open_orders=requests)
        runs.append((b.match(frame), b.cash()))
    assert runs[0] == runs[1] and len(runs[0][0]) == 2


def test_naive_bar_times_are_an_error() -> None:
    b = broker()
    b.submit(order())
    frame = bars("AAPL", T0, [100.0])
    frame["ts_event"] = frame["ts_event"].dt.tz_localize(None)
    with pytest.raises(ValueError, match="timezone-aware"):
        b.match(frame)
