"""Protective exits: stop-loss / trade stop / trailing-stop / take-profit levels, peak tracking,
exit intents."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.kit.trading import STRATEGY, T0, fill, long_position, risk_context
from tradebot.kernel.domain import Position, Side, client_order_id
from tradebot.kernel.settings import RiskSettings
from tradebot.serving.exits import (
    exit_decisions,
    exit_levels,
    exit_reasons,
    raise_peaks,
    shutdown_reasons,
    trade_stop_price,
)
from tradebot.serving.sizing import orders_for_targets

NO_TRADE_STOP = {"trade_risk_pct": 0.0}


def long(avg: str = "100", peak: str = "120", qty: str = "10", symbol: str = "AAPL") -> Position:
    return long_position(symbol, qty, avg, peak)


def reason(price: float, position: Position | None = None, equity: str | None = None,
           **risk: float) -> str | None:
    position = position or long()
    got = exit_reasons({position.symbol: position}, {position.symbol: price}, RiskSettings(**risk),
                       None if equity is None else Decimal(equity))
    return got.get(position.symbol)


def test_trade_stop_price_is_where_the_loss_reaches_the_equity_budget() -> None:
    risk = RiskSettings()  # 1 % of equity per trade by default
    assert risk.trade_risk_pct == 0.01
    # 10 shares bought at 100, equity 10 000: 100 of loss at 90
    assert trade_stop_price(long(), risk, Decimal("10000")) == Decimal("90")
    assert trade_stop_price(long(qty="40"), RiskSettings(trade_risk_pct=0.02),
                            Decimal("50000")) == Decimal("75")
    third = trade_stop_price(long(qty="3"), risk, Decimal("10000"))
    assert third is not None and abs(third - Decimal("66.6666666667")) < Decimal("1e-9")


@pytest.mark.parametrize(("position", "risk", "equity"), [
    (long(), RiskSettings(trade_risk_pct=0.0), "10000"),  # off
    (long(qty="0"), RiskSettings(), "10000"),  # flat
    (long(qty="-10"), RiskSettings(), "10000"),  # short
    (long(), RiskSettings(), "0"),  # no equity
    (long(qty="0.5"), RiskSettings(), "10000"),  # 50 at risk < 100 budget: never triggers
])
def test_trade_stop_price_is_none_when_it_cannot_trigger(position: Position, risk: RiskSettings,
                                                         equity: str) -> None:
    assert trade_stop_price(position, risk, Decimal(equity)) is None


def test_trade_stop_triggers_at_and_below_its_level_only_with_equity() -> None:
    assert reason(90.0, equity="10000") == "trade_stop"
    assert reason(50.0, equity="10000") == "trade_stop"
    assert reason(90.01, equity="10000") is None
    assert reason(90.0) is None  # no equity given: the rule is skipped
    assert reason(90.0, equity="10000", **NO_TRADE_STOP) is None


def test_trade_stop_boundary_is_exact_in_decimal() -> None:
    # 4 shares at 100, equity 12 345: budget 123.45 is lost exactly at 100 - 30.8625
    position = long(qty="4")
    assert 4 * (100 - 69.1375) < 0.01 * 12345  # in floats the exact boundary would not trigger
    assert reason(69.1375, position, equity="12345") == "trade_stop"
    assert reason(69.1376, position, equity="12345") is None
    # 7 shares: the level 82.3642857... is not a 4-decimal price
    assert reason(82.3643, long(qty="7"), equity="12345") is None  # loss 123.4499
    assert reason(82.3642, long(qty="7"), equity="12345") == "trade_stop"  # loss 123.4506


def test_exit_levels_include_the_trade_stop_in_priority_order() -> None:
    risk = RiskSettings(stop_loss_pct=0.05, trailing_stop_pct=0.1, take_profit_pct=0.2)
    levels = exit_levels(long(), risk, Decimal("10000"))
    assert list(levels) == ["stop_loss", "trade_stop", "trailing_stop", "take_profit"]
    assert levels["trade_stop"] == Decimal("90")
    assert "trade_stop" not in exit_levels(long(), risk)


def test_priority_stop_loss_then_trade_stop_then_trailing() -> None:
    position = long(avg="100", peak="120")  # trade stop at 90 for equity 10 000
    assert reason(89.0, position, "10000", stop_loss_pct=0.05, trailing_stop_pct=0.1) == (
        "stop_loss")
    assert reason(89.0, position, "10000", trailing_stop_pct=0.1) == "trade_stop"
    assert reason(100.0, position, "10000", trailing_stop_pct=0.1) == "trailing_stop"


@pytest.mark.parametrize(("rule", "risk", "at", "above"), [
    ("stop_loss", {"stop_loss_pct": 0.05}, 95.0, 95.01),  # 100 * 0.95
    ("trailing_stop", {"trailing_stop_pct": 0.1}, 108.0, 108.01),  # peak 120 * 0.9
])
def test_stops_trigger_at_and_below_their_level(rule: str, risk: dict, at: float,
                                                above: float) -> None:
    assert reason(at, **risk) == rule
    assert reason(at - 5, **risk) == rule
    assert reason(above, **risk) is None


def test_take_profit_triggers_at_and_above_its_level() -> None:
    assert reason(110.0, take_profit_pct=0.1) == "take_profit"
    assert reason(130.0, take_profit_pct=0.1) == "take_profit"
    assert reason(109.99, take_profit_pct=0.1) is None


def test_the_boundary_is_exact_in_decimal() -> None:
    # in floats 120 * (1 - 0.03) is 116.39999999999999 and 116.4 would not trigger
    assert 116.4 > 120 * (1 - 0.03)
    assert reason(116.4, long(avg="120"), stop_loss_pct=0.03) == "stop_loss"
    assert reason(116.4001, long(avg="120"), stop_loss_pct=0.03) is None
    assert 110.67 > 119 * (1 - 0.07)
    assert reason(110.67, long(peak="119"), trailing_stop_pct=0.07) == "trailing_stop"


def test_every_rule_is_off_at_zero() -> None:
    for price in (1.0, 100.0, 10_000.0):
        assert reason(price) is None
        assert reason(price, equity="10000", **NO_TRADE_STOP) is None


def test_priority_stop_loss_then_trailing_then_take_profit() -> None:
    both_stops = long(avg="100", peak="100")
    assert reason(94.0, both_stops, stop_loss_pct=0.05, trailing_stop_pct=0.02) == "stop_loss"
    trailing_and_profit = long(avg="100", peak="130")
    assert reason(115.0, trailing_and_profit, trailing_stop_pct=0.1,
                  take_profit_pct=0.1) == "trailing_stop"
    assert reason(118.0, trailing_and_profit, trailing_stop_pct=0.1,
                  take_profit_pct=0.1) == "take_profit"


def test_only_long_positions_with_a_usable_price_exit() -> None:
    positions = {"FLAT": long(qty="0", symbol="FLAT"), "SHORT": long(qty="-5", symbol="SHORT"),
                 "NOPX": long(symbol="NOPX"), "NAN": long(symbol="NAN"),
                 "AAPL": long()}
    prices = {"FLAT": 1.0, "SHORT": 1.0, "NAN": float("nan"), "AAPL": 1.0}
    got = exit_reasons(positions, prices, RiskSettings(stop_loss_pct=0.05))
    assert got == {"AAPL": "stop_loss"}


def test_shutdown_covers_every_open_position_with_a_price() -> None:
    positions = {"AAPL": long(), "MSFT": long(symbol="MSFT"), "FLAT": long(qty="0"),
                 "NOPX": long(symbol="NOPX")}
    got = shutdown_reasons(positions, {"AAPL": 1.0, "MSFT": 2.0, "FLAT": 3.0})
    assert got == {"AAPL": "shutdown", "MSFT": "shutdown"}


def test_raise_peaks_raises_long_peaks_to_the_price_on_copies() -> None:
    positions = {"AAPL": long(peak="120"), "MSFT": long(peak="50", symbol="MSFT"),
                 "FLAT": long(qty="0", peak="0", symbol="FLAT"), "NVDA": long(symbol="NVDA")}
    raised = raise_peaks(positions, {"AAPL": 121.123456, "MSFT": 49.0, "FLAT": 10.0,
                                     "NVDA": float("nan")})
    assert raised["AAPL"].peak_price == Decimal("121.1235")  # money-quantized
    assert raised["MSFT"].peak_price == Decimal("50")
    assert raised["FLAT"].peak_price == 0
    assert raised["NVDA"].peak_price == Decimal("120")
    assert positions["AAPL"].peak_price == Decimal("120")  # the input is not touched
    assert raised["AAPL"].qty == positions["AAPL"].qty


def test_position_tracks_its_peak_from_the_fills() -> None:
    pos = Position("AAPL")
    pos.apply(fill(side=Side.BUY, qty="10", price="100.5"))
    assert pos.peak_price == Decimal("100.5000")
    pos.apply(fill(side=Side.BUY, qty="5", price="103.25"))
    assert pos.peak_price == Decimal("103.2500")
    pos.apply(fill(side=Side.BUY, qty="5", price="99"))
    assert pos.peak_price == Decimal("103.2500")
    pos.apply(fill(side=Side.SELL, qty="12", price="110"))
    assert pos.qty == 8 and pos.peak_price == Decimal("103.2500")  # partial close keeps it
    pos.apply(fill(side=Side.SELL, qty="8", price="90"))
    assert pos.qty == 0 and pos.peak_price == 0 and pos.avg_price == 0
    pos.apply(fill(side=Side.BUY, qty="1", price="80"))
    assert pos.peak_price == Decimal("80")  # a new position starts from its own fill


def test_a_reversal_starts_the_peak_at_the_reversing_fill() -> None:
    pos = Position("AAPL")
    pos.apply(fill(side=Side.BUY, qty="10", price="100"))
    pos.apply(fill(side=Side.BUY, qty="10", price="120"))
    pos.apply(fill(side=Side.SELL, qty="25", price="95.12345"))
    assert pos.qty == -5
    assert pos.peak_price == pos.avg_price == Decimal("95.1234")  # quantized like avg_price


def test_exit_intents_name_the_order_and_its_id() -> None:
    args = ({"AAPL": 0.0, "MSFT": 0.1}, {"AAPL": Decimal("10")}, {"AAPL": 100.0, "MSFT": 50.0},
            Decimal("10000"), T0, STRATEGY)
    plain = orders_for_targets(*args)
    tagged = orders_for_targets(*args, intents={"AAPL": "trailing_stop"})
    assert [r.intent for r in plain] == ["exit", "entry"]
    assert [r.intent for r in tagged] == ["trailing_stop", "entry"]
    assert tagged[0].client_order_id == client_order_id(STRATEGY, "AAPL", T0, "trailing_stop")
    assert tagged[0].client_order_id != plain[0].client_order_id
    assert tagged[1] == plain[1]
    assert (tagged[0].side, tagged[0].qty) == (Side.SELL, Decimal("10"))


def test_exit_decisions_name_rule_price_and_level() -> None:
    position = long(avg="100", peak="120")
    requests = orders_for_targets({"AAPL": 0.0}, {"AAPL": position.qty}, {"AAPL": 107.5},
                                  Decimal("10000"), T0, STRATEGY,
                                  intents={"AAPL": "trailing_stop"})
    ctx = risk_context(last_prices={"AAPL": 107.5})
    (decision,) = exit_decisions(requests, {"AAPL": "trailing_stop"}, {"AAPL": position}, ctx,
                                 RiskSettings(trailing_stop_pct=0.1))
    assert decision.approved and decision.rule == "trailing_stop"
    assert decision.request is requests[0]
    assert "107.5" in decision.reason and "108" in decision.reason and "120" in decision.reason
    (shut,) = exit_decisions(requests, {"AAPL": "shutdown"}, {"AAPL": position}, ctx,
                             RiskSettings())
    assert shut.rule == "shutdown" and "107.5" in shut.reason
    loss_ctx = risk_context(equity="10000", last_prices={"AAPL": 89.5})
    (stop,) = exit_decisions(requests, {"AAPL": "trade_stop"}, {"AAPL": position}, loss_ctx,
                             RiskSettings())
    assert stop.approved and stop.rule == "trade_stop"
    assert "89.5" in stop.reason and "trade stop 90" in stop.reason and "1.00%" in stop.reason

