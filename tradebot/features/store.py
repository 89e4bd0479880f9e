"""The feature store: all reads and writes of bars, text items, scores and feature rows.

Writes are upserts by natural key, so re-running an ingest or a feature build over the same
window writes no duplicates. Reads are point-in-time: callers pass the knowledge cut-off.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tradebot.features.bar_writer import BarWriteCounts, write_bars
from tradebot.features.sentiment import SentimentScorer, content_hash
from tradebot.kernel.clock import MarketClock
from tradebot.kernel.db import upsert
from tradebot.kernel.schema import (
    BarRow,
    FeatureRow,
    NewsArticleRow,
    SentimentScoreRow,
    SocialPostRow,
)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = frame.astype(object).where(frame.notna(), None).to_dict("records")
    for row in out:
        for k, v in row.items():
            if isinstance(v, pd.Timestamp):
                row[k] = v.to_pydatetime()
    return out


def save_bars(
    session: Session, bars: pd.DataFrame, timeframe: str, source: str, ingested_at: datetime,
    clock: MarketClock | None = None,
) -> BarWriteCounts:
    """Store bars by (symbol, timeframe, ts_event): new rows inserted, identical rows left
    alone, restated rows recorded in ``bar_corrections`` (see :mod:`bar_writer`)."""
    frame = bars[["symbol", "ts_event", "open", "high", "low", "close", "volume"]]
    return write_bars(session, frame, timeframe, source, ingested_at, clock)


def load_minute_bars(
    session: Session,
    symbols: Iterable[str],
    start: datetime | None = None,
    end: datetime | None = None,
    timeframe: str = "1Min",
) -> pd.DataFrame:
    """Bars with ts_event in [start, end) for the symbols, sorted by (symbol, ts_event)."""
    cols = [
        BarRow.symbol,
        BarRow.ts_event,
        BarRow.ts_known,
        BarRow.open,
        BarRow.high,
        BarRow.low,
        BarRow.close,
        BarRow.volume,
    ]
    stmt = select(*cols).where(BarRow.symbol.in_(list(symbols)), BarRow.timeframe == timeframe)
    if start is not None:
        stmt = stmt.where(BarRow.ts_event >= start)
    if end is not None:
        stmt = stmt.where(BarRow.ts_event < end)
    rows = session.execute(stmt.order_by(BarRow.symbol, BarRow.ts_event)).all()
    frame = pd.DataFrame(rows, columns=[c.key for c in cols])
    for c in ("ts_event", "ts_known"):
        frame[c] = pd.to_datetime(frame[c], utc=True)
    return frame


def bar_bounds(
    session: Session, timeframe: str = "1Min"
) -> tuple[datetime | None, datetime | None]:
    stmt = select(func.min(BarRow.ts_event), func.max(BarRow.ts_event)).where(
        BarRow.timeframe == timeframe
    )
    low, high = session.execute(stmt).one()
    return low, high


def stored_symbols(session: Session, timeframe: str = "1Min") -> list[str]:
    stmt = select(BarRow.symbol).where(BarRow.timeframe == timeframe).distinct()
    return sorted(session.scalars(stmt))


TextRow = type[NewsArticleRow] | type[SocialPostRow]


def _stored_symbols(session: Session, row: TextRow, source: str, ids: list[str]
                    ) -> dict[str, str]:
    """External id -> stored symbols, for the ids among ``ids`` already stored."""
    stored: dict[str, str] = {}
    for start in range(0, len(ids), 1_000):
        chunk = ids[start : start + 1_000]
        stmt = select(row.external_id, row.symbols).where(
            row.source == source, row.external_id.in_(chunk))
        stored.update((r.external_id, r.symbols) for r in session.execute(stmt))
    return stored


def _save_texts(session: Session, row: TextRow, frame: pd.DataFrame, source: str) -> int:
    """Insert new items; an item found again for other symbols gets the union of its symbols
    (the same article fetched for AAPL and then for MSFT). Returns the number of new rows."""
    stored = _stored_symbols(session, row, source, frame["external_id"].tolist())
    upsert(session, row.__table__, _records(frame), ["source", "external_id"])
    for external_id, symbols in zip(frame["external_id"], frame["symbols"], strict=True):
        if external_id not in stored:
            continue
        merged = ",".join(sorted(set(stored[external_id].split(",")) | set(symbols.split(","))))
        if merged != stored[external_id]:
            session.execute(update(row).where(row.source == source,
                                              row.external_id == external_id)
                            .values(symbols=merged))
    return len(set(frame["external_id"]) - set(stored))


def save_articles(session: Session, news: pd.DataFrame, source: str, ingested_at: datetime) -> int:
    """Insert articles new to (source, external_id); stored ones keep their first-seen text.
    Returns the number of new rows."""
    frame = news[["external_id", "symbols", "published_at", "title", "description", "url"]]
    hashes = (frame["title"] + " " + frame["description"]).map(content_hash)
    frame = frame.assign(source=source, content_hash=hashes, ingested_at=ingested_at)
    return _save_texts(session, NewsArticleRow, frame, source)


def save_posts(session: Session, posts: pd.DataFrame, source: str, ingested_at: datetime) -> int:
    """Insert posts new to (source, external_id); returns the number of new rows."""
    frame = posts[["external_id", "subreddit", "symbols", "created_at", "title", "body", "score"]]
    hashes = (frame["title"] + " " + frame["body"]).map(content_hash)
    frame = frame.assign(source=source, content_hash=hashes, ingested_at=ingested_at)
    return _save_texts(session, SocialPostRow, frame, source)


def score_unscored(session: Session, scorer: SentimentScorer, scored_at: datetime) -> int:
    """Score every stored text this scorer has not scored yet (each text once, by hash)."""
    done = select(SentimentScoreRow.content_hash).where(SentimentScoreRow.scorer == scorer.name)
    texts: dict[str, str] = {}
    for title, body, digest in (
        session.execute(
            select(
                NewsArticleRow.title, NewsArticleRow.description, NewsArticleRow.content_hash
            ).where(NewsArticleRow.content_hash.not_in(done))
        ).all()
        + session.execute(
            select(SocialPostRow.title, SocialPostRow.body, SocialPostRow.content_hash).where(
                SocialPostRow.content_hash.not_in(done)
            )
        ).all()
    ):
        texts.setdefault(digest, f"{title} {body}")
    if not texts:
        return 0
    scores = scorer.score(list(texts.values()))
    rows = [
        {
            "content_hash": h,
            "scorer": scorer.name,
            "score": s.score,
            "positive": s.positive,
            "negative": s.negative,
            "neutral": s.neutral,
            "scored_at": scored_at,
        }
        for h, s in zip(texts, scores, strict=True)
    ]
    return upsert(session, SentimentScoreRow.__table__, rows, ["content_hash", "scorer"])


def load_scored_items(
    session: Session, scorer: str, known_by: datetime | None = None
) -> pd.DataFrame:
    """News and posts with their score: columns kind, symbols, ts_known, score."""
    frames = []
    for kind, row, ts_col in (
        ("news", NewsArticleRow, NewsArticleRow.published_at),
        ("post", SocialPostRow, SocialPostRow.created_at),
    ):
        stmt = (
            select(row.symbols, ts_col.label("ts_known"), SentimentScoreRow.score)
            .join(SentimentScoreRow, SentimentScoreRow.content_hash == row.content_hash)
            .where(SentimentScoreRow.scorer == scorer)
        )
        if known_by is not None:
            stmt = stmt.where(ts_col <= known_by)
        part = pd.DataFrame(session.execute(stmt).all(), columns=["symbols", "ts_known", "score"])
        part.insert(0, "kind", kind)
        frames.append(part)
    items = pd.concat(frames, ignore_index=True)
    items["ts_known"] = pd.to_datetime(items["ts_known"], utc=True)
    return items


def save_feature_rows(
    session: Session, frame: pd.DataFrame, version: str, created_at: datetime
) -> int:
    """Upsert feature rows by (symbol, ts, version); a later build fills in new labels."""
    from tradebot.features.build import feature_columns

    cols = feature_columns(frame)
    values = frame[cols].astype(float).replace([np.inf, -np.inf], np.nan)
    rows = []
    for (symbol, ts, label, fwd), vals in zip(
        frame[["symbol", "ts", "label", "forward_return"]].itertuples(index=False),
        values.to_dict("records"),
        strict=True,
    ):
        rows.append(
            {
                "symbol": symbol,
                "ts": pd.Timestamp(ts).to_pydatetime(),
                "feature_set_version": version,
                "values": {k: (None if pd.isna(v) else float(v)) for k, v in vals.items()},
                "label": None if pd.isna(label) else int(label),
                "forward_return": None if pd.isna(fwd) else float(fwd),
                "created_at": created_at,
            }
        )
    return upsert(
        session,
        FeatureRow.__table__,
        rows,
        ["symbol", "ts", "feature_set_version"],
        update=["values", "label", "forward_return", "created_at"],
    )


def load_feature_frame(
    session: Session, version: str, start: datetime | None = None, end: datetime | None = None
) -> pd.DataFrame:
    """Stored feature rows with ts in [start, end) as one frame: symbol, ts, features, labels."""
    stmt = select(
        FeatureRow.symbol,
        FeatureRow.ts,
        FeatureRow.values,
        FeatureRow.label,
        FeatureRow.forward_return,
    ).where(FeatureRow.feature_set_version == version)
    if start is not None:
        stmt = stmt.where(FeatureRow.ts >= start)
    if end is not None:
        stmt = stmt.where(FeatureRow.ts < end)
    rows = session.execute(stmt.order_by(FeatureRow.ts, FeatureRow.symbol)).all()
    if not rows:
        return pd.DataFrame(columns=["symbol", "ts", "label", "forward_return"])
    values = pd.DataFrame([r.values for r in rows], dtype=float)
    keys = pd.DataFrame(
        {"symbol": [r.symbol for r in rows], "ts": pd.to_datetime([r.ts for r in rows], utc=True)}
    )
    targets = pd.DataFrame(
        {"label": [r.label for r in rows], "forward_return": [r.forward_return for r in rows]},
        dtype=float,
    )
    return pd.concat([keys, values, targets], axis=1)
