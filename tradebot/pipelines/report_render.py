"""Render a :class:`DailyReport` as Markdown (Prefect artifact), standalone HTML or table rows."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2

from tradebot.pipelines.report import DailyReport

MAX_TRADE_ROWS = 50
_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]|#"})


def fmt_money(value: Decimal) -> str:
    return f"{value:,.2f}"


def fmt_signed(value: Decimal) -> str:
    return f"{value:+,.2f}"


def fmt_qty(value: Decimal) -> str:
    return f"{value.normalize():f}"


def fmt_price(value: Decimal) -> str:
    """Two decimals unless the price carries sub-cent precision (then four)."""
    return f"{value:,.2f}" if value == value.quantize(Decimal("0.01")) else f"{value:,.4f}"


def fmt_pct(part: Decimal, whole: Decimal) -> str:
    return f"{part / whole * 100:+.2f}%" if whole else "n/a"


def _local(report: DailyReport) -> Callable[[datetime], str]:
    zone = ZoneInfo(report.tz)
    return lambda ts: ts.astimezone(zone).strftime("%H:%M:%S")


def _cell(text: object) -> str:
    """One Markdown table cell: single line, no raw HTML tags, Markdown specials backslashed."""
    flat = " ".join(str(text).split())
    return flat.replace("<", "&lt;").replace(">", "&gt;").translate(_MD_SPECIAL)


def _table(header: list[str], rows: Iterable[list[str]], align: str) -> list[str]:
    out = ["| " + " | ".join(header) + " |"]
    out.append("|" + "|".join("---:" if a == "r" else "---" for a in align) + "|")
    out.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)
    return out


def render_markdown(report: DailyReport) -> str:
    """Headline P&L, per-symbol table, trades (capped), positions and risk events."""
    r, hhmm = report, _local(report)
    lines = [f"# Daily P&L report: {r.day.isoformat()}", ""]
    meta = [f"model: {_cell(r.generated_for)}"] if r.generated_for else []
    meta += [f"cycles: {r.n_cycles}", f"orders: {r.n_orders}", f"times in {r.tz}"]
    lines += [" · ".join(meta), ""]
    headline = [
        ["Day P&L", f"{fmt_signed(r.pnl_day)} ({fmt_pct(r.pnl_day, r.equity_start)})"],
        ["Total P&L", fmt_signed(r.pnl_total)],
        ["Realized (day)", fmt_signed(r.realized_day)],
        ["Unrealized (end)", fmt_signed(r.unrealized_end)],
        ["Equity start → end", f"{fmt_money(r.equity_start)} → {fmt_money(r.equity_end)}"],
        ["Commissions (day)", fmt_money(r.commissions_day)],
    ]
    lines += [*_table(["Figure", "Value"], headline, "lr"), "", "## Per symbol", ""]
    if r.per_symbol:
        rows = [
            [
                s.symbol,
                fmt_qty(s.qty_end),
                fmt_price(s.avg_price),
                fmt_price(s.last_price),
                fmt_signed(s.realized_day),
                fmt_signed(s.unrealized),
                str(s.trades),
            ]
            for s in r.per_symbol
        ]
        header = [
            "Symbol",
            "Qty (end)",
            "Avg price",
            "Last price",
            "Realized (day)",
            "Unrealized",
            "Trades",
        ]
        lines += _table(header, rows, "lrrrrrr")
    else:
        lines.append("_No positions or trades._")
    lines += ["", f"## Trades ({len(r.trades)})", ""]
    if r.trades:
        rows = [
            [
                hhmm(t.ts_fill),
                t.symbol,
                t.side,
                fmt_qty(t.qty),
                fmt_price(t.price),
                fmt_money(t.commission),
                fmt_signed(t.realized),
                t.client_order_id,
            ]
            for t in r.trades[:MAX_TRADE_ROWS]
        ]
        header = ["Time", "Symbol", "Side", "Qty", "Price", "Commission", "Realized", "Order"]
        lines += _table(header, rows, "lllrrrrl")
        if len(r.trades) > MAX_TRADE_ROWS:
            lines += ["", f"_... {len(r.trades) - MAX_TRADE_ROWS} more_"]
    else:
        lines.append("_No trades._")
    lines += ["", "## Positions", ""]
    if r.positions:
        rows = [
            [
                p.symbol,
                fmt_qty(p.qty),
                fmt_price(p.avg_price),
                fmt_price(p.last_price),
                fmt_money(p.market_value),
                fmt_signed(p.unrealized),
            ]
            for p in r.positions
        ]
        header = ["Symbol", "Qty", "Avg price", "Last price", "Market value", "Unrealized"]
        lines += _table(header, rows, "lrrrrr")
    else:
        lines.append("_Flat._")
    lines += ["", f"## Risk events ({len(r.risk_events)})", ""]
    if r.risk_events:
        rows = [
            [hhmm(e.ts), e.rule, e.action, e.symbol, e.client_order_id, e.reason]
            for e in r.risk_events
        ]
        lines += _table(["Time", "Rule", "Action", "Symbol", "Order", "Reason"], rows, "llllll")
    else:
        lines.append("_None._")
    return "\n".join(lines) + "\n"


def equity_png(report: DailyReport) -> str | None:
    """The day's equity curve as a base64 PNG, or ``None`` without snapshots.

    Uses a bare :class:`~matplotlib.figure.Figure` on the Agg canvas: no pyplot global state.
    """
    if not report.equity_curve:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import DateFormatter
    from matplotlib.figure import Figure

    zone = ZoneInfo(report.tz)
    xs = [ts.astimezone(zone).replace(tzinfo=None) for ts, _ in report.equity_curve]
    ys = [float(eq) for _, eq in report.equity_curve]
    fig = Figure(figsize=(8, 3), dpi=100, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(xs, ys, color="#1f6feb", linewidth=1.5, marker="o" if len(xs) < 40 else None)
    ax.axhline(float(report.equity_start), color="#888888", linestyle="--", linewidth=1)
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M"))
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    ax.set_ylabel("Equity")
    ax.set_title(f"Equity {report.day.isoformat()} ({report.tz})", fontsize=10)
    ax.grid(alpha=0.3)
    buf = io.BytesIO()
    canvas.print_png(buf)
    return base64.b64encode(buf.getvalue()).decode("ascii")


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    source = (files("tradebot.pipelines") / "templates" / "daily_report.html").read_text("utf-8")
    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    env.filters.update(money=fmt_money, signed=fmt_signed, qty=fmt_qty, price=fmt_price)
    return env.from_string(source)


def render_html(report: DailyReport) -> str:
    """Standalone HTML page (inline CSS, embedded PNG, all trades; no external assets)."""
    return _template().render(
        r=report,
        hhmm=_local(report),
        pct=fmt_pct(report.pnl_day, report.equity_start),
        plot_b64=equity_png(report),
    )


def write_html(report: DailyReport, reports_dir: Path) -> Path:
    """Write ``reports_dir/daily-YYYY-MM-DD.html`` atomically (creating the folder); return it."""
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / f"daily-{report.day.isoformat()}.html"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(render_html(report), encoding="utf-8")
    os.replace(tmp, path)
    return path


def summary_rows(report: DailyReport) -> list[dict[str, str | float | int]]:
    """Per-symbol rows of plain JSON values for a Prefect table artifact."""
    return [
        {
            "symbol": s.symbol,
            "qty_end": float(s.qty_end),
            "avg_price": float(s.avg_price),
            "last_price": float(s.last_price),
            "realized_day": float(s.realized_day),
            "unrealized": float(s.unrealized),
            "trades": s.trades,
        }
        for s in report.per_symbol
    ]
