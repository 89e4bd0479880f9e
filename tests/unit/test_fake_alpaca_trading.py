"""The Alpaca trading fake, proven through alpaca-py's real ``TradingClient``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderClass, OrderSide, OrderStatus, OrderType, QueryOrderStatus
from alpaca.trading.enums import TimeInForce as Tif
from alpaca.trading.models import Order
from alpaca.trading.requests import (
    ClosePositionRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    StopLimitOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
    TrailingStopOrderRequest,
)

from tests.kit.fakes.alpaca import TEST_KEY, TEST_SECRET
from tests.kit.fakes.alpaca_trading import AlpacaTradingFake
from tests.kit.fakes.server import malformed, server_error, throttled

BUY, SELL = OrderSide.BUY, OrderSide.SELL
PRICES = {"AAPL": 100.0, "MSFT": 400.0, "BAD": 5.0}


def client_for(fake: AlpacaTradingFake, retry: int = 0) -> TradingClient:
    client = TradingClient(TEST_KEY, TEST_SECRET, paper=True, url_override=fake.url)
    client._retry, client._retry_wait = retry, 0  # never sleep between retries
    return client


@pytest.fixture
def fake() -> Iterator[AlpacaTradingFake]:
    with AlpacaTradingFake(prices=dict(PRICES), auto_fill=True) as running:
        yield running


@pytest.fixture
def manual() -> Iterator[AlpacaTradingFake]:
    """Orders stay open until the test fills them."""
    with AlpacaTradingFake(prices=dict(PRICES)) as running:
        yield running


def market(symbol: str = "AAPL", qty: float = 10, side: OrderSide = BUY,
           **kw: object) -> MarketOrderRequest:
    fields = {"symbol": symbol, "qty": qty, "side": side, "time_in_force": Tif.DAY, **kw}
    return MarketOrderRequest(**fields)


def refused(call: Callable[..., object], *args: object) -> APIError:
    """The APIError that ``call(*args)`` raises."""
    with pytest.raises(APIError) as info:
        call(*args)
    return info.value


def test_market_order_auto_fills_moving_cash_positions_and_equity(fake):
    client = client_for(fake)
    order = client.submit_order(market(qty=10, client_order_id="buy-1"))
    assert isinstance(order, Order) and isinstance(order.id, UUID)
    assert (order.status, order.filled_qty, order.filled_avg_price) == (OrderStatus.FILLED, "10",
                                                                         "100")
    assert order.filled_at == order.submitted_at == datetime(2026, 6, 1, 14, tzinfo=UTC)
    position = client.get_open_position("AAPL")
    assert (position.qty, position.avg_entry_price, position.market_value) == ("10", "100", "1000")
    fake.prices["AAPL"] = 110.0
    account = client.get_account()
    assert (account.cash, account.equity, account.long_market_value) == ("99000", "100100", "1100")
    assert account.buying_power == "99000" and account.status == "ACTIVE"
    assert client.get_open_position("AAPL").unrealized_pl == "100"
    assert [p.symbol for p in client.get_all_positions()] == ["AAPL"]
    fake.daytrade_count = 3
    assert client.get_account().daytrade_count == 3


def test_order_types_parse_back_with_their_fields(manual):
    client = client_for(manual)
    limit = client.submit_order(LimitOrderRequest(symbol="AAPL", qty=5, side=BUY,
                                                  time_in_force=Tif.GTC, limit_price=95.5))
    assert (limit.type, limit.limit_price, limit.status) == (OrderType.LIMIT, "95.5",
                                                             OrderStatus.ACCEPTED)
    stop = client.submit_order(StopOrderRequest(symbol="MSFT", qty=1, side=BUY,
                                                time_in_force=Tif.DAY, stop_price=410))
    assert (stop.type, stop.stop_price, stop.filled_qty) == (OrderType.STOP, "410", "0")
    stop_limit = client.submit_order(StopLimitOrderRequest(
        symbol="MSFT", qty=1, side=BUY, time_in_force=Tif.DAY, stop_price=410, limit_price=411))
    assert (stop_limit.type, stop_limit.limit_price) == (OrderType.STOP_LIMIT, "411")
    manual.fill(limit.client_order_id, price=95.5)  # something to sell
    trail = client.submit_order(TrailingStopOrderRequest(
        symbol="AAPL", qty=5, side=SELL, time_in_force=Tif.GTC, trail_percent=2))
    assert (trail.type, trail.trail_percent, trail.hwm, trail.stop_price) == (
        OrderType.TRAILING_STOP, "2", "100", "98")
    bracket = client.submit_order(MarketOrderRequest(
        symbol="AAPL", qty=3, side=BUY, time_in_force=Tif.DAY, order_class=OrderClass.BRACKET,
        take_profit=TakeProfitRequest(limit_price=120),
        stop_loss=StopLossRequest(stop_price=90, limit_price=89)))
    assert bracket.order_class == OrderClass.BRACKET and len(bracket.legs) == 2
    profit, loss = bracket.legs
    assert (profit.type, profit.side, profit.limit_price, profit.qty) == (OrderType.LIMIT, SELL,
                                                                          "120", "3")
    assert (loss.type, loss.stop_price, loss.limit_price) == (OrderType.STOP_LIMIT, "90", "89")
    assert {profit.status, loss.status} == {OrderStatus.HELD}
    assert manual.created_count() == 5 and manual.created_count("MSFT") == 2


def test_fractional_qty_only_for_simple_day_market_orders(fake):
    client = client_for(fake)
    assert client.submit_order(market(qty=0.5)).filled_qty == "0.5"
    assert client.submit_order(MarketOrderRequest(symbol="AAPL", notional=250, side=BUY,
                                                  time_in_force=Tif.DAY)).filled_qty == "2.5"
    error = refused(client.submit_order, LimitOrderRequest(
        symbol="AAPL", qty=0.5, side=BUY, time_in_force=Tif.DAY, limit_price=99))
    assert (error.status_code, error.code) == (422, 40010001)
    assert "fractional" in error.message
    assert refused(client.submit_order, market(qty=0.5, time_in_force=Tif.GTC)).status_code == 422
    assert client.get_open_position("AAPL").qty == "3"


def test_duplicate_client_order_id_is_422_and_the_original_survives(manual):
    client = client_for(manual)
    first = client.submit_order(market(client_order_id="cid-1"))
    error = refused(client.submit_order, market(qty=99, client_order_id="cid-1"))
    assert (error.status_code, error.code, error.message) == (
        422, 40010001, "client_order_id must be unique")
    again = client.get_order_by_client_id("cid-1")
    assert (again.id, again.qty) == (first.id, "10")
    assert manual.created_count() == 1
    missing = refused(client.get_order_by_client_id, "nope")
    assert (missing.status_code, missing.code) == (404, 40410000)


def test_partial_then_full_fill_weights_the_average_price(manual):
    client = client_for(manual)
    client.submit_order(LimitOrderRequest(symbol="AAPL", qty=10, side=BUY, time_in_force=Tif.DAY,
                                          limit_price=101, client_order_id="lim"))
    manual.fill("lim", qty=4, price=99)
    partial = client.get_order_by_client_id("lim")
    assert (partial.status, partial.filled_qty, partial.filled_avg_price) == (
        OrderStatus.PARTIALLY_FILLED, "4", "99")
    assert partial.filled_at is None and client.get_open_position("AAPL").qty == "4"
    manual.fill("lim", price=101)
    done = client.get_order_by_client_id("lim")
    assert (done.status, done.filled_qty, done.filled_avg_price) == (OrderStatus.FILLED, "10",
                                                                      "100.2")
    assert client.get_open_position("AAPL").avg_entry_price == "100.2"
    assert client.get_account().cash == "98998"
    with pytest.raises(ValueError):
        manual.fill("lim")


def test_bracket_legs_activate_on_entry_fill_and_one_fill_cancels_the_other(manual):
    client = client_for(manual)
    parent = client.submit_order(LimitOrderRequest(
        symbol="AAPL", qty=10, side=BUY, time_in_force=Tif.GTC, limit_price=100,
        client_order_id="entry", order_class=OrderClass.BRACKET,
        take_profit=TakeProfitRequest(limit_price=110), stop_loss=StopLossRequest(stop_price=95)))
    take = parent.legs[0].client_order_id
    with pytest.raises(ValueError):
        manual.fill(take)  # held until the entry fills
    manual.fill("entry")
    legs = client.get_order_by_id(parent.id).legs
    assert [leg.status for leg in legs] == [OrderStatus.NEW, OrderStatus.NEW]
    assert client.get_open_position("AAPL").qty_available == "0"  # reserved by the exits
    manual.fill(take, price=110)
    legs = client.get_order_by_id(parent.id).legs
    assert [leg.status for leg in legs] == [OrderStatus.FILLED, OrderStatus.CANCELED]
    assert client.get_all_positions() == [] and client.get_account().cash == "100100"
    bad = refused(client.submit_order, MarketOrderRequest(
        symbol="AAPL", qty=1, side=BUY, time_in_force=Tif.DAY, order_class=OrderClass.BRACKET,
        take_profit=TakeProfitRequest(limit_price=99), stop_loss=StopLossRequest(stop_price=95)))
    assert bad.status_code == 422 and "take_profit.limit_price" in bad.message


def test_buying_power_counts_open_buys_and_refuses_with_403():
    with AlpacaTradingFake(cash=1_000, prices={"AAPL": 100.0}) as fake:
        client = client_for(fake)
        error = refused(client.submit_order, market(qty=11))
        assert (error.status_code, error.code, error.message) == (403, 40310000,
                                                                  "insufficient buying power")
        client.submit_order(LimitOrderRequest(symbol="AAPL", qty=8, side=BUY,
                                              time_in_force=Tif.DAY, limit_price=100))
        assert client.get_account().buying_power == "200"
        assert refused(client.submit_order, market(qty=3)).status_code == 403
        assert fake.created_count() == 1


def test_selling_more_than_held_is_403_without_shorting(fake):
    client = client_for(fake)
    client.submit_order(market(qty=2))
    error = refused(client.submit_order, market(qty=5, side=SELL))
    assert (error.status_code, error.code, error.message) == (
        403, 40310000, "insufficient qty available for order (requested: 5, available: 2)")
    assert refused(client.submit_order, market("MSFT", 1, SELL)).status_code == 403


def test_pattern_day_trader_protection_blocks_same_day_round_trips():
    with AlpacaTradingFake(prices=dict(PRICES), auto_fill=True,
                           pattern_day_trader_block=True) as fake:
        client = client_for(fake)
        client.submit_order(market(qty=1))
        error = refused(client.submit_order, market(qty=1, side=SELL))
        assert (error.status_code, error.code, error.message) == (
            403, 40310100, "trade denied due to pattern day trading protection")
        assert client.get_account().pattern_day_trader is True
        fake.now += timedelta(days=1)
        assert client.submit_order(market(qty=1, side=SELL)).status == OrderStatus.FILLED


def test_rejected_symbol_is_accepted_then_rejected(fake):
    fake.reject_symbols.add("BAD")
    client = client_for(fake)
    order = client.submit_order(market("BAD", 1))
    assert order.status == OrderStatus.REJECTED and order.failed_at is not None
    assert client.get_orders() == []
    closed = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.CLOSED))
    assert [o.id for o in closed] == [order.id]
    assert client.get_account().cash == "100000"
    fake.auto_fill = False
    other = client.submit_order(market(qty=1))
    assert fake.reject(other.client_order_id, "halted")["status"] == "rejected"
    assert fake.rejections[other.client_order_id] == "halted"


def test_get_orders_filters_sorts_and_nests(manual):
    client = client_for(manual)
    t0 = manual.now
    for i, symbol in enumerate(["AAPL", "MSFT", "AAPL"]):
        manual.now = t0 + timedelta(minutes=i)
        client.submit_order(market(symbol, 1, client_order_id=f"o{i}"))
    manual.fill("o0")
    assert [o.client_order_id for o in client.get_orders()] == ["o2", "o1"]
    every = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
    assert [o.client_order_id for o in every] == ["o2", "o1", "o0"]
    asc = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, direction="asc",
                                             limit=2))
    assert [o.client_order_id for o in asc] == ["o0", "o1"]
    aapl = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, symbols=["AAPL"],
                                              after=t0))
    assert [o.client_order_id for o in aapl] == ["o2"]
    client.submit_order(MarketOrderRequest(
        symbol="AAPL", qty=1, side=BUY, time_in_force=Tif.DAY, order_class=OrderClass.BRACKET,
        take_profit=TakeProfitRequest(limit_price=120), stop_loss=StopLossRequest(stop_price=80)))
    flat = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))
    nested = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN, nested=True))
    assert (len(flat), len(nested), len(nested[0].legs)) == (5, 3, 2)
    assert refused(client.get_orders, GetOrdersRequest(limit=501)).status_code == 422


def test_cancel_by_id_and_cancel_all(manual):
    client = client_for(manual)
    first = client.submit_order(market(qty=1))
    second = client.submit_order(market("MSFT", 1))
    assert client.cancel_order_by_id(first.id) is None
    assert client.get_order_by_id(first.id).status == OrderStatus.CANCELED
    again = refused(client.cancel_order_by_id, first.id)
    assert (again.status_code, again.code, again.message) == (
        422, 42210000, 'order is already in "canceled" state')
    unknown = refused(client.get_order_by_id, "00000000-0000-4000-8000-000000000000")
    assert (unknown.status_code, unknown.code) == (404, 40410000)
    responses = client.cancel_orders()
    assert [(r.id, r.status) for r in responses] == [(second.id, 200)]
    assert client.get_orders() == [] and manual.cancel_all_open() == []


def test_close_all_positions_and_one_position(fake):
    client = client_for(fake)
    client.submit_order(market("AAPL", 10))
    client.submit_order(market("MSFT", 2))
    half = client.close_position("AAPL", ClosePositionRequest(percentage="50"))
    assert (half.side, half.qty, half.status) == (SELL, "5", OrderStatus.FILLED)
    fake.prices["MSFT"] = 410.0
    closed = client.close_all_positions(cancel_orders=True)
    assert [(r.symbol, r.status, r.body.status) for r in closed] == [
        ("AAPL", 200, OrderStatus.FILLED), ("MSFT", 200, OrderStatus.FILLED)]
    assert client.get_all_positions() == [] and client.get_account().cash == "100020"
    assert fake.cancel_all_open() == []
    gone = refused(client.get_open_position, "AAPL")
    assert (gone.status_code, gone.code, gone.message) == (404, 40410000,
                                                           "position does not exist")


def test_clock_follows_the_nyse_calendar(manual):
    client = client_for(manual)
    clock = client.get_clock()
    assert clock.is_open and clock.next_close == datetime(2026, 6, 1, 20, tzinfo=UTC)
    manual.now = datetime(2026, 6, 6, 15, tzinfo=UTC)  # Saturday
    weekend = client.get_clock()
    assert not weekend.is_open
    assert weekend.next_open == datetime(2026, 6, 8, 13, 30, tzinfo=UTC)
    assert weekend.timestamp == manual.now
    manual.clock_open = True
    assert client.get_clock().is_open


def test_transport_faults_surface_as_errors(manual):
    client = client_for(manual)
    manual.server.fail(r"/v2/account", malformed())
    with pytest.raises(ValueError):
        client.get_account()
    manual.server.fail(r"/v2/orders", server_error(500))
    assert refused(client.submit_order, market()).status_code == 500
    manual.server.fail(r"/v2/orders", throttled())
    assert refused(client.submit_order, market()).status_code == 429
    assert manual.created_count() == 0
    retrying = client_for(manual, retry=2)
    manual.server.fail(r"/v2/orders", throttled(), times=2)
    assert retrying.submit_order(market()).status == OrderStatus.ACCEPTED
    assert len(manual.server.hits(r"/v2/orders")) == 5
    with AlpacaTradingFake(secret_key="other") as strict:
        assert refused(client_for(strict).get_account).status_code == 403


def test_after_effect_fault_creates_the_order_but_the_client_sees_an_error(manual):
    client = client_for(manual)
    manual.after_effect_fault(r"/v2/orders", server_error(500), method="POST")
    assert refused(client.submit_order, market(client_order_id="lost")).status_code == 500
    assert manual.created_count() == 1 and manual.order_by_client_id("lost") is not None
    assert client.get_order_by_client_id("lost").qty == "10"
    # alpaca-py retries a 504 itself: a client_order_id turns the duplicate into a 422 ...
    retrying = client_for(manual, retry=1)
    manual.after_effect_fault(r"/v2/orders", server_error(504))
    assert refused(retrying.submit_order, market(client_order_id="kept")).status_code == 422
    assert manual.created_count() == 2
    # ... while without one the retry places the order twice.
    manual.after_effect_fault(r"/v2/orders", server_error(504))
    retrying.submit_order(market("MSFT", 1))
    assert manual.created_count("MSFT") == 2


def test_oco_exit_and_close_refused_while_shares_are_held_for_orders(manual):
    client = client_for(manual)
    client.submit_order(market(qty=4, client_order_id="in"))
    manual.fill("in")
    oco = client.submit_order(LimitOrderRequest(
        symbol="AAPL", qty=4, side=SELL, time_in_force=Tif.GTC, order_class=OrderClass.OCO,
        take_profit=TakeProfitRequest(limit_price=115), stop_loss=StopLossRequest(stop_price=92)))
    assert (oco.limit_price, oco.status, oco.legs[0].stop_price) == ("115", OrderStatus.ACCEPTED,
                                                                     "92")
    assert oco.legs[0].status == OrderStatus.NEW
    [result] = client.close_all_positions()
    assert (result.symbol, result.status, result.body.available) == ("AAPL", 403, 0.0)
    client.cancel_order_by_id(oco.legs[0].id)
    assert client.get_order_by_id(oco.id).status == OrderStatus.CANCELED
    assert client.close_position("AAPL").status == OrderStatus.ACCEPTED


def test_concurrent_submissions_are_all_recorded(manual):
    client = client_for(manual)

    def submit(i: int) -> str:
        return str(client.submit_order(market(qty=1, client_order_id=f"c{i}")).id)

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(submit, range(40)))
    assert len(set(ids)) == 40 and manual.created_count() == 40
    assert len(client.get_orders(GetOrdersRequest(limit=500))) == 40
