"""Cross-check: the same bars, SMA-crossover long/flat signal and commission through our
compiled engine and through backtesting.py give the same trades and the same equity.

How the two are made to do the same thing (backtesting.py 0.6.6 semantics, read from its
source):

- backtesting.py calls ``Strategy.next()`` at the close of bar i; a market order placed there
  fills at bar i+1's open (``trade_on_close=False``) or at bar i's close (``True``). Our
  targets are stamped at bar i's close time (= bar i+1's start), which our engine fills at
  bar i+1's open (``next_open``) or at bar i's close (``close``).
- backtesting.py first calls ``next()`` one bar after the first non-NaN indicator value, so
  our targets start at that bar too.
- ``buy()`` sizes ``int(cash * (1 - eps) // (price * (1 + commission)))`` whole units. A
  target weight of 1.0 with whole shares asks our engine for ``equity / price`` shares, which
  it cuts to the cash available, ``floor(cash / (price * (1 + commission)))``: the same size.
- ``finalize_trades=True`` closes the open trade at the last bar's open (or the previous
  bar's close with ``trade_on_close``); our final target 0.0 stamped at the last bar's start
  does the same. Neither side acts on the last two bars, so no order is pending at the end.
- backtesting.py books commission at entry and exit on the trade's notional; ours charges
  ``commission_bps / 1e4 * notional`` on each fill: the same amounts.

With identical sizes and prices the only differences left are floating-point summation
order, so equity and pnl are compared to 1e-9 relative.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from backtesting import Backtest

from bench.backtest import SmaState, peer_data, sma_state  # the bench runs the same peer
from tradebot.serving.backtest_engine import EngineConfig, run_backtest

N_BARS = 3_000
CASH, COMMISSION_BPS = 100_000.0, 5.0
RTOL = 1e-9  # floating-point summation order only (see the module docstring)


def synthetic_bars(n: int = N_BARS, seed: int = 11) -> pd.DataFrame:
    """A seeded random walk with consistent OHLC and volume, one bar a minute (UTC)."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, n)))
    open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0.0, 0.0005, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0.0, 0.001, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0.0, 0.001, n)))
    return pd.DataFrame({
        "symbol": "SYN",
        "ts_event": pd.date_range("2026-06-01 13:30", periods=n, freq="min", tz="UTC"),
        "open": open_, "high": high, "low": low, "close": close,
        "volume": rng.integers(1_000, 5_000, n).astype(float),
    })


def peer_run(bars: pd.DataFrame, state: np.ndarray, on_close: bool) -> pd.Series:
    bt = Backtest(peer_data(bars), SmaState, cash=CASH, commission=COMMISSION_BPS / 1e4,
                  trade_on_close=on_close, exclusive_orders=True, finalize_trades=True)
    with warnings.catch_warnings():
        # A canceled order (insufficient margin) or a trade left open must fail the test.
        warnings.filterwarnings("error", message=".*(canceled|remain open)")
        return bt.run(state=state)


def our_targets(bars: pd.DataFrame, state: np.ndarray) -> pd.DataFrame:
    """Target at bar i's close time for every bar backtesting.py acts on, then 0.0 at the
    start of the last bar (finalize_trades)."""
    first = int(np.argmax(~np.isnan(state))) + 1  # backtesting.py's first next() bar
    ts = pd.DatetimeIndex(bars["ts_event"])
    acting = np.arange(first, len(bars) - 2)
    return pd.DataFrame({
        "ts": [*ts[acting + 1], ts[-1]],
        "symbol": "SYN",
        "target_weight": [*state[acting], 0.0],
    })


@pytest.mark.filterwarnings("ignore:DatetimeIndex.dayofweek")  # inside backtesting.py
@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_trades_and_equity_agree_with_backtesting_py(fill: str) -> None:
    bars = synthetic_bars()
    state = sma_state(bars["close"].to_numpy())
    config = EngineConfig(initial_cash=CASH, commission_bps=COMMISSION_BPS, slippage_bps=0.0,
                          fractional=False, fill=fill)
    ours = run_backtest(bars, our_targets(bars, state), config)
    stats = peer_run(bars, state, on_close=fill == "close")
    peer = stats["_trades"].sort_values("EntryBar").reset_index(drop=True)
    mine = ours.trades

    assert len(peer) > 50  # the signal trades often enough for the check to mean something
    assert len(mine) == len(peer)
    bar_of = pd.Index(ours.ts)
    assert bar_of.get_indexer(mine.entry_ts).tolist() == peer["EntryBar"].tolist()
    assert bar_of.get_indexer(mine.exit_ts).tolist() == peer["ExitBar"].tolist()
    assert mine.qty.tolist() == peer["Size"].astype(float).tolist()
    np.testing.assert_array_equal(mine.entry_price, peer["EntryPrice"])
    np.testing.assert_array_equal(mine.exit_price, peer["ExitPrice"])
    np.testing.assert_allclose(mine.pnl, peer["PnL"], rtol=RTOL, atol=1e-6)
    np.testing.assert_allclose(mine.return_pct, peer["ReturnPct"], rtol=1e-7, atol=1e-12)
    assert ours.equity.iloc[-1] == pytest.approx(stats["Equity Final [$]"], rel=RTOL)
    assert ours.equity.iloc[-1] != pytest.approx(CASH, rel=1e-3)  # it did gain or lose
    if fill == "next_open":
        # Bar by bar too (with trade_on_close backtesting.py books a close fill one bar late).
        curve = stats["_equity_curve"]["Equity"].to_numpy()
        np.testing.assert_allclose(ours.equity.to_numpy(), curve, rtol=RTOL)
