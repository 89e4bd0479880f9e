"""Rich renderings of config and status for humans (JSON output lives in the commands)."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows += _flatten(value, f"{path}.")
        else:
            rows.append((path, value))
    return rows


def render_config(data: dict[str, Any]) -> Table:
    table = Table(title="effective configuration (secrets masked)", show_lines=False)
    table.add_column("key", style="cyan", no_wrap=True)
    table.add_column("value")
    for key, value in _flatten(data):
        table.add_row(key, repr(value) if not isinstance(value, str) else value)
    return table


def render_status(data: dict[str, Any]) -> Table:
    table = Table(title=f"tradebot home {data['home']}", show_header=False)
    table.add_column("item", style="cyan")
    table.add_column("value")
    champ = data["champion"]
    if champ:
        metrics = ", ".join(f"{k}={v:.4f}" for k, v in champ["metrics"].items())
        table.add_row("champion", f"{champ['name']} v{champ['version']} (run {champ['run_id']})")
        table.add_row("champion metrics", metrics)
    else:
        table.add_row("champion", "none yet: run 'tradebot train' or 'tradebot demo'")
    for key, value in data["counts"].items():
        table.add_row(key, f"{value:,}")
    table.add_row("last trade cycle", data["last_trade_cycle"] or "never")
    table.add_row("equity", f"{data['equity']:,.2f}")
    table.add_row("realized P&L", f"{data['realized_pnl']:,.2f}")
    table.add_row("unrealized P&L", f"{data['unrealized_pnl']:,.2f}")
    table.add_row("kill switch", data["kill_switch"])
    return table
