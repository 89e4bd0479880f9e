"""``tradebot backtest``: backtest a target-weight series on bars from a file."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tradebot.cli.context import state

console = Console()



def backtest(
    bars: Annotated[Path, typer.Option(
        "--bars", help="OHLCV file (CSV, CSV.gz, Parquet; the layouts 'ingest file' reads).",
        show_default=False, dir_okay=False)],
    signals: Annotated[Path, typer.Option(
        "--signals", help="CSV or Parquet with columns ts, symbol, target_weight (share of "
        "equity; a row holds until the next one of its symbol).", show_default=False,
        dir_okay=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
    commission_bps: Annotated[float | None, typer.Option(
        min=0.0, help="Override broker.commission_bps.", show_default=False)] = None,
    slippage_bps: Annotated[float | None, typer.Option(
        min=0.0, help="Override broker.slippage_bps.", show_default=False)] = None,
    fill: Annotated[str | None, typer.Option(
        help="Override backtest.fill: next_open (the open after the decision) or close (the "
        "close of the bar that just closed).", show_default=False)] = None,
    symbol: Annotated[str | None, typer.Option(
        help="Symbol of a bars file without a symbol column.", show_default=False)] = None,
    timezone: Annotated[str | None, typer.Option(
        help="Zone of times without an offset (default: market.timezone).",
        show_default=False)] = None,
    extended_hours: Annotated[bool, typer.Option(
        "--extended-hours", help="Keep bars outside the regular session.")] = False,
    report: Annotated[Path | None, typer.Option(
        help="HTML report path (default: <home>/reports/backtest-<signals name>.html).",
        show_default=False, dir_okay=False)] = None,
) -> None:
    """Backtest a target-weight series on bars, with the configured costs and risk exits.

    Fills, commission, slippage, volume cap, shorting and stops come from [broker], [backtest] and [risk]; flags override the main cost settings. Prints the metrics (or JSON) and writes an HTML report with the equity curve, drawdown, monthly returns and trades.
    """  # noqa: E501 (one line per paragraph: rich keeps line breaks in --help)
    from tradebot.kernel.clock import MarketClock
    from tradebot.kernel.errors import ConfigError
    from tradebot.kernel.home import Home
    from tradebot.kernel.settings import load_settings
    from tradebot.pipelines.backtest import (
        backtest_signals,
        engine_config,
        load_signals,
        settings_summary,
    )
    from tradebot.pipelines.backtest_report import write_backtest_report
    from tradebot.sources.files import read_bars_file

    settings = load_settings(state.config)
    if fill is not None and fill not in ("next_open", "close"):
        raise ConfigError(f"--fill must be next_open or close, got {fill!r}")
    zone = timezone or settings.market.timezone
    config = engine_config(settings, commission_bps=commission_bps, slippage_bps=slippage_bps,
                           fill=fill)
    loaded = read_bars_file(bars, symbol=symbol, timezone=zone)
    frame = loaded.fetched.frame
    targets = load_signals(signals, zone)
    clock = None if extended_hours else MarketClock(settings.market.calendar,
                                                     settings.market.bar_minutes)
    with console.status(f"backtesting {len(targets):,} signals on {len(frame):,} bars"):
        run = backtest_signals(frame, targets, config, settings.benchmark, clock)
    home = Home.from_settings(settings)
    path = report or home.root / "reports" / f"backtest-{signals.stem}.html"
    write_backtest_report(path, f"Backtest: {signals.name} on {bars.name}", run.metrics,
                          run.result.equity, run.benchmark_close, run.result.trades, run.daily,
                          run.monthly, settings_summary(config))
    rejected = len(loaded.fetched.rejected)
    notes = run.notes + ([f"{rejected} bar rows could not be read (quarantine them with "
                          "'tradebot ingest file')"] if rejected else [])
    if as_json:
        payload: dict[str, Any] = {k: _finite(v) for k, v in run.metrics.items()}
        payload |= {"report": str(path), "notes": notes,
                    "settings": {k: _finite(v) for k, v in vars(config).items()}}
        typer.echo(json.dumps(payload, indent=2))
        return
    _print(run.metrics, notes, path)


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: undefined figures are null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _print(metrics: dict[str, float], notes: list[str], path: Path) -> None:
    from tradebot.pipelines.backtest_report import fmt_value

    table = Table(title="backtest", show_header=False)
    table.add_column("metric", style="cyan")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, fmt_value(key, value))
    console.print(table)
    for note in notes:
        console.print(f"note: {escape(note)}")
    console.print(f"report [bold]{escape(str(path))}[/]", highlight=False)
