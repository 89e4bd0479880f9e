"""Writing validated bars: new rows inserted (COPY on PostgreSQL), restatements kept as corrections.

For each batch the stored rows with the same keys are read once and compared:
* keys not stored yet are inserted: through ``COPY`` on PostgreSQL (psycopg 3), executemany
  ``INSERT ... ON CONFLICT DO NOTHING`` elsewhere;
* keys stored with the same values are left alone (a re-run changes nothing);
* keys stored with different values are restatements: the old values go to ``bar_corrections``
  and the bar takes the new ones. Nothing is silently overwritten.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.orm import Session

from tradebot.kernel.clock import MarketClock
from tradebot.kernel.db import upsert
from tradebot.kernel.schema import BarCorrectionRow, BarRow

OHLCV = ["open", "high", "low", "close", "volume"]
COPY_COLUMNS = [
    "symbol", "timeframe", "ts_event", "ts_known", *OHLCV, "source", "ingested_at",
]
STEP = {
    "1Min": timedelta(minutes=1), "5Min": timedelta(minutes=5), "15Min": timedelta(minutes=15),
    "1Hour": timedelta(hours=1), "1Day": timedelta(days=1),
}
COPY_CHUNK = 200_000
RELATIVE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class BarWriteCounts:
    inserted: int = 0
    unchanged: int = 0
    corrected: int = 0


def known_times(ts_event: pd.Series, timeframe: str, clock: MarketClock | None) -> pd.Series:
    """When each bar becomes knowable: its close. Daily bars of a session close with the session
    (early on half days); other days (24/7 markets) after a full day."""
    known = ts_event + STEP[timeframe]
    if timeframe != "1Day" or clock is None or ts_event.empty:
        return known
    local_days = ts_event.dt.tz_convert(clock.calendar.tz).dt.tz_localize(None).dt.normalize()
    closes = clock.calendar.schedule["close"].reindex(
        pd.DatetimeIndex(local_days.to_numpy()).as_unit("ns")
    )
    session_close = pd.Series(pd.to_datetime(closes.to_numpy(), utc=True), index=ts_event.index)
    return session_close.where(session_close.notna(), known)


def _stored(session: Session, bars: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    cols = [BarRow.symbol, BarRow.ts_event, *(getattr(BarRow, c) for c in OHLCV), BarRow.source]
    stmt = select(*cols).where(
        BarRow.timeframe == timeframe,
        BarRow.symbol.in_(sorted(bars["symbol"].unique())),
        BarRow.ts_event >= bars["ts_event"].min().to_pydatetime(),
        BarRow.ts_event <= bars["ts_event"].max().to_pydatetime(),
    )
    stored = pd.DataFrame(session.execute(stmt).all(), columns=["symbol", "ts_event", *OHLCV,
                                                                "source"])
    stored["ts_event"] = pd.to_datetime(stored["ts_event"], utc=True)
    return stored


def _same(new: pd.DataFrame, old: pd.DataFrame) -> np.ndarray:
    return np.isclose(
        new[OHLCV].to_numpy(float), old[OHLCV].to_numpy(float), rtol=RELATIVE_TOLERANCE, atol=0
    ).all(axis=1)


def write_bars(
    session: Session, bars: pd.DataFrame, timeframe: str, source: str, now: datetime,
    clock: MarketClock | None = None,
) -> BarWriteCounts:
    """Store validated bars (``BAR_COLUMNS``); see the module docstring for the semantics."""
    if bars.empty:
        return BarWriteCounts()
    frame = bars.assign(ts_event=pd.to_datetime(bars["ts_event"], utc=True).dt.as_unit("us"))
    stored = _stored(session, frame, timeframe)
    if stored.empty:
        fresh, matched = frame, frame.iloc[:0]
        old = stored
    else:
        stored["ts_event"] = stored["ts_event"].dt.as_unit("us")
        stored = stored.rename(columns={"source": "source_old"})
        joined = frame.merge(stored, on=["symbol", "ts_event"], how="left",
                             suffixes=("", "_old"), indicator=True)
        hit = (joined["_merge"] == "both").to_numpy()
        fresh = frame[~hit]
        matched = frame[hit]
        old = joined.loc[hit, [f"{c}_old" for c in OHLCV] + ["source_old"]]
        old.columns = [*OHLCV, "source"]
    same = _same(matched, old) if len(matched) else np.zeros(0, dtype=bool)
    restated, previous = matched[~same], old[~same]
    _insert(session, fresh, timeframe, source, now, clock)
    _correct(session, restated, previous, timeframe, source, now)
    return BarWriteCounts(len(fresh), int(same.sum()), len(restated))


def _naive_utc(times: pd.Series) -> np.ndarray:
    return times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()


def _rows(bars: pd.DataFrame, timeframe: str, source: str, now: datetime,
          clock: MarketClock | None) -> pd.DataFrame:
    """Rows for the bars table; times naive UTC (the COPY text adds the +00:00 offset)."""
    return pd.DataFrame({
        "symbol": bars["symbol"].to_numpy(),
        "timeframe": timeframe,
        "ts_event": _naive_utc(bars["ts_event"]),
        "ts_known": _naive_utc(known_times(bars["ts_event"], timeframe, clock)),
        **{c: bars[c].to_numpy(float) for c in OHLCV},
        "source": source,
        "ingested_at": pd.Timestamp(now).tz_convert("UTC").tz_localize(None),
    }, columns=COPY_COLUMNS)


def _insert(session: Session, bars: pd.DataFrame, timeframe: str, source: str, now: datetime,
            clock: MarketClock | None) -> None:
    if bars.empty:
        return
    rows = _rows(bars, timeframe, source, now, clock)
    if session.get_bind().dialect.name == "postgresql":
        copy_rows(session, rows)
        return
    for c in ("ts_event", "ts_known", "ingested_at"):
        rows[c] = pd.to_datetime(rows[c], utc=True)
    records = rows.astype(object).to_dict("records")
    for r in records:
        for c in ("ts_event", "ts_known", "ingested_at"):
            r[c] = r[c].to_pydatetime()
    upsert(session, BarRow.__table__, records, ["symbol", "timeframe", "ts_event"])


def copy_rows(session: Session, rows: pd.DataFrame, table: str = "bars") -> None:
    """Bulk-load ``rows`` (columns ``COPY_COLUMNS``) with PostgreSQL COPY, in the session's
    transaction: a failure rolls back with everything else."""
    cursor = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    statement = f"COPY {table} ({', '.join(COPY_COLUMNS)}) FROM STDIN"
    with cursor.copy(statement) as copy:
        for start in range(0, len(rows), COPY_CHUNK):
            buffer = io.StringIO()
            rows.iloc[start:start + COPY_CHUNK].to_csv(
                buffer, sep="\t", header=False, index=False, na_rep="\\N",
                date_format="%Y-%m-%d %H:%M:%S.%f+00:00",
            )
            copy.write(buffer.getvalue())


def _correct(session: Session, new: pd.DataFrame, old: pd.DataFrame, timeframe: str,
             source: str, now: datetime) -> None:
    if new.empty:
        return
    events = [t.to_pydatetime() for t in new["ts_event"]]
    corrections = [
        {
            "symbol": sym, "timeframe": timeframe, "ts_event": ts,
            **{f"old_{c}": float(o[c]) for c in OHLCV}, "old_source": o["source"],
            **{f"new_{c}": float(n[c]) for c in OHLCV}, "new_source": source,
            "corrected_at": now,
        }
        for sym, ts, n, o in zip(new["symbol"], events, new.to_dict("records"),
                                 old.to_dict("records"), strict=True)
    ]
    session.execute(BarCorrectionRow.__table__.insert(), corrections)
    table = BarRow.__table__
    stmt = (
        update(table)
        .where(and_(table.c.symbol == bindparam("k_symbol"), table.c.timeframe == timeframe,
                    table.c.ts_event == bindparam("k_ts")))
        .values(**{c: bindparam(f"v_{c}") for c in OHLCV}, source=bindparam("v_source"))
    )
    params = [
        {"k_symbol": r["symbol"], "k_ts": r["ts_event"], "v_source": source,
         **{f"v_{c}": r[f"new_{c}"] for c in OHLCV}}
        for r in corrections
    ]
    session.connection().execute(stmt, params)
