"""The ``tradebot`` command line (typer + rich)."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from tradebot.cli.backtest import backtest
from tradebot.cli.check import check_app
from tradebot.cli.context import _config_arg, _runtime, state
from tradebot.cli.data import ingest_app, stream_bars, symbols_app
from tradebot.cli.models import models, promote
from tradebot.cli.trade import killswitch, trade
from tradebot.cli.train import train_app
from tradebot.kernel.errors import TradebotError
from tradebot.kernel.settings import load_settings

app = typer.Typer(
    name="tradebot",
    help="Prefect-orchestrated MLOps platform for ML trading bots. Paper/simulated by default.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
report_app = typer.Typer(help="Produce reports.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(report_app, name="report")
app.add_typer(ingest_app, name="ingest")
app.add_typer(symbols_app, name="symbols")
app.command("stream")(stream_bars)
app.add_typer(check_app, name="check")
app.add_typer(train_app, name="train")
app.command("backtest")(backtest)
app.command("models")(models)
app.command("promote")(promote)
app.command("trade")(trade)
app.command("killswitch")(killswitch)

console = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML config file (default: $TRADEBOT_CONFIG, then "
        "./tradebot.toml if present, then built-in defaults).",
        show_default=False,
    ),
]
SymbolsOpt = Annotated[
    list[str] | None,
    typer.Option("--symbol", "-s", help="Restrict to these configured symbols (repeatable)."),
]


@app.callback()
def _main(config: ConfigOpt = None) -> None:
    """Global options."""
    state.config = config.resolve() if config else None


def run() -> None:
    """Entry point: clear message and non-zero exit for every tradebot error."""
    try:
        app(standalone_mode=False)
    except TradebotError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # usage errors carry their own exit code
        show = getattr(exc, "show", None)
        code = getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):  # click's or typer's vendored click's
            show()
            sys.exit(code)
        raise


@config_app.command("show")
def config_show(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of TOML-like text.")
    ] = False,
) -> None:
    """Print the effective configuration with secrets masked."""
    data = load_settings(state.config).masked()
    if as_json:
        console.print_json(json.dumps(data, default=str))
        return
    from tradebot.cli.render import render_config

    console.print(render_config(data), highlight=False)


@app.command()
def init() -> None:
    """Create the state home and apply database migrations."""
    from tradebot.kernel.db import current_revision

    rt = _runtime()
    revision = current_revision(rt.db.engine)
    console.print(f"home [bold]{rt.home.root}[/] ready; database at migration {revision}")


@app.command()
def features(symbols: SymbolsOpt = None) -> None:
    """Build point-in-time feature rows and labels for all stored bars."""
    _runtime()
    from tradebot.flows.features import features_flow

    summary = features_flow(_config_arg(), symbols)
    console.print({k: v for k, v in summary.items() if k != "features"})


@app.command()
def replay() -> None:
    """Replay the held-out sessions through the live trade cycle, every 15 minutes."""
    from tradebot.cli.demo import replay_sessions

    rt = _runtime()
    replay_sessions(rt, _config_arg(), console)


@report_app.command("daily")
def report_daily(
    day: Annotated[
        datetime | None,
        typer.Option(
            "--date", formats=["%Y-%m-%d"], help="Session date (default: latest traded day)."
        ),
    ] = None,
) -> None:
    """Publish the daily P&L report (Prefect artifacts + HTML in <home>/reports)."""
    _runtime()
    from tradebot.flows.report import daily_report_flow

    chosen: date | None = day.date() if day else None
    console.print(daily_report_flow(_config_arg(), chosen))


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")] = False,
) -> None:
    """Summarise the home: champion, row counts, last cycle, equity, P&L, kill switch."""
    from tradebot.pipelines.status import home_status

    rt = _runtime()
    data = home_status(rt.db, rt.home, rt.settings)
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    from tradebot.cli.render import render_status

    console.print(render_status(data))


@app.command()
def demo(
    symbols: SymbolsOpt = None,
) -> None:
    """Run the whole loop offline, from ingest to the daily P&L report.

    Ingest → features → train → promote → trade every 15 minutes over the held-out sessions →
    daily P&L report. Safe to re-run: nothing is duplicated."""
    from tradebot.cli.demo import run_demo

    rt = _runtime()
    run_demo(rt, _config_arg(), symbols, console)


if __name__ == "__main__":
    run()
