"""Simulated broker: idempotent submit, next-bar-open fills with exact costs, no shorting."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest

from tests.kit.trading import T0, at, bars, costs, order
from tradebot.kernel.domain import OrderRequest, OrderStatus, OrderType, Position, Side
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


# -- limit, stop, trailing stop and bracket orders -------------------------------------------

FREE = costs(0.0, 0.0)
Ohlc = tuple[float, float, float, float]


def ohlc(start: datetime, rows: Sequence[Ohlc], symbol: str = "AAPL") -> pd.DataFrame:
    """1-minute bars from ``start`` with the given (open, high, low, close)."""
    return pd.DataFrame(
        [{"symbol": symbol, "ts_event": pd.Timestamp(start + timedelta(minutes=i)), "open": o,
          "high": h, "low": lo, "close": c, "volume": 1_000.0}
         for i, (o, h, lo, c) in enumerate(rows)]
    )


def typed(kind: OrderType, side: Side = Side.BUY, qty: str = "10", ts: datetime = T0,
          intent: str = "entry", **fields: Any) -> OrderRequest:
    """An order of ``kind``; Decimal fields may be given as strings."""
    decimals = {k: Decimal(v) if isinstance(v, str) else v for k, v in fields.items()}
    return replace(order(side=side, qty=qty, ts=ts, intent=intent), order_type=kind,
                   **decimals)


def bracket(tp: str = "103", sl: str = "97", **fields: Any) -> OrderRequest:
    return typed(fields.pop("kind", OrderType.MARKET), take_profit_price=tp,
                 stop_loss_price=sl, **fields)


def status(b: SimulatedBroker, cid: str) -> OrderStatus:
    result = b.get_order(cid)
    assert result is not None
    return result.status


def test_limit_buy_fills_at_the_limit_on_the_first_bar_touching_it_without_slippage() -> None:
    b = SimulatedBroker(Decimal("100000"), COSTS)
    request = typed(OrderType.LIMIT, limit_price="99")
    b.submit(request)
    frame = ohlc(at(-1), [(98.0, 98.5, 97.0, 98.0),  # before the decision: never used
                          (100.0, 101.0, 99.5, 100.0),  # low 99.5 > 99: not touched
                          (99.8, 100.0, 98.5, 99.0)])
    (f,) = b.match(frame)
    assert (f.ts_fill, f.price) == (at(1), Decimal("99.0000"))  # min(open 99.8, 99), no slip
    assert f.commission == Decimal("0.1490")  # 0.05 + 1bp * 990
    assert b.open_orders() == []


def test_limit_buy_gapping_through_fills_at_the_better_open() -> None:
    b = SimulatedBroker(Decimal("100000"), FREE)
    b.submit(typed(OrderType.LIMIT, limit_price="99"))
    (f,) = b.match(ohlc(T0, [(98.0, 98.5, 97.5, 98.0)]))
    assert f.price == Decimal("98.0000")


def test_limit_sell_fills_at_max_of_open_and_limit() -> None:
    b = broker(AAPL="10")
    b.submit(typed(OrderType.LIMIT, Side.SELL, intent="exit", limit_price="102"))
    frame = ohlc(T0, [(100.0, 101.9, 99.0, 101.0), (101.0, 102.5, 100.5, 102.0),
                      (103.0, 103.5, 102.5, 103.0)])
    (f,) = b.match(frame)
    assert (f.ts_fill, f.price) == (at(1), Decimal("102.0000"))
    b2 = broker(AAPL="10")
    b2.submit(typed(OrderType.LIMIT, Side.SELL, intent="exit", limit_price="102"))
    (g,) = b2.match(frame.iloc[2:])
    assert g.price == Decimal("103.0000")  # gapped above the limit: the better open


def test_an_untouched_limit_stays_pending_across_calls() -> None:
    b = SimulatedBroker(Decimal("100000"), FREE)
    request = typed(OrderType.LIMIT, limit_price="95")
    b.submit(request)
    assert b.match(ohlc(T0, [(100.0, 101.0, 99.0, 100.0)] * 3)) == []
    assert b.match(ohlc(at(3), [(99.0, 99.5, 96.0, 97.0)])) == []
    assert b.open_orders() == [request] and status(b, request.client_order_id) is OrderStatus.NEW
    (f,) = b.match(ohlc(at(4), [(96.0, 96.5, 94.0, 95.0)]))
    assert (f.ts_fill, f.price) == (at(4), Decimal("95.0000"))


def test_stop_sell_triggers_on_the_low_and_fills_at_the_stop_with_slippage() -> None:
    b = broker(AAPL="10")
    b.submit(typed(OrderType.STOP, Side.SELL, intent="exit", stop_price="98"))
    frame = ohlc(T0, [(100.0, 100.5, 98.5, 99.0), (99.0, 99.2, 97.9, 98.0)])
    (f,) = b.match(frame)
    assert (f.ts_fill, f.price) == (at(1), Decimal("97.9804"))  # 98 * (1 - 2bps)


def test_stop_sell_gapping_down_fills_at_the_open() -> None:
    b = broker(AAPL="10")
    b.submit(typed(OrderType.STOP, Side.SELL, intent="exit", stop_price="98"))
    (f,) = b.match(ohlc(T0, [(95.0, 95.5, 94.0, 95.0)]))
    assert f.price == Decimal("94.9810")  # 95 * (1 - 2bps), well below the stop


def test_stop_buy_triggers_on_the_high_at_max_of_open_and_stop_plus_slippage() -> None:
    b = SimulatedBroker(Decimal("100000"), COSTS)
    b.submit(typed(OrderType.STOP, stop_price="102"))
    frame = ohlc(T0, [(100.0, 101.9, 99.0, 101.0), (101.0, 102.1, 100.5, 102.0)])
    (f,) = b.match(frame)
    assert (f.ts_fill, f.price) == (at(1), Decimal("102.0204"))  # 102 * (1 + 2bps)


def test_trailing_stop_follows_the_rising_high_then_triggers() -> None:
    b = broker(AAPL="10")
    b.submit(typed(OrderType.TRAILING_STOP, Side.SELL, intent="exit", trail_percent="5"))
    b = SimulatedBroker(Decimal(0), FREE, positions=b.positions(), open_orders=b.open_orders())
    frame = ohlc(T0, [
        (100.0, 101.0, 99.5, 100.0),  # mark 100 (reference): level 95
        # high 110 raises the mark only after this bar's check: level still 95.05
        (101.0, 110.0, 104.4, 106.0),
        (106.0, 107.0, 104.6, 105.0),  # mark 110: level 104.5, low 104.6 holds
        (106.0, 107.0, 104.0, 105.0),  # low 104 <= 104.5: fills at the level
    ])
    assert b.match(frame.iloc[:3]) == []  # the mark carries over to the next call
    (f,) = b.match(frame.iloc[3:])
    assert (f.ts_fill, f.price) == (at(3), Decimal("104.5000"))


def test_trailing_stop_without_reference_starts_at_the_first_open_and_gaps_at_open() -> None:
    b = broker(AAPL="10")
    request = replace(typed(OrderType.TRAILING_STOP, Side.SELL, intent="exit",
                            trail_percent="2"), reference_price=0.0)
    b.submit(request)
    b = SimulatedBroker(Decimal(0), FREE, positions=b.positions(), open_orders=[request])
    frame = ohlc(T0, [(50.0, 50.5, 49.1, 50.0),  # mark 50: level 49
                      (48.0, 48.2, 47.5, 48.0)])  # mark 50.5: level 49.49, opens below it
    (f,) = b.match(frame)
    assert (f.ts_fill, f.price) == (at(1), Decimal("48.0000"))


def test_trailing_buy_mirrors_with_a_low_water_mark() -> None:
    b = SimulatedBroker(Decimal("100000"), FREE)
    b.submit(typed(OrderType.TRAILING_STOP, trail_percent="2"))  # mark 100: level 102
    frame = ohlc(T0, [(99.0, 101.5, 95.0, 96.0),  # mark 95 after: level 96.9
                      (96.0, 97.0, 95.5, 96.5)])
    (f,) = b.match(frame)
    assert (f.ts_fill, f.price) == (at(1), Decimal("96.9000"))


def test_bracket_entry_fills_then_take_profit_fills_and_cancels_the_stop_loss() -> None:
    b = SimulatedBroker(Decimal("100000"), FREE)
    parent = bracket()
    assert b.submit(parent).status is OrderStatus.NEW
    frame = ohlc(T0, [(100.0, 104.0, 96.0, 100.0),  # entry; both levels hit, legs not live
                      (100.5, 101.0, 100.0, 100.5),
                      (102.0, 103.5, 101.8, 103.0),  # take-profit at 103
                      (103.0, 103.0, 90.0, 91.0)])
    entry, exit_ = b.match(frame)  # legs created in the call fill in it
    assert (entry.ts_fill, entry.price) == (T0, Decimal("100.0000"))
    assert (exit_.client_order_id, exit_.ts_fill) == (f"{parent.client_order_id}-tp", at(2))
    assert (exit_.side, exit_.qty, exit_.price) == (Side.SELL, Decimal("10"), Decimal("103"))
    tp, sl = b.created_orders()
    assert [tp.request.intent, sl.request.intent] == ["take_profit", "stop_loss"]
    assert sl.request.client_order_id == f"{parent.client_order_id}-sl"
    assert tp.request.parent_client_order_id == parent.client_order_id
    assert sl.request.ts_decision == T0 and sl.request.stop_price == Decimal("97")
    assert (tp.status, sl.status) == (OrderStatus.FILLED, OrderStatus.CANCELED)
    assert "one-cancels-other" in sl.reason
    assert b.open_orders() == [] and b.positions()["AAPL"].qty == 0
    assert b.cash() == Decimal("100030.0000")
    assert b.match(frame) == [] and len(b.created_orders()) == 2  # each leg once


def test_bracket_legs_never_fill_on_the_entry_bar() -> None:
    b = SimulatedBroker(Decimal("100000"), FREE)
    parent = bracket()
    b.submit(parent)
    assert len(b.match(ohlc(T0, [(100.0, 120.0, 80.0, 100.0)]))) == 1  # the entry only
    assert [r.client_order_id for r in b.open_orders()] == [
        f"{parent.client_order_id}-tp", f"{parent.client_order_id}-sl"]
    assert all(o.status is OrderStatus.NEW for o in b.created_orders())


def test_bracket_both_legs_hit_on_one_bar_the_stop_loss_wins() -> None:
    b = SimulatedBroker(Decimal("100000"), COSTS)
    parent = bracket()
    b.submit(parent)
    fills = b.match(ohlc(T0, [(100.0, 100.5, 99.5, 100.0), (100.0, 103.5, 96.5, 100.0)]))
    assert [f.client_order_id for f in fills] == [parent.client_order_id,
                                                 f"{parent.client_order_id}-sl"]
    assert fills[1].price == Decimal("96.9806")  # min(open 100, stop 97) * (1 - 2bps)
    tp, sl = b.created_orders()
    assert (tp.status, sl.status) == (OrderStatus.CANCELED, OrderStatus.FILLED)


def test_limit_bracket_entry_waits_for_its_limit() -> None:
    b = SimulatedBroker(Decimal("100000"), FREE)
    parent = bracket(kind=OrderType.LIMIT, limit_price="99")
    b.submit(parent)
    fills = b.match(ohlc(T0, [(100.0, 100.5, 99.5, 100.0), (99.6, 99.8, 98.9, 99.0),
                              (99.0, 99.5, 96.5, 97.0)]))
    assert [(f.ts_fill, f.price) for f in fills] == [(at(1), Decimal("99")),
                                                     (at(2), Decimal("97"))]
    assert b.created_orders()[1].request.ts_decision == at(1)


def _scenario() -> tuple[list[OrderRequest], pd.DataFrame]:
    """A bracket, a trailing stop, a limit and a market order over 8 bars."""
    requests = [
        bracket(intent="b", qty="5"),
        typed(OrderType.TRAILING_STOP, Side.SELL, qty="3", intent="trail", trail_percent="3"),
        typed(OrderType.LIMIT, qty="2", ts=at(2), intent="dip", limit_price="98.5"),
        order(qty="1", ts=at(4), intent="late"),
    ]
    rows = [(100.0, 100.6, 99.6, 100.0), (100.2, 101.5, 99.9, 101.0),
            (101.0, 102.0, 98.8, 99.0), (99.0, 99.5, 98.4, 99.0),
            (99.0, 101.0, 98.9, 100.5), (100.5, 101.2, 98.0, 98.5),
            (98.5, 99.0, 96.8, 97.0), (97.0, 97.5, 95.0, 96.0)]
    return requests, ohlc(T0, rows)


@pytest.mark.parametrize("cut", range(1, 8))
def test_a_broker_rebuilt_from_open_orders_continues_as_one_long_run(cut: int) -> None:
    requests, frame = _scenario()
    held = {"AAPL": Position("AAPL", Decimal("3"), Decimal("90"))}
    one = SimulatedBroker(Decimal("10000"), COSTS, positions=held)
    for request in requests:
        one.submit(request)
    long_run = one.match(frame)
    assert len(long_run) >= 4 and one.open_orders() == []

    first = SimulatedBroker(Decimal("10000"), COSTS, positions=held)
    for request in requests:
        first.submit(request)
    cut_ts = pd.Timestamp(at(cut))
    fills = first.match(frame[frame["ts_event"] < cut_ts])
    pending = first.open_orders()
    # as the trade cycle does: a new broker, given the bars from the oldest open decision on
    rebuilt = SimulatedBroker(first.cash(), COSTS, first.positions(), pending)
    assert [rebuilt.get_order(r.client_order_id).status for r in pending] == [  # type: ignore[union-attr]
        OrderStatus.NEW] * len(pending)
    since = min((pd.Timestamp(r.ts_decision) for r in pending), default=cut_ts)
    fills += rebuilt.match(frame[frame["ts_event"] >= since])
    assert fills == long_run
    assert (rebuilt.cash(), rebuilt.positions()) == (one.cash(), one.positions())


def test_cancel_and_cancel_all() -> None:
    b = SimulatedBroker(Decimal("100000"), FREE)
    limit = typed(OrderType.LIMIT, limit_price="90")
    stop = typed(OrderType.STOP, intent="breakout", stop_price="110")
    filled = order(intent="now")
    for request in (limit, stop, filled):
        b.submit(request)
    b.match(ohlc(T0, [(100.0, 101.0, 99.0, 100.0)]))
    assert b.cancel("unknown") is None
    result = b.cancel(limit.client_order_id)
    assert result is not None and result.status is OrderStatus.CANCELED
    again = b.cancel(filled.client_order_id)
    assert again is not None and again.status is OrderStatus.FILLED
    assert [r.request for r in b.cancel_all()] == [stop] and b.open_orders() == []
    assert b.match(ohlc(at(1), [(100.0, 120.0, 80.0, 100.0)])) == []
    assert b.cancel(stop.client_order_id).status is OrderStatus.CANCELED  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (typed(OrderType.LIMIT), "limit_price"),
        (typed(OrderType.LIMIT, limit_price="-1"), "limit_price"),
        (typed(OrderType.STOP), "stop_price"),
        (typed(OrderType.TRAILING_STOP), "trail_percent"),
        (typed(OrderType.TRAILING_STOP, trail_percent="0"), "trail_percent"),
        (typed(OrderType.TRAILING_STOP, trail_percent="100"), "trail_percent"),
        (typed(OrderType.MARKET, take_profit_price="103"), "both"),
        (bracket(tp="99"), "inconsistent"),  # take-profit below the reference 100
        (bracket(sl="100.5"), "inconsistent"),
        (bracket(kind=OrderType.LIMIT, limit_price="96"), "inconsistent"),
        (bracket(reference_price=0.0, tp="97", sl="98"), "inconsistent"),
        (bracket(kind=OrderType.STOP, stop_price="101"), "market or limit"),
        (bracket(side=Side.SELL), "long entry"),
    ],
)
def test_invalid_orders_are_rejected_with_a_reason(request_: OrderRequest, reason: str) -> None:
    b = broker(AAPL="10")
    result = b.submit(request_)
    assert result.status is OrderStatus.REJECTED and reason in result.reason
    assert b.open_orders() == []


def test_long_only_counts_a_brackets_legs_once() -> None:
    b = SimulatedBroker(Decimal("100000"), FREE)
    parent = bracket()
    b.submit(parent)
    b.match(ohlc(T0, [(100.0, 100.5, 99.5, 100.0)]))
    legs = b.open_orders()
    assert len(legs) == 2 and b.positions()["AAPL"].qty == 10
    extra = b.submit(order(side=Side.SELL, qty="1", ts=at(1), intent="exit"))
    assert extra.status is OrderStatus.REJECTED and "no shorting" in extra.reason
    # rebuilt from the book: both legs accepted (one OCO group), a third sell is not
    rebuilt = SimulatedBroker(b.cash(), FREE, b.positions(), legs)
    assert rebuilt.open_orders() == legs
    assert rebuilt.submit(order(side=Side.SELL, qty="1", ts=at(1), intent="exit")).reason
    # legs larger than the position are rejected
    small = {"AAPL": Position("AAPL", Decimal("4"), Decimal("100"))}
    short = SimulatedBroker(b.cash(), FREE, small, legs)
    assert short.open_orders() == []
    assert "no shorting" in short.get_order(legs[0].client_order_id).reason  # type: ignore[union-attr]
