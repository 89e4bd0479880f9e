"""Backtest core: tradebot's compiled engine vs backtesting.py on the same bars and signal.

Data (built once per run, outside every timing): per symbol a seeded random walk of 1-minute
OHLCV bars, 390 a session (13:30-20:00 UTC on weekdays), and the SMA(10) / SMA(30) crossover
long/flat signal as one target row per bar, stamped at the bar's close time. The engine
settings and the peer's strategy follow tests/integration/test_backtest_vs_backtesting_py.py
(but with the project's default 1 bp commission, not the test's 5 bps): fill at the next
open, no slippage, whole shares, target 1.0 / 0.0, the open trade closed at the last bar's
open.

Timed, best of ``--repeat`` with ``time.perf_counter``:

(a) ours, kernel:      ``run_kernel`` (the compiled bar loop and the round trips) on the bar
                       grid, target matrix and session codes, built once outside the timing.
(b) ours, end to end:  ``run_backtest(bars, targets, config)``: long frames in, result frames
                       (equity, positions, fills, trades, ...) out.
(c) peer:              backtesting.py ``Backtest(...).run()`` (its statistics included), one
                       run per symbol (it backtests one instrument at a time), on the first
                       ``--peer-bars`` bars of each symbol (default: all); its rate per
                       bar-step is what the ratio uses. Best of ``--peer-repeat``.

With several symbols ours runs them as one portfolio (weight 1/N each) on the full grid.
The numba compile time (``simulate.recompile()``) and the first call's cache load are printed
and excluded.

Check before any ratio: ours on each peer run's bars (same settings, one symbol) must give
the same trades (entry and exit bars, sizes, prices exactly; pnl to 1e-9 relative) and the
same final equity (1e-9 relative); otherwise MISMATCH and exit status 1.

bar-steps/s = bars x symbols / seconds; ratio = ours bar-steps/s / peer bar-steps/s;
trades = round trips.

    .venv/bin/python bench/backtest.py                        # 1 x 1,000,000 and 10 x 100,000
    .venv/bin/python bench/backtest.py --sizes 1x200000 --peer-bars 50000
"""

from __future__ import annotations

import argparse
import contextlib
import io
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace

import backtesting
import numba
import numpy as np
import pandas as pd
from backtesting import Backtest, Strategy

from tradebot.serving.backtest_engine import (
    EngineConfig,
    bar_grid,
    run_backtest,
    run_kernel,
    session_codes,
    simulate,
    target_matrix,
)

FAST, SLOW = 10, 30
CASH, COMMISSION_BPS = 100_000.0, 1.0
SESSION_BARS = 390
CONFIG = EngineConfig(initial_cash=CASH, commission_bps=COMMISSION_BPS, slippage_bps=0.0,
                      fractional=False)
# (a') the kernel again with the other realism and risk features on (no peer to compare):
# fractional shares, slippage, a volume cap (partial fills), stops and both loss limits. The
# drawdown limit is set so the run trades almost to the end before it stops it.
ALL_FEATURES = replace(
    CONFIG, fractional=True, slippage_bps=0.2, slippage_vol_multiplier=0.02,
    volume_cap_pct=0.2, stop_loss_pct=0.01, take_profit_pct=0.02, trailing_stop_pct=0.005,
    daily_loss_pct=0.01, max_drawdown_pct=0.99,
)
RTOL = 1e-9


# --- data and signal ---------------------------------------------------------------------------


def minute_times(n: int) -> pd.DatetimeIndex:
    """``n`` 1-minute bar starts, 390 a weekday from 13:30 UTC, from 2016-01-04."""
    days = pd.bdate_range("2016-01-04", periods=-(-n // SESSION_BARS)).as_unit("ns")
    start = days.asi8[:, None] + (13 * 60 + 30 + np.arange(SESSION_BARS)) * 60_000_000_000
    return pd.DatetimeIndex(start.ravel()[:n], tz="UTC")


def synthetic_bars(symbol: str, n: int, seed: int) -> pd.DataFrame:
    """A seeded random walk with consistent OHLC and volume."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0005, n)))
    open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0.0, 0.0001, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0.0, 0.0003, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0.0, 0.0003, n)))
    return pd.DataFrame({
        "symbol": symbol, "ts_event": minute_times(n), "open": open_, "high": high, "low": low,
        "close": close, "volume": rng.integers(1_000, 5_000, n).astype(float),
    })


def sma_state(close: np.ndarray) -> np.ndarray:
    """1.0 while SMA(FAST) > SMA(SLOW), else 0.0; NaN until SMA(SLOW) exists."""
    s = pd.Series(close)
    state = (s.rolling(FAST).mean() > s.rolling(SLOW).mean()).to_numpy(dtype=float, copy=True)
    state[: SLOW - 1] = np.nan
    return state


def targets_for(bars: pd.DataFrame, state: np.ndarray, weight: float = 1.0) -> pd.DataFrame:
    """One target per bar backtesting.py acts on (from one bar after the warm-up to the third
    last bar), stamped at the bar's close = the next bar's start, then 0.0 at the last bar's
    start (backtesting.py's ``finalize_trades`` closes there at the open)."""
    first = int(np.argmax(~np.isnan(state))) + 1
    ts = pd.DatetimeIndex(bars["ts_event"])
    acting = np.arange(first, len(bars) - 2)
    return pd.DataFrame({
        "ts": ts[np.r_[acting + 1, len(bars) - 1]],
        "symbol": bars["symbol"].iloc[0],
        "target_weight": np.r_[state[acting] * weight, 0.0],
    })


# --- the peer ----------------------------------------------------------------------------------


class SmaState(Strategy):
    """Long when the precomputed state is 1, flat when 0; idle on the last two bars."""

    state: np.ndarray | None = None

    def init(self) -> None:
        self.long = self.I(lambda: self.state, name="state")

    def next(self) -> None:
        if len(self.data) >= len(self.state) - 1:
            return
        want = self.long[-1] == 1.0
        if want and not self.position:
            self.buy()
        elif not want and self.position:
            self.position.close()


def peer_data(bars: pd.DataFrame) -> pd.DataFrame:
    data = bars.rename(columns=str.capitalize)[["Open", "High", "Low", "Close", "Volume"]]
    return data.set_index(pd.DatetimeIndex(bars["ts_event"]).tz_localize(None))


def peer_run(data: pd.DataFrame, state: np.ndarray) -> pd.Series:
    bt = Backtest(data, SmaState, cash=CASH, commission=COMMISSION_BPS / 1e4,
                  trade_on_close=False, exclusive_orders=True, finalize_trades=True)
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):  # tqdm bar
        warnings.simplefilter("ignore", FutureWarning)  # pandas deprecations inside the peer
        return bt.run(state=state)


def agree(ours: pd.DataFrame, equity: float, ts: pd.DatetimeIndex, stats: pd.Series) -> str:
    """'' when our trades and final equity match the peer's, else what differs."""
    peer = stats["_trades"].sort_values("EntryBar").reset_index(drop=True)
    if len(ours) != len(peer):
        return f"{len(ours)} trades vs {len(peer)}"
    bars = pd.Index(ts)
    checks = {
        "entry bars": np.array_equal(bars.get_indexer(ours.entry_ts), peer["EntryBar"]),
        "exit bars": np.array_equal(bars.get_indexer(ours.exit_ts), peer["ExitBar"]),
        "sizes": np.array_equal(ours.qty, peer["Size"].astype(float)),
        "entry prices": np.array_equal(ours.entry_price, peer["EntryPrice"]),
        "exit prices": np.array_equal(ours.exit_price, peer["ExitPrice"]),
        "pnl": np.allclose(ours.pnl, peer["PnL"], rtol=RTOL, atol=1e-6),
        "final equity": abs(equity / stats["Equity Final [$]"] - 1) <= RTOL,
    }
    return ", ".join(name for name, ok in checks.items() if not ok)


# --- timing ------------------------------------------------------------------------------------


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


@dataclass
class Row:
    name: str
    steps: int
    seconds: float
    trades: int
    note: str = ""

    @property
    def rate(self) -> float:
        return self.steps / self.seconds


def bench_size(symbols: int, bars_each: int, peer_bars: int, repeat: int,
               peer_repeat: int) -> tuple[list[Row], list[str]]:
    """Rows (ours kernel, ours all features, ours end to end, peer) and check failures."""
    names = [f"SYM{k:02d}" for k in range(symbols)]
    frames = [synthetic_bars(s, bars_each, seed=7 + k) for k, s in enumerate(names)]
    states = [sma_state(f["close"].to_numpy()) for f in frames]
    bars = pd.concat(frames, ignore_index=True)
    targets = pd.concat([targets_for(f, st, 1.0 / symbols) for f, st in zip(frames, states,
                                                                            strict=True)])
    grid = bar_grid(bars)
    tw, sess = target_matrix(targets, grid, CONFIG), session_codes(grid.ts, None)
    steps = bars_each * symbols
    kernel_s, out = best_of(repeat, lambda: run_kernel(grid, tw, sess, CONFIG))
    full_s, full = best_of(repeat, lambda: run_kernel(grid, tw, sess, ALL_FEATURES))
    fills, events = full[4], full[6]
    last_fill = int(fills[:, 0].max()) + 1 if len(fills) else 0
    e2e_s, result = best_of(repeat, lambda: run_backtest(bars, targets, CONFIG))
    assert np.array_equal(result.equity.to_numpy(), out[0])  # the two timings did the same

    prefix = min(peer_bars, bars_each)
    failures: list[str] = []
    peer_s, peer_trades = 0.0, 0
    for name, frame, state in zip(names, frames, states, strict=True):
        part = frame.iloc[:prefix]
        head = state[:prefix].copy()
        data = peer_data(part)
        seconds, stats = best_of(peer_repeat, lambda d=data, s=head: peer_run(d, s))
        peer_s += seconds
        peer_trades += len(stats["_trades"])
        mine = run_backtest(part, targets_for(part, head), CONFIG)
        bad = agree(mine.trades, float(mine.equity.iloc[-1]), mine.ts, stats)
        if bad:
            failures.append(f"{name}: {bad}")
    scope = "all bars" if prefix == bars_each else f"first {prefix:,} bars of each symbol"
    rows = [
        Row("(a) ours, kernel", steps, kernel_s, len(out[5])),
        Row("(a') ours, kernel, all features", steps, full_s, len(full[5]),
            f"{len(fills):,} fills ({int(fills[:, 6].sum()):,} partial), {len(events)} risk "
            f"events, last fill at bar {last_fill:,} of {len(grid.ts):,}"),
        Row("(b) ours, end to end", steps, e2e_s, len(result.trades)),
        Row("(c) peer, backtesting.py", prefix * symbols, peer_s, peer_trades, scope),
    ]
    return rows, failures


def parse_size(text: str) -> tuple[int, int]:
    symbols, bars = text.lower().split("x")
    return int(symbols), int(bars)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time tradebot's compiled backtest engine against backtesting.py on the "
        "same bars and SMA signal; print bar-steps/s and the ratio (after checking trades).",
    )
    parser.add_argument("--sizes", nargs="+", type=parse_size, default=[(1, 1_000_000),
                        (10, 100_000)], metavar="NxBARS",
                        help="symbols x bars per symbol (default 1x1000000 10x100000)")
    parser.add_argument("--peer-bars", type=int, default=10**12,
                        help="run the peer on the first N bars of each symbol (default: all)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per timing of ours (5)")
    parser.add_argument("--peer-repeat", type=int, default=1, help="runs per peer timing (1)")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.peer_repeat < 1 or args.peer_bars < 100:
        parser.error("need --repeat >= 1, --peer-repeat >= 1, --peer-bars >= 100")

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"numba {numba.__version__}, backtesting.py {backtesting.__version__}"
    )
    tiny = bar_grid(synthetic_bars("SYM00", 100, seed=1))
    t0 = time.perf_counter()
    run_kernel(tiny, np.full((100, 1), np.nan), session_codes(tiny.ts, None), CONFIG)
    first_s = time.perf_counter() - t0
    hits = sum(simulate.stats.cache_hits.values())
    t0 = time.perf_counter()
    simulate.recompile()  # a fresh compile, as after an edit or on a new machine
    print(f"numba (excluded from the timings): first kernel call {first_s:.2f} s "
          f"({'loaded from the on-disk cache' if hits else 'compiled'}); "
          f"fresh compile of the kernel {time.perf_counter() - t0:.2f} s")

    failed = False
    for symbols, bars_each in args.sizes:
        rows, failures = bench_size(symbols, bars_each, args.peer_bars, args.repeat,
                                    args.peer_repeat)
        print(f"\n{symbols} symbol(s) x {bars_each:,} bars = {symbols * bars_each:,} bar-steps; "
              f"best of {args.repeat} (peer {args.peer_repeat})")
        print(f"{'':<34}{'bar-steps':>12}{'seconds':>10}{'bar-steps/s':>14}{'trades':>9}")
        for row in rows:
            print(f"{row.name:<34}{row.steps:>12,}{row.seconds:>10.4f}{row.rate:>14,.0f}"
                  f"{row.trades:>9,}")
            if row.note:
                print(f"    {row.note}")
        if failures:
            failed = True
            print(f"check: MISMATCH {failures[:3]}; no ratio")
            continue
        peer = rows[-1].rate
        print(f"check: OK (trades and final equity equal backtesting.py on {rows[-1].note})")
        print(f"ratio ours/peer: kernel {rows[0].rate / peer:,.0f}x, "
              f"end to end {rows[2].rate / peer:,.0f}x")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
