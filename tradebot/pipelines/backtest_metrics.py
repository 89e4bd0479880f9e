"""Backtest performance metrics from plain frames (equity, trades, fills), no engine import.

Conventions shared by every function here:

* Timestamps are bar times in UTC (tz-naive indexes are taken as UTC). A "day" is a New York
  session date: bars are grouped by their date in ``America/New_York``.
* Daily returns come from :func:`daily_equity`; the first day's return is measured against the
  starting capital, so ``prod(1 + r) - 1`` equals the total return.
* Fractions are plain fractions (0.05 = 5 %); drawdowns are positive fractions.
* A metric that is undefined for the inputs is ``NaN`` (never an exception, never a numpy
  warning): empty equity, one day (no standard deviation), flat equity (zero volatility), no
  closed trades, no benchmark, and so on. Callers that need JSON map ``NaN`` to ``null``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

NY = "America/New_York"
_EPS = 1e-12
_NS_PER_DAY = 86_400 * 10**9
NAN = float("nan")

METRIC_KEYS: tuple[str, ...] = (
    "initial_equity",
    "final_equity",
    "total_return",
    "cagr",
    "volatility",
    "sharpe",
    "sortino",
    "information_ratio",
    "benchmark_return",
    "max_drawdown",
    "max_drawdown_duration_days",
    "calmar",
    "win_rate",
    "profit_factor",
    "avg_win",
    "avg_loss",
    "exposure",
    "turnover",
    "turnover_annual",
    "n_trades",
    "n_fills",
    "days",
)
DAILY_COLUMNS: tuple[str, ...] = (
    "start_equity",
    "end_equity",
    "pnl",
    "return",
    "n_fills",
    "n_trades_closed",
    "traded_notional",
    "drawdown",
)


def _utc(values: object) -> pd.DatetimeIndex:
    """Timestamps as a UTC :class:`~pandas.DatetimeIndex` (naive ones are taken as UTC)."""
    return pd.DatetimeIndex(pd.to_datetime(values, utc=True))


def _clean(series: pd.Series) -> pd.Series:
    """Float values on a sorted UTC index, NaN values dropped."""
    out = pd.Series(np.asarray(series, dtype=float), index=_utc(series.index))
    return out.dropna().sort_index(kind="stable")


def _ratio(num: float, den: float) -> float:
    """``num / den``, or NaN when either is not finite or ``den`` is (numerically) zero."""
    if not (math.isfinite(num) and math.isfinite(den)) or abs(den) <= _EPS:
        return NAN
    return num / den


def _returns(values: np.ndarray, base: float) -> pd.Series:
    """Simple returns of ``values`` with ``base`` as the value before the first one.

    A return whose previous value is not positive is NaN (returns of a ruined account).
    """
    levels = np.concatenate([[base], np.asarray(values, dtype=float)])
    prev, cur = levels[:-1], levels[1:]
    out = np.full(len(cur), np.nan)
    np.divide(cur, prev, out=out, where=np.isfinite(prev) & (prev > 0))
    return pd.Series(out - 1.0)


def _local_dates(ts: object, tz: str) -> np.ndarray:
    return _utc(ts).tz_convert(tz).date


def daily_equity(equity: pd.Series, tz: str = NY) -> pd.Series:
    """Last equity of each New York session date (index ``date``: :class:`datetime.date`)."""
    s = _clean(equity)
    out = s.groupby(s.index.tz_convert(tz).date).last()
    out.index.name = "date"
    return out.rename("equity")


def drawdown_series(equity: pd.Series, initial_cash: float | None = None) -> pd.Series:
    """Per-bar drawdown from the running peak as a positive fraction (UTC index).

    ``initial_cash`` (if given) is the peak before the first bar.
    """
    s = _clean(equity)
    peak = s.cummax()
    if initial_cash is not None and math.isfinite(initial_cash):
        peak = peak.clip(lower=initial_cash)
    values, peaks = s.to_numpy(), peak.to_numpy()
    ratio = np.full(len(values), np.nan)
    np.divide(values, peaks, out=ratio, where=peaks > 0)
    return pd.Series(1.0 - ratio, index=s.index, name="drawdown")


def max_drawdown_duration_days(equity: pd.Series, initial_cash: float | None = None) -> float:
    """Longest time under water in calendar days (fractional): from the last bar at the peak
    to the first bar back at or above it, or to the last bar if it never recovers.

    ``initial_cash`` (if given) is the peak at the first bar's time. NaN for empty equity.
    """
    s = _clean(equity)
    if s.empty:
        return NAN
    t, v = s.index.as_unit("ns").asi8, s.to_numpy()
    start = v[0] if initial_cash is None else initial_cash
    under = v < np.maximum.accumulate(np.concatenate([[start], v]))[1:]
    last_peak = np.maximum.accumulate(np.where(under, t[0], t))
    prev_peak = np.concatenate([[t[0]], last_peak[:-1]])
    under_before = np.concatenate([[False], under[:-1]])
    spans = np.where(under | under_before, t - prev_peak, 0)
    return float(spans.max()) / _NS_PER_DAY


def benchmark_equity(
    index: pd.DatetimeIndex, benchmark_close: pd.Series | None, initial: float
) -> pd.Series | None:
    """Buy-and-hold of the benchmark at the first bar, worth ``initial`` then (UTC index).

    The close is carried forward to each bar time; bars before the benchmark's first close
    take that first close (flat). ``None`` without usable benchmark prices.
    """
    if benchmark_close is None or len(index) == 0:
        return None
    b = _clean(benchmark_close)
    b = b[b > 0]
    b = b[~b.index.duplicated(keep="last")]
    if b.empty:
        return None
    aligned = b.reindex(_utc(index), method="ffill").bfill()
    if aligned.isna().all():
        return None
    return (initial * aligned / aligned.iloc[0]).rename("benchmark")


def _fill_notional(fills: pd.DataFrame | None) -> pd.Series:
    """``|qty * price|`` per fill, indexed by the fill's UTC time."""
    if fills is None or fills.empty or not {"ts", "qty", "price"} <= set(fills.columns):
        return pd.Series(dtype=float, index=_utc([]))
    qty = pd.to_numeric(fills["qty"], errors="coerce").to_numpy(dtype=float)
    price = pd.to_numeric(fills["price"], errors="coerce").to_numpy(dtype=float)
    return pd.Series(np.abs(qty * price), index=_utc(fills["ts"])).fillna(0.0)


def _closed_pnl(trades: pd.DataFrame | None) -> pd.Series:
    """P&L of closed round trips (``exit_ts`` set), NaN P&L dropped."""
    if trades is None or trades.empty or "pnl" not in trades.columns:
        return pd.Series(dtype=float)
    closed = trades[trades["exit_ts"].notna()] if "exit_ts" in trades.columns else trades
    return pd.to_numeric(closed["pnl"], errors="coerce").dropna().astype(float)


def _cagr(growth: float, years: float) -> float:
    """Annualised growth; -1 for a ruined account, NaN if it overflows a float."""
    if growth <= 0:
        return -1.0
    exponent = math.log(growth) / years
    return math.expm1(exponent) if exponent < 709.0 else NAN


def _trade_stats(trades: pd.DataFrame | None) -> dict[str, float]:
    pnl = _closed_pnl(trades)
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    return {
        "win_rate": len(wins) / len(pnl) if len(pnl) else NAN,
        "profit_factor": float(wins.sum() / -losses.sum()) if len(losses) else NAN,
        "avg_win": float(wins.mean()) if len(wins) else NAN,
        "avg_loss": float(losses.mean()) if len(losses) else NAN,
        "n_trades": len(pnl),
    }


def compute_metrics(
    equity: pd.Series,
    trades: pd.DataFrame | None,
    fills: pd.DataFrame | None,
    positions_value: pd.Series | None,
    benchmark_close: pd.Series | None,
    initial_cash: float,
    periods_per_year: int = 252,
    *,
    tz: str = NY,
) -> dict[str, float]:
    """Headline metrics keyed by :data:`METRIC_KEYS` (undefined ones NaN).

    Definitions (``r`` = daily returns, first one against ``initial_cash``; ``A`` =
    ``periods_per_year``):

    * ``initial_equity`` = ``initial_cash``; ``total_return`` = final / initial - 1.
    * ``cagr`` = (final / initial) ** (1 / years) - 1 with years = calendar days between the
      first and last session date / 365.25; NaN for a single day or beyond float range; -1
      if the account is ruined.
    * ``volatility`` = std(r, ddof=1) * sqrt(A); ``sharpe`` = mean(r) / std(r) * sqrt(A)
      (risk-free 0); ``sortino`` = mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(A), NaN without
      a losing day.
    * ``information_ratio`` = mean(r - rb) / std(r - rb) * sqrt(A), ``rb`` the daily returns
      of buying the benchmark at the first bar (:func:`benchmark_equity`);
      ``benchmark_return`` its total return.
    * ``max_drawdown`` (positive fraction) over bar equity, ``initial_cash`` as the first peak;
      ``max_drawdown_duration_days`` see :func:`max_drawdown_duration_days`;
      ``calmar`` = cagr / max_drawdown (NaN without a drawdown).
    * Trades: closed round trips only. ``win_rate`` = share with pnl > 0 (break-even counts
      as not a win); ``profit_factor`` = sum of wins / |sum of losses|, 0 with losses and no
      wins, NaN without a losing trade (no finite value exists); ``avg_win`` / ``avg_loss``
      are mean pnl of winners / losers (``avg_loss`` negative).
    * ``exposure`` = share of ``positions_value`` bars with a non-zero gross position value
      (NaN when not given); ``turnover`` = sum of |fill qty * price| / mean bar equity (how
      many times the average capital was traded), ``turnover_annual`` = turnover * A / days.
    * ``n_fills`` = fill rows; ``days`` = session dates with equity.
    """
    m: dict[str, float] = dict.fromkeys(METRIC_KEYS, NAN)
    initial = float(initial_cash)
    m["initial_equity"] = initial
    m.update(_trade_stats(trades))
    m["n_fills"] = 0 if fills is None else len(fills)
    m["days"] = 0
    s = _clean(equity)
    if s.empty:
        return m
    daily = daily_equity(s, tz)
    r = _returns(daily.to_numpy(), initial)
    ann = math.sqrt(periods_per_year)
    final = float(s.iloc[-1])
    growth = _ratio(final, initial) if initial > 0 else NAN
    years = (daily.index[-1] - daily.index[0]).days / 365.25
    m["final_equity"] = final
    m["days"] = len(daily)
    m["total_return"] = growth - 1.0
    if years > 0 and math.isfinite(growth):
        m["cagr"] = _cagr(growth, years)
    mean, std = float(r.mean()), float(r.std(ddof=1))
    downside = math.sqrt(float((r.clip(upper=0.0) ** 2).mean())) if r.notna().any() else NAN
    m["volatility"] = std * ann
    m["sharpe"] = _ratio(mean, std) * ann
    m["sortino"] = _ratio(mean, downside) * ann
    m["max_drawdown"] = float(drawdown_series(s, initial).max())
    m["max_drawdown_duration_days"] = max_drawdown_duration_days(s, initial)
    m["calmar"] = _ratio(m["cagr"], m["max_drawdown"])
    bench = benchmark_equity(s.index, benchmark_close, initial)
    if bench is not None:
        m["benchmark_return"] = _ratio(float(bench.iloc[-1]), initial) - 1.0
        rb = _returns(daily_equity(bench, tz).to_numpy(), initial)
        active = r - rb
        m["information_ratio"] = _ratio(float(active.mean()), float(active.std(ddof=1))) * ann
    if positions_value is not None and len(positions_value):
        gross = pd.to_numeric(positions_value, errors="coerce").fillna(0.0).abs()
        m["exposure"] = float((gross > 0).mean())
    mean_equity = float(s.mean())
    if mean_equity > 0:
        m["turnover"] = float(_fill_notional(fills).sum()) / mean_equity
    m["turnover_annual"] = m["turnover"] * periods_per_year / len(daily)
    return m


def _count_by_date(ts: pd.Series | pd.DatetimeIndex, dates: pd.Index, tz: str) -> pd.Series:
    local = pd.Series(1, index=_local_dates(ts, tz)) if len(ts) else pd.Series(dtype=int)
    return local.groupby(level=0).sum().reindex(dates, fill_value=0).astype(int)


def daily_breakdown(
    equity: pd.Series,
    fills: pd.DataFrame | None,
    trades: pd.DataFrame | None,
    *,
    initial_cash: float | None = None,
    tz: str = NY,
) -> pd.DataFrame:
    """One row per New York session date (index ``date``) with :data:`DAILY_COLUMNS`.

    ``start_equity`` is the previous day's end (``initial_cash``, else the first bar's equity,
    on the first day); ``return`` = pnl / start_equity; ``n_trades_closed`` counts trades by
    exit date; ``traded_notional`` = sum of |qty * price| of the day's fills; ``drawdown`` is
    the end-of-day drawdown from the running bar-level peak (positive fraction).
    """
    s = _clean(equity)
    if s.empty:
        return pd.DataFrame(columns=list(DAILY_COLUMNS), index=pd.Index([], name="date"))
    daily = daily_equity(s, tz)
    start = daily.shift(1)
    start.iloc[0] = float(s.iloc[0]) if initial_cash is None else float(initial_cash)
    ret = _returns(daily.to_numpy(), float(start.iloc[0])).to_numpy()
    dd = drawdown_series(s, initial_cash)
    notional = _fill_notional(fills)
    by_day = notional.groupby(_local_dates(notional.index, tz)).sum() if len(notional) else None
    closed = (
        trades["exit_ts"].dropna()
        if trades is not None and "exit_ts" in trades.columns
        else pd.Series(dtype="datetime64[ns, UTC]")
    )
    out = pd.DataFrame(
        {
            "start_equity": start,
            "end_equity": daily,
            "pnl": daily - start,
            "return": ret,
            "n_fills": _count_by_date(notional.index, daily.index, tz),
            "n_trades_closed": _count_by_date(closed, daily.index, tz),
            "traded_notional": (
                0.0 if by_day is None else by_day.reindex(daily.index, fill_value=0.0)
            ),
            "drawdown": dd.groupby(dd.index.tz_convert(tz).date).last(),
        },
        index=daily.index,
    )
    return out.astype({"traded_notional": float})


def monthly_returns(
    equity: pd.Series, *, initial_cash: float | None = None, tz: str = NY
) -> pd.DataFrame:
    """Compounded return of each calendar month: index ``year``, columns months 1..12 (NaN
    where the backtest has no days). The first month is measured from ``initial_cash`` (else
    from the first day's closing equity)."""
    daily = daily_equity(equity, tz)
    if daily.empty:
        return pd.DataFrame(columns=list(range(1, 13)), index=pd.Index([], name="year"))
    keys = pd.MultiIndex.from_tuples([(d.year, d.month) for d in daily.index])
    month_end = pd.Series(daily.to_numpy(), index=keys).groupby(level=[0, 1]).last()
    base = float(daily.iloc[0]) if initial_cash is None else float(initial_cash)
    rets = pd.Series(_returns(month_end.to_numpy(), base).to_numpy(), index=month_end.index)
    table = rets.unstack().reindex(columns=list(range(1, 13)))
    table.index.name, table.columns.name = "year", "month"
    return table
