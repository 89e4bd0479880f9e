"""Data commands: ``tradebot ingest ...``, ``tradebot symbols ...`` and ``tradebot stream``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

ingest_app = typer.Typer(
    help="Ingest market bars, news and Reddit posts into the store. Without a sub-command: "
    "the configured synthetic data window (offline).",
    invoke_without_command=True,
)
symbols_app = typer.Typer(help="The trading universe.", no_args_is_help=True)

console = Console()
DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]

SymbolsCsv = Annotated[
    str | None,
    typer.Option("--symbols", "-s", help="Comma-separated symbols (default: the universe)."),
]
Start = Annotated[
    datetime | None,
    typer.Option(formats=DATE_FORMATS, help="Window start; a date or a time without offset is "
                 "read in New York time. Default: incremental (after the newest stored row)."),
]
End = Annotated[
    datetime | None,
    typer.Option(formats=DATE_FORMATS, help="Window end (exclusive). Default: now."),
]
Restart = Annotated[
    bool, typer.Option("--restart", help="Ignore an unfinished checkpoint and start over."),
]
COUNT_COLUMNS = ["fetched", "stored", "unchanged", "corrected", "quarantined"]


def _split(symbols: str | None) -> list[str] | None:
    if not symbols:
        return None
    return [s.strip().upper() for s in symbols.split(",") if s.strip()]


def _runtime() -> Any:
    from tradebot.cli.context import _config_arg, _runtime

    return _runtime(), _config_arg()


@contextmanager
def _progress(label: str) -> Iterator[None]:
    """A progress bar fed by the ingest pipeline's unit callback."""
    from tradebot.pipelines.ingest_jobs import progress_hook

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rows]} rows"), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=None, rows=0)

        def update(done: int, total: int, counts: Any) -> None:
            bar.update(task, completed=done, total=total, rows=f"{counts.fetched:,}")

        token = progress_hook.set(update)
        try:
            yield
        finally:
            progress_hook.reset(token)


def print_counts(result: dict[str, Any]) -> None:
    """The one-line table every ingest prints: fetched, stored, unchanged, corrected,
    quarantined."""
    title = f"{result['kind']} from {result['source']}"
    if result.get("detail"):
        title += f" ({result['detail']})"
    table = Table(title=title, title_justify="left")
    for name in COUNT_COLUMNS:
        table.add_column(name, justify="right")
    table.add_row(*(f"{result[name]:,}" for name in COUNT_COLUMNS))
    console.print(table)
    if result.get("resumed_at_unit"):
        console.print(f"resumed an interrupted run at unit {result['resumed_at_unit'] + 1}")
    if result.get("scored"):
        console.print(f"scored {result['scored']:,} new texts")
    if result["quarantined"]:
        console.print(f"[yellow]{result['quarantined']:,} rows quarantined[/]: see "
                      f"'tradebot ingest quarantine --kind {result['kind']}'")


@ingest_app.callback()
def ingest_default(
    ctx: typer.Context,
    symbol: Annotated[list[str] | None, typer.Option(
        "--symbol", help="Restrict the synthetic window to these configured symbols.")] = None,
) -> None:
    """Ingest data; without a sub-command, the configured synthetic window (offline)."""
    if ctx.invoked_subcommand is not None:
        return
    from tradebot.pipelines.universe import data_window, select_symbols

    rt, config = _runtime()
    select_symbols(symbol, rt.settings)  # fail fast, before a Prefect server starts
    data_window(rt.settings, rt.clock)
    from tradebot.flows.ingest import ingest_flow

    console.print(ingest_flow(config, symbol))


@ingest_app.command("market")
def ingest_market(
    source: Annotated[str, typer.Option(
        help="synthetic (offline), alpaca (US equities) or alpaca-crypto (e.g. BTC/USD).")
    ] = "alpaca",
    symbols: SymbolsCsv = None,
    timeframe: Annotated[str, typer.Option(help="1Min, 5Min, 15Min, 1Hour or 1Day.")] = "1Min",
    start: Start = None,
    end: End = None,
    restart: Restart = False,
) -> None:
    """Fetch bars into the store: idempotent, checkpointed, validated."""
    from tradebot.kernel.records import TIMEFRAMES
    from tradebot.pipelines.ingest_jobs import MARKET_SOURCES

    if source not in MARKET_SOURCES:
        raise typer.BadParameter(f"choose one of {', '.join(MARKET_SOURCES)}",
                                 param_hint="--source")
    if timeframe not in TIMEFRAMES:
        raise typer.BadParameter(f"choose one of {', '.join(TIMEFRAMES)}", param_hint="--timeframe")
    _, config = _runtime()
    from tradebot.flows.ingest import ingest_market_flow

    with _progress(f"bars from {source}"):
        result = ingest_market_flow(config, source, _split(symbols), timeframe, start, end,
                                    restart)
    print_counts(result)


def _text_source(source: str, expected: str) -> None:
    if source != expected:
        raise typer.BadParameter(f"the only source is {expected}", param_hint="--source")


@ingest_app.command("news")
def ingest_news(
    source: Annotated[str, typer.Option(help="newsapi (needs NEWSAPI_KEY).")] = "newsapi",
    symbols: SymbolsCsv = None, start: Start = None, end: End = None, restart: Restart = False,
) -> None:
    """Fetch articles naming the symbols (default: the last day) and score their sentiment."""
    _text_source(source, "newsapi")
    _, config = _runtime()
    from tradebot.flows.ingest import ingest_news_flow

    with _progress("news from newsapi"):
        result = ingest_news_flow(config, _split(symbols), start, end, restart)
    print_counts(result)


@ingest_app.command("reddit")
def ingest_reddit(
    source: Annotated[str, typer.Option(
        help="reddit (needs REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET).")] = "reddit",
    symbols: SymbolsCsv = None, start: Start = None, end: End = None, restart: Restart = False,
) -> None:
    """Fetch new posts naming the symbols from the configured subreddits (default: last day)."""
    _text_source(source, "reddit")
    _, config = _runtime()
    from tradebot.flows.ingest import ingest_reddit_flow

    with _progress("posts from reddit"):
        result = ingest_reddit_flow(config, _split(symbols), start, end, restart)
    print_counts(result)


@ingest_app.command("file")
def ingest_file(
    path: Annotated[Path, typer.Argument(help="OHLCV .csv, .csv.gz or .parquet file.")],
    symbol: Annotated[str | None, typer.Option(
        help="Symbol of a single-symbol file (Yahoo-style); filters a long file.")] = None,
    timeframe: Annotated[str | None, typer.Option(
        help="Bar size; inferred from the timestamps by default.")] = None,
    timezone: Annotated[str | None, typer.Option(
        help="Zone of naive timestamps (default: market.timezone).")] = None,
    extended_hours: Annotated[bool, typer.Option(
        "--extended-hours", help="Keep intraday bars outside the regular session.")] = False,
) -> None:
    """Import bars from a file: Yahoo-style, long format with a symbol column, or intraday."""
    _, config = _runtime()
    from tradebot.flows.ingest import ingest_file_flow

    session_only = False if extended_hours else None
    result = ingest_file_flow(config, str(path.resolve()), symbol, timeframe, timezone,
                              session_only)
    print_counts(result)


@ingest_app.command("quarantine")
def show_quarantine(
    kind: Annotated[str | None, typer.Option(help="bars, news or posts.")] = None,
    limit: Annotated[int, typer.Option(help="How many of the newest rows.")] = 20,
) -> None:
    """Show the newest quarantined rows and why they were rejected."""
    from tradebot.features.quarantine import load_quarantine

    rt, _ = _runtime()
    with rt.db.session() as session:
        rows = load_quarantine(session, kind, limit)
    table = Table(title=f"quarantine (newest {limit})")
    for name in ("kind", "source", "record_key", "reason"):
        table.add_column(name)
    for row in rows.itertuples(index=False):
        table.add_row(row.kind, escape(row.source), escape(row.record_key), escape(row.reason))
    console.print(table)


@symbols_app.command("list")
def symbols_list(
    show_all: Annotated[bool, typer.Option(
        "--all", help="Also list assets excluded at the last refresh, with the reason.")] = False,
) -> None:
    """List the active universe (configured symbols, or the last Alpaca refresh)."""
    from tradebot.pipelines.universe import stored_universe

    rt, _ = _runtime()
    if rt.settings.universe.mode == "configured" and not show_all:
        console.print(" ".join(rt.settings.symbols))
        console.print(f"{len(rt.settings.symbols)} configured symbols (universe.mode=configured)")
        return
    frame = stored_universe(rt.db, include_excluded=show_all)
    table = Table(title=f"universe: {len(frame)} assets")
    for name in ("symbol", "name", "exchange", "price", "excluded_reason"):
        table.add_column(name)
    for row in frame.itertuples(index=False):
        price = "" if row.price is None or row.price != row.price else f"{row.price:,.2f}"
        table.add_row(row.symbol, escape(row.name), row.exchange, price,
                      escape(row.excluded_reason or ""))
    console.print(table)


@symbols_app.command("refresh")
def symbols_refresh() -> None:
    """Fetch Alpaca's tradable US equities, filter them by the universe settings and store."""
    from tradebot.pipelines.universe import refresh_universe
    from tradebot.sources.alpaca import AlpacaAssets

    rt, _ = _runtime()
    source = AlpacaAssets(rt.settings.sources.alpaca, rt.settings.sources.http)
    with console.status("fetching assets and latest prices from Alpaca"):
        frame = refresh_universe(rt.db, rt.settings, source, rt.now())
    kept = int(frame["excluded_reason"].isna().sum())
    console.print(f"universe refreshed: {kept:,} of {len(frame):,} assets included")
    reasons = frame["excluded_reason"].dropna().str.replace(r"\d[\d.,]*", "#", regex=True)
    for reason, count in reasons.value_counts().head(10).items():
        console.print(f"  excluded {count:,}: {reason}")


def stream_bars(
    symbols: SymbolsCsv = None,
) -> None:
    """Stream live minute bars from Alpaca's websocket into the store until Ctrl-C."""
    import signal

    from tradebot.pipelines.ingest_jobs import live_bar_writer
    from tradebot.pipelines.universe import resolve_symbols
    from tradebot.sources.alpaca_stream import LiveBarStream

    rt, _ = _runtime()
    chosen = resolve_symbols(_split(symbols), rt.settings, rt.db)
    writer = live_bar_writer(rt.db, rt.clock, rt.now)
    stream = LiveBarStream(rt.settings.sources.alpaca, chosen, writer)
    signal.signal(signal.SIGINT, lambda *_: stream.stop())
    console.print(f"streaming {len(chosen)} symbols from {rt.settings.sources.alpaca.feed} "
                  "feed; Ctrl-C stops")
    stream.run()
    console.print(f"stopped: {stream.received:,} bars received, {stream.failed} failed writes")
