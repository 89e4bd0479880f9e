"""``tradebot models`` (registered versions, aliases, gate decisions, key metrics) and
``tradebot promote`` (move the champion alias by hand, overriding the gate)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tradebot.cli.context import _runtime
from tradebot.kernel.errors import TradebotError

if TYPE_CHECKING:
    from tradebot.models.registry import VersionSummary

console = Console()


def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List the registered versions of model.registered_name, newest first.

    Each with its aliases (champion, challenger), creation time, MLflow run, gate decision and key out-of-sample metrics (test AUC and the test-window backtest's Sharpe, return, max drawdown and trades).
    """  # noqa: E501 (one line per paragraph: rich keeps line breaks in --help)
    rt = _runtime()
    name = rt.settings.model.registered_name
    versions = _versions(rt, name)
    if as_json:
        typer.echo(json.dumps([_as_json(v) for v in versions], indent=2))
    elif not versions:
        console.print(f"no registered versions of {escape(name)} yet: run 'tradebot train' "
                      "(or 'tradebot demo')", highlight=False)
    else:
        console.print(_table(name, versions))


def promote(
    version: Annotated[str, typer.Argument(
        metavar="VERSION", help="Registered version to make champion.", show_default=False)],
    force: Annotated[bool, typer.Option(
        "--force", help="Override the gate (required: the gate decides promotions).")] = False,
    reason: Annotated[str | None, typer.Option(
        "--reason", help="Why (required; stored with the decision and as a version tag).",
        show_default=False)] = None,
) -> None:
    """Make VERSION the champion without the gate (--force --reason TEXT).

    Recorded in model_promotions as decision 'forced' with the reason, and tagged on the version (gate.decision, gate.reason).
    """  # noqa: E501 (one line per paragraph: rich keeps line breaks in --help)
    if not force:
        raise TradebotError("the promotion gate decides which version is champion (run "
                            "'tradebot train'); --force overrides it, with --reason TEXT")
    if reason is None or not reason.strip():
        raise TradebotError("--force needs --reason TEXT: say why the gate is overridden")
    from tradebot.models import registry
    from tradebot.pipelines.promote import force_promote

    rt = _runtime()
    settings = rt.settings
    registry.configure(rt.home.mlflow_tracking_uri, rt.home.mlflow_artifacts,
                       settings.model.experiment)
    info = force_promote(rt.db, rt.now(), settings.model.registered_name, version,
                         reason.strip())
    console.print(f"{escape(info.label)} is champion (forced: {escape(reason.strip())})",
                  highlight=False)


def _versions(rt: Any, name: str) -> list[VersionSummary]:
    from tradebot.models import registry

    if not rt.home.mlflow_db.exists():
        return []
    registry.configure(rt.home.mlflow_tracking_uri, rt.home.mlflow_artifacts,
                       rt.settings.model.experiment)
    return registry.list_versions(name)


def _as_json(summary: VersionSummary) -> dict[str, Any]:
    return asdict(summary) | {"created": summary.created.isoformat()}


def _metric(key: str, value: float | None) -> str:
    from tradebot.pipelines.backtest_report import fmt_value

    if value is None:
        return "-"
    return f"{value:.4f}" if key == "test_auc" else fmt_value(key.removeprefix("bt_"), value)


HEADERS = {"test_auc": "AUC", "bt_sharpe": "sharpe", "bt_total_return": "return",
           "bt_max_drawdown": "max DD", "bt_n_trades": "trades"}


def _table(name: str, versions: list[VersionSummary]) -> Table:
    from tradebot.models import registry

    table = Table(title=f"{name}: registered versions", box=box.SIMPLE_HEAD,
                  padding=(0, 1, 0, 0), pad_edge=False,
                  caption="AUC on the test window; sharpe, return, max DD and trades from its "
                  "backtest through the live trade cycle, after costs. run: MLflow run id "
                  "prefix (--json: full)")
    table.add_column("version", overflow="fold")
    table.add_column("aliases", no_wrap=True, min_width=len(registry.CHALLENGER))
    table.add_column("created (UTC)")
    table.add_column("run", overflow="fold")
    table.add_column("gate", overflow="fold")
    keys = list(versions[0].metrics)
    for key in keys:  # figures are never cut: the other columns wrap first
        header = HEADERS.get(key, key)
        table.add_column(header, justify="right", no_wrap=True, min_width=max(len(header), 6))
    for v in versions:
        table.add_row(v.version, "\n".join(v.aliases), v.created.strftime("%Y-%m-%d %H:%M"),
                      v.run_id[:8], v.gate_decision or "-",
                      *(_metric(k, v.metrics.get(k)) for k in keys))
    return table
