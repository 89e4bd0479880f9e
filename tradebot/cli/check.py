"""``tradebot check lookahead|parity``: prove the features are point in time and shared."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tradebot.cli.context import _runtime
from tradebot.kernel.errors import CheckFailed

check_app = typer.Typer(help="Check features: no lookahead, live rows equal training rows.",
                        no_args_is_help=True)
console = Console()

Samples = Annotated[int, typer.Option(help="Decision times sampled from the stored history.")]
Seed = Annotated[int, typer.Option(help="Seed of the sampling.")]
Symbols = Annotated[str | None, typer.Option(
    "--symbols", "-s", help="Comma-separated symbols (default: the universe).")]


def _store_and_symbols(symbols: str | None):  # type: ignore[no-untyped-def]
    from tradebot.pipelines.universe import resolve_symbols

    rt = _runtime()
    requested = [s.strip() for s in symbols.split(",")] if symbols else None
    chosen = resolve_symbols(requested, rt.settings, rt.db)
    store = rt.feature_store()
    return rt, store, chosen


def _report(report) -> None:  # type: ignore[no-untyped-def]
    if report.passed:
        console.print(f"[green]{report.check} check passed[/]: {report.rows_compared} rows at "
                      f"{len(report.samples)} sampled times agree on every feature")
        return
    table = Table(title=f"{report.check} check FAILED")
    for name in ("feature", "mismatching rows", "max |difference|", "first at"):
        table.add_column(name)
    for feature, where in sorted(report.mismatches.items()):
        diff = report.max_difference.get(feature)
        table.add_row(feature, str(len(where)), "" if diff is None else f"{diff:.3g}", where[0])
    console.print(table)
    raise CheckFailed(f"{report.check}: {len(report.mismatches)} feature(s) differ: "
                      + ", ".join(sorted(report.mismatches)))


@check_app.command("lookahead")
def lookahead(samples: Samples = 20, seed: Seed = 0, symbols: Symbols = None) -> None:
    """Recompute features on data cut at sampled times; a change means a feature peeks ahead.

    Exits 5 naming the features.
    """
    from tradebot.pipelines.checks import check_lookahead

    rt, store, chosen = _store_and_symbols(symbols)
    with console.status(f"recomputing features at {samples} cut points"):
        report = check_lookahead(rt.db, store, chosen, samples, seed)
    _report(report)


@check_app.command("parity")
def parity(samples: Samples = 20, seed: Seed = 0, symbols: Symbols = None) -> None:
    """Compare live rows (online_features) with training rows at sampled times (1e-9).

    Exits 5 naming the features that differ.
    """
    from tradebot.pipelines.checks import check_parity

    rt, store, chosen = _store_and_symbols(symbols)
    with console.status(f"comparing live and training rows at {samples} times"):
        report = check_parity(rt.db, store, chosen, samples, seed)
    _report(report)
