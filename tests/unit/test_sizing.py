"""Sizing: payoff ratio and Kelly bet, probability to target weight (fractional Kelly or the
linear ramp, with hysteresis), targets to deterministic orders."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from tests.kit.trading import STRATEGY, T0, at
from tradebot.kernel.domain import OrderType, Side, client_order_id
from tradebot.kernel.settings import RiskSettings, StrategySettings
from tradebot.serving.sizing import (
    kelly_fraction_of_equity,
    orders_for_targets,
    payoff_ratio,
    target_weight,
)

STRAT = StrategySettings(entry_probability=0.6, exit_probability=0.5, sizing="linear")
KELLY = StrategySettings(entry_probability=0.6, exit_probability=0.5)  # half Kelly, b = 1
RISK = RiskSettings(max_position_pct=0.10)
WIDE = RiskSettings(max_position_pct=0.5)


def pnls(*values: str | int) -> list[Decimal]:
    return [Decimal(str(v)) for v in values]


def test_kelly_is_the_default_sizing() -> None:
    strategy = StrategySettings()
    assert (strategy.sizing, strategy.kelly_fraction, strategy.default_payoff_ratio) == (
        "kelly", 0.5, 1.0)
    assert (strategy.payoff_window, strategy.min_trades_for_payoff) == (50, 10)


@pytest.mark.parametrize("bad", [{"kelly_fraction": 0}, {"kelly_fraction": 1.5},
                                 {"default_payoff_ratio": 0}, {"payoff_window": 0},
                                 {"payoff_window": 5, "min_trades_for_payoff": 6},
                                 {"entry_probability": 0.6, "exit_probability": 0.7},
                                 {"sizing": "optimal"}])
def test_sizing_settings_are_validated(bad: dict) -> None:
    with pytest.raises(ValidationError):
        StrategySettings(**bad)


def test_kelly_bet_is_p_minus_q_over_b() -> None:
    assert kelly_fraction_of_equity(0.6, 1.0) == pytest.approx(0.2)
    assert kelly_fraction_of_equity(0.6, 2.0) == pytest.approx(0.4)
    assert kelly_fraction_of_equity(0.5, 1.0) == pytest.approx(0.0)
    assert kelly_fraction_of_equity(0.6, 0.5) == pytest.approx(-0.2)  # no edge: negative
    assert kelly_fraction_of_equity(1.0, 0.1) == pytest.approx(1.0)


@pytest.mark.parametrize(("prob", "payoff"), [(0.6, 0.0), (0.6, -1.0), (0.6, float("inf")),
                                              (float("nan"), 1.0), (1.2, 1.0)])
def test_kelly_bet_rejects_invalid_inputs(prob: float, payoff: float) -> None:
    with pytest.raises(ValueError, match=r"prob_up|payoff"):
        kelly_fraction_of_equity(prob, payoff)


def test_kelly_weight_is_the_fraction_of_the_kelly_bet() -> None:
    assert target_weight(0.6, 0.0, KELLY, WIDE) == pytest.approx(0.1)  # 0.5 * (0.6 - 0.4)
    assert target_weight(0.7, 0.0, KELLY, WIDE) == pytest.approx(0.2)  # 0.5 * (0.7 - 0.3)
    assert target_weight(0.6, 0.0, KELLY, WIDE, payoff=2.0) == pytest.approx(0.2)
    full = KELLY.model_copy(update={"kelly_fraction": 1.0})
    assert target_weight(0.7, 0.0, full, WIDE) == pytest.approx(0.4)


def test_kelly_weight_is_capped_at_max_position() -> None:
    assert target_weight(0.9, 0.0, KELLY, RISK) == pytest.approx(0.10)
    assert target_weight(1.0, 0.0, KELLY, WIDE, payoff=5.0) == pytest.approx(0.5)


def test_kelly_weight_without_an_edge_is_zero_even_above_entry() -> None:
    assert target_weight(0.6, 0.0, KELLY, WIDE, payoff=0.5) == 0.0  # f* = 0.6 - 0.8 < 0
    assert target_weight(0.6, 0.08, KELLY, WIDE, payoff=0.5) == 0.0  # and sells a holding


def test_kelly_weight_keeps_the_hysteresis_band() -> None:
    assert target_weight(0.55, 0.0, KELLY, RISK) == 0.0  # flat under the entry threshold
    assert target_weight(0.55, 0.07, KELLY, RISK) == pytest.approx(0.07)
    assert target_weight(0.55, 0.25, KELLY, RISK) == pytest.approx(0.10)
    assert target_weight(0.49, 0.08, KELLY, RISK) == 0.0


def test_kelly_weight_rejects_an_invalid_payoff() -> None:
    with pytest.raises(ValueError, match="payoff"):
        target_weight(0.7, 0.0, KELLY, RISK, payoff=0.0)


def test_payoff_ratio_is_mean_win_over_mean_loss() -> None:
    strategy = StrategySettings(min_trades_for_payoff=4)
    assert payoff_ratio(pnls(30, -10, 10, -30), strategy) == pytest.approx(1.0)
    assert payoff_ratio(pnls(30, -10, 50, -10), strategy) == pytest.approx(4.0)
    assert payoff_ratio(pnls("1.5", "-0.5", "1.5", "-1.5", "3"), strategy) == pytest.approx(2.0)


def test_payoff_ratio_falls_back_to_the_default() -> None:
    strategy = StrategySettings(min_trades_for_payoff=4, default_payoff_ratio=1.5)
    assert payoff_ratio([], strategy) == 1.5
    assert payoff_ratio(pnls(30, -10, 10), strategy) == 1.5  # too few trades
    assert payoff_ratio(pnls(30, 10, 10, 20, 5), strategy) == 1.5  # no loss
    assert payoff_ratio(pnls(-30, -10, -10, -20), strategy) == 1.5  # no win


def test_payoff_ratio_uses_the_last_window_and_ignores_zeros() -> None:
    strategy = StrategySettings(payoff_window=4, min_trades_for_payoff=4)
    old = pnls(1000, -1)  # outside the window of the last 4 non-zero trades
    assert payoff_ratio(old + pnls(20, -10, 20, -10), strategy) == pytest.approx(2.0)
    with_zeros = pnls(20, 0, -10, 0, 0, 20, -10)
    assert payoff_ratio(with_zeros, strategy) == pytest.approx(2.0)
    assert payoff_ratio(pnls(20, 0, -10, 0, 20), strategy) == 1.0  # 3 non-zero: default


def test_weight_scales_linearly_from_half_cap_at_entry_to_cap_at_one() -> None:
    assert target_weight(0.6, 0.0, STRAT, RISK) == pytest.approx(0.05)
    assert target_weight(0.8, 0.0, STRAT, RISK) == pytest.approx(0.075)
    assert target_weight(1.0, 0.0, STRAT, RISK) == pytest.approx(0.10)


def test_weight_is_zero_below_exit_even_when_holding() -> None:
    assert target_weight(0.49, 0.08, STRAT, RISK) == 0.0


def test_hysteresis_band_keeps_current_weight_capped() -> None:
    assert target_weight(0.55, 0.07, STRAT, RISK) == pytest.approx(0.07)
    assert target_weight(0.5, 0.0, STRAT, RISK) == 0.0  # exit threshold itself is in the band
    assert target_weight(0.55, 0.25, STRAT, RISK) == pytest.approx(0.10)


@pytest.mark.parametrize("prob", [float("nan"), -0.1, 1.5])
def test_invalid_probability_is_an_error(prob: float) -> None:
    with pytest.raises(ValueError, match="prob_up"):
        target_weight(prob, 0.0, STRAT, RISK)


def test_entry_order_from_flat() -> None:
    (req,) = orders_for_targets({"AAPL": 0.1}, {}, {"AAPL": 250.0}, Decimal("100000"), T0, STRATEGY)
    assert (req.symbol, req.side, req.qty, req.intent) == ("AAPL", Side.BUY, Decimal("40"), "entry")
    assert req.client_order_id == client_order_id(STRATEGY, "AAPL", T0, "entry")
    assert req.reference_price == 250.0
    assert req.order_type is OrderType.MARKET
    assert req.ts_decision == T0


def test_fractional_quantity_rounded_to_micro_shares() -> None:
    (req,) = orders_for_targets({"MSFT": 0.1}, {}, {"MSFT": 333.33}, Decimal("100000"), T0, "s")
    assert req.qty == Decimal("30.000300")


def test_partial_reduction_is_an_exit_sell_of_the_delta() -> None:
    (req,) = orders_for_targets(
        {"AAPL": 0.05}, {"AAPL": Decimal("40")}, {"AAPL": 250.0}, Decimal("100000"), T0, "s"
    )
    assert (req.side, req.qty, req.intent) == (Side.SELL, Decimal("20"), "exit")


def test_full_exit_sells_everything_even_below_min_notional() -> None:
    (req,) = orders_for_targets(
        {"AAPL": 0.0}, {"AAPL": Decimal("0.001")}, {"AAPL": 100.0}, Decimal("1000"), T0, "s"
    )
    assert (req.side, req.qty, req.intent) == (Side.SELL, Decimal("0.001"), "exit")


def test_small_rebalance_below_min_notional_is_skipped() -> None:
    orders = orders_for_targets(
        {"AAPL": 0.1},
        {"AAPL": Decimal("39.99")},
        {"AAPL": 250.0},
        Decimal("100000"),
        T0,
        "s",
        min_notional=5.0,
    )
    assert orders == []


def test_exits_come_before_entries_each_sorted_by_symbol() -> None:
    orders = orders_for_targets(
        targets={"NVDA": 0.1, "AAPL": 0.1, "MSFT": 0.0, "AMZN": 0.0},
        positions={"MSFT": Decimal("5"), "AMZN": Decimal("5")},
        prices={"NVDA": 100.0, "AAPL": 100.0, "MSFT": 100.0, "AMZN": 100.0},
        equity=Decimal("10000"),
        ts_decision=T0,
        strategy_name="s",
    )
    assert [(o.symbol, o.intent) for o in orders] == [
        ("AMZN", "exit"),
        ("MSFT", "exit"),
        ("AAPL", "entry"),
        ("NVDA", "entry"),
    ]


def test_order_ids_are_deterministic_per_decision_time() -> None:
    args = ({"AAPL": 0.1}, {}, {"AAPL": 100.0}, Decimal("10000"))
    first = orders_for_targets(*args, T0, "s")
    again = orders_for_targets(*args, T0, "s")
    later = orders_for_targets(*args, at(15), "s")
    assert first == again
    assert first[0].client_order_id != later[0].client_order_id


def test_symbols_without_a_target_are_left_alone() -> None:
    orders = orders_for_targets(
        {"AAPL": 0.1}, {"META": Decimal("3")}, {"AAPL": 100.0}, Decimal("10000"), T0, "s"
    )
    assert [o.symbol for o in orders] == ["AAPL"]


def test_missing_price_is_an_error_naming_the_symbol() -> None:
    with pytest.raises(ValueError, match="NVDA"):
        orders_for_targets({"NVDA": 0.1}, {}, {}, Decimal("10000"), T0, "s")
