"""Risk engine: each rule denies or reduces with its rule name; exits stay allowed."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.kit.trading import order, risk_context, risk_settings
from tradebot.kernel.domain import KillSwitchState, RiskDecision, Side
from tradebot.serving.risk import RiskEngine

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
