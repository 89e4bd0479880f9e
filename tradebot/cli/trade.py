"""``tradebot trade`` (one cycle, a replay, or every 15 minutes) and ``tradebot killswitch``."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tradebot.cli.context import _config_arg, _runtime
from tradebot.kernel.errors import ConfigError

console = Console()
SETTLE_SECONDS = 5.0  # after a boundary, give the last bar time to arrive


class BrokerChoice(StrEnum):
    sim = "sim"
    alpaca = "alpaca"


class SwitchCommand(StrEnum):
    on = "on"
    reducing = "reducing"
    off = "off"
    status = "status"


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--replay takes two dates YYYY-MM-DD, got {text!r}") from None


def print_cycle(result: dict[str, Any]) -> None:
    """One cycle: a headline, then each symbol's decision and why."""
    ts = result["ts"]
    console.print(f"[bold]{ts:%Y-%m-%d %H:%M}Z[/] {result['status']}: {escape(result['note'])} "
                  f"(model v{result['model_version'] or '-'}, {result['orders']} orders, "
                  f"{result['fills']} fills, {result['denied']} denied, equity "
                  f"{result['equity']:.2f})", highlight=False)
    decisions = result.get("decisions") or {}
    if decisions:
        table = Table(show_header=False, box=None, padding=(0, 2))
        for symbol, why in sorted(decisions.items()):
            table.add_row(symbol, escape(why))
        console.print(table)


def trade(
    once: Annotated[bool, typer.Option("--once", help="Run one cycle and exit.")] = False,
    broker: Annotated[
        BrokerChoice | None,
        typer.Option(help="sim: the simulated broker on the ledger; alpaca: Alpaca (paper "
                     "unless broker.paper=false and TRADEBOT_LIVE_TRADING=true). Default: the "
                     "config's broker.kind."),
    ] = None,
    asof: Annotated[
        datetime | None,
        typer.Option(help="Decision time (UTC, ISO) of the --once cycle; default: the latest "
                     "15-minute boundary of the wall clock."),
    ] = None,
    replay: Annotated[
        tuple[str, str] | None,
        typer.Option(help="Replay the sessions from START to END (dates, inclusive) through "
                     "the live path with the simulated broker.", metavar="START END"),
    ] = None,
    refresh: Annotated[
        bool | None,
        typer.Option("--refresh/--no-refresh", help="Fetch the newest bars from Alpaca first "
                     "(default: on with --broker alpaca)."),
    ] = None,
) -> None:
    """Trade with the champion: every 15 minutes in NYSE hours until Ctrl-C (default), one
    cycle (--once) or a replay of past sessions (--replay). Prints each symbol's decision
    and why. Paper/simulated unless live trading is confirmed twice."""
    rt = _runtime()
    from tradebot.flows.trade import trade_flow

    config = _config_arg()
    if replay is not None:
        if broker is BrokerChoice.alpaca:
            raise ConfigError("--replay runs on the simulated broker only (drop --broker alpaca)")
        start, end = (_day(d) for d in replay)
        times = [ts for day in rt.clock.sessions_between(start, end)
                 for ts in rt.clock.decision_times(day)]
        if not times:
            raise ConfigError(f"no NYSE session between {start} and {end}")
        for ts in times:
            print_cycle(trade_flow(config, ts, "sim", False))
        return
    name = broker.value if broker else None
    if once or asof is not None:
        print_cycle(trade_flow(config, _utc(asof), name, refresh))
        return
    console.print("trading every 15 minutes in NYSE hours; Ctrl-C stops", highlight=False)
    while True:
        next_ts = rt.clock.next_decision_time(rt.now())
        console.print(f"next cycle at {next_ts:%Y-%m-%d %H:%M}Z", highlight=False)
        time.sleep(max(0.0, (next_ts - rt.now()).total_seconds() + SETTLE_SECONDS))
        print_cycle(trade_flow(config, next_ts, name, refresh))


def killswitch(
    command: Annotated[SwitchCommand, typer.Argument(
        help="on: HALTED (no orders at all); reducing: exits only; off: ACTIVE; status: show.")],
    reason: Annotated[str, typer.Option(help="Why (stored with the state).")] = "set from the CLI",
) -> None:
    """Show or set the persisted kill switch that every order passes."""
    from tradebot.kernel.domain import KillSwitchState
    from tradebot.serving.ledger import get_kill_switch, kill_switch_row, set_kill_switch

    rt = _runtime()
    states = {SwitchCommand.on: KillSwitchState.HALTED,
              SwitchCommand.reducing: KillSwitchState.REDUCING,
              SwitchCommand.off: KillSwitchState.ACTIVE}
    with rt.db.session() as session:
        if command is not SwitchCommand.status:
            set_kill_switch(session, states[command], reason, rt.now())
        state = get_kill_switch(session)
        row = kill_switch_row(session)
        detail = "" if row is None else f" since {row.updated_at:%Y-%m-%d %H:%M}Z: {row.reason}"
    console.print(f"kill switch [bold]{state.upper()}[/]{escape(detail)}", highlight=False)
