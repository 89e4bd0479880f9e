"""Risk engine: each rule denies or reduces with its rule name; exits stay allowed (except
under the pattern day trader limit); day trades counted from fills."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from tests.kit.trading import T0, at, fill, order, risk_context, risk_settings
from tradebot.kernel.domain import Fill, KillSwitchState, RiskDecision, Side
from tradebot.serving.pdt import day_trades, opened_today
from tradebot.serving.risk import RiskContext, RiskEngine

ENGINE = RiskEngine(risk_settings())  # 10% position, 2% day loss, 5% drawdown, 25k notional
BUY = order("AAPL", Side.BUY, "10", reference_price=100.0)
SELL = order("AAPL", Side.SELL, "10", intent="exit", reference_price=100.0)
HOLDING = {"AAPL": "50"}


def approved_as_is(decision: RiskDecision) -> bool:
    return decision.approved and decision.adjusted_qty is None and decision.rule == ""


def test_plain_entry_is_approved_unchanged() -> None:
    decision = ENGINE.check(BUY, risk_context())
    assert decision.approved and decision.adjusted_qty is None and decision.rule == ""


def test_halted_denies_entries_and_exits() -> None:
    ctx = risk_context(kill_switch=KillSwitchState.HALTED, positions=HOLDING)
    for request in (BUY, SELL):
        decision = ENGINE.check(request, ctx)
        assert not decision.approved
        assert decision.rule == "kill_switch" and "HALTED" in decision.reason


def test_kill_switch_given_as_plain_string_is_still_enforced() -> None:
    ctx = risk_context(kill_switch="halted", positions=HOLDING)  # type: ignore[arg-type]
    assert ENGINE.check(SELL, ctx).rule == "kill_switch"


def test_reducing_denies_entries_but_allows_exits() -> None:
    ctx = risk_context(kill_switch=KillSwitchState.REDUCING, positions=HOLDING)
    assert ENGINE.check(BUY, ctx).rule == "kill_switch"
    assert not ENGINE.check(BUY, ctx).approved
    assert approved_as_is(ENGINE.check(SELL, ctx))


def test_market_closed_denies_exits_too() -> None:
    ctx = risk_context(session_open=False, positions=HOLDING)
    for request in (BUY, SELL):
        decision = ENGINE.check(request, ctx)
        assert (decision.approved, decision.rule) == (False, "market_closed")


@pytest.mark.parametrize(
    ("kwargs", "rule"),
    [
        ({"peak_equity": "100000", "equity": "95000"}, "max_drawdown"),
        ({"day_start_equity": "100000", "equity": "98000"}, "daily_loss"),
    ],
)
def test_loss_limits_block_entries_but_allow_exits(kwargs: dict[str, str], rule: str) -> None:
    ctx = risk_context(positions=HOLDING, **kwargs)  # type: ignore[arg-type]
    decision = ENGINE.check(BUY, ctx)
    assert (decision.approved, decision.rule) == (False, rule)
    assert decision.reason
    assert approved_as_is(ENGINE.check(SELL, ctx))


def test_loss_just_under_the_limits_still_allows_entries() -> None:
    ctx = risk_context(peak_equity="100000", day_start_equity="100000", equity="98001")
    assert ENGINE.check(BUY, ctx).approved
    assert not ENGINE.drawdown_breached(ctx)
    assert ENGINE.drawdown_breached(risk_context(peak_equity="100000", equity="94999"))


def test_price_band_denies_entry_far_from_last_price() -> None:
    far = order("AAPL", Side.BUY, "10", reference_price=106.0)
    decision = ENGINE.check(far, risk_context(last_prices={"AAPL": 100.0}))
    assert (decision.approved, decision.rule) == (False, "price_band")
    near = order("AAPL", Side.BUY, "10", reference_price=104.9)
    assert ENGINE.check(near, risk_context(last_prices={"AAPL": 100.0})).approved


def test_entry_without_last_price_is_denied() -> None:
    decision = ENGINE.check(BUY, risk_context(last_prices={}))
    assert (decision.approved, decision.rule) == (False, "price_band")


def test_max_notional_reduces_entry_qty() -> None:
    engine = RiskEngine(risk_settings(max_notional_per_order=1_000, max_position_pct=1.0))
    decision = engine.check(
        order(qty="30", reference_price=300.0), risk_context(last_prices={"AAPL": 300.0})
    )
    assert decision.approved and decision.rule == "max_notional"
    assert decision.adjusted_qty == Decimal("3.333333")  # floor, never above the cap
    assert decision.adjusted_qty * 300 <= 1_000


def test_max_position_reduces_to_the_room_left() -> None:
    # 10% of 100k = 10k = 100 shares at 100; 95 held -> only 5 more fit.
    decision = ENGINE.check(BUY, risk_context(positions={"AAPL": "95"}))
    assert decision.approved and decision.rule == "max_position"
    assert decision.adjusted_qty == Decimal("5")


def test_max_position_denies_when_already_full() -> None:
    decision = ENGINE.check(BUY, risk_context(positions={"AAPL": "100"}))
    assert (decision.approved, decision.rule) == (False, "max_position")


def test_order_rate_limits_entries_not_exits() -> None:
    engine = RiskEngine(risk_settings(max_orders_per_cycle=2))
    ctx = risk_context(orders_this_cycle=2, positions=HOLDING)
    assert engine.check(BUY, ctx).rule == "order_rate"
    assert not engine.check(BUY, ctx).approved
    assert approved_as_is(engine.check(SELL, ctx))


def test_check_all_counts_approved_orders_toward_the_rate_limit() -> None:
    engine = RiskEngine(risk_settings(max_orders_per_cycle=2))
    symbols = ["AAPL", "MSFT", "NVDA"]
    requests = [order(s, Side.BUY, "1") for s in symbols]
    ctx = risk_context(last_prices=dict.fromkeys(symbols, 100.0))
    decisions = engine.check_all(requests, ctx)
    assert [d.approved for d in decisions] == [True, True, False]
    assert decisions[2].rule == "order_rate"


def test_check_all_projects_positions_across_orders() -> None:
    first = order("AAPL", Side.BUY, "60")
    second = order("AAPL", Side.BUY, "60", intent="entry2")
    decisions = ENGINE.check_all([first, second], risk_context())
    assert decisions[0].approved and decisions[0].adjusted_qty is None
    assert decisions[1].rule == "max_position" and decisions[1].adjusted_qty == Decimal("40")


def test_sell_beyond_position_is_trimmed_and_naked_short_denied() -> None:
    big_sell = order("AAPL", Side.SELL, "80", intent="exit")
    trimmed = ENGINE.check(big_sell, risk_context(positions=HOLDING))
    assert trimmed.approved and trimmed.rule == "no_short"
    assert trimmed.adjusted_qty == Decimal("50")
    naked = ENGINE.check(big_sell, risk_context())
    assert (naked.approved, naked.rule) == (False, "no_short")


# --- pattern day trader limit --------------------------------------------------------------

SMALL = "20000"  # equity under the default 25 000 PDT threshold


def at_limit(**change: Any) -> RiskContext:
    """Small account, 3 day trades in the window, 50 AAPL held, AAPL bought this session."""
    values = {"equity": SMALL, "day_trades": 3, "opened_today": {"AAPL"}, "positions": HOLDING}
    return risk_context(**{**values, **change})


def test_new_risk_settings_defaults_and_ranges() -> None:
    risk = risk_settings()
    assert (risk.trade_risk_pct, risk.max_orders_per_minute) == (0.01, 30)
    assert (risk.pdt_equity_threshold, risk.pdt_max_day_trades, risk.pdt_window_sessions) == (
        25_000, 3, 5)
    for bad in ({"max_orders_per_minute": 0}, {"trade_risk_pct": -0.01},
                {"trade_risk_pct": 1.0}, {"pdt_window_sessions": 0}, {"pdt_max_day_trades": -1},
                {"pdt_equity_threshold": -1}):
        with pytest.raises(ValidationError):
            risk_settings(**bad)


def test_pdt_denies_closing_a_position_opened_today_at_the_limit() -> None:
    decision = ENGINE.check(SELL, at_limit())
    assert (decision.approved, decision.rule) == (False, "pdt")
    assert "3 day trades" in decision.reason and "max 3" in decision.reason
    assert "25000" in decision.reason and "AAPL" in decision.reason


@pytest.mark.parametrize("change", [
    {"equity": "25000"},  # at the threshold: the rule does not apply
    {"day_trades": 2},  # one more day trade is allowed
    {"opened_today": {"MSFT"}},  # held overnight: selling it is no day trade
])
def test_pdt_allows_the_close_otherwise(change: dict) -> None:
    assert approved_as_is(ENGINE.check(SELL, at_limit(**change)))


def test_pdt_does_not_block_entries() -> None:
    assert ENGINE.check(order(qty="1"), at_limit(positions={})).approved
    assert ENGINE.check(order(qty="1"), at_limit(positions={"AAPL": "5"})).approved  # adding


def test_pdt_blocks_protective_exits_and_trimmed_sells_too() -> None:
    assert ENGINE.check(SELL, at_limit(kill_switch=KillSwitchState.REDUCING)).rule == "pdt"
    big_sell = order("AAPL", Side.SELL, "80", intent="stop_loss")
    assert ENGINE.check(big_sell, at_limit()).rule == "pdt"


def test_pdt_limit_follows_its_settings() -> None:
    engine = RiskEngine(risk_settings(pdt_equity_threshold=10_000, pdt_max_day_trades=1))
    ctx = risk_context(equity="9000", day_trades=1, opened_today={"AAPL"}, positions=HOLDING)
    assert engine.check(SELL, ctx).rule == "pdt"
    assert engine.check(SELL, replace(ctx, equity=Decimal("10000"))).approved


def test_check_all_counts_an_approved_same_day_close_as_a_day_trade() -> None:
    symbols = ["AAPL", "MSFT", "NVDA"]
    sells = [order(s, Side.SELL, "5", intent="exit") for s in symbols]
    ctx = risk_context(equity=SMALL, day_trades=2, opened_today={"AAPL", "NVDA"},
                       positions=dict.fromkeys(symbols, "5"),
                       last_prices=dict.fromkeys(symbols, 100.0))
    decisions = ENGINE.check_all(sells, ctx)
    # AAPL: the 3rd day trade; MSFT was held overnight; NVDA would be the 4th
    assert [(d.approved, d.rule) for d in decisions] == [(True, ""), (True, ""), (False, "pdt")]


# --- orders per minute ---------------------------------------------------------------------


def test_orders_per_minute_limit_entries_not_exits() -> None:
    engine = RiskEngine(risk_settings(max_orders_per_minute=5))
    ctx = risk_context(orders_last_minute=5, positions=HOLDING)
    decision = engine.check(BUY, ctx)
    assert (decision.approved, decision.rule) == (False, "order_rate")
    assert "5 orders in the last minute" in decision.reason
    assert "max 5 per minute" in decision.reason
    assert approved_as_is(engine.check(SELL, ctx))
    assert engine.check(BUY, replace(ctx, orders_last_minute=4)).approved


def test_check_all_counts_approved_orders_toward_the_minute_limit() -> None:
    engine = RiskEngine(risk_settings(max_orders_per_minute=3))
    symbols = ["AAPL", "MSFT", "NVDA"]
    requests = [SELL] + [order(s, Side.BUY, "1") for s in symbols]
    ctx = risk_context(orders_last_minute=1, positions=HOLDING,
                       last_prices=dict.fromkeys(symbols, 100.0))
    decisions = engine.check_all(requests, ctx)
    # the exit passes and counts: 1 + 1 + 1 = 3 orders before the last entry
    assert [d.approved for d in decisions] == [True, True, False, False]
    assert {d.rule for d in decisions[2:]} == {"order_rate"}


def test_check_all_treats_a_buy_earlier_in_the_batch_as_opened_today() -> None:
    requests = [order("AAPL", Side.BUY, "1"), order("AAPL", Side.SELL, "1", intent="exit")]
    ctx = risk_context(equity=SMALL, day_trades=3, positions={"AAPL": "5"})
    decisions = ENGINE.check_all(requests, ctx)
    assert [(d.approved, d.rule) for d in decisions] == [(True, ""), (False, "pdt")]


# --- day trades counted from fills ---------------------------------------------------------


def session_of(ts: datetime) -> date:
    return ts.date()


def fills_of(*trades: tuple[str, Side, int], symbol: str = "AAPL", day: int = 0) -> list[Fill]:
    """One fill per (client order id, side, minute after T0) on day ``day``."""
    base = T0 + timedelta(days=day)
    return [fill(symbol, side, "1", ts=at(minute, base), cid=f"{symbol}-{day}-{cid}")
            for cid, side, minute in trades]


B, S = Side.BUY, Side.SELL
DAY0 = [session_of(T0)]


@pytest.mark.parametrize(("sides", "expected"), [
    ([B, S], 1), ([B, B, S], 1), ([B, S, B, S], 2), ([S, B], 0), ([B, S, S], 1),
    ([S, B, S], 1), ([B, B], 0), ([], 0),
])
def test_day_trades_count_a_sell_after_a_buy_then_restart(sides: list[Side],
                                                          expected: int) -> None:
    trades = [(str(i), side, i) for i, side in enumerate(sides)]
    assert day_trades(fills_of(*trades), session_of, DAY0) == expected


def test_day_trades_follow_fill_time_not_input_order() -> None:
    fills = fills_of(("s", S, 5), ("b", B, 1))
    assert day_trades(fills, session_of, DAY0) == 1
    assert day_trades(reversed(fills_of(("b", B, 5), ("s", S, 1))), session_of, DAY0) == 0


def test_partial_fills_of_one_order_count_once() -> None:
    # buy in two partial fills, sell in two partial fills, the buy's second after the sell's
    fills = fills_of(("b", B, 0), ("s", S, 1), ("b", B, 2), ("s", S, 3))
    assert day_trades(fills, session_of, DAY0) == 1


def test_day_trades_are_per_symbol_and_session_within_the_window() -> None:
    fills = (fills_of(("1", B, 0), ("2", S, 1))
             + fills_of(("3", B, 0), ("4", S, 1), symbol="MSFT")
             + fills_of(("5", B, 0), ("6", S, 1), day=1)
             + fills_of(("7", B, 50), ("8", S, 10), day=2)  # sell before buy
             + fills_of(("9", B, 0)) + fills_of(("10", S, 0), day=3))  # overnight: none
    days = [session_of(T0 + timedelta(days=d)) for d in range(4)]
    assert day_trades(fills, session_of, days) == 3
    assert day_trades(fills, session_of, days[1:]) == 1
    assert day_trades(fills, session_of, []) == 0


def test_opened_today_are_the_symbols_bought_that_session() -> None:
    fills = (fills_of(("1", B, 0)) + fills_of(("2", S, 0), symbol="MSFT")
             + fills_of(("3", B, 0), symbol="NVDA", day=1))
    assert opened_today(fills, session_of, DAY0[0]) == frozenset({"AAPL"})
    assert opened_today(fills, session_of, session_of(T0 + timedelta(days=1))) == {"NVDA"}
