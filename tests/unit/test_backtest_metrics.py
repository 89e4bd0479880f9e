"""Backtest metrics against by-hand computations on tiny hand-made equity, trade and fill series."""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Iterator
from datetime import date

import numpy as np
import pandas as pd
import pytest

from tradebot.pipelines.backtest_metrics import (
    DAILY_COLUMNS,
    METRIC_KEYS,
    compute_metrics,
    daily_breakdown,
    daily_equity,
    max_drawdown_duration_days,
    monthly_returns,
)

CASH = 100.0
SQRT252 = math.sqrt(252)
# Daily returns of the strategy and of the benchmark over Mon 8 .. Fri 12 January 2024.
R = [0.02, -0.02, 0.05, -0.01, 0.03]
RB = [0.01, 0.0, 0.02, -0.01, 0.01]
DAYS = [date(2024, 1, d) for d in (8, 9, 10, 11, 12)]


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def levels(start: float, rets: list[float]) -> list[float]:
    out, level = [], start
    for r in rets:
        level *= 1 + r
        out.append(level)
    return out


EQ_DAY = levels(CASH, R)  # 102, 99.96, 104.958, 103.90842, 107.0256726
BENCH_DAY = levels(400.0, RB)
# Bars: an intraday bar on 8 Jan, an evening bar at 01:00 UTC that is still 8 Jan in New York,
# an intraday dip on 10 Jan (the bar-level max drawdown) and closes at 21:00 UTC (16:00 New York).
BARS: list[tuple[str, float, float, float]] = [  # (utc time, equity, benchmark, gross position)
    ("2024-01-08 15:00", 101.0, 400.0, 0.0),
    ("2024-01-09 01:00", EQ_DAY[0], BENCH_DAY[0], 50.0),
    ("2024-01-09 21:00", EQ_DAY[1], BENCH_DAY[1], 0.0),
    ("2024-01-10 15:00", 98.94, 395.0, float("nan")),
    ("2024-01-10 21:00", EQ_DAY[2], BENCH_DAY[2], 0.0),
    ("2024-01-11 21:00", EQ_DAY[3], BENCH_DAY[3], -30.0),
    ("2024-01-12 15:00", 104.0, 410.0, 20.0),
    ("2024-01-12 21:00", EQ_DAY[4], BENCH_DAY[4], 0.0),
]
TS = pd.DatetimeIndex([utc(t) for t, *_ in BARS])
EQUITY = pd.Series([b[1] for b in BARS], index=TS)
# The benchmark is sampled one minute before each bar (carried forward to the bar).
BENCH = pd.Series([b[2] for b in BARS], index=TS - pd.Timedelta(minutes=1))
POSITIONS_VALUE = pd.Series([b[3] for b in BARS], index=TS)
FILLS = pd.DataFrame(
    {
        "ts": [TS[1], TS[2], TS[5]],
        "symbol": ["AAA", "AAA", "BBB"],
        "qty": [10.0, -10.0, 5.0],
        "price": [10.0, 11.0, 20.0],
        "commission": [0.0, 0.0, 0.0],
    }
)
TRADES = pd.DataFrame(
    {
        "symbol": ["AAA", "BBB", "AAA", "BBB", "CCC", "DDD"],
        "exit_ts": [TS[2], TS[2], TS[4], TS[5], TS[7], pd.NaT],
        "pnl": [10.0, -4.0, 6.0, -2.0, 0.0, 50.0],
    }
)


@pytest.fixture(autouse=True)
def _warnings_are_errors() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def daily_series(values: list[float], first: str = "2024-03-04 21:00") -> pd.Series:
    """One bar per calendar day at 21:00 UTC."""
    return pd.Series(values, index=pd.date_range(first, periods=len(values), freq="D", tz="UTC"))


def metrics(
    equity: pd.Series,
    *,
    trades: pd.DataFrame | None = None,
    fills: pd.DataFrame | None = None,
    benchmark_close: pd.Series | None = None,
    initial_cash: float = CASH,
) -> dict[str, float]:
    """Metrics without a positions series (so ``exposure`` is NaN)."""
    return compute_metrics(equity, trades, fills, None, benchmark_close, initial_cash)


def test_daily_equity_is_the_last_value_per_new_york_date() -> None:
    shuffled = EQUITY.iloc[[3, 0, 7, 1, 2, 6, 5, 4]]
    naive = shuffled.copy()
    naive.index = naive.index.tz_localize(None)  # naive times are UTC
    for series in (shuffled, naive):
        daily = daily_equity(series)
        assert list(daily.index) == DAYS
        assert daily.to_numpy() == pytest.approx(EQ_DAY)


def test_every_metric_matches_a_hand_computation() -> None:
    m = compute_metrics(EQUITY, TRADES, FILLS, POSITIONS_VALUE, BENCH, CASH)
    assert list(m) == list(METRIC_KEYS)
    final = EQ_DAY[-1]
    cagr = (final / CASH) ** (365.25 / 4) - 1  # 8 Jan .. 12 Jan = 4 calendar days
    active = [r - rb for r, rb in zip(R, RB, strict=True)]
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in R) / len(R))
    mdd = 1 - 98.94 / EQ_DAY[0]  # intraday dip on 10 Jan below the 8 Jan close (the peak)
    expected = {
        "initial_equity": CASH,
        "final_equity": final,
        "total_return": final / CASH - 1,
        "cagr": cagr,
        "volatility": statistics.stdev(R) * SQRT252,
        "sharpe": statistics.mean(R) / statistics.stdev(R) * SQRT252,
        "sortino": statistics.mean(R) / downside * SQRT252,
        "information_ratio": statistics.mean(active) / statistics.stdev(active) * SQRT252,
        "benchmark_return": BENCH_DAY[-1] / 400.0 - 1,
        "max_drawdown": mdd,
        # peaks: 102 at 9 Jan 01:00 → 10 Jan 21:00 (1 d 20 h); 104.958 at 10 Jan → 12 Jan 21:00
        "max_drawdown_duration_days": 2.0,
        "calmar": cagr / mdd,
        "win_rate": 2 / 5,  # the open trade is left out, the break-even one is not a win
        "profit_factor": 16 / 6,
        "avg_win": 8.0,
        "avg_loss": -3.0,
        "exposure": 3 / 8,  # 50, -30, 20 are non-zero; NaN counts as flat
        "turnover": 310.0 / statistics.mean(EQUITY.tolist()),
        "turnover_annual": 310.0 / statistics.mean(EQUITY.tolist()) * 252 / 5,
        "n_trades": 5,
        "n_fills": 3,
        "days": 5,
    }
    for key, value in expected.items():
        assert m[key] == pytest.approx(value, rel=1e-9), key
    assert m["sortino"] == pytest.approx(1.4 * SQRT252)


def test_drawdown_duration_across_a_recovery_and_an_unrecovered_end() -> None:
    # peak 110 on day 1, back above it on day 4: 3 days
    recovered = daily_series([100, 110, 105, 100, 111, 112])
    assert max_drawdown_duration_days(recovered, 100.0) == pytest.approx(3.0)
    # first dip 2 days (day 1 → 3), then under water from day 3 to the last day 7: 4 days
    unrecovered = daily_series([100, 110, 105, 111, 108, 107, 109, 110])
    assert max_drawdown_duration_days(unrecovered, 100.0) == pytest.approx(4.0)
    m = metrics(unrecovered)
    assert m["max_drawdown_duration_days"] == pytest.approx(4.0)
    # the deepest drawdown (first dip) is not the longest one
    assert m["max_drawdown"] == pytest.approx(1 - 105 / 110)
    # below the starting capital from the first bar, recovered on day 2
    below_start = daily_series([95, 97, 101])
    assert max_drawdown_duration_days(below_start, 100.0) == pytest.approx(2.0)
    assert metrics(below_start)["max_drawdown"] == pytest.approx(0.05)
    # returning exactly to the peak ends the drawdown
    touch = daily_series([110, 100, 110, 111])
    assert max_drawdown_duration_days(touch, 100.0) == pytest.approx(2.0)
    assert math.isnan(max_drawdown_duration_days(daily_series([]), 100.0))


def test_information_ratio_against_the_benchmark_on_daily_dates() -> None:
    # A benchmark sampled once a day at 20:00 UTC, bought at the first bar's (carried) close.
    equity = daily_series([101.0, 103.02, 101.9898, 104.029596])  # +1 %, +2 %, -1 %, +2 %
    close = pd.Series(
        [50.0, 50.5, 50.5, 51.51, 52.0],
        index=pd.date_range("2024-03-04 20:00", periods=5, freq="D", tz="UTC"),
    )
    r, rb = [0.01, 0.02, -0.01, 0.02], [0.0, 0.01, 0.0, 0.02]
    active = [a - b for a, b in zip(r, rb, strict=True)]
    m = metrics(equity, benchmark_close=close)
    assert m["information_ratio"] == pytest.approx(
        statistics.mean(active) / statistics.stdev(active) * SQRT252
    )
    assert m["benchmark_return"] == pytest.approx(51.51 / 50.0 - 1)
    # the strategy that is the benchmark has no active risk: NaN, not a division by zero
    same = metrics(close.iloc[:4] * 2, initial_cash=100.0, benchmark_close=close)
    assert math.isnan(same["information_ratio"])


@pytest.mark.parametrize(
    ("equity", "undefined"),
    [
        (daily_series([]), set(METRIC_KEYS) - {"initial_equity", "n_trades", "n_fills", "days"}),
        (
            daily_series([101.0]),
            {"cagr", "volatility", "sharpe", "sortino", "calmar", "information_ratio"},
        ),
        (
            daily_series([100.0] * 5),
            {"sharpe", "sortino", "calmar", "information_ratio"},
        ),
        # constant +10 % a day: the standard deviation is zero up to rounding (~1e-16)
        (daily_series([CASH * 1.1**k for k in range(1, 6)]), {"sharpe", "sortino", "calmar"}),
    ],
    ids=["empty", "one-day", "flat", "constant-return"],
)
def test_degenerate_inputs_give_nan_without_warnings(
    equity: pd.Series, undefined: set[str]
) -> None:
    trades = pd.DataFrame(columns=["symbol", "exit_ts", "pnl"])
    fills = pd.DataFrame(columns=["ts", "symbol", "qty", "price"])
    m = metrics(equity, trades=trades, fills=fills, benchmark_close=equity)
    trade_keys = {"win_rate", "profit_factor", "avg_win", "avg_loss"}
    nan_keys = {k for k, v in m.items() if isinstance(v, float) and math.isnan(v)}
    assert nan_keys == undefined | trade_keys | {"exposure"}
    assert m["n_trades"] == 0 and m["n_fills"] == 0 and m["days"] == len(equity)
    if len(equity):
        assert m["turnover"] == 0.0 and m["max_drawdown"] == 0.0
    if len(equity) == 5 and equity.nunique() == 1:
        assert m["volatility"] == 0.0 and m["total_return"] == 0.0 and m["cagr"] == 0.0


def test_no_benchmark_and_unusable_benchmark_give_nan() -> None:
    equity = daily_series([101.0, 102.0, 100.0])
    for bench in (None, pd.Series(dtype=float), pd.Series([np.nan, 0.0], index=equity.index[:2])):
        m = metrics(equity, benchmark_close=bench)
        assert math.isnan(m["information_ratio"]) and math.isnan(m["benchmark_return"])
    assert not math.isnan(metrics(equity)["sharpe"])


def test_profit_factor_edges() -> None:
    equity = daily_series([101.0, 102.0])

    def closed(pnl: list[float]) -> pd.DataFrame:
        ts = pd.Timestamp("2024-03-04 21:00", tz="UTC")
        return pd.DataFrame({"exit_ts": [ts] * len(pnl), "pnl": pnl})

    only_wins = metrics(equity, trades=closed([5.0, 3.0]))
    assert math.isnan(only_wins["profit_factor"])  # no losses: undefined (not inf)
    assert only_wins["win_rate"] == 1.0 and only_wins["avg_win"] == 4.0
    assert math.isnan(only_wins["avg_loss"])
    only_losses = metrics(equity, trades=closed([-5.0, -1.0]))
    assert only_losses["profit_factor"] == 0.0 and only_losses["win_rate"] == 0.0
    assert only_losses["avg_loss"] == -3.0 and math.isnan(only_losses["avg_win"])
    open_only = metrics(equity, trades=pd.DataFrame({"exit_ts": [pd.NaT], "pnl": [9.0]}))
    assert open_only["n_trades"] == 0 and math.isnan(open_only["win_rate"])


def test_ruined_and_exploding_accounts_give_no_warnings() -> None:
    m = metrics(daily_series([50.0, 0.0, -10.0]))
    assert m["cagr"] == -1.0 and m["total_return"] == pytest.approx(-1.1)
    assert m["max_drawdown"] == pytest.approx(1.1)
    # x10 in one calendar day: (10 ** 365.25) is beyond float range
    m = metrics(daily_series([200.0, 1000.0]))
    assert math.isnan(m["cagr"]) and math.isnan(m["calmar"])
    assert m["total_return"] == pytest.approx(9.0)


def test_daily_breakdown_by_new_york_date() -> None:
    daily = daily_breakdown(EQUITY, FILLS, TRADES, initial_cash=CASH)
    assert list(daily.columns) == list(DAILY_COLUMNS)
    assert list(daily.index) == DAYS
    starts = [CASH, *EQ_DAY[:-1]]
    assert daily["start_equity"].to_numpy() == pytest.approx(starts)
    assert daily["end_equity"].to_numpy() == pytest.approx(EQ_DAY)
    pnl = [end - start for start, end in zip(starts, EQ_DAY, strict=True)]
    assert daily["pnl"].to_numpy() == pytest.approx(pnl)
    assert daily["return"].to_numpy() == pytest.approx(R)
    # fill at 01:00 UTC on 9 Jan is 8 Jan in New York
    assert daily["n_fills"].tolist() == [1, 1, 0, 1, 0]
    assert daily["traded_notional"].to_numpy() == pytest.approx([100.0, 110.0, 0.0, 100.0, 0.0])
    # by exit date; the open trade is not counted
    assert daily["n_trades_closed"].tolist() == [0, 2, 1, 1, 1]
    dd_end = [0.0, 1 - EQ_DAY[1] / EQ_DAY[0], 0.0, 1 - EQ_DAY[3] / EQ_DAY[2], 0.0]
    assert daily["drawdown"].to_numpy() == pytest.approx(dd_end)
    # without the starting capital the first day starts at the first bar
    assert daily_breakdown(EQUITY, None, None)["start_equity"].iloc[0] == 101.0
    empty = daily_breakdown(daily_series([]), FILLS, TRADES)
    assert empty.empty and list(empty.columns) == list(DAILY_COLUMNS)


def test_monthly_returns_table() -> None:
    equity = pd.Series(
        [105.0, 110.0, 104.5, 99.0, 108.9],
        index=pd.DatetimeIndex(
            [
                utc("2023-12-15 21:00"),
                utc("2024-01-01 02:00"),  # 31 Dec in New York: December's close
                utc("2024-01-10 21:00"),
                utc("2024-02-01 03:00"),  # 31 Jan in New York
                utc("2024-02-01 21:00"),
            ]
        ),
    )
    table = monthly_returns(equity, initial_cash=CASH)
    assert list(table.index) == [2023, 2024]
    assert list(table.columns) == list(range(1, 13))
    assert table.loc[2023, 12] == pytest.approx(0.10)
    assert table.loc[2024, 1] == pytest.approx(-0.10)
    assert table.loc[2024, 2] == pytest.approx(0.10)
    assert int(table.notna().sum().sum()) == 3
    # without the starting capital the first month starts at the first day's close
    assert monthly_returns(equity).loc[2023, 12] == pytest.approx(110.0 / 105.0 - 1)
    assert monthly_returns(daily_series([])).empty
