"""Ingest jobs as users and schedules ask for them: which source, which symbols, which window.

Defaults make scheduled runs incremental: market bars continue after the newest stored bar of
the requested symbols; news and posts cover the last day (they are keyed by id, so overlap
costs nothing but requests).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Literal

import pandas as pd
from sqlalchemy import func, select

from tradebot.features.bar_writer import STEP
from tradebot.kernel.clock import MarketClock
from tradebot.kernel.db import Database
from tradebot.kernel.errors import DataError
from tradebot.kernel.records import Fetched, FetchWindow, Source
from tradebot.kernel.schema import BarRow
from tradebot.kernel.settings import TradebotSettings
from tradebot.pipelines.ingest import IngestCounts, SyntheticBars, run_ingest, store_fetched
from tradebot.pipelines.universe import data_window

MarketSource = Literal["synthetic", "alpaca", "alpaca-crypto"]
MARKET_SOURCES: tuple[str, ...] = ("synthetic", "alpaca", "alpaca-crypto")
TEXT_LOOKBACK = timedelta(days=1)
Progress = Callable[[int, int, IngestCounts], None]
progress_hook: ContextVar[Progress | None] = ContextVar("ingest_progress", default=None)
"""Set by a caller (the CLI's progress bar) to follow a job run inside a flow in-process."""


@dataclass(frozen=True)
class IngestContext:
    """What an ingest job needs from the runtime (kept free of Prefect and the CLI)."""

    settings: TradebotSettings
    db: Database
    clock: MarketClock
    home_root: Path
    now: Callable[[], datetime]

    @property
    def budget_file(self) -> Path:
        return self.home_root / "rate_budgets.sqlite"


def as_utc(value: datetime, clock: MarketClock | None = None) -> datetime:
    """A datetime in UTC; a naive one is read in the exchange's time zone (a date at midnight)."""
    if value.tzinfo is None:
        tz = clock.calendar.tz if clock is not None else UTC
        return pd.Timestamp(value).tz_localize(tz).tz_convert(UTC).to_pydatetime()
    return value.astimezone(UTC)


def _floor_minute(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


def _newest_bar(db: Database, symbols: Sequence[str], timeframe: str) -> datetime | None:
    with db.session() as session:
        return session.scalar(select(func.max(BarRow.ts_event)).where(
            BarRow.symbol.in_(list(symbols)), BarRow.timeframe == timeframe
        ))


def market_source(ctx: IngestContext, name: str) -> Source:
    """Build a bar source by name from the settings."""
    settings = ctx.settings
    if name == "synthetic":
        return SyntheticBars(settings, ctx.clock, data_window(settings, ctx.clock).sessions)
    if name in ("alpaca", "alpaca-crypto"):
        from tradebot.sources.alpaca import AlpacaBars

        asset_class = "crypto" if name == "alpaca-crypto" else "us_equity"
        return AlpacaBars(settings.sources.alpaca, settings.sources.http, asset_class=asset_class)
    raise DataError(f"unknown market source {name!r}; choose one of {', '.join(MARKET_SOURCES)}")


def market_window(
    ctx: IngestContext, source: str, symbols: Sequence[str], timeframe: str,
    start: datetime | None, end: datetime | None,
) -> FetchWindow:
    """The window to fetch: explicit bounds, else incremental after the newest stored bar."""
    if source == "synthetic":
        sessions = data_window(ctx.settings, ctx.clock).sessions
        first_open, _ = ctx.clock.open_close(sessions[0])
        _, last_close = ctx.clock.open_close(sessions[-1])
        start = as_utc(start, ctx.clock) if start else first_open
        end = as_utc(end, ctx.clock) if end else last_close
    else:
        end = as_utc(end, ctx.clock) if end else _floor_minute(ctx.now())
        if start is not None:
            start = as_utc(start, ctx.clock)
        else:
            newest = _newest_bar(ctx.db, symbols, timeframe)
            first_day = datetime.combine(ctx.settings.data.start, time(0))
            start = newest + STEP[timeframe] if newest else as_utc(first_day, ctx.clock)
    if end <= start:
        raise DataError(f"nothing to fetch: the window {start:%Y-%m-%d %H:%M} .. "
                        f"{end:%Y-%m-%d %H:%M} UTC is empty (already up to date?)")
    return FetchWindow(tuple(symbols), start, end, timeframe)


def ingest_market(
    ctx: IngestContext, source: str, symbols: Sequence[str], timeframe: str = "1Min",
    start: datetime | None = None, end: datetime | None = None, restart: bool = False,
    on_unit: Progress | None = None,
) -> IngestCounts:
    """Bars from ``source`` into the store; regular-session checks unless the market is 24/7
    or ``data.regular_session_only`` is off."""
    window = market_window(ctx, source, symbols, timeframe, start, end)
    bar_source = market_source(ctx, source)
    session_clock = ctx.clock if _session_checked(ctx, source) else None
    per_unit = (ctx.settings.sources.alpaca.symbols_per_request
                if source.startswith("alpaca") else len(symbols))
    return run_ingest(ctx.db, bar_source, window, ctx.now, session_clock, per_unit,
                      restart=restart, on_unit=on_unit)


def refresh_latest(ctx: IngestContext, source: str, symbols: Sequence[str],
                   until: datetime) -> IngestCounts | None:
    """The bars closed since the newest stored one, up to ``until`` (a trade cycle's decision
    time); None when the store is already up to date."""
    newest = _newest_bar(ctx.db, symbols, "1Min")
    if newest is not None and newest + STEP["1Min"] >= until:
        return None
    return ingest_market(ctx, source, symbols, "1Min", None, until)


def _session_checked(ctx: IngestContext, source: str) -> bool:
    return ctx.settings.data.regular_session_only and source != "alpaca-crypto"


def _text_window(ctx: IngestContext, symbols: Sequence[str], start: datetime | None,
                 end: datetime | None) -> FetchWindow:
    end_utc = as_utc(end, ctx.clock) if end else ctx.now()
    start_utc = as_utc(start, ctx.clock) if start else end_utc - TEXT_LOOKBACK
    if end_utc <= start_utc:
        raise DataError(f"empty window: end {end_utc:%Y-%m-%d %H:%M} <= start "
                        f"{start_utc:%Y-%m-%d %H:%M} UTC")
    return FetchWindow(tuple(symbols), start_utc, end_utc)


def ingest_news(
    ctx: IngestContext, symbols: Sequence[str], start: datetime | None = None,
    end: datetime | None = None, restart: bool = False, on_unit: Progress | None = None,
) -> IngestCounts:
    """Articles from NewsAPI, one query per symbol (each a checkpointed unit)."""
    from tradebot.sources.newsapi import NewsApiArticles

    source = NewsApiArticles(ctx.settings.sources.newsapi, ctx.settings.sources.http,
                             budget_file=ctx.budget_file)
    try:
        return run_ingest(ctx.db, source, _text_window(ctx, symbols, start, end), ctx.now,
                          symbols_per_unit=1, restart=restart, on_unit=on_unit)
    finally:
        source.close()


def ingest_reddit(
    ctx: IngestContext, symbols: Sequence[str], start: datetime | None = None,
    end: datetime | None = None, restart: bool = False, on_unit: Progress | None = None,
) -> IngestCounts:
    """Posts naming the symbols from the configured subreddits' newest posts."""
    from tradebot.sources.reddit import RedditPosts

    source = RedditPosts(ctx.settings.sources.reddit, ctx.settings.sources.http,
                         universe=ctx.settings.symbols)
    return run_ingest(ctx.db, source, _text_window(ctx, symbols, start, end), ctx.now,
                      restart=restart, on_unit=on_unit)


def ingest_file(
    ctx: IngestContext, path: Path, symbol: str | None = None, timeframe: str | None = None,
    timezone: str | None = None, session_only: bool | None = None,
) -> IngestCounts:
    """Bars from an OHLCV CSV/Parquet file; unparseable rows are quarantined with line numbers."""
    from tradebot.sources.files import read_bars_file

    loaded = read_bars_file(path, symbol=symbol, timezone=timezone or ctx.settings.market.timezone,
                            timeframe=timeframe)
    check = ctx.settings.data.regular_session_only if session_only is None else session_only
    source = f"file:{path.name}"[:32]
    with ctx.db.session() as session:
        counts = store_fetched(session, "bars", source, loaded.fetched, ctx.now(),
                               loaded.timeframe, ctx.clock if check else None)
    counts.detail = f"{loaded.layout} layout, {loaded.timeframe} bars"
    return counts


def live_bar_writer(db: Database, clock: MarketClock, now: Callable[[], datetime]
                    ) -> Callable[[pd.DataFrame], None]:
    """A callback for :class:`~tradebot.sources.alpaca_stream.LiveBarStream`: each batch of
    streamed minute bars goes through the same validation and store path as backfills
    (source ``alpaca``, so a later REST backfill of the same minutes is a no-op or a
    recorded correction)."""

    def write(bars: pd.DataFrame) -> None:
        with db.session() as session:
            store_fetched(session, "bars", "alpaca", Fetched(bars), now(), "1Min", clock)

    return write
