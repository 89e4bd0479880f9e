"""Ingest steps: fetch windows from a source, validate, store, quarantine, checkpoint.

One path for every source: a job is planned as ordered units (time chunks x symbol batches);
each unit is fetched outside any transaction, then validated and stored together with the
checkpoint advance in one transaction. A failed fetch leaves the store as it was; a re-run
resumes after the last stored unit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from tradebot.features import checkpoints
from tradebot.features.quarantine import quarantine
from tradebot.features.sentiment import LexiconScorer, SentimentScorer
from tradebot.features.store import save_articles, save_bars, save_posts, score_unscored
from tradebot.features.validation import validate_bars, validate_texts
from tradebot.kernel.clock import MarketClock
from tradebot.kernel.db import Database
from tradebot.kernel.errors import DataError
from tradebot.kernel.records import Fetched, FetchWindow, RecordKind, Source, conform
from tradebot.kernel.settings import TradebotSettings
from tradebot.sources.synthetic import generate_market

SYNTHETIC = "synthetic"
CHUNK = {
    "1Min": timedelta(days=7), "5Min": timedelta(days=30), "15Min": timedelta(days=60),
    "1Hour": timedelta(days=180), "1Day": timedelta(days=3660),
}


@dataclass
class IngestCounts:
    """What one ingest did: rows fetched, newly stored, already stored and identical,
    stored with different values (kept as corrections), and quarantined."""

    source: str
    kind: str
    fetched: int = 0
    stored: int = 0
    unchanged: int = 0
    corrected: int = 0
    quarantined: int = 0
    units: int = 0
    resumed_at_unit: int = 0
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def store_fetched(
    session: Session, kind: RecordKind, source: str, fetched: Fetched, now: datetime,
    timeframe: str = "1Min", clock: MarketClock | None = None, counts: IngestCounts | None = None,
) -> IngestCounts:
    """Validate one fetch result and store it: valid rows to their table, the rest to quarantine.

    ``clock`` enables the regular-session check for intraday bars (None for 24/7 markets)."""
    counts = counts or IngestCounts(source, kind)
    frame = conform(fetched.frame, kind)
    counts.fetched += len(frame) + len(fetched.rejected)
    if kind == "bars":
        checked = validate_bars(frame, timeframe, clock)
        written = save_bars(session, checked.valid, timeframe, source, now, clock)
        counts.stored += written.inserted
        counts.unchanged += written.unchanged
        counts.corrected += written.corrected
    else:
        checked = validate_texts(frame, kind)
        save = save_articles if kind == "news" else save_posts
        new = save(session, checked.valid, source, now) if len(checked.valid) else 0
        counts.stored += new
        counts.unchanged += len(checked.valid) - new
    counts.quarantined += quarantine(session, kind, source, fetched.rejected, now)
    counts.quarantined += quarantine(session, kind, source, checked.rejected, now)
    return counts


def plan_units(window: FetchWindow, symbols_per_unit: int, chunk_time: bool = True
               ) -> list[FetchWindow]:
    """Split a window into units: time chunks (by timeframe) outer, symbol batches inner."""
    units: list[FetchWindow] = []
    step = CHUNK[window.timeframe] if chunk_time else window.end - window.start
    batches = [window.symbols[i : i + symbols_per_unit]
               for i in range(0, len(window.symbols), max(1, symbols_per_unit))]
    start = window.start
    while start < window.end:
        end = min(start + step, window.end)
        units.extend(FetchWindow(batch, start, end, window.timeframe) for batch in batches)
        start = end
    return units


def _fetch(source: Source, unit: FetchWindow) -> Fetched:
    with_rejects = getattr(source, "fetch_with_rejects", None)
    return with_rejects(unit) if callable(with_rejects) else Fetched(source.fetch(unit))


def run_ingest(
    db: Database, source: Source, window: FetchWindow, now: Callable[[], datetime],
    clock: MarketClock | None = None, symbols_per_unit: int | None = None, restart: bool = False,
    on_unit: Callable[[int, int, IngestCounts], None] | None = None,
) -> IngestCounts:
    """Fetch ``window`` from ``source`` unit by unit into the store, resuming a broken run.

    ``on_unit(done, total, counts)`` reports progress after each stored unit."""
    per_unit = symbols_per_unit or len(window.symbols)
    units = plan_units(window, per_unit, chunk_time=source.kind == "bars")
    job = checkpoints.Job(source.name, source.kind, {
        "symbols": sorted(window.symbols), "start": window.start.isoformat(),
        "end": window.end.isoformat(), "timeframe": window.timeframe, "per_unit": per_unit,
    }, len(units))
    counts = IngestCounts(source.name, source.kind)
    with db.session() as session:
        first = checkpoints.start(session, job, now(), restart=restart)
    counts.resumed_at_unit = first
    for index in range(first, len(units)):
        fetched = _fetch(source, units[index])
        with db.session() as session:
            store_fetched(session, source.kind, source.name, fetched, now(), window.timeframe,
                          clock, counts)
            checkpoints.advance(session, job, index + 1, now())
        counts.units += 1
        if on_unit is not None:
            on_unit(index + 1, len(units), counts)
    return counts


def score_texts(db: Database, now: datetime, scorer: SentimentScorer | None = None) -> int:
    """Score every stored text the scorer has not scored yet."""
    with db.session() as session:
        return score_unscored(session, scorer or LexiconScorer(), now)


@dataclass(frozen=True)
class IngestSummary:
    first_session: date
    last_session: date
    sessions: int
    bars: int
    articles: int
    posts: int
    scored: int
    quarantined: int = 0


def ingest_synthetic(
    db: Database, settings: TradebotSettings, clock: MarketClock, sessions: list[date],
    symbols: list[str], now: datetime, scorer: SentimentScorer | None = None,
) -> IngestSummary:
    """Generate the offline market for ``sessions`` and store it through the common path."""
    if not sessions:
        raise DataError("empty data window: no NYSE sessions to ingest")
    market = generate_market(symbols, sessions, clock, settings.synthetic, settings.benchmark)
    if market.bars.empty:
        raise DataError(f"the synthetic source produced no bars for {sessions[0]}..{sessions[-1]}")
    timeframe = settings.market.base_timeframe
    with db.session() as session:
        bars = store_fetched(session, "bars", SYNTHETIC, Fetched(market.bars), now, timeframe,
                             clock)
        news = store_fetched(session, "news", SYNTHETIC,
                             Fetched(market.news.drop(columns="polarity")), now)
        posts = store_fetched(session, "posts", SYNTHETIC,
                              Fetched(market.posts.drop(columns="polarity")), now)
    scored = score_texts(db, now, scorer)
    quarantined = bars.quarantined + news.quarantined + posts.quarantined
    return IngestSummary(sessions[0], sessions[-1], len(sessions), bars.stored + bars.unchanged,
                         news.stored + news.unchanged, posts.stored + posts.unchanged, scored,
                         quarantined)


class SyntheticBars:
    """The synthetic market as a bar source: the configured data window, sliced on request
    (generated whole, so any sub-window gives the same prices as the full ingest)."""

    name = SYNTHETIC
    kind: RecordKind = "bars"

    def __init__(self, settings: TradebotSettings, clock: MarketClock,
                 sessions: Sequence[date]) -> None:
        self.settings, self.clock, self.sessions = settings, clock, list(sessions)
        self._cache: dict[tuple[str, ...], pd.DataFrame] = {}

    def fetch(self, window: FetchWindow) -> pd.DataFrame:
        if window.timeframe != "1Min":
            raise DataError("the synthetic source makes 1Min bars only")
        key = tuple(sorted(window.symbols))
        if key not in self._cache:
            market = generate_market(list(key), self.sessions, self.clock,
                                     self.settings.synthetic, self.settings.benchmark)
            self._cache[key] = market.bars
        bars = self._cache[key]
        inside = (bars["ts_event"] >= pd.Timestamp(window.start)) & (
            bars["ts_event"] < pd.Timestamp(window.end))
        return conform(bars[inside & bars["symbol"].isin(window.symbols)], "bars")
