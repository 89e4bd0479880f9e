"""HTML backtest report: metrics, three embedded plots, tables, row cap and escaping."""

from __future__ import annotations

import base64
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from tradebot.pipelines.backtest_metrics import (
    METRIC_KEYS,
    compute_metrics,
    daily_breakdown,
    monthly_returns,
)
from tradebot.pipelines.backtest_report import MAX_TRADE_ROWS, fmt_value, write_backtest_report

CASH = 10_000.0
EVIL = "<script>alert('x')</script>"
PNG_RE = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def bars(n: int = 120) -> pd.DatetimeIndex:
    """Two bars per New York session day (15:00 and 21:00 UTC) over about two months."""
    days = pd.bdate_range("2024-01-02", periods=n // 2)
    times = [d + pd.Timedelta(hours=h) for d in days for h in (15, 21)]
    return pd.DatetimeIndex(times, tz="UTC")


def inputs(n_trades: int) -> dict[str, object]:
    ts = bars()
    rng = np.random.default_rng(7)
    equity = pd.Series(CASH * np.cumprod(1 + rng.normal(0.001, 0.01, len(ts))), index=ts)
    bench = pd.Series(400 * np.cumprod(1 + rng.normal(0.0005, 0.01, len(ts))), index=ts)
    symbols = [EVIL if i == 0 else f"SYM{i}" for i in range(n_trades)]
    trades = pd.DataFrame(
        {
            "symbol": symbols,
            "side": ["long"] * n_trades,
            "entry_ts": [ts[i % len(ts)] for i in range(n_trades)],
            "exit_ts": [ts[(i + 1) % len(ts)] for i in range(n_trades - 1)] + [pd.NaT],
            "qty": [10.0] * n_trades,
            "entry_price": [100.0] * n_trades,
            "exit_price": [101.5] * n_trades,
            "pnl": [15.0 if i % 3 else -7.25 for i in range(n_trades)],
            "return_pct": [0.015] * n_trades,
            "exit_reason": ["signal & <stop>"] * n_trades,
        }
    )
    fills = pd.DataFrame(
        {"ts": ts[:4], "symbol": "SYM1", "qty": [10.0, -10.0, 5.0, -5.0], "price": 100.0}
    )
    metrics = compute_metrics(equity, trades, fills, None, bench, CASH)
    return {
        "title": f"Backtest of {EVIL}",
        "metrics": metrics,
        "equity": equity,
        "benchmark_close": bench,
        "trades": trades,
        "daily": daily_breakdown(equity, fills, trades, initial_cash=CASH),
        "monthly": monthly_returns(equity, initial_cash=CASH),
        "settings_summary": {"costs": "1 bp + $0.005/share & <min $1>", "fill mode": "next open"},
    }


def write(tmp_path: Path, **overrides: object) -> str:
    args = inputs(12) | overrides
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = write_backtest_report(tmp_path / "out" / "backtest.html", **args)  # type: ignore[arg-type]
    assert path == tmp_path / "out" / "backtest.html" and path.is_file()
    assert not list(path.parent.glob(".*.tmp"))
    return path.read_text("utf-8")


def test_report_has_metrics_plots_tables_and_settings(tmp_path: Path) -> None:
    args = inputs(12)
    html = write(tmp_path, **args)
    metrics = args["metrics"]
    assert isinstance(metrics, dict)
    for key in METRIC_KEYS:
        assert f"<code>{key}</code>" in html
    assert "Sharpe ratio" in html and "Max drawdown" in html
    assert f">{metrics['total_return'] * 100:.2f}%<" in html
    assert f">{metrics['final_equity']:,.2f}<" in html
    assert f">{metrics['sharpe']:,.2f}<" in html or f">{metrics['sharpe']:.3g}<" in html
    assert f">{metrics['n_trades']}<" in html and metrics["n_trades"] == 11
    assert ">n/a<" in html  # exposure without a positions series
    plots = PNG_RE.findall(html)
    assert len(plots) == 3
    assert html.count("data:image/png;base64,") == 3
    assert all(base64.b64decode(p).startswith(b"\x89PNG\r\n\x1a\n") for p in plots)
    assert html.count('<tr class="trade">') == 12
    assert ">SYM5<" in html and ">+15.00<" in html and ">-7.25<" in html
    assert ">1.50%<" in html  # return_pct as a fraction
    assert ">open<" in html  # the last trade has no exit
    assert "2024-01-02 10:00" in html  # first entry, in New York time
    assert "2024-01-02</td>" in html and "Daily breakdown (60 days)" in html
    assert "<th>fill mode</th><td>next open</td>" in html
    assert "Jan" in html and "Year total" in html


def test_user_strings_are_escaped(tmp_path: Path) -> None:
    html = write(tmp_path)
    assert "<script>" not in html and "<stop>" not in html and "<min $1>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "<title>Backtest of &lt;script&gt;" in html
    assert "signal &amp; &lt;stop&gt;" in html
    assert "&amp; &lt;min $1&gt;" in html


def test_trades_table_is_capped_with_a_note(tmp_path: Path) -> None:
    args = inputs(MAX_TRADE_ROWS + 37)
    html = write(tmp_path, **args)
    assert html.count('<tr class="trade">') == MAX_TRADE_ROWS
    assert f"37 more trades not shown (first {MAX_TRADE_ROWS} listed)" in html
    assert f"Trades ({MAX_TRADE_ROWS + 37})" in html


def test_empty_backtest_still_renders(tmp_path: Path) -> None:
    empty = pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC"))
    trades = pd.DataFrame(columns=["symbol", "exit_ts", "pnl"])
    html = write(
        tmp_path,
        metrics=compute_metrics(empty, trades, None, None, None, CASH),
        equity=empty,
        benchmark_close=None,
        trades=trades,
        daily=daily_breakdown(empty, None, trades),
        monthly=monthly_returns(empty),
        settings_summary={},
    )
    assert "data:image/png" not in html
    assert "No trades." in html and "No equity data." in html and "No settings recorded." in html


def test_report_without_benchmark(tmp_path: Path) -> None:
    html = write(tmp_path, benchmark_close=None)
    assert len(PNG_RE.findall(html)) == 3


def test_fmt_value() -> None:
    assert fmt_value("total_return", 0.1234) == "12.34%"
    assert fmt_value("max_drawdown", float("nan")) == "n/a"
    assert fmt_value("final_equity", 1234567.891) == "1,234,567.89"
    assert fmt_value("pnl", -3.5) == "-3.50" and fmt_value("pnl", 3.5) == "+3.50"
    assert fmt_value("n_trades", 1200) == "1,200"
    assert fmt_value("sharpe", 1.234) == "1.23" and fmt_value("turnover", 0.01234) == "0.0123"
    assert fmt_value("profit_factor", float("inf")) == "∞"
    assert fmt_value("qty", 12.5) == "12.5" and fmt_value("qty", 100.0) == "100"
    assert fmt_value("symbol", "AAA") == "AAA"
