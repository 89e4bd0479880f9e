"""``tradebot backtest``: a registered model through the live trade cycle on stored data, or a
target-weight series on bars from a file."""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tradebot.cli.context import state

console = Console()



def backtest(
    bars: Annotated[Path | None, typer.Option(
        "--bars", help="OHLCV file (CSV, CSV.gz, Parquet; the layouts 'ingest file' reads). "
        "With --signals: backtest that series instead of a model.", show_default=False,
        dir_okay=False)] = None,
    signals: Annotated[Path | None, typer.Option(
        "--signals", help="CSV or Parquet with columns ts, symbol, target_weight (share of "
        "equity; a row holds until the next one of its symbol).", show_default=False,
        dir_okay=False)] = None,
    model_version: Annotated[str | None, typer.Option(
        "--model-version", help="Registered model version to backtest (default: the champion).",
        show_default=False)] = None,
    start: Annotated[datetime | None, typer.Option(
        formats=["%Y-%m-%d"], help="First session (default: the first after the model's "
        "training data).", show_default=False)] = None,
    end: Annotated[datetime | None, typer.Option(
        formats=["%Y-%m-%d"], help="Last session (default: the newest stored bar's).",
        show_default=False)] = None,
    walk_forward: Annotated[bool, typer.Option(
        "--walk-forward", help="Retrain (Optuna + fit, as 'tradebot train') every "
        "--retrain-every sessions on the data before each window, trade each window out of "
        "sample, stitch the equity; logged as an MLflow run.")] = False,
    retrain_every: Annotated[int | None, typer.Option(
        "--retrain-every", min=1, help="Sessions per walk-forward window (default: "
        "backtest.walk_forward_sessions).", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
    commission_bps: Annotated[float | None, typer.Option(
        min=0.0, help="Override broker.commission_bps.", show_default=False)] = None,
    slippage_bps: Annotated[float | None, typer.Option(
        min=0.0, help="Override broker.slippage_bps.", show_default=False)] = None,
    fill: Annotated[str | None, typer.Option(
        help="Override backtest.fill: next_open (the open after the decision), close (the "
        "close of the bar that just closed) or vwap (the VWAP of the bar after the decision; "
        "its typical price when the file has no vwap column).", show_default=False)] = None,
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
    """Backtest the champion (or --model-version) on stored data, or --signals on --bars.

    A model runs through the live trade cycle (signal, sizing, risk engine, simulated broker) at every decision time of the period, so its orders are the ones the live flow would place. A signal file runs through the compiled engine with the [backtest] fill model and the [risk] exits; --commission-bps, --slippage-bps and --fill override the config for it. Prints the metrics (or JSON) and writes an HTML report with the equity curve, drawdown, monthly returns and trades.
    """  # noqa: E501 (one line per paragraph: rich keeps line breaks in --help)
    if bars is None and signals is None:
        if any(v is not None for v in (commission_bps, slippage_bps, fill, symbol, timezone)):
            raise typer.BadParameter("--commission-bps, --slippage-bps, --fill, --symbol and "
                                     "--timezone apply to --signals backtests; a model backtest "
                                     "takes its costs from the config")
        first, last = (start.date() if start else None), (end.date() if end else None)
        if walk_forward:
            if model_version is not None:
                raise typer.BadParameter("--walk-forward trains its own models: drop "
                                         "--model-version")
            _walk_forward(first, last, retrain_every, as_json, report)
        else:
            if retrain_every is not None:
                raise typer.BadParameter("--retrain-every goes with --walk-forward")
            _backtest_model(model_version, first, last, as_json, report)
        return
    if bars is None or signals is None:
        raise typer.BadParameter("--bars and --signals go together (omit both to backtest the "
                                 "champion on stored data)")
    if model_version is not None or start is not None or end is not None or walk_forward:
        raise typer.BadParameter("--model-version, --start, --end and --walk-forward apply to "
                                 "model backtests, not to --signals")
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
    if fill is not None and fill not in ("next_open", "close", "vwap"):
        raise ConfigError(f"--fill must be next_open, close or vwap, got {fill!r}")
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
    _output(run.metrics, notes, path, as_json, {
        "settings": {k: _finite(v) for k, v in vars(config).items()}})


def _progress(as_json: bool) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    return Progress(*columns, console=console, transient=True, disable=as_json)


def _walk_forward(start: date | None, end: date | None, retrain_every: int | None,
                  as_json: bool, report: Path | None) -> None:
    from tradebot.cli.context import _runtime
    from tradebot.features.feature_store import FeatureStore
    from tradebot.pipelines.walk_forward import log_walk_forward, stored_days, walk_forward

    rt = _runtime()
    settings = rt.settings
    if retrain_every is not None:
        settings = settings.model_copy(update={"backtest": settings.backtest.model_copy(
            update={"walk_forward_sessions": retrain_every})})
    store = FeatureStore(settings, rt.clock, rt.scorer().name)
    every = settings.backtest.walk_forward_sessions
    days = stored_days(rt.db, rt.clock, start, end, every)
    with _progress(as_json) as progress:
        task = progress.add_task("walk-forward", total=None)
        result = walk_forward(rt.db, rt.home, store, days, lambda text, k, n: progress.update(
            task, description=text, completed=k, total=n))
    directory = (report.parent if report else rt.home.root / "reports" /
                 f"walk-forward-{days[0]}-{days[-1]}")
    run_id = log_walk_forward(result, rt.home, store, directory)
    path = directory / "report.html"
    if report is not None:
        path = path.replace(report)
    run = result.backtest.run
    extra = {"walk_forward_windows": len(result.windows), "retrain_every": every,
             "first_session": str(days[0]), "last_session": str(days[-1]),
             "cycles": len(result.backtest.cycles), "orders": len(result.backtest.book.orders),
             "mlflow_run_id": run_id,
             "windows": [{"first_session": str(w.first_session), "last_session":
                          str(w.last_session), "train_rows": w.train_rows,
                          "cv_auc": _finite(w.cv_auc)} for w in result.windows]}
    notes = [*run.notes, f"{len(result.windows)} models, each retrained on the data before its "
             f"{every} sessions; MLflow run {run_id}"]
    _output(run.metrics, notes, path, as_json, extra)


def _backtest_model(version: str | None, start: date | None, end: date | None,
                    as_json: bool, report: Path | None) -> None:
    from tradebot.cli.context import _runtime
    from tradebot.pipelines.backtest import settings_summary
    from tradebot.pipelines.backtest_report import write_backtest_report
    from tradebot.pipelines.model_backtest import backtest_registered

    rt = _runtime()
    with _progress(as_json) as progress:
        task = progress.add_task("trade cycles", total=None)
        done, info = backtest_registered(rt.db, rt.home, rt.feature_store(), version, start, end,
                                         lambda k, n: progress.update(task, completed=k, total=n))
    run = done.run
    days = sorted({rt.clock.session_of(c.ts) for c in done.cycles})
    path = report or rt.home.root / "reports" / f"backtest-{info.name}-v{info.version}.html"
    write_backtest_report(path, f"Backtest: {info.label}, {days[0]} to {days[-1]} (live trade "
                          "cycle)", run.metrics, run.result.equity, run.benchmark_close,
                          run.result.trades, run.daily, run.monthly, settings_summary(run.config))
    extra = {"model": info.name, "model_version": info.version, "first_session": str(days[0]),
             "last_session": str(days[-1]), "cycles": len(done.cycles),
             "orders": len(done.book.orders), "fills": len(done.book.fills),
             "risk_events": len(done.book.risk_events)}
    notes = [*run.notes, f"{info.label}: {len(done.cycles)} trade cycles over {len(days)} "
             f"sessions, {len(done.book.orders)} orders"]
    _output(run.metrics, notes, path, as_json, extra)


def _output(metrics: dict[str, float], notes: list[str], path: Path, as_json: bool,
            extra: dict[str, Any]) -> None:
    if as_json:
        payload: dict[str, Any] = {k: _finite(v) for k, v in metrics.items()}
        payload |= {"report": str(path), "notes": notes} | extra
        typer.echo(json.dumps(payload, indent=2))
        return
    _print(metrics, notes, path)


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
