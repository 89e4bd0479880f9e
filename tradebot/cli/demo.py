"""``tradebot demo``: the whole loop offline, each stage a Prefect flow run, with progress."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from tradebot.cli.environment import ui_commands
from tradebot.flows.runtime import Runtime
from tradebot.kernel.errors import CheckFailed, NoChampionError
from tradebot.pipelines.universe import data_window


def _progress(console: Console) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), console=console)


def replay_sessions(rt: Runtime, config_path: str | None, console: Console) -> dict[str, Any]:
    """Run the trade flow at every decision time of the held-out sessions, then report."""
    from tradebot.flows.report import daily_report_flow
    from tradebot.flows.trade import trade_flow

    window = data_window(rt.settings, rt.clock)
    times = [ts for day in window.replay for ts in rt.clock.decision_times(day)]
    totals = {"cycles": 0, "orders": 0, "fills": 0, "denied": 0, "skipped": 0}
    reports = []
    with _progress(console) as progress:
        task = progress.add_task("trade cycles (every 15 min)", total=len(times))
        for ts in times:
            result = trade_flow(config_path, ts)
            totals["cycles"] += 1
            totals["skipped"] += result["status"] == "skipped"
            for key in ("orders", "fills", "denied"):
                totals[key] += result[key]
            progress.update(task, advance=1, description=(
                f"trade cycle {ts:%Y-%m-%d %H:%M}Z: {result['status']}, {result['orders']} orders"))
        rtask = progress.add_task("daily P&L reports", total=len(window.replay))
        for day in window.replay:
            reports.append(daily_report_flow(config_path, day))
            progress.update(rtask, advance=1)
    return {"totals": totals, "reports": reports}


def run_demo(
    rt: Runtime, config_path: str | None, symbols: Sequence[str] | None, console: Console
) -> None:
    from tradebot.flows.features import feature_checks_flow, features_flow
    from tradebot.flows.ingest import ingest_flow
    from tradebot.flows.train import train_flow
    from tradebot.pipelines.status import home_status
    from tradebot.pipelines.universe import select_symbols

    started = time.monotonic()
    settings = rt.settings
    chosen = select_symbols(symbols, settings)
    window = data_window(settings, rt.clock)
    console.print(Panel.fit(
        f"home [bold]{rt.home.root}[/]\nsymbols {', '.join(chosen)}\n"
        f"sessions {window.sessions[0]} .. {window.sessions[-1]} "
        f"({len(window.training)} to train, {len(window.replay)} replayed)\n"
        f"broker {settings.broker.kind} (paper), synthetic signal_strength "
        f"{settings.synthetic.signal_strength}", title="tradebot demo (offline)"))
    with _progress(console) as progress:
        step = progress.add_task("starting Prefect (ephemeral) and migrating", total=5)
        rt.db.engine  # noqa: B018  (migrate before the first flow)
        progress.update(step, description="ingest: synthetic bars, news, posts")
        ingest = ingest_flow(config_path, chosen)
        progress.update(step, advance=1, description="features: TA-Lib + sentiment, labels")
        feats = features_flow(config_path, chosen)
        progress.update(step, advance=1, description="checks: lookahead and parity")
        checks = feature_checks_flow(config_path, chosen)
        progress.update(step, advance=1, description=(
            f"train: Optuna per member of {', '.join(settings.model.ensemble.members)}, "
            "ensemble, MLflow, gate"))
        trained = train_flow(config_path)
        progress.update(step, advance=2, description="model trained")
    console.print(f"ingested {ingest['bars']:,} bars, {ingest['articles']:,} articles, "
                  f"{ingest['posts']:,} posts; {feats['rows']:,} feature rows "
                  f"(feature set {feats['feature_set_version']})")
    failed = [name for name, result in checks.items() if not result["passed"]]
    if failed:
        raise CheckFailed("feature check(s) failed: " + "; ".join(
            f"{name}: {', '.join(checks[name]['mismatches'])}" for name in failed))
    console.print("feature checks passed: " + ", ".join(
        f"{name} ({r['rows']} rows at {r['samples']} times)" for name, r in checks.items()))
    verdict = "promoted to champion" if trained["promoted"] else "not promoted"
    console.print(f"trained {trained['model_name']} v{trained['version']}: {verdict} "
                  f"({trained['gate_reason']})")
    status = home_status(rt.db, rt.home, settings)
    if status["champion"] is None:
        raise NoChampionError(
            f"no champion: the model did not pass the gate ({trained['gate_reason']}). "
            "Ingest more sessions (data.sessions) or relax [gate] in the config."
        )
    replay = replay_sessions(rt, config_path, console)
    _summary(rt, home_status(rt.db, rt.home, settings), replay, time.monotonic() - started,
             console)


def _summary(
    rt: Runtime, status: dict[str, Any], replay: dict[str, Any], seconds: float,
    console: Console,
) -> None:
    champ = status["champion"]
    table = Table(title="tradebot demo: results", show_header=False)
    table.add_column("item", style="cyan")
    table.add_column("value")
    table.add_row("champion", f"{champ['name']} v{champ['version']} (run {champ['run_id']})")
    for key, value in champ["metrics"].items():
        table.add_row(f"  {key}", f"{value:.4f}")
    totals = replay["totals"]
    table.add_row("trade cycles", f"{totals['cycles']} ({totals['skipped']} already done)")
    table.add_row("orders (total in ledger)", f"{status['counts']['orders']}")
    table.add_row("fills (total in ledger)", f"{status['counts']['fills']}")
    table.add_row("risk denials this run", f"{totals['denied']}")
    table.add_row("equity", f"{status['equity']:,.2f}")
    pnl = status["equity"] - rt.settings.broker.initial_cash
    table.add_row("P&L (total)", f"{pnl:,.2f} (realized {status['realized_pnl']:,.2f}, "
                  f"unrealized {status['unrealized_pnl']:,.2f})")
    for report in replay["reports"]:
        table.add_row(f"report {report['day']}", f"{report['html']} (day P&L {report['pnl_day']})")
    table.add_row("elapsed", f"{seconds:.0f} s")
    console.print(table)
    cmds = ui_commands(rt.home)
    console.print(Panel.fit(
        f"MLflow UI (runs, registered model, champion alias):\n  {cmds['mlflow']}\n"
        f"Prefect UI (flow runs, report artifacts):\n  {cmds['prefect']}\n"
        "Machine-readable summary:\n  tradebot status --json", title="next"))
