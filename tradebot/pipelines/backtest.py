"""Backtest a target-weight series on bars: costs and fills from the config, metrics, report.

``tradebot backtest --bars FILE --signals FILE`` lands here: the bars come through the file
importer (every layout it reads), the signals are ``ts, symbol, target_weight`` rows, and the
run goes through the compiled engine (:mod:`tradebot.serving.backtest_engine`) with the
broker's commission and slippage, the ``[backtest]`` fill model and the ``[risk]`` exits
(stop-loss, take-profit, trailing stop, daily loss, max-drawdown shutdown).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradebot.kernel.clock import MarketClock
from tradebot.kernel.errors import ConfigError, DataError
from tradebot.kernel.settings import TradebotSettings
from tradebot.pipelines.backtest_metrics import compute_metrics, daily_breakdown, monthly_returns
from tradebot.serving.backtest_engine import BacktestResult, EngineConfig, run_backtest
from tradebot.sources.files import parse_timestamps

SIGNAL_COLUMNS = ("ts", "symbol", "target_weight")


def engine_config(settings: TradebotSettings, **overrides: Any) -> EngineConfig:
    """The engine's costs and rules from the config; ``overrides`` (not None) win."""
    broker, bt, risk = settings.broker, settings.backtest, settings.risk
    values: dict[str, Any] = {
        "initial_cash": broker.initial_cash,
        "commission_per_share": broker.commission_per_share,
        "commission_bps": broker.commission_bps,
        "slippage_bps": broker.slippage_bps,
        "spread_bps": broker.spread_bps,
        "slippage_vol_multiplier": bt.slippage_vol_multiplier,
        "fill": bt.fill,
        "fractional": bt.fractional,
        "volume_cap_pct": bt.volume_cap_pct,
        "allow_short": bt.allow_short,
        "borrow_fee_bps_per_year": bt.borrow_fee_bps_per_year,
        "stop_loss_pct": risk.stop_loss_pct,
        "take_profit_pct": risk.take_profit_pct,
        "trailing_stop_pct": risk.trailing_stop_pct,
        "daily_loss_pct": risk.daily_loss_pct,
        "max_drawdown_pct": risk.max_drawdown_pct,
    }
    values |= {k: v for k, v in overrides.items() if v is not None}
    try:
        return EngineConfig(**values)
    except ValueError as exc:
        raise ConfigError(f"backtest settings: {exc}") from None


def load_signals(path: Path, timezone: str) -> pd.DataFrame:
    """``ts, symbol, target_weight`` from a CSV or Parquet file. Times without an offset are
    read in ``timezone``; every problem is a DataError naming the file and the rows."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such signals file")
    try:
        if path.name.lower().endswith((".parquet", ".pq")):
            raw = pd.read_parquet(path)
        else:
            raw = pd.read_csv(path, dtype={"symbol": str})
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{path.name}: not a readable signals file ({exc})") from None
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in SIGNAL_COLUMNS if c not in raw.columns]
    if missing:
        raise DataError(
            f"{path.name}: missing column(s) {missing}; expected {list(SIGNAL_COLUMNS)}"
        )
    if raw.empty:
        raise DataError(f"{path.name}: no signal rows")
    frame = raw[list(SIGNAL_COLUMNS)].copy()
    times, why, _ = parse_timestamps(frame["ts"].astype(str).str.strip(), timezone, path.name)
    bad = frame.index[why != ""]
    if len(bad):
        raise DataError(f"{path.name}: unreadable ts on line(s) {_lines(bad)}: {why[bad[0]]}")
    frame["ts"] = times
    frame["symbol"] = frame["symbol"].astype(str).str.strip().str.upper()
    weights = pd.to_numeric(frame["target_weight"], errors="coerce")
    bad = frame.index[~np.isfinite(weights.to_numpy(float))]
    if len(bad):
        raise DataError(f"{path.name}: target_weight is not a finite number on line(s) "
                        f"{_lines(bad)}")
    frame["target_weight"] = weights.astype(float)
    duplicated = frame.index[frame.duplicated(["ts", "symbol"], keep=False)]
    if len(duplicated):
        raise DataError(f"{path.name}: several target weights for the same ts and symbol on "
                        f"line(s) {_lines(duplicated)}")
    return frame.sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)


def _lines(index: pd.Index) -> str:
    shown = ", ".join(str(i + 2) for i in index[:5])  # +1 header, +1 one-based
    return shown + (f" and {len(index) - 5} more" if len(index) > 5 else "")


@dataclass
class BacktestRun:
    """A finished backtest: the engine's result and everything computed from it."""

    result: BacktestResult
    config: EngineConfig
    metrics: dict[str, float]
    daily: pd.DataFrame
    monthly: pd.DataFrame
    benchmark_close: pd.Series | None
    notes: list[str] = field(default_factory=list)


def session_bars(bars: pd.DataFrame, clock: MarketClock | None) -> tuple[pd.DataFrame, int]:
    """Only bars inside the regular session (None: all, for 24/7 markets); and how many were
    dropped."""
    if clock is None or bars.empty:
        return bars, 0
    inside = clock.in_session(pd.to_datetime(bars["ts_event"], utc=True))
    return bars[inside].reset_index(drop=True), int((~inside).sum())


def backtest_signals(
    bars: pd.DataFrame, signals: pd.DataFrame, config: EngineConfig, benchmark: str,
    clock: MarketClock | None = None,
) -> BacktestRun:
    """Run ``signals`` on ``bars`` and compute the metrics, per-day and per-month tables.

    ``benchmark`` is the buy-and-hold comparison when its bars are in ``bars`` (information
    ratio, report); otherwise those figures are NaN and a note says why."""
    notes: list[str] = []
    bars, dropped = session_bars(bars, clock)
    if dropped:
        notes.append(f"{dropped:,} bars outside the regular session were left out")
    if bars.empty:
        raise DataError("no bars inside the regular session to backtest on")
    unknown = sorted(set(signals["symbol"]) - set(bars["symbol"]))
    if unknown:
        raise DataError(f"signals name symbol(s) without bars: {', '.join(unknown[:10])}")
    if (signals["target_weight"] < 0).any() and not config.allow_short:
        raise ConfigError("the signals hold negative target weights (shorts): set "
                          "backtest.allow_short = true to simulate them")
    result = run_backtest(bars, signals, config)
    close = bars[bars["symbol"] == benchmark]
    bench = (pd.Series(close["close"].to_numpy(float),
                       index=pd.DatetimeIndex(pd.to_datetime(close["ts_event"], utc=True)))
             if len(close) else None)
    if bench is None:
        notes.append(f"benchmark {benchmark} is not in the bars: no information ratio")
    metrics = compute_metrics(result.equity, result.trades, result.fills,
                              result.gross_exposure, bench, config.initial_cash)
    daily = daily_breakdown(result.equity, result.fills, result.trades,
                            initial_cash=config.initial_cash)
    monthly = monthly_returns(result.equity, initial_cash=config.initial_cash)
    return BacktestRun(result, config, metrics, daily, monthly, bench, notes)


def settings_summary(config: EngineConfig) -> dict[str, str]:
    """The costs and rules of a run, for the report."""
    pct = ("stop_loss_pct", "take_profit_pct", "trailing_stop_pct", "daily_loss_pct",
           "max_drawdown_pct", "volume_cap_pct")
    out = {}
    for key, value in vars(config).items():
        if key in pct:
            out[key] = "off" if not value else f"{value:.2%}"
        elif isinstance(value, float):
            out[key] = f"{value:,.4g}"
        else:
            out[key] = str(value)
    return out
