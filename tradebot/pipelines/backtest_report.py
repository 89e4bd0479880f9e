"""Standalone HTML backtest report: metrics, equity vs benchmark, drawdown, monthly heatmap,
daily breakdown and trades (plots as embedded PNG, no external assets, all text escaped)."""

from __future__ import annotations

import base64
import io
import math
import os
from collections.abc import Callable, Mapping
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
import numpy as np
import pandas as pd

from tradebot.pipelines.backtest_metrics import (
    METRIC_KEYS,
    NY,
    benchmark_equity,
    drawdown_series,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_TRADE_ROWS = 500
MAX_DAILY_ROWS = 2000
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_PCT = {"total_return", "cagr", "volatility", "benchmark_return", "max_drawdown", "win_rate",
        "exposure", "return", "drawdown", "return_pct"}  # fmt: skip
_MONEY = {"initial_equity", "final_equity", "avg_win", "avg_loss", "start_equity",
          "end_equity", "traded_notional", "entry_price", "exit_price"}  # fmt: skip
_SIGNED = {"pnl"}
_COUNT = {"n_trades", "n_fills", "days", "n_trades_closed"}
_LABELS = {
    "initial_equity": "Initial equity",
    "final_equity": "Final equity",
    "total_return": "Total return",
    "cagr": "CAGR",
    "volatility": "Volatility (annual)",
    "sharpe": "Sharpe ratio",
    "sortino": "Sortino ratio",
    "information_ratio": "Information ratio",
    "benchmark_return": "Benchmark return (buy and hold)",
    "max_drawdown": "Max drawdown",
    "max_drawdown_duration_days": "Max drawdown duration (days)",
    "calmar": "Calmar ratio",
    "win_rate": "Win rate",
    "profit_factor": "Profit factor",
    "avg_win": "Average win",
    "avg_loss": "Average loss",
    "exposure": "Exposure (share of bars)",
    "turnover": "Turnover (notional / mean equity)",
    "turnover_annual": "Turnover (annualised)",
    "n_trades": "Closed trades",
    "n_fills": "Fills",
    "days": "Days",
}
_TRADE_COLUMNS = (
    "symbol",
    "side",
    "entry_ts",
    "exit_ts",
    "qty",
    "entry_price",
    "exit_price",
    "pnl",
    "return_pct",
    "exit_reason",
)
Cell = tuple[str, str]  # (text, css class)


def fmt_value(key: str, value: object) -> str:
    """Format one figure by its name: percent for fractions, money, counts; NaN as ``n/a``."""
    if not isinstance(value, int | float | np.number) or isinstance(value, bool):
        return "" if value is None else str(value)
    v = float(value)
    if math.isnan(v):
        return "n/a"
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    if key in _PCT:
        return f"{v * 100:.2f}%"
    if key in _SIGNED:
        return f"{v:+,.2f}"
    if key in _MONEY:
        return f"{v:,.2f}" if round(v, 2) == v or abs(v) >= 1000 else f"{v:,.4f}"
    if key in _COUNT:
        return f"{round(v):,}"
    if key == "qty":
        return f"{v:,.6f}".rstrip("0").rstrip(".")
    return f"{v:,.2f}" if abs(v) >= 1 or v == 0 else f"{v:.3g}"


def _css(key: str, value: object) -> str:
    numeric = isinstance(value, int | float | np.number) and not isinstance(value, bool)
    if not numeric:
        return ""
    sign = ""
    if key in _SIGNED | {"return", "return_pct"} and not math.isnan(float(value)):
        sign = " pos" if float(value) > 0 else (" neg" if float(value) < 0 else "")
    return "n" + sign


def _local_time(value: object, tz: str) -> str:
    ts = pd.Timestamp(value) if value is not None else pd.NaT
    if pd.isna(ts):
        return "open"
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts
    return ts.tz_convert(tz).strftime("%Y-%m-%d %H:%M")


def _date_text(day: object) -> str:
    return day.date().isoformat() if isinstance(day, pd.Timestamp) else str(day)


def _frame_rows(
    frame: pd.DataFrame, columns: list[str], limit: int, fmt: Callable[[str, object], Cell]
) -> tuple[list[list[Cell]], int]:
    """Formatted cells of the first ``limit`` rows and the number of rows left out."""
    shown = frame.head(limit)
    rows = [
        [fmt(c, v) for c, v in zip(columns, rec, strict=True)]
        for rec in shown[columns].itertuples(index=False, name=None)
    ]
    return rows, max(len(frame) - limit, 0)


def _trade_cell(tz: str) -> Callable[[str, object], Cell]:
    def cell(key: str, value: object) -> Cell:
        if key.endswith("_ts"):
            text = _local_time(value, tz)
            return ("" if key == "entry_ts" and text == "open" else text), ""
        return fmt_value(key, value), _css(key, value)

    return cell


def _png(fig: Figure) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(height: float) -> Figure:
    """A bare Agg-backed figure (no pyplot global state), as in ``report_render``."""
    from matplotlib.figure import Figure

    return Figure(figsize=(9, height), dpi=100, layout="constrained")


def _naive_local(index: pd.DatetimeIndex, tz: str) -> pd.DatetimeIndex:
    return index.tz_convert(tz).tz_localize(None)


def equity_png(equity: pd.Series, bench: pd.Series | None, tz: str = NY) -> str | None:
    """Equity curve with the benchmark buy-and-hold curve (already scaled), base64 PNG."""
    if equity.empty:
        return None
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    fig = _figure(3.4)
    ax = fig.add_subplot()
    ax.plot(
        _naive_local(equity.index, tz), equity.to_numpy(), color="#1f6feb", lw=1.4, label="Strategy"
    )
    if bench is not None:
        ax.plot(
            _naive_local(bench.index, tz),
            bench.to_numpy(),
            color="#888888",
            lw=1.2,
            ls="--",
            label="Benchmark buy and hold",
        )
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    ax.set_ylabel("Equity")
    ax.set_title(f"Equity ({tz})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return _png(fig)


def drawdown_png(drawdown: pd.Series, tz: str = NY) -> str | None:
    """Under-water curve (drawdown as negative percent), base64 PNG."""
    if drawdown.dropna().empty:
        return None
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    fig = _figure(2.6)
    ax = fig.add_subplot()
    xs, ys = _naive_local(drawdown.index, tz), -drawdown.to_numpy() * 100
    ax.fill_between(xs, ys, 0, color="#cf222e", alpha=0.3, lw=0)
    ax.plot(xs, ys, color="#cf222e", lw=1)
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set_ylabel("Drawdown (%)")
    ax.set_title("Drawdown from running peak", fontsize=10)
    ax.grid(alpha=0.3)
    return _png(fig)


def monthly_png(monthly: pd.DataFrame) -> str | None:
    """Heatmap of monthly returns (years x months, percent labels), base64 PNG."""
    values = monthly.reindex(columns=range(1, 13)).to_numpy(dtype=float) * 100
    if values.size == 0 or np.isnan(values).all():
        return None
    from matplotlib import colormaps

    span = max(float(np.nanmax(np.abs(values))), 0.01)
    fig = _figure(0.45 * len(monthly) + 1.3)
    ax = fig.add_subplot()
    cmap = colormaps["RdYlGn"].with_extremes(bad="#f6f8fa")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=-span, vmax=span, aspect="auto")
    for (i, j), v in np.ndenumerate(values):
        if not math.isnan(v):
            ax.text(j, i, f"{v:+.1f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(12), MONTHS)
    ax.set_yticks(range(len(monthly)), [str(y) for y in monthly.index])
    ax.set_title("Monthly returns (%)", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.03)
    return _png(fig)


def _monthly_rows(monthly: pd.DataFrame) -> list[list[Cell]]:
    rows = []
    for year, rec in monthly.reindex(columns=range(1, 13)).iterrows():
        rets = [float(v) for v in rec.to_numpy()]
        done = [r for r in rets if not math.isnan(r)]
        total = float(np.prod([1 + r for r in done]) - 1) if done else float("nan")
        cells = [(fmt_value("return", r), _css("return", r)) for r in [*rets, total]]
        rows.append([(str(year), ""), *cells])
    return rows


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    source = (files("tradebot.pipelines") / "templates" / "backtest.html.j2").read_text("utf-8")
    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    return env.from_string(source)


def render_backtest_html(
    title: str,
    metrics: Mapping[str, object],
    equity: pd.Series,
    benchmark_close: pd.Series | None,
    trades: pd.DataFrame,
    daily: pd.DataFrame,
    monthly: pd.DataFrame,
    settings_summary: Mapping[str, str],
    tz: str = NY,
) -> str:
    """The report page as a string (see :func:`write_backtest_report`)."""
    eq = equity.dropna().astype(float).sort_index()
    eq.index = pd.DatetimeIndex(pd.to_datetime(eq.index, utc=True))
    start = metrics.get("initial_equity")
    initial = float(start) if isinstance(start, int | float) and math.isfinite(start) else None
    if initial is None and not eq.empty:
        initial = float(eq.iloc[0])
    bench = None if eq.empty else benchmark_equity(eq.index, benchmark_close, initial or 0.0)
    keys = [k for k in METRIC_KEYS if k in metrics] + [k for k in metrics if k not in METRIC_KEYS]
    trade_cols = [c for c in _TRADE_COLUMNS if c in trades.columns]
    trade_cols += [c for c in trades.columns if c not in _TRADE_COLUMNS]
    trade_rows, trades_hidden = _frame_rows(trades, trade_cols, MAX_TRADE_ROWS, _trade_cell(tz))
    daily_cols = [str(c) for c in daily.columns]
    flat_daily = daily.reset_index(drop=True).set_axis(daily_cols, axis=1)
    daily_rows, daily_hidden = _frame_rows(
        flat_daily, daily_cols, MAX_DAILY_ROWS, lambda k, v: (fmt_value(k, v), _css(k, v))
    )
    dates = [_date_text(d) for d in daily.index[:MAX_DAILY_ROWS]]
    return _template().render(
        title=title,
        tz=tz,
        metrics=[(_LABELS.get(k, k), k, fmt_value(k, metrics[k])) for k in keys],
        cards=[
            (_LABELS[k], fmt_value(k, metrics[k]))
            for k in ("total_return", "cagr", "sharpe", "max_drawdown", "benchmark_return")
            if k in metrics
        ],
        settings=[(str(k), str(v)) for k, v in settings_summary.items()],
        equity_b64=equity_png(eq, bench, tz),
        drawdown_b64=drawdown_png(drawdown_series(eq, initial), tz),
        monthly_b64=monthly_png(monthly),
        monthly_rows=_monthly_rows(monthly),
        monthly_header=["Year", *MONTHS, "Year total"],
        trade_cols=trade_cols,
        trade_rows=trade_rows,
        trades_total=len(trades),
        trades_hidden=trades_hidden,
        daily_header=["date", *daily_cols],
        daily_rows=[[(d, ""), *row] for d, row in zip(dates, daily_rows, strict=True)],
        daily_hidden=daily_hidden,
    )


def write_backtest_report(
    path: Path,
    title: str,
    metrics: dict,
    equity: pd.Series,
    benchmark_close: pd.Series | None,
    trades: pd.DataFrame,
    daily: pd.DataFrame,
    monthly: pd.DataFrame,
    settings_summary: dict[str, str],
) -> Path:
    """Write one self-contained HTML report to ``path`` atomically (creating its folder).

    ``equity`` is per bar (UTC); the benchmark close is shown as buy-and-hold worth
    ``metrics["initial_equity"]`` at the first bar; ``daily`` / ``monthly`` come from
    :func:`~tradebot.pipelines.backtest_metrics.daily_breakdown` /
    :func:`~tradebot.pipelines.backtest_metrics.monthly_returns`. The trades table shows at
    most :data:`MAX_TRADE_ROWS` rows (the daily table :data:`MAX_DAILY_ROWS`) and says how many
    more there are. Times are shown in New York time.
    """
    path = Path(path)
    html = render_backtest_html(
        title, metrics, equity, benchmark_close, trades, daily, monthly, settings_summary
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, path)
    return path
