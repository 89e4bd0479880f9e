"""Ingestion end to end on SQLite and PostgreSQL: official clients -> loopback fakes -> store.

Re-runs change nothing, faults leave the store unchanged, interrupted backfills resume from
their checkpoint, restatements become corrections and bad rows land in quarantine.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from tests.kit.fakes.alpaca import TEST_KEY, TEST_SECRET, AlpacaFake
from tests.kit.fakes.newsapi import NewsApiFake, article
from tests.kit.fakes.server import malformed, serve, server_error
from tests.kit.market import tiny_market
from tradebot.kernel.clock import MarketClock
from tradebot.kernel.db import Database
from tradebot.kernel.errors import SourceError
from tradebot.kernel.schema import (
    BarCorrectionRow,
    BarRow,
    IngestCheckpointRow,
    NewsArticleRow,
    QuarantineRow,
)
from tradebot.kernel.settings import load_settings
from tradebot.pipelines.ingest_jobs import IngestContext, ingest_file, ingest_market, ingest_news

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
START = datetime(2026, 6, 1, tzinfo=UTC)
END = datetime(2026, 6, 4, tzinfo=UTC)  # tiny_market's three sessions: Jun 1-3


def _context(database_url: str, tmp_path: Path, **env: str) -> IngestContext:
    settings = load_settings(
        None,
        home=tmp_path / "home",
        symbols=["QQQ", "AAPL"],
        sources={
            "http": {"attempts": 2, "timeout_seconds": 1.0, "backoff_seconds": 0.0,
                     "max_retry_after_seconds": 0.1},
            **env,
        },
    )
    return IngestContext(settings, Database(database_url), MarketClock(), tmp_path / "home",
                         lambda: NOW)


def _alpaca(fake: AlpacaFake) -> dict:
    return {"alpaca": {"data_url": fake.url, "api_key": TEST_KEY, "secret_key": TEST_SECRET,
                       "symbols_per_request": 1}}


def _count(db: Database, table: type) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def _market_bars() -> pd.DataFrame:
    return tiny_market(n_sessions=3).bars[["symbol", "ts_event", "open", "high", "low", "close",
                                           "volume"]]


def test_alpaca_backfill_is_idempotent_and_records_restatements(database_url, tmp_path) -> None:
    bars = _market_bars()
    with AlpacaFake(bars, page_size=500) as fake:
        ctx = _context(database_url, tmp_path, **_alpaca(fake))
        first = ingest_market(ctx, "alpaca", ["QQQ", "AAPL"], "1Min", START, END)
        assert (first.fetched, first.stored, first.quarantined) == (len(bars), len(bars), 0)
        assert len(fake.server.hits("/v2/stocks/bars")) == 2 * 3  # 3 pages per symbol batch
        again = ingest_market(ctx, "alpaca", ["QQQ", "AAPL"], "1Min", START, END)
        assert (again.stored, again.unchanged, again.corrected) == (0, len(bars), 0)
        assert _count(ctx.db, BarRow) == len(bars)

        restated = bars.copy()
        restated.loc[restated.index[:3], "close"] = restated["low"].iloc[:3]  # still valid
        fake.bars["1Min"] = restated.sort_values(["symbol", "ts_event"], ignore_index=True)
        third = ingest_market(ctx, "alpaca", ["QQQ", "AAPL"], "1Min", START, END)
    changed = int((restated["close"] != bars["close"]).sum())
    assert third.corrected == changed and third.stored == 0
    assert _count(ctx.db, BarCorrectionRow) == changed
    assert _count(ctx.db, BarRow) == len(bars)
    ctx.db.dispose()


def test_a_failing_unit_leaves_the_store_unchanged_and_the_rerun_resumes(
    database_url, tmp_path
) -> None:
    bars = _market_bars()
    with AlpacaFake(bars) as fake:
        ctx = _context(database_url, tmp_path, **_alpaca(fake))
        # the first symbol batch succeeds, the second one gets a malformed body
        def fail_second_symbol(request):
            return request.arg("symbols") == "QQQ"

        original = fake.server.dispatch

        def dispatch(request):
            if request.path == "/v2/stocks/bars" and fail_second_symbol(request):
                fake.server.requests.append(request)
                return malformed()
            return original(request)

        fake.server.dispatch = dispatch  # type: ignore[method-assign]
        with pytest.raises(SourceError, match="malformed"):
            ingest_market(ctx, "alpaca", ["AAPL", "QQQ"], "1Min", START, END)
        aapl = int((bars["symbol"] == "AAPL").sum())
        assert _count(ctx.db, BarRow) == aapl  # only the finished unit is stored
        with ctx.db.session() as session:
            checkpoint = session.scalars(select(IngestCheckpointRow)).one()
            assert (checkpoint.units_done, checkpoint.completed_at) == (1, None)

        fake.server.dispatch = original  # type: ignore[method-assign]
        aapl_requests = len([r for r in fake.server.hits("/v2/stocks/bars")
                             if r.arg("symbols") == "AAPL"])
        resumed = ingest_market(ctx, "alpaca", ["AAPL", "QQQ"], "1Min", START, END)
        assert resumed.resumed_at_unit == 1
        assert resumed.stored == len(bars) - aapl
        after = len([r for r in fake.server.hits("/v2/stocks/bars")
                     if r.arg("symbols") == "AAPL"])
        assert after == aapl_requests  # the stored unit was not fetched again
    assert _count(ctx.db, BarRow) == len(bars)
    ctx.db.dispose()


def test_server_errors_are_retried_and_exhausted_retries_store_nothing(
    database_url, tmp_path
) -> None:
    bars = _market_bars()
    with AlpacaFake(bars) as fake:
        ctx = _context(database_url, tmp_path, **_alpaca(fake))
        fake.server.fail("/v2/stocks/bars", server_error(503), times=1)
        counts = ingest_market(ctx, "alpaca", ["AAPL"], "1Min", START, END)
        assert counts.stored == int((bars["symbol"] == "AAPL").sum())
        fake.server.fail("/v2/stocks/bars", server_error(500), times=10)
        with pytest.raises(SourceError, match="500"):
            ingest_market(ctx, "alpaca", ["QQQ"], "1Min", START, END)
    with ctx.db.session() as session:
        symbols = set(session.scalars(select(BarRow.symbol).distinct()))
    assert symbols == {"AAPL"}
    ctx.db.dispose()


def test_invalid_bars_are_quarantined_with_reasons_once(database_url, tmp_path) -> None:
    bars = _market_bars()
    bad = bars.copy()
    bad.loc[bad.index[0], "high"] = bad["low"].iloc[0] - 1  # high < low
    bad.loc[bad.index[1], "volume"] = -5
    extended = bad.iloc[[2]].assign(ts_event=pd.Timestamp("2026-06-01T12:00Z"))  # 8:00 ET
    served = pd.concat([bad, extended], ignore_index=True)
    with AlpacaFake(served) as fake:
        ctx = _context(database_url, tmp_path, **_alpaca(fake))
        counts = ingest_market(ctx, "alpaca", ["QQQ", "AAPL"], "1Min", START, END)
        again = ingest_market(ctx, "alpaca", ["QQQ", "AAPL"], "1Min", START, END)
    assert counts.quarantined == 3 and again.quarantined == 3
    assert counts.stored == len(bars) - 2
    with ctx.db.session() as session:
        reasons = sorted(session.scalars(select(QuarantineRow.reason)))
    assert len(reasons) == 3  # a re-run does not quarantine the same row twice
    assert any("high < low" in r for r in reasons)
    assert "negative volume" in reasons
    assert "outside the regular session" in reasons
    ctx.db.dispose()


def test_news_ingest_dedupes_across_symbols_and_reruns(database_url, tmp_path) -> None:
    articles = [
        article("Apple and Nasdaq-100 rally", "2026-06-02T14:00:00Z", "https://n.test/1"),
        article("Apple beats estimates", "2026-06-02T15:00:00Z", "https://n.test/2"),
        article("QQQ flows", "2026-06-03T15:00:00Z", "https://n.test/3"),
        article("Apple without a date", None, "https://n.test/4"),  # type: ignore[arg-type]
    ]
    fake = NewsApiFake(articles)
    with serve(fake.server):
        ctx = _context(database_url, tmp_path, newsapi={"base_url": fake.base_url,
                                                         "api_key": "test-key-123"})
        first = ingest_news(ctx, ["AAPL", "QQQ"], START, END)
        again = ingest_news(ctx, ["AAPL", "QQQ"], START, END)
    # one query (unit) per symbol: article 1 comes back for both, stored once
    assert (first.stored, first.unchanged, first.quarantined) == (3, 1, 1)
    assert (again.stored, again.unchanged) == (0, 4)
    with ctx.db.session() as session:
        symbols = dict(session.execute(select(NewsArticleRow.external_id,
                                              NewsArticleRow.symbols)).all())
    assert symbols["https://n.test/1"] == "AAPL,QQQ"  # found by both per-symbol queries
    assert symbols["https://n.test/3"] == "QQQ"
    ctx.db.dispose()


def test_file_import_stores_good_rows_and_quarantines_garbage(database_url, tmp_path) -> None:
    path = tmp_path / "aapl.csv"
    path.write_text(
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2026-06-01,10,11,9,10.5,10.4,1000\n"
        "2026-06-02,10,9,11,10.5,10.4,1000\n"      # high < low: validation reject
        "2026-06-03,n/a,11,9,10.5,10.4,1000\n"     # parse reject
        "2026-06-04,10,11,9,10.7,10.6,1200\n"
    )
    ctx = _context(database_url, tmp_path)
    counts = ingest_file(ctx, path, symbol="AAPL")
    again = ingest_file(ctx, path, symbol="AAPL")
    assert (counts.fetched, counts.stored, counts.quarantined) == (4, 2, 2)
    assert (again.stored, again.unchanged) == (0, 2)
    with ctx.db.session() as session:
        rows = session.execute(select(BarRow.ts_event, BarRow.ts_known, BarRow.timeframe)
                               .order_by(BarRow.ts_event)).all()
    assert rows[0].timeframe == "1Day"
    assert rows[0].ts_event == datetime(2026, 6, 1, 4, tzinfo=UTC)  # midnight New York
    assert rows[0].ts_known == datetime(2026, 6, 1, 20, tzinfo=UTC)  # the session's close
    assert _count(ctx.db, QuarantineRow) == 2
    ctx.db.dispose()


def test_reddit_ingest_keeps_posts_naming_the_symbols_once(database_url, tmp_path) -> None:
    from tests.kit.fakes.reddit import RedditFake
    from tradebot.pipelines.ingest_jobs import ingest_reddit

    t0 = datetime(2026, 6, 2, 15, tzinfo=UTC).timestamp()
    with RedditFake("cid", "csecret", page_size=2) as fake:
        for sub in ("stocks", "investing", "wallstreetbets"):
            fake.add_subreddit(sub)
        fake.add_post("stocks", "p1", "$AAPL to the moon", t0)
        fake.add_post("stocks", "p2", "IT is a great day for everyone", t0 + 60)  # no ticker
        fake.add_post("investing", "p3", "Thoughts on QQQ vs AAPL?", t0 + 120)
        fake.add_post("wallstreetbets", "p4", "", t0 + 180)  # no title: quarantined
        fake.add_post("wallstreetbets", "p5", "AAPL calls", t0 - 10 * 86400)  # before the window
        ctx = _context(database_url, tmp_path, reddit={
            "oauth_url": fake.url, "reddit_url": fake.url, "client_id": "cid",
            "client_secret": "csecret"})
        first = ingest_reddit(ctx, ["AAPL", "QQQ"], START, END)
        again = ingest_reddit(ctx, ["AAPL", "QQQ"], START, END)
    assert (first.stored, first.quarantined) == (2, 1)
    assert (again.stored, again.unchanged) == (0, 2)
    from tradebot.kernel.schema import SocialPostRow

    with ctx.db.session() as session:
        posts = dict(session.execute(select(SocialPostRow.external_id,
                                            SocialPostRow.symbols)).all())
    assert posts == {"p1": "AAPL", "p3": "AAPL,QQQ"}
    ctx.db.dispose()
