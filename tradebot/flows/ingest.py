"""Ingest flow: market bars, news and posts into the store, then sentiment scoring."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow, task

from tradebot.flows.runtime import runtime
from tradebot.pipelines.ingest import ingest_synthetic
from tradebot.pipelines.universe import data_window, select_symbols


@task(name="ingest-synthetic-window")
def ingest_window_task(config_path: str | None, symbols: list[str] | None) -> dict[str, Any]:
    rt = runtime(config_path)
    window = data_window(rt.settings, rt.clock)
    chosen = select_symbols(symbols, rt.settings)
    summary = ingest_synthetic(rt.db, rt.settings, rt.clock, list(window.sessions), chosen,
                               rt.now())
    return asdict(summary)


@flow(name="ingest-market")
def ingest_flow(config_path: str | None = None, symbols: list[str] | None = None) -> dict[str, Any]:
    """Fetch the configured data window from the configured source into the store."""
    return ingest_window_task(config_path, symbols)
