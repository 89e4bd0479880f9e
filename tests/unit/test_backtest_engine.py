"""Compiled backtest core: fill timing, costs, sizing, partial fills, exits, risk limits,
shorts, and the accounting identities, each on a few hand-made bars with exact numbers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from tradebot.serving.backtest_engine import (
    BacktestResult,
    EngineConfig,
    run_backtest,
    session_codes,
)

T0 = pd.Timestamp("2026-06-01 13:30", tz="UTC")  # Monday 9:30 New York
DAY2 = pd.Timestamp("2026-06-02 13:30", tz="UTC")
STEP = pd.Timedelta(minutes=15)
FREE = {"commission_bps": 0.0, "slippage_bps": 0.0}  # no costs
Bar = tuple[float, float, float, float]  # open, high, low, close


def ts(i: int, start: pd.Timestamp = T0) -> pd.Timestamp:
    return start + i * STEP


def bars(rows: Sequence[Bar], symbol: str = "AAPL", start: pd.Timestamp = T0,
         volume: float = 1e6) -> pd.DataFrame:
    o, h, lo, c = (list(col) for col in zip(*rows, strict=True))
    return pd.DataFrame({
        "symbol": symbol, "ts_event": [ts(i, start) for i in range(len(rows))],
        "open": o, "high": h, "low": lo, "close": c, "volume": volume,
    })


def flat(prices: Sequence[float], **kw: object) -> pd.DataFrame:
    """Bars with open = close = price and a 1-point range."""
    return bars([(p, p + 1, p - 1, p) for p in prices], **kw)


def targets(*rows: tuple[pd.Timestamp, float] | tuple[pd.Timestamp, float, str]) -> pd.DataFrame:
    return pd.DataFrame({
        "ts": [r[0] for r in rows],
        "symbol": [r[2] if len(r) > 2 else "AAPL" for r in rows],
        "target_weight": [r[1] for r in rows],
    })


def run(b: pd.DataFrame, t: pd.DataFrame, **config: object) -> BacktestResult:
    return run_backtest(b, t, EngineConfig(**config))


OHLC = [(100.0, 101.0, 99.0, 100.5), (101.0, 102.0, 100.0, 101.5),
        (102.0, 103.0, 101.0, 102.5), (103.0, 104.0, 102.0, 103.5)]


# --- fill timing -----------------------------------------------------------------------------


def test_next_open_fills_at_the_open_of_the_first_bar_at_or_after_the_target() -> None:
    r = run(bars(OHLC), targets((ts(1), 0.5)), **FREE)
    f = r.fills.iloc[0]
    assert len(r.fills) == 1 and f.ts == ts(1) and f.price == 101.0
    assert f.qty == pytest.approx(50_000 / 101.0, rel=1e-15) and f.reason == "signal"
    between = run(bars(OHLC), targets((ts(1) + pd.Timedelta(minutes=5), 0.5)), **FREE)
    assert between.fills.ts.iloc[0] == ts(2) and between.fills.price.iloc[0] == 102.0


def test_close_fills_at_the_close_of_the_bar_that_just_closed() -> None:
    r = run(bars(OHLC), targets((ts(1), 0.5)), fill="close", **FREE)
    f = r.fills.iloc[0]
    assert f.ts == ts(0) and f.price == 100.5
    assert f.qty == pytest.approx(50_000 / 100.5, rel=1e-15)
    between = run(bars(OHLC), targets((ts(1) + pd.Timedelta(minutes=5), 0.5)), fill="close",
                  **FREE)
    assert between.fills.ts.iloc[0] == ts(1) and between.fills.price.iloc[0] == 101.5


def test_vwap_fills_at_the_vwap_of_the_bar_after_the_target() -> None:
    typical = run(bars(OHLC), targets((ts(1), 0.5)), fill="vwap", **FREE).fills.iloc[0]
    assert typical.ts == ts(1) and typical.price == pytest.approx((102.0 + 100.0 + 101.5) / 3)
    with_vwap = bars(OHLC).assign(vwap=[100.2, 101.3, np.nan, 103.1])
    given = run(with_vwap, targets((ts(1), 0.5), (ts(2), 0.0)), fill="vwap", **FREE).fills
    assert list(given.price) == pytest.approx([101.3, (103.0 + 101.0 + 102.5) / 3])
    assert given.qty.iloc[0] == pytest.approx(50_000 / 101.3, rel=1e-15)


def test_a_target_with_no_bar_to_fill_at_never_fills() -> None:
    late = targets((ts(3) + pd.Timedelta(minutes=1), 0.5))
    assert run(bars(OHLC), late, **FREE).fills.empty
    assert run(bars(OHLC), targets((ts(0), 0.5)), fill="close", **FREE).fills.empty
    r = run(bars(OHLC), late, **FREE)
    assert (r.equity == 100_000.0).all() and (r.positions["AAPL"] == 0).all()


def test_a_symbol_without_a_bar_at_the_fill_time_fills_at_its_next_bar() -> None:
    a = bars(OHLC, symbol="A")
    b = bars(OHLC, symbol="B").drop(index=[1, 3])  # B has no 13:45 and no 14:15 bar
    r = run(pd.concat([a, b]), targets((ts(1), 0.5, "B")), **FREE)
    assert (r.fills.symbol.iloc[0], r.fills.ts.iloc[0], r.fills.price.iloc[0]) == ("B", ts(2), 102)
    # Without a bar at 14:15 B stays marked at its 14:00 close, 102.5.
    qty = 50_000 / 102.0
    assert r.equity.iloc[3] == pytest.approx(50_000 + qty * 102.5, rel=1e-14)


def test_the_latest_target_for_a_bar_wins_and_a_repeated_weight_does_not_trade() -> None:
    t = targets((ts(1) - pd.Timedelta(minutes=2), 0.9), (ts(1), 0.5), (ts(2), 0.5))
    r = run(bars(OHLC), t, **FREE)
    assert len(r.fills) == 1 and r.fills.qty.iloc[0] == pytest.approx(50_000 / 101.0)


# --- costs and sizing ------------------------------------------------------------------------

COSTS = {"commission_per_share": 0.005, "commission_bps": 1.0, "slippage_bps": 2.0}


def test_commission_and_slippage_on_one_round_trip() -> None:
    r = run(bars(OHLC), targets((ts(1), 0.5), (ts(3), 0.0)), fractional=False, **COSTS)
    buy, sell = r.fills.iloc[0], r.fills.iloc[1]
    # Buy: 101 * (1 + 2 bps) = 101.0202; 50,000 / 101.0202 = 494.95 -> 494 shares.
    assert buy.qty == 494 and buy.price == pytest.approx(101.0202, rel=1e-15)
    assert buy.commission == pytest.approx(0.005 * 494 + 1e-4 * 494 * 101.0202, rel=1e-12)
    assert buy.commission == pytest.approx(7.46039788, rel=1e-12)
    assert not buy.partial
    # Sell at 103 * (1 - 2 bps) = 102.9794; commission 2.47 + 5.08718236.
    assert sell.qty == -494 and sell.price == pytest.approx(102.9794, rel=1e-15)
    assert sell.commission == pytest.approx(7.55718236, rel=1e-12)
    assert r.cash.iloc[1] == pytest.approx(100_000 - 494 * 101.0202 - 7.46039788, rel=1e-13)
    assert r.equity.iloc[1] == pytest.approx(r.cash.iloc[1] + 494 * 101.5, rel=1e-13)
    assert r.equity.iloc[-1] == pytest.approx(100_952.82721976, rel=1e-13)
    trade = r.trades.iloc[0]
    assert (trade.side, trade.qty, trade.exit_reason) == ("long", 494, "signal")
    assert trade.entry_ts == ts(1) and trade.exit_ts == ts(3)
    assert trade.pnl == pytest.approx(952.82721976, rel=1e-12)
    assert trade.return_pct == pytest.approx(952.82721976 / (494 * 101.0202), rel=1e-12)


def test_the_spread_costs_half_of_it_on_each_side() -> None:
    r = run(bars(OHLC), targets((ts(1), 0.5), (ts(3), 0.0)), commission_bps=0.0,
            slippage_bps=2.0, spread_bps=10.0)
    # 2 bps + 10 / 2 bps = 7 bps against the trader on the buy and on the sell
    assert r.fills.price.iloc[0] == pytest.approx(101.0 * 1.0007, rel=1e-15)
    assert r.fills.price.iloc[1] == pytest.approx(103.0 * 0.9993, rel=1e-15)


def test_volatility_scaled_slippage_uses_the_fill_bars_range() -> None:
    b = bars([(100.0, 101.0, 99.0, 100.0), (100.0, 102.0, 98.0, 100.0)])
    r = run(b, targets((ts(1), 0.5)), commission_bps=0.0, slippage_bps=2.0,
            slippage_vol_multiplier=0.5)
    # 2 bps + 0.5 * (102 - 98) / 100 = 0.0202
    assert r.fills.price.iloc[0] == pytest.approx(100 * 1.0202, rel=1e-15)


def test_fractional_versus_whole_shares() -> None:
    frac = run(bars(OHLC), targets((ts(1), 0.5)), **COSTS)
    whole = run(bars(OHLC), targets((ts(1), 0.5)), fractional=False, **COSTS)
    assert frac.fills.qty.iloc[0] == pytest.approx(50_000 / 101.0202, rel=1e-15)
    assert whole.fills.qty.iloc[0] == 494.0


def test_buys_are_cut_to_the_cash_available_and_marked_partial() -> None:
    r = run(flat([100, 100, 100]), targets((ts(1), 1.0)), fractional=False,
            commission_bps=10.0, slippage_bps=0.0)
    # 1,000 shares wanted; cash buys 100,000 / (100 * 1.001) = 999.0 -> 999.
    assert r.fills.qty.iloc[0] == 999 and r.fills.partial.iloc[0]
    assert r.cash.iloc[-1] == pytest.approx(100_000 - 999 * 100 * 1.001, rel=1e-13)


def test_sells_fill_before_buys_so_a_switch_is_paid_by_the_sale() -> None:
    a, b = flat([50, 50, 50], symbol="A"), flat([100, 100, 100], symbol="B")
    t = targets((ts(0), 1.0, "B"), (ts(1), 1.0, "A"), (ts(1), 0.0, "B"))
    r = run(pd.concat([b, a]), t, fractional=False, **FREE)
    # A comes first among the symbols, but its buy waits for B's sale: 100,000 / 50 = 2,000.
    assert r.fills[["symbol", "qty"]].values.tolist() == [["B", 1000], ["B", -1000], ["A", 2000]]


@pytest.mark.parametrize("price", [150_000.0, 99_990.0])
def test_a_buy_that_gets_nothing_is_retried_by_the_same_weight(price: float) -> None:
    b = flat([100, price, price, 90_000, 90_000])
    t = targets(*[(ts(i), 1.0) for i in range(1, 5)])
    r = run(b, t, fractional=False, commission_bps=10.0, slippage_bps=0.0)
    # 100,000 cash: no whole share at 150,000; at 99,990 one share but not its commission.
    # The repeated 1.0 is not a no-op then: it buys one share at 90,000.
    assert r.fills.qty.tolist() == [1] and r.fills.ts.tolist() == [ts(3)]


def test_volume_cap_spreads_an_order_over_bars_as_partial_fills() -> None:
    r = run(flat([100] * 5, volume=100.0), targets((ts(1), 0.125)), fractional=False,
            volume_cap_pct=0.5, **FREE)
    # 125 shares at most 50 (50% of 100) per bar.
    assert r.fills.qty.tolist() == [50, 50, 25]
    assert r.fills.ts.tolist() == [ts(1), ts(2), ts(3)] and r.fills.partial.all()
    assert r.positions["AAPL"].tolist() == [0, 50, 100, 125, 125]


def test_a_new_target_replaces_the_unfilled_rest_of_a_capped_order() -> None:
    r = run(flat([100] * 5, volume=100.0), targets((ts(1), 0.125), (ts(2), 0.0)),
            fractional=False, volume_cap_pct=0.5, **FREE)
    assert r.fills.qty.tolist() == [50, -50]
    assert r.positions["AAPL"].tolist() == [0, 50, 0, 0, 0]


# --- exits -------------------------------------------------------------------------------------

ENTRY = (100.0, 101.0, 99.0, 100.0)


@pytest.mark.parametrize(
    ("bar2", "config", "price", "reason"),
    [
        ((98.0, 99.0, 94.0, 96.0), {"stop_loss_pct": 0.05}, 95.0, "stop_loss"),
        ((93.0, 94.0, 90.0, 92.0), {"stop_loss_pct": 0.05}, 93.0, "stop_loss"),  # gap
        ((105.0, 111.0, 104.0, 106.0), {"take_profit_pct": 0.1}, 110.0, "take_profit"),
        ((112.0, 113.0, 111.0, 112.0), {"take_profit_pct": 0.1}, 112.0, "take_profit"),  # gap
        # Both touched in one bar: the stop is assumed first.
        ((100.0, 111.0, 94.0, 100.0), {"stop_loss_pct": 0.05, "take_profit_pct": 0.1}, 95.0,
         "stop_loss"),
    ],
)
def test_stop_loss_and_take_profit(bar2: Bar, config: dict, price: float, reason: str) -> None:
    b = bars([ENTRY, ENTRY, bar2, ENTRY])
    r = run(b, targets((ts(1), 0.5), (ts(3), 0.5)), fractional=False, **FREE, **config)
    assert r.fills.qty.tolist() == [500, -500]  # the repeated 0.5 at ts(3) does not re-enter
    exit_fill = r.fills.iloc[1]
    assert (exit_fill.ts, exit_fill.reason) == (ts(2), reason)
    assert exit_fill.price == pytest.approx(price, rel=1e-15)  # 100 * 1.1 is 110.00000000000001
    assert r.trades.exit_reason.tolist() == [reason]
    assert r.trades.pnl.iloc[0] == pytest.approx(500 * (price - 100.0), rel=1e-12)
    assert r.cash.iloc[-1] == pytest.approx(100_000 + 500 * (price - 100.0), rel=1e-14)


def test_trailing_stop_trails_the_best_price_since_entry() -> None:
    b = bars([ENTRY, (100.0, 105.0, 99.0, 104.0), (110.0, 120.0, 109.0, 118.0),
              (115.0, 116.0, 107.0, 108.0), ENTRY])
    r = run(b, targets((ts(1), 0.5)), fractional=False, trailing_stop_pct=0.1, **FREE)
    # Best 120 after bar 2; bar 3 trades down through 120 * 0.9 = 108.
    assert r.fills.qty.tolist() == [500, -500]
    assert r.fills.price.iloc[1] == pytest.approx(108.0, rel=1e-15)
    assert (r.fills.ts.iloc[1], r.fills.reason.iloc[1]) == (ts(3), "trailing_stop")


def test_a_stop_on_a_short_fires_above_the_entry() -> None:
    b = bars([ENTRY, ENTRY, (101.0, 106.0, 100.0, 105.0), ENTRY])
    r = run(b, targets((ts(1), -0.5)), fractional=False, allow_short=True, stop_loss_pct=0.05,
            **FREE)
    assert r.fills.qty.tolist() == [-500, 500] and r.fills.price.iloc[1] == 105.0
    assert r.trades.side.iloc[0] == "short" and r.trades.pnl.iloc[0] == -2_500.0


# --- risk limits -------------------------------------------------------------------------------


def test_daily_loss_blocks_entries_until_the_next_session_but_allows_exits() -> None:
    day1 = bars([(100.0, 101.0, 96.0, 97.0)] + [(97.0, 98.0, 96.0, 97.0)] * 3)
    day2 = bars([(97.0, 98.0, 96.0, 97.0)] * 2, start=DAY2)
    t = targets((ts(0), 0.5), (ts(1), 1.0), (ts(2), 0.0), (ts(3), 0.5), (DAY2, 0.5))
    r = run(pd.concat([day1, day2]), t, fractional=False, daily_loss_pct=0.01, **FREE)
    # Bar 0 closes at 97: equity 98,500 < 99,000. The increase to 1.0 and the re-entry at 0.5
    # are refused; the exit to 0.0 fills; the next session's 0.5 buys 98,500 * 0.5 / 97 -> 507.
    assert r.fills.qty.tolist() == [500, -500, 507]
    assert r.fills.ts.tolist() == [ts(0), ts(2), DAY2]
    assert r.events.kind.tolist() == ["daily_loss"] and r.events.ts.iloc[0] == ts(0)


def test_session_labels_can_be_given() -> None:
    day = bars([(100.0, 101.0, 96.0, 97.0)] + [(97.0, 98.0, 96.0, 97.0)] * 3)
    t = targets((ts(0), 0.5), (ts(2), 0.6))
    same = run(day, t, fractional=False, daily_loss_pct=0.01, **FREE)
    labels = pd.Series(["a", "a", "b", "b"], index=[ts(i) for i in range(4)])
    split = run_backtest(day, t, EngineConfig(fractional=False, daily_loss_pct=0.01, **FREE),
                         session=labels)
    assert same.fills.qty.tolist() == [500] and len(same.events) == 1
    # A new session at bar 2 lifts the block: 98,500 * 0.6 / 97 = 609.3 -> 609, buy 109.
    assert split.fills.qty.tolist() == [500, 109] and len(split.events) == 1


def test_default_sessions_are_new_york_dates() -> None:
    stamps = ["2026-06-01 23:30", "2026-06-02 00:30", "2026-06-02 03:59", "2026-06-02 04:00",
              "2026-11-01 04:30", "2026-11-01 05:30", "2026-11-02 04:59", "2026-11-02 05:00"]
    codes = session_codes(pd.DatetimeIndex(stamps, tz="UTC"), None)
    # 20:00 EDT is still June 1 in New York; after the switch to EST midnight is 05:00 UTC.
    assert (np.diff(codes) != 0).tolist() == [False, False, True, True, False, False, True]


def test_max_drawdown_flattens_everything_at_the_next_fill_and_stops_trading() -> None:
    a = bars([(100.0, 101.0, 79.0, 80.0), (82.0, 83.0, 81.0, 82.0)] + [ENTRY] * 2, symbol="A")
    b = bars([(100.0, 101.0, 99.0, 100.0), (101.0, 102.0, 100.0, 101.0)] + [ENTRY] * 2,
             symbol="B")
    t = targets((ts(0), 0.5, "A"), (ts(0), 0.4, "B"), (ts(2), 0.5, "A"))
    r = run(pd.concat([a, b]), t, fractional=False, max_drawdown_pct=0.1, **FREE)
    # Bar 0 closes: 10,000 cash + 500 * 80 + 400 * 100 = 90,000, 10% under the 100,000 peak.
    assert r.events.kind.tolist() == ["shutdown"] and r.events.ts.iloc[0] == ts(0)
    shut = r.fills[r.fills.reason == "shutdown"]
    assert shut.symbol.tolist() == ["A", "B"] and shut.qty.tolist() == [-500, -400]
    assert shut.price.tolist() == [82.0, 101.0] and (shut.ts == ts(1)).all()
    assert len(r.fills) == 4  # the later target for A is ignored
    assert (r.positions.iloc[1:] == 0).all().all()
    assert r.equity.iloc[-1] == 10_000 + 500 * 82 + 400 * 101


def test_short_pays_the_borrow_fee_at_each_session_end() -> None:
    day1 = bars([(100.0, 101.0, 99.0, 100.0)] * 2)
    day2 = bars([(95.0, 96.0, 89.0, 90.0), (90.0, 91.0, 89.0, 90.0)], start=DAY2)
    t = targets((ts(0), -0.5), (ts(1, DAY2), 0.0))
    # 252 bps a year = 1 bp of the short notional per session.
    r = run(pd.concat([day1, day2]), t, fractional=False, allow_short=True,
            borrow_fee_bps_per_year=252.0, **FREE)
    assert r.fills.qty.tolist() == [-500, 500] and r.fills.price.tolist() == [100.0, 90.0]
    assert r.fees.tolist() == [0.0, pytest.approx(5.0, rel=1e-15), 0.0, 0.0]
    assert r.equity.iloc[1] == pytest.approx(100_000 - 5.0, rel=1e-15)
    assert r.equity.iloc[-1] == pytest.approx(100_000 + 500 * 10 - 5.0, rel=1e-15)
    assert r.trades.side.tolist() == ["short"] and r.trades.pnl.iloc[0] == 5_000.0  # fees apart


def test_long_only_clips_negative_targets_to_flat() -> None:
    t = targets((ts(0), -0.5), (ts(1), 0.5), (ts(2), -0.3))
    r = run(flat([100, 100, 100, 100]), t, fractional=False, **FREE)
    assert r.fills.qty.tolist() == [500, -500]
    assert r.positions["AAPL"].tolist() == [0, 500, 0, 0]


def test_a_reversal_closes_one_trade_and_opens_the_next() -> None:
    t = targets((ts(0), 0.5), (ts(2), -0.25))
    r = run(flat([100, 100, 110, 110]), t, fractional=False, allow_short=True, **FREE)
    # Equity at bar 2's open: 50,000 + 500 * 100; -0.25 of it at 110 = -227.27 -> -227.
    assert r.fills.qty.tolist() == [500, -727]
    assert r.trades.side.tolist() == ["long", "short"]
    assert r.trades.qty.tolist() == [500, 227] and r.trades.exit_reason.tolist() == [
        "signal", "open"]
    assert r.trades.pnl.iloc[0] == 5_000.0 and pd.isna(r.trades.exit_ts.iloc[1])
    assert r.trades.pnl.iloc[1] == 0.0  # marked at the last close, 110


# --- accounting identities on a busy random run -------------------------------------------


def random_run() -> tuple[pd.DataFrame, BacktestResult]:
    rng = np.random.default_rng(3)
    frames = []
    for k, symbol in enumerate(["A", "B", "C"]):
        n = 400
        close = 50 * (k + 1) * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        open_ = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0, 0.003, n))
        high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n))
        low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n))
        frame = pd.DataFrame({
            "symbol": symbol, "ts_event": [ts(i) + pd.Timedelta(days=i // 26) for i in range(n)],
            "open": open_, "high": high, "low": low, "close": close,
            "volume": rng.uniform(50, 500, n),
        })
        frames.append(frame.sample(frac=0.9, random_state=k))  # some bars missing
    b = pd.concat(frames)
    times = np.sort(b.ts_event.unique())
    t = pd.DataFrame({
        "ts": rng.choice(times, 300) + pd.Timedelta(minutes=1),
        "symbol": rng.choice(["A", "B", "C"], 300),
        "target_weight": rng.uniform(-0.4, 0.4, 300).round(2),
    })
    config = EngineConfig(commission_per_share=0.01, commission_bps=1.0, slippage_bps=2.0,
                          slippage_vol_multiplier=0.1, volume_cap_pct=0.5, allow_short=True,
                          borrow_fee_bps_per_year=100.0, stop_loss_pct=0.03,
                          take_profit_pct=0.05, trailing_stop_pct=0.04)
    return b, run_backtest(b, t, config)


def test_equity_is_cash_plus_positions_at_the_last_close_on_every_bar() -> None:
    b, r = random_run()
    closes = b.pivot(index="ts_event", columns="symbol", values="close").ffill()
    value = (r.positions * closes.reindex(r.ts).to_numpy()).fillna(0.0).sum(axis=1)
    np.testing.assert_allclose(r.equity.to_numpy(), (r.cash + value).to_numpy(), rtol=1e-12)
    gross = (r.positions.abs() * closes.reindex(r.ts).to_numpy()).fillna(0.0).sum(axis=1)
    np.testing.assert_allclose(r.gross_exposure.to_numpy(), gross.to_numpy(), rtol=1e-12)
    assert set(r.fills.reason) >= {"signal", "stop_loss", "take_profit", "trailing_stop"}
    assert r.fills.partial.any() and (r.fees > 0).any()


def test_cash_positions_and_trades_reconcile_with_the_fills() -> None:
    _, r = random_run()
    flows = (r.fills.qty * r.fills.price + r.fills.commission).sum()
    assert r.cash.iloc[-1] == pytest.approx(100_000 - flows - r.fees.sum(), rel=1e-12)
    held = r.fills.groupby("symbol").qty.sum().reindex(r.symbols, fill_value=0.0)
    np.testing.assert_allclose(r.positions.iloc[-1].to_numpy(), held.to_numpy(), atol=1e-9)
    # Every round trip's pnl (open ones marked at the last close) adds up to the result.
    total = r.equity.iloc[-1] - 100_000 + r.fees.sum()
    assert r.trades.pnl.sum() == pytest.approx(total, rel=1e-9)
    assert (r.trades.exit_ts.isna() == (r.trades.exit_reason == "open")).all()


# --- inputs ------------------------------------------------------------------------------------


def test_row_order_of_bars_and_targets_does_not_matter() -> None:
    b, r = random_run()
    weights = np.resize([0.1, 0.0, 0.2], len(r.fills))
    t = pd.DataFrame({"ts": r.fills.ts, "symbol": r.fills.symbol, "target_weight": weights})
    t = t.drop_duplicates(["ts", "symbol"])  # on a tie the later row wins: order matters there
    config = EngineConfig(volume_cap_pct=0.5, stop_loss_pct=0.03)
    once = run_backtest(b, t, config)
    shuffled = run_backtest(b.sample(frac=1.0, random_state=1), t.sample(frac=1.0, random_state=2),
                            config)
    pd.testing.assert_frame_equal(once.fills, shuffled.fills)
    pd.testing.assert_series_equal(once.equity, shuffled.equity)
    one, t_one = b[b.symbol == "A"], t[t.symbol == "A"]
    forward = run_backtest(one.sort_values("ts_event"), t_one, config)
    backward = run_backtest(one.sort_values("ts_event", ascending=False), t_one, config)
    assert len(forward.fills) > 5
    pd.testing.assert_frame_equal(forward.positions, backward.positions)


def test_complete_grids_in_any_row_order_give_the_same_result() -> None:
    rng = np.random.default_rng(5)
    frames = [flat(list(100 + rng.normal(0, 1, 30).cumsum()), symbol=s) for s in "ABC"]
    symbol_major = pd.concat(frames)
    time_major = symbol_major.sort_values(["ts_event", "symbol"])
    blocks = pd.concat(frames[::-1]).astype({"symbol": object})  # C, B, A as Python strings
    shuffled = symbol_major.sample(frac=1.0, random_state=3).astype({"symbol": "category"})
    t = targets(*[(ts(i), w, s) for i, (w, s) in enumerate(
        zip(rng.uniform(0, 0.3, 30), rng.choice(list("ABC"), 30), strict=True))])
    results = [run(b, t) for b in (symbol_major, time_major, blocks, shuffled)]
    assert len(results[0].fills) > 10
    for other in results[1:]:
        pd.testing.assert_frame_equal(results[0].positions, other.positions)
        pd.testing.assert_frame_equal(results[0].fills, other.fills)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="fill"):
        EngineConfig(fill="open")
    with pytest.raises(ValueError, match="stop_loss_pct"):
        EngineConfig(stop_loss_pct=-0.1)
    with pytest.raises(ValueError, match="no bars"):
        run(bars(OHLC), targets((ts(1), 0.5, "MSFT")))
    with pytest.raises(ValueError, match="more than one row"):
        run(pd.concat([bars(OHLC), bars(OHLC)]), targets())
    with pytest.raises(ValueError, match="more than one row"):
        run(bars(OHLC).iloc[[0, 1, 1, 2]], targets())
    a, b = bars(OHLC[:2], symbol="A"), bars(OHLC[:2], symbol="B")
    for rows in ([a.iloc[[0]], b.iloc[[0]], a.iloc[[0]], b.iloc[[1]]],  # time-major, A twice
                 [a.iloc[[0, 1, 0]], b.iloc[[1]]]):  # symbol-major, A at 13:30 twice
        with pytest.raises(ValueError, match="more than one row"):
            run(pd.concat(rows), targets())
    with pytest.raises(ValueError, match="finite and > 0"):
        run(bars(OHLC).assign(low=[99.0, 0.0, 101.0, 102.0]), targets())
    naive = bars(OHLC).assign(ts_event=lambda f: f.ts_event.dt.tz_localize(None))
    with pytest.raises(ValueError, match="timezone-aware"):
        run(naive, targets())
