"""Ingest step: fetch a window from a source and upsert it into the store, then score texts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from tradebot.features.sentiment import LexiconScorer, SentimentScorer
from tradebot.features.store import save_articles, save_bars, save_posts, score_unscored
from tradebot.kernel.clock import MarketClock
from tradebot.kernel.db import Database
from tradebot.kernel.errors import DataError
from tradebot.kernel.settings import TradebotSettings
from tradebot.sources.synthetic import generate_market

SYNTHETIC = "synthetic"


@dataclass(frozen=True)
class IngestSummary:
    first_session: date
    last_session: date
    sessions: int
    bars: int
    articles: int
    posts: int
    scored: int


def ingest_synthetic(
    db: Database, settings: TradebotSettings, clock: MarketClock, sessions: list[date],
    symbols: list[str], now: datetime, scorer: SentimentScorer | None = None,
) -> IngestSummary:
    """Generate the offline market for ``sessions`` and store it (idempotent upserts)."""
    if not sessions:
        raise DataError("empty data window: no NYSE sessions to ingest")
    market = generate_market(symbols, sessions, clock, settings.synthetic, settings.benchmark)
    if market.bars.empty:
        raise DataError(f"the synthetic source produced no bars for {sessions[0]}..{sessions[-1]}")
    with db.session() as session:
        n_bars = save_bars(session, market.bars, settings.market.base_timeframe, SYNTHETIC, now)
        n_news = save_articles(session, market.news.drop(columns="polarity"), SYNTHETIC, now)
        n_posts = save_posts(session, market.posts.drop(columns="polarity"), SYNTHETIC, now)
    with db.session() as session:
        scored = score_unscored(session, scorer or LexiconScorer(), now)
    return IngestSummary(sessions[0], sessions[-1], len(sessions), n_bars, n_news, n_posts, scored)
