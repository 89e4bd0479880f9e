"""The one source interface: fetch a time window, get typed records back as a data frame.

Every source (synthetic, Alpaca bars, NewsAPI, Reddit, files) returns frames with exactly the
columns below, so the store and the validator never care where rows came from. Times are
timezone-aware UTC ``pandas.Timestamp`` values; prices and volumes are floats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

import pandas as pd

RecordKind = Literal["bars", "news", "posts"]

BAR_COLUMNS = ["symbol", "ts_event", "open", "high", "low", "close", "volume"]
"""``ts_event`` is the bar's open time; the store derives ``ts_known`` from the timeframe."""
ARTICLE_COLUMNS = ["external_id", "symbols", "published_at", "title", "description", "url"]
"""``symbols`` is a comma-separated ticker list; ``published_at`` is the event/knowledge time."""
POST_COLUMNS = ["external_id", "subreddit", "symbols", "created_at", "title", "body", "score"]

COLUMNS: dict[RecordKind, list[str]] = {
    "bars": BAR_COLUMNS,
    "news": ARTICLE_COLUMNS,
    "posts": POST_COLUMNS,
}

TIMEFRAMES = ("1Min", "5Min", "15Min", "1Hour", "1Day")


@dataclass(frozen=True)
class FetchWindow:
    """What to fetch: symbols and the half-open UTC interval [start, end)."""

    symbols: tuple[str, ...]
    start: datetime
    end: datetime
    timeframe: str = "1Min"

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("FetchWindow needs timezone-aware start and end")
        if self.end <= self.start:
            raise ValueError(f"empty window: end {self.end} <= start {self.start}")
        if self.timeframe not in TIMEFRAMES:
            raise ValueError(f"timeframe {self.timeframe!r} not in {TIMEFRAMES}")


class Source(Protocol):
    """A data source: ``fetch`` returns a frame with ``COLUMNS[kind]`` for the window."""

    name: str
    kind: RecordKind

    def fetch(self, window: FetchWindow) -> pd.DataFrame: ...


REJECT_COLUMNS = ["record_key", "reason", "payload"]
"""Rows a source could not parse: a readable key (e.g. ``AAPL@2026-01-02T14:30Z`` or
``line 17``), the reason, and the raw row as a JSON-serialisable dict. They go to quarantine."""


def no_rejects() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in REJECT_COLUMNS})


@dataclass
class Fetched:
    """A fetch result plus rows the source itself could not parse (quarantined, with reasons)."""

    frame: pd.DataFrame
    rejected: pd.DataFrame = field(default_factory=no_rejects)


def empty(kind: RecordKind) -> pd.DataFrame:
    """An empty frame with the right columns and dtypes for ``kind``."""
    frame = pd.DataFrame({c: pd.Series(dtype="object") for c in COLUMNS[kind]})
    for c in ("ts_event", "published_at", "created_at"):
        if c in frame:
            frame[c] = pd.Series(dtype="datetime64[ns, UTC]")
    for c in ("open", "high", "low", "close", "volume"):
        if c in frame:
            frame[c] = pd.Series(dtype="float64")
    if "score" in frame:
        frame["score"] = pd.Series(dtype="int64")
    return frame


def conform(frame: pd.DataFrame, kind: RecordKind) -> pd.DataFrame:
    """Select and order ``COLUMNS[kind]``; raise ``ValueError`` naming missing columns."""
    missing = [c for c in COLUMNS[kind] if c not in frame.columns]
    if missing:
        raise ValueError(f"{kind} records lack columns {missing}")
    if frame.empty:
        return empty(kind)
    return frame[COLUMNS[kind]].reset_index(drop=True)
