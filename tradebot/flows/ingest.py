"""Ingest flows: market bars, news and posts into the store, then sentiment scoring.

Each flow takes (source, symbols, start, end) parameters so deployments can schedule it; its
task retries resume from the ingest checkpoint, so a retry never refetches stored units.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import flow, task

from tradebot.flows.runtime import Runtime, runtime
from tradebot.pipelines import ingest_jobs
from tradebot.pipelines.ingest import ingest_synthetic, score_texts
from tradebot.pipelines.universe import data_window, resolve_symbols, select_symbols


def _context(rt: Runtime) -> ingest_jobs.IngestContext:
    return ingest_jobs.IngestContext(rt.settings, rt.db, rt.clock, rt.home.root, rt.now)


def _retrying(rt: Runtime, fn: Any) -> Any:
    http = rt.settings.sources.http
    return fn.with_options(retries=http.flow_retries,
                           retry_delay_seconds=http.flow_retry_delay_seconds)


@task(name="ingest-synthetic-window")
def ingest_window_task(config_path: str | None, symbols: list[str] | None) -> dict[str, Any]:
    rt = runtime(config_path)
    window = data_window(rt.settings, rt.clock)
    chosen = select_symbols(symbols, rt.settings)
    summary = ingest_synthetic(rt.db, rt.settings, rt.clock, list(window.sessions), chosen,
                               rt.now(), rt.scorer())
    return asdict(summary)


@flow(name="ingest-market")
def ingest_flow(config_path: str | None = None, symbols: list[str] | None = None) -> dict[str, Any]:
    """Fetch the configured data window from the synthetic source into the store."""
    return ingest_window_task(config_path, symbols)


@task(name="ingest-bars")
def ingest_bars_task(config_path: str | None, source: str, symbols: list[str] | None,
                     timeframe: str, start: datetime | None, end: datetime | None,
                     restart: bool) -> dict[str, Any]:
    rt = runtime(config_path)
    chosen = resolve_symbols(symbols, rt.settings, rt.db, any_symbol=source == "alpaca-crypto")
    counts = ingest_jobs.ingest_market(_context(rt), source, chosen, timeframe, start, end,
                                       restart=restart, on_unit=ingest_jobs.progress_hook.get())
    return counts.as_dict()


@task(name="ingest-texts")
def ingest_texts_task(config_path: str | None, kind: str, symbols: list[str] | None,
                      start: datetime | None, end: datetime | None,
                      restart: bool) -> dict[str, Any]:
    rt = runtime(config_path)
    chosen = resolve_symbols(symbols, rt.settings, rt.db)
    job = ingest_jobs.ingest_news if kind == "news" else ingest_jobs.ingest_reddit
    counts = job(_context(rt), chosen, start, end, restart=restart,
                 on_unit=ingest_jobs.progress_hook.get())
    result = counts.as_dict()
    result["scored"] = score_texts(rt.db, rt.now(), rt.scorer())
    return result


@task(name="ingest-file")
def ingest_file_task(config_path: str | None, path: str, symbol: str | None,
                     timeframe: str | None, timezone: str | None,
                     session_only: bool | None) -> dict[str, Any]:
    rt = runtime(config_path)
    counts = ingest_jobs.ingest_file(_context(rt), Path(path), symbol, timeframe, timezone,
                                     session_only)
    return counts.as_dict()


@flow(name="ingest-market-bars")
def ingest_market_flow(config_path: str | None = None, source: str = "alpaca",
                       symbols: list[str] | None = None, timeframe: str = "1Min",
                       start: datetime | None = None, end: datetime | None = None,
                       restart: bool = False) -> dict[str, Any]:
    """Bars from a market source (incremental after the newest stored bar by default)."""
    rt = runtime(config_path)
    return _retrying(rt, ingest_bars_task)(config_path, source, symbols, timeframe, start, end,
                                           restart)


@flow(name="ingest-news")
def ingest_news_flow(config_path: str | None = None, symbols: list[str] | None = None,
                     start: datetime | None = None, end: datetime | None = None,
                     restart: bool = False) -> dict[str, Any]:
    """NewsAPI articles for the symbols (default: the last day), then sentiment scoring."""
    rt = runtime(config_path)
    return _retrying(rt, ingest_texts_task)(config_path, "news", symbols, start, end, restart)


@flow(name="ingest-reddit")
def ingest_reddit_flow(config_path: str | None = None, symbols: list[str] | None = None,
                       start: datetime | None = None, end: datetime | None = None,
                       restart: bool = False) -> dict[str, Any]:
    """Reddit posts naming the symbols (default: the last day), then sentiment scoring."""
    rt = runtime(config_path)
    return _retrying(rt, ingest_texts_task)(config_path, "posts", symbols, start, end, restart)


@flow(name="ingest-file")
def ingest_file_flow(config_path: str | None = None, path: str = "", symbol: str | None = None,
                     timeframe: str | None = None, timezone: str | None = None,
                     session_only: bool | None = None) -> dict[str, Any]:
    """Bars from an OHLCV CSV/Parquet file."""
    return ingest_file_task(config_path, path, symbol, timeframe, timezone, session_only)
