"""Compiled backtest core: target weights over OHLCV bars to fills, round trips and equity.

One ``numba.njit`` kernel walks a (T bars x N symbols) grid. Per bar, in time order:

1. stop-loss / take-profit / trailing-stop exits of positions whose level the open gapped
   through (filled at the open);
2. ``fill="next_open"``: orders at the open (risk shutdown flattening or new targets);
   ``fill="vwap"``: the same orders at the bar's VWAP (a ``vwap`` column, else the typical
   price (high + low + close) / 3);
3. stop exits hit inside the bar (filled at the stop level; the stop side is assumed first
   when a bar touches both the stop and the take-profit);
4. marks move to the close; ``fill="close"``: orders at the close;
5. borrow fee at a session's last bar, then the daily-loss and max-drawdown checks.

Orders: a new target weight trades to ``weight * equity / fill price`` shares at its fill
bar (equity marked at the last close before the fill; the bar's own close for
``fill="close"``), sells before buys, buys cut to the cash available (the rest is not
continued). A repeated weight is no change, so after a stop exit the symbol stays flat until
its weight changes. An order that the daily loss limit or the cash left with nothing to fill,
or a nonzero weight worth less than one whole share, counts as not sent: the same weight again
is a new target (as backtesting.py's ``buy()`` on each bar retries). Under the volume cap an
order keeps filling on the symbol's later bars until done or replaced by a new target; stop
and shutdown exits are not capped. While the daily loss limit holds, entries, increases and
reversals are cut to reductions and the rest dropped. Costs follow
:class:`~tradebot.serving.brokers.simulated.SimulatedBroker`: slippage plus half the spread
moves the price against the trader, commission is ``per_share * |qty| + bps / 1e4 * |qty| * price``.
All ``*_pct`` settings are fractions (0.02 = 2%).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tradebot.serving.backtest_kernel import (
    _SIGNAL,
    _rows,
    _scatter_latest,
    round_trips,
    simulate,
)

FILLS = ("next_open", "close", "vwap")
REASONS = ("signal", "stop_loss", "take_profit", "trailing_stop", "shutdown")
EVENT_KINDS = ("daily_loss", "shutdown")
BAR_COLUMNS = ("symbol", "ts_event", "open", "high", "low", "close", "volume")
TARGET_COLUMNS = ("ts", "symbol", "target_weight")
SESSION_TZ = "America/New_York"
_DAY_NS, _HOUR_NS = 86_400_000_000_000, 3_600_000_000_000


@dataclass(frozen=True)
class EngineConfig:
    """Costs, fill rule and risk exits of one backtest (see the module docstring)."""

    initial_cash: float = 100_000.0
    commission_per_share: float = 0.0
    commission_bps: float = 1.0
    slippage_bps: float = 2.0
    spread_bps: float = 0.0
    slippage_vol_multiplier: float = 0.0
    fill: str = "next_open"
    fractional: bool = True
    volume_cap_pct: float = 0.0
    allow_short: bool = False
    borrow_fee_bps_per_year: float = 0.0
    stop_loss_pct: float = 0.0
    take_profit_pct: float = 0.0
    trailing_stop_pct: float = 0.0
    daily_loss_pct: float = 0.0
    max_drawdown_pct: float = 0.0

    def __post_init__(self) -> None:
        if self.fill not in FILLS:
            raise ValueError(f"fill must be one of {', '.join(FILLS)}, got {self.fill!r}")
        if not (math.isfinite(self.initial_cash) and self.initial_cash > 0):
            raise ValueError(f"initial_cash must be > 0, got {self.initial_cash!r}")
        for name in (
            "commission_per_share", "commission_bps", "slippage_bps", "spread_bps",
            "slippage_vol_multiplier",
            "volume_cap_pct", "borrow_fee_bps_per_year", "stop_loss_pct", "take_profit_pct",
            "trailing_stop_pct", "daily_loss_pct", "max_drawdown_pct",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
        for name in ("stop_loss_pct", "trailing_stop_pct", "daily_loss_pct", "max_drawdown_pct"):
            if getattr(self, name) >= 1:
                raise ValueError(f"{name} is a fraction below 1, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class BacktestResult:
    """Per-bar account state (index: bar start times, UTC) and the fills, trades and events.

    ``fills.ts`` is the start time of the bar filled in (at its open or close). ``trades`` are
    round trips per symbol (flat to flat; a reversal closes one and opens the next): ``qty`` is
    the quantity entered, prices are quantity-weighted, ``pnl`` is after every commission of
    the trip, ``return_pct = pnl / entry notional``. A trade still open at the end has
    ``exit_ts`` NaT, ``exit_price`` NaN, ``exit_reason`` "open" and ``pnl`` marked at the last
    close.
    """

    ts: pd.DatetimeIndex
    symbols: list[str]
    equity: pd.Series
    cash: pd.Series
    positions: pd.DataFrame
    fills: pd.DataFrame
    trades: pd.DataFrame
    fees: pd.Series
    events: pd.DataFrame
    gross_exposure: pd.Series  # sum of |qty| x last close per bar


# --- Python side: inputs and frames --------------------------------------------------------


@dataclass(frozen=True)
class BarGrid:
    """Bars pivoted to (T, N) float64 matrices on the union of bar times."""

    ts: pd.DatetimeIndex
    symbols: list[str]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    vwap: np.ndarray | None = None

    def vwap_or_typical(self) -> np.ndarray:
        """Each bar's VWAP, or its typical price (high + low + close) / 3 where none is given."""
        typical = (self.high + self.low + self.close) / 3.0
        if self.vwap is None:
            return typical
        return np.where(np.isfinite(self.vwap) & (self.vwap > 0), self.vwap, typical)


def _utc_ns(values: object, what: str) -> np.ndarray:
    index = pd.DatetimeIndex(values)
    if len(index) and index.tz is None:
        raise ValueError(f"{what} must be timezone-aware (UTC)")
    if index.isna().any():
        raise ValueError(f"{what} has missing times")
    return index.as_unit("ns").asi8


def _codes(values: pd.Series, sort: bool) -> tuple[np.ndarray, pd.Index]:
    """Integer codes and uniques of a label column, hashing one label per run of equal ones
    (bars and targets usually come grouped by symbol)."""
    if values.isna().any():
        raise ValueError(f"{values.name} has missing values")
    if isinstance(values.dtype, pd.CategoricalDtype):
        cat = values.cat.remove_unused_categories()
        if sort and not cat.cat.ordered:
            cat = cat.cat.reorder_categories(sorted(cat.cat.categories))
        return cat.cat.codes.to_numpy(np.int64), cat.cat.categories
    arr = values.array
    heads = np.flatnonzero(np.r_[True, np.asarray(arr[1:] != arr[:-1], dtype=bool)])
    if 4 * len(heads) > len(arr):
        codes, uniques = pd.factorize(values, sort=sort)
        return codes.astype(np.int64), pd.Index(uniques)
    codes, uniques = pd.factorize(values.iloc[heads], sort=sort)
    runs = np.diff(np.r_[heads, len(arr)])
    return np.repeat(codes.astype(np.int64), runs), pd.Index(uniques)


def _layout(flat: np.ndarray, t_codes: np.ndarray, sym_codes: np.ndarray, t_len: int,
            n: int) -> str:
    """'time-major' or 'symbol-major' when the rows already fill the (T, N) grid in that
    order, each (time, symbol) once; else '' (scatter, checking for duplicates)."""
    if len(flat) != t_len * n:
        return ""
    if flat[0] == 0 and (np.diff(flat) == 1).all():
        return "time-major"
    if (sym_codes.reshape(n, t_len) == np.arange(n)[:, None]).all() and (
        t_codes.reshape(n, t_len) == np.arange(t_len)
    ).all():
        return "symbol-major"
    return ""


def bar_grid(bars: pd.DataFrame) -> BarGrid:
    """Pivot long bars (``symbol, ts_event, open, high, low, close, volume``) to matrices."""
    missing = [col for col in BAR_COLUMNS if col not in bars.columns]
    if missing:
        raise ValueError(f"bars are missing columns {missing}; expected {list(BAR_COLUMNS)}")
    if bars.empty:
        raise ValueError("bars are empty")
    sym_codes, symbols = _codes(bars["symbol"], sort=True)
    t_ns = _utc_ns(bars["ts_event"], "bars.ts_event")
    step = np.diff(t_ns)
    time_ordered = bool((step >= 0).all())
    if time_ordered:  # e.g. one symbol: no sort needed
        new = np.r_[True, step != 0]
        times, t_codes = t_ns[new], np.cumsum(new) - 1
    else:  # a stable sort merges the per-symbol runs of sorted times quickly
        order = np.argsort(t_ns, kind="stable")
        ordered = t_ns[order]
        new = np.r_[True, ordered[1:] != ordered[:-1]]
        times, t_codes = ordered[new], np.empty(len(t_ns), dtype=np.int64)
        t_codes[order] = np.cumsum(new) - 1
    n, t_len = len(symbols), len(times)
    flat = t_codes * n + sym_codes
    layout = _layout(flat, t_codes, sym_codes, t_len, n)
    if layout == "" and np.bincount(flat, minlength=t_len * n).max() > 1:
        raise ValueError("bars have more than one row per (symbol, ts_event)")
    mats = []
    columns = ["open", "high", "low", "close", "volume"] + (["vwap"] if "vwap" in bars else [])
    for col in columns:
        values = bars[col].to_numpy(dtype=np.float64)
        if col not in ("volume", "vwap") and not (values.min() > 0 and values.max() < np.inf):
            raise ValueError(f"bars.{col} must be finite and > 0")
        if layout == "time-major":
            grid = values.reshape(t_len, n).copy()
        elif layout == "symbol-major":
            grid = np.ascontiguousarray(values.reshape(n, t_len).T)
        else:
            grid = np.full(t_len * n, np.nan)
            grid[flat] = values  # a NaN volume counts as no volume
            grid = grid.reshape(t_len, n)
        mats.append(grid)
    ts = pd.DatetimeIndex(times.view("datetime64[ns]"), name="ts").tz_localize("UTC")
    return BarGrid(ts, [str(s) for s in symbols], *mats)


def target_matrix(targets: pd.DataFrame, grid: BarGrid, config: EngineConfig) -> np.ndarray:
    """New target weights by the row they start to apply (NaN elsewhere).

    next_open: the first bar time >= the target's ts; close: the last bar time < ts. A target
    whose symbol has no bar at that row waits for its next bar. Several targets for one
    symbol and row: the latest wins.
    """
    missing = [col for col in TARGET_COLUMNS if col not in targets.columns]
    if missing:
        raise ValueError(f"targets are missing columns {missing}; expected {list(TARGET_COLUMNS)}")
    out = np.full(grid.close.shape, np.nan)
    if targets.empty:
        return out
    codes, names = _codes(targets["symbol"], sort=False)
    known = pd.Index(grid.symbols).get_indexer(names.astype(str))
    if (known < 0).any():
        unknown = sorted(str(s) for s in names[known < 0])
        raise ValueError(f"targets name symbols with no bars: {unknown[:10]}")
    weight = targets["target_weight"].to_numpy(dtype=np.float64)
    if not np.isfinite(weight).all():
        raise ValueError("targets.target_weight must be finite")
    if not config.allow_short:
        weight = np.maximum(weight, 0.0)
    t_ns = _utc_ns(targets["ts"], "targets.ts")
    row = _rows(grid.ts.asi8, t_ns)
    if config.fill == "close":
        row = row - 1
    keep = (row >= 0) & (row < len(grid.ts))
    if not keep.all():
        codes, row, weight, t_ns = codes[keep], row[keep], weight[keep], t_ns[keep]
    stamp = np.empty(out.shape, dtype=np.int64)
    _scatter_latest(out, stamp, row, known[codes].astype(np.int64), t_ns, weight)
    return out


def session_codes(ts: pd.DatetimeIndex, session: pd.Series | None) -> np.ndarray:
    """Integer session code per bar: the New York date, or ``session`` labels by bar time."""
    if session is None:  # New York offsets change on the hour: convert each hour once
        t_ns = ts.as_unit("ns").asi8
        hours = t_ns // _HOUR_NS
        new = np.r_[True, hours[1:] != hours[:-1]]
        first = pd.DatetimeIndex(hours[new] * _HOUR_NS, tz="UTC")
        local = first.tz_convert(SESSION_TZ).tz_localize(None).as_unit("ns").asi8
        runs = np.diff(np.r_[np.flatnonzero(new), len(t_ns)])
        return np.repeat(local // _DAY_NS, runs)  # whole hours: the hour's date is the bar's
    labels = session.reindex(ts)
    if labels.isna().any():
        raise ValueError("session must give a label for every bar time")
    return pd.factorize(labels)[0].astype(np.int64)


def kernel_params(config: EngineConfig) -> np.ndarray:
    """The kernel's parameter vector (order documented in :func:`simulate`)."""
    return np.array([
        config.stop_loss_pct, config.take_profit_pct, config.trailing_stop_pct,
        config.commission_per_share, config.commission_bps / 1e4,
        (config.slippage_bps + config.spread_bps / 2) / 1e4,
        config.slippage_vol_multiplier, config.volume_cap_pct, float(config.fractional),
        float(config.allow_short), config.initial_cash,
    ])


def run_kernel(grid: BarGrid, tw: np.ndarray, sess: np.ndarray, config: EngineConfig) -> tuple:
    """The compiled kernel and the round trips on prepared inputs: equity, cash, positions,
    fees, fills, trades and events arrays."""
    orders_at = grid.open if config.fill != "vwap" else grid.vwap_or_typical()
    equity, cash, positions, fees, fills, events, last_close = simulate(
        grid.open, grid.high, grid.low, grid.close, grid.volume, orders_at, tw, sess,
        kernel_params(config),
        config.fill == "close", config.borrow_fee_bps_per_year, config.daily_loss_pct,
        config.max_drawdown_pct,
    )
    trades = round_trips(fills, len(grid.symbols), last_close)
    return equity, cash, positions, fees, fills, trades, events


def _frames(grid: BarGrid, out: tuple) -> BacktestResult:
    equity, cash, positions, fees, fills, trades, events = out
    ts, names = grid.ts, np.array(grid.symbols, dtype=object)
    reasons = np.array(REASONS, dtype=object)
    frow = fills[:, 0].astype(np.int64)
    fill_frame = pd.DataFrame({
        "ts": ts[frow], "symbol": names[fills[:, 1].astype(np.int64)], "qty": fills[:, 2],
        "price": fills[:, 3], "commission": fills[:, 4],
        "reason": reasons[fills[:, 5].astype(np.int64)], "partial": fills[:, 6] > 0,
    })
    trade_frame = _trade_frame(ts, names, trades)
    event_frame = pd.DataFrame({
        "ts": ts[events[:, 0].astype(np.int64)],
        "kind": np.array(EVENT_KINDS, dtype=object)[events[:, 1].astype(np.int64)],
        "detail": [_event_detail(int(k), e, r) for k, e, r in events[:, 1:]],
    })
    return BacktestResult(  # the kernel's fresh arrays are handed over, not copied
        ts=ts,
        symbols=list(grid.symbols),
        equity=pd.Series(equity, index=ts, name="equity", copy=False),
        cash=pd.Series(cash, index=ts, name="cash", copy=False),
        positions=pd.DataFrame(positions, index=ts, columns=pd.Index(grid.symbols), copy=False),
        fills=fill_frame,
        trades=trade_frame,
        fees=pd.Series(fees, index=ts, name="fees", copy=False),
        events=event_frame,
        gross_exposure=pd.Series(_gross(positions, grid.close), index=ts, name="gross_exposure",
                                 copy=False),
    )


def _trade_frame(ts: pd.DatetimeIndex, names: np.ndarray, trades: np.ndarray) -> pd.DataFrame:
    """The kernel's round-trip rows as a frame, ordered by entry time and symbol."""
    reasons = np.array(REASONS, dtype=object)
    exit_row = trades[:, 3].astype(np.int64)
    is_open = exit_row < 0
    trade_frame = pd.DataFrame({
        "symbol": names[trades[:, 0].astype(np.int64)],
        "side": np.where(trades[:, 1] > 0, "long", "short").astype(object),
        "entry_ts": ts[trades[:, 2].astype(np.int64)],
        "exit_ts": ts[np.where(is_open, 0, exit_row)].where(~is_open),
        "qty": trades[:, 4], "entry_price": trades[:, 5], "exit_price": trades[:, 6],
        "pnl": trades[:, 7], "return_pct": trades[:, 8],
        "exit_reason": np.where(is_open, "open", reasons[np.maximum(trades[:, 9], 0).astype(
            np.int64)]).astype(object),
    })
    trade_frame = trade_frame.sort_values(["entry_ts", "symbol"], kind="stable")
    return trade_frame.reset_index(drop=True)


def _gross(positions: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Gross position value per bar, each symbol marked at its last close so far."""
    marks = pd.DataFrame(close, copy=False).ffill().to_numpy()
    return np.nansum(np.abs(positions) * marks, axis=1)  # NaN marks only before a first bar


def _event_detail(kind: int, equity: float, reference: float) -> str:
    if kind == 0:
        return (f"equity {equity:,.2f} below the session start {reference:,.2f} less the daily "
                "loss limit: no entries or increases until the next session")
    return (f"equity {equity:,.2f} is {1 - equity / reference:.2%} below the peak "
            f"{reference:,.2f}: flatten and stop trading")


def run_backtest(
    bars: pd.DataFrame,
    targets: pd.DataFrame,
    config: EngineConfig,
    session: pd.Series | None = None,
) -> BacktestResult:
    """Backtest ``targets`` (``ts, symbol, target_weight``) on session ``bars``.

    A target decided at ``ts`` fills at the open of the symbol's first bar with
    ``ts_event >= ts`` (``fill="next_open"``) or at the close of the bar that just closed
    (``fill="close"``); see :func:`target_matrix`. ``session`` labels bars by time for the
    daily loss limit and the borrow fee (default: the New York date).
    """
    grid = bar_grid(bars)
    tw = target_matrix(targets, grid, config)
    sess = session_codes(grid.ts, session)
    return _frames(grid, run_kernel(grid, tw, sess, config))


def round_trip_frame(fills: pd.DataFrame, marks: dict[str, float]) -> pd.DataFrame:
    """Round trips (the :class:`BacktestResult` ``trades`` layout) from a fills frame with
    ``ts, symbol, qty`` (signed), ``price, commission, reason``; open trades are marked at
    ``marks`` (the last price per symbol)."""
    columns = ["symbol", "side", "entry_ts", "exit_ts", "qty", "entry_price", "exit_price",
               "pnl", "return_pct", "exit_reason"]
    if fills.empty:
        return pd.DataFrame(columns=columns)
    ts = pd.DatetimeIndex(sorted(set(fills["ts"])))
    symbols = sorted(set(fills["symbol"]))
    code = {s: j for j, s in enumerate(symbols)}
    reason = {r: k for k, r in enumerate(REASONS)}
    arr = np.column_stack([
        ts.get_indexer(pd.DatetimeIndex(fills["ts"])).astype(float),
        fills["symbol"].map(code).to_numpy(float),
        fills["qty"].to_numpy(float), fills["price"].to_numpy(float),
        fills["commission"].to_numpy(float),
        fills["reason"].map(lambda r: reason.get(r, _SIGNAL)).to_numpy(float),
    ])
    mark = np.array([marks.get(s, np.nan) for s in symbols], dtype=float)
    trades = round_trips(arr, len(symbols), mark)
    return _trade_frame(ts, np.array(symbols, dtype=object), trades)[columns]
