"""Daily report flow: P&L, trades and positions as Prefect artifacts and an HTML file."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from tradebot.flows.runtime import runtime
from tradebot.models.registry import champion, configure
from tradebot.pipelines.report import report_for_day
from tradebot.pipelines.report_render import render_markdown, summary_rows, write_html


@task(name="daily-report")
def daily_report_task(config_path: str | None, day: date | None) -> dict[str, Any]:
    rt = runtime(config_path)
    configure(rt.home.mlflow_tracking_uri, rt.home.mlflow_artifacts, rt.settings.model.experiment)
    info = champion(rt.settings.model.registered_name)
    report = report_for_day(rt.db, day, Decimal(str(rt.settings.broker.initial_cash)),
                            rt.settings.market.timezone, info.label if info else "")
    day = report.day
    markdown = render_markdown(report)
    path = write_html(report, rt.home.reports)
    create_markdown_artifact(markdown=markdown, key="daily-pnl",
                             description=f"Daily P&L report for {day.isoformat()}")
    create_table_artifact(table=summary_rows(report), key="daily-pnl-by-symbol",
                          description=f"P&L per symbol for {day.isoformat()}")
    return {"day": day.isoformat(), "html": str(path), "pnl_day": str(report.pnl_day),
            "pnl_total": str(report.pnl_total), "trades": len(report.trades)}


@flow(name="daily-report")
def daily_report_flow(config_path: str | None = None, day: date | None = None) -> dict[str, Any]:
    """Publish the day's P&L report (default: the latest day with trading activity)."""
    return daily_report_task(config_path, day)
