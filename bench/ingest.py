"""Bulk loading of 1-minute bars into PostgreSQL: tradebot's store path vs raw COPY vs naive ORM.

One run, one fresh scratch database (created and dropped by the script), the same synthetic bars
(``--rows``, default 5,000,000 = 50 symbols x 100,000 minutes, built with numpy, not timed):

ours      ``store_fetched(session, "bars", "bench", Fetched(chunk), now, "1Min", clock=None)``,
          one transaction per chunk, into the migrated ``bars`` table: validation (pandera
          rules, in-batch duplicates, quarantine), the stored-row lookup and COPY.
raw COPY  psycopg 3 ``cursor.copy("COPY ... FROM STDIN")`` of the same chunks, one transaction
          per chunk, into ``bench_raw.bars``: ``CREATE TABLE ... (LIKE public.bars INCLUDING
          ALL)`` with its own id sequence, so the same columns, types, primary key, unique
          (symbol, timeframe, ts_event) constraint and ts_known index. The time includes
          serialising the DataFrame: ``to_csv`` tab-separated text, ``copy.write_row`` text and
          ``copy.write_row`` binary are each timed on 100,000 rows of chunk 1 (into their own
          fresh copy of the table) and the fastest is used; the choice is printed.
naive ORM ``session.add(BarRow(...))`` + ``flush()`` per row on ``--orm-sample`` rows into
          ``bench_orm.bars`` (a third copy, via ``schema_translate_map``); rows/s extrapolated.

Chunks: ``--chunk-days`` (default 7) of minutes x all symbols, i.e. 7 x 1440 x 50 = 504,000 rows,
which is what one ``run_ingest`` unit holds for 1Min bars (``CHUNK["1Min"]`` = 7 days) of 50
symbols of a 24/7 market. Ours and raw COPY alternate chunk by chunk, so checkpoints,
autovacuum and load from other processes hit both.

Checks (exit status 1 on failure): every table holds exactly the rows loaded into it; the rows
in ``bars`` equal those in ``bench_raw.bars`` (``EXCEPT`` on every column but ``id``); a
second run of ours over the first chunk stores 0 new rows (all unchanged).

    .venv/bin/python bench/ingest.py                      # 5,000,000 rows
    .venv/bin/python bench/ingest.py --rows 500000        # quicker
"""

from __future__ import annotations

import argparse
import io
import math
import platform
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from itertools import repeat

import numpy as np
import pandas as pd
import pandera
import psycopg
import sqlalchemy
from psycopg import sql
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

import tradebot
from tradebot.features.bar_writer import COPY_COLUMNS
from tradebot.kernel.db import Database
from tradebot.kernel.records import Fetched
from tradebot.kernel.schema import BarRow
from tradebot.pipelines.ingest import IngestCounts, store_fetched

TARGET = 0.70  # ours must reach 70% of raw COPY's rows/s
SOURCE = "bench"
TIMEFRAME = "1Min"
START = pd.Timestamp("2026-01-05", tz="UTC")
RAW, ORM = "bench_raw", "bench_orm"
PROBE_ROWS = 100_000  # rows of chunk 1 used to pick the raw COPY serialisation


# --- data ----------------------------------------------------------------------------------------


def make_bars(rows: int, symbols: int, chunk_minutes: int, seed: int) -> pd.DataFrame:
    """``rows`` valid 1-minute bars (``BAR_COLUMNS``), minutes x symbols filled minute by minute,
    then ordered by (chunk of ``chunk_minutes``, symbol, ts_event) as a source returns them."""
    rng = np.random.default_rng(seed)
    minutes = math.ceil(rows / symbols)
    base = rng.uniform(20.0, 500.0, symbols)
    close = base * np.exp(np.cumsum(rng.normal(0.0, 8e-4, (minutes, symbols)), axis=0))
    close = np.round(close, 4)
    open_ = np.empty_like(close)
    open_[0] = np.round(base, 4)
    open_[1:] = close[:-1]
    top, bottom = np.maximum(open_, close), np.minimum(open_, close)
    high = np.maximum(np.round(top * (1 + np.abs(rng.normal(0, 4e-4, close.shape))), 4), top)
    low = np.minimum(np.round(bottom * (1 - np.abs(rng.normal(0, 4e-4, close.shape))), 4), bottom)
    volume = rng.integers(0, 20_000, close.shape).astype(float)

    minute = np.repeat(np.arange(minutes), symbols)[:rows]
    sym = np.tile(np.arange(symbols), minutes)[:rows]
    order = np.lexsort((minute, sym, minute // chunk_minutes))
    minute, sym = minute[order], sym[order]
    names = np.array([f"S{i:03d}" for i in range(symbols)], dtype=object)
    ts = START + pd.to_timedelta(minute, unit="min")
    return pd.DataFrame({
        "symbol": names[sym],
        "ts_event": pd.DatetimeIndex(ts, tz="UTC").as_unit("ns"),
        "open": open_[minute, sym], "high": high[minute, sym], "low": low[minute, sym],
        "close": close[minute, sym], "volume": volume[minute, sym],
    })


def chunk_bounds(bars: pd.DataFrame, chunk_minutes: int) -> list[tuple[int, int]]:
    minute = ((bars["ts_event"] - START) // pd.Timedelta(minutes=1)).to_numpy()
    ids = minute // chunk_minutes
    edges = np.flatnonzero(np.diff(ids)) + 1
    starts = [0, *edges.tolist()]
    ends = [*edges.tolist(), len(bars)]
    return list(zip(starts, ends, strict=True))


# --- raw COPY (the peer) -------------------------------------------------------------------------


def copy_statement(schema: str) -> sql.Composed:
    return sql.SQL("COPY {}.bars ({}) FROM STDIN").format(
        sql.Identifier(schema), sql.SQL(", ").join(map(sql.Identifier, COPY_COLUMNS))
    )


def rows_frame(chunk: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """The chunk with the columns the table needs, in ``COPY_COLUMNS`` order."""
    return pd.DataFrame({
        "symbol": chunk["symbol"], "timeframe": TIMEFRAME, "ts_event": chunk["ts_event"],
        "ts_known": chunk["ts_event"] + pd.Timedelta(minutes=1),
        **{c: chunk[c] for c in ("open", "high", "low", "close", "volume")},
        "source": SOURCE, "ingested_at": pd.Timestamp(now),
    }, columns=COPY_COLUMNS)


def copy_csv(cur: psycopg.Cursor, schema: str, chunk: pd.DataFrame, now: datetime) -> None:
    """Tab-separated text from ``to_csv`` (pandas' default ISO times with +00:00)."""
    buffer = io.StringIO()
    rows_frame(chunk, now).to_csv(buffer, sep="\t", header=False, index=False)
    with cur.copy(copy_statement(schema)) as copy:
        copy.write(buffer.getvalue())


def copy_write_row(cur: psycopg.Cursor, schema: str, chunk: pd.DataFrame, now: datetime) -> None:
    """``copy.write_row`` over Python tuples, text format (psycopg adapts each value)."""
    with cur.copy(copy_statement(schema)) as copy:
        for row in zip(*python_columns(chunk, now), strict=False):
            copy.write_row(row)


def copy_binary(cur: psycopg.Cursor, schema: str, chunk: pd.DataFrame, now: datetime) -> None:
    """``copy.write_row`` over Python tuples, binary format (``set_types``: no text at all)."""
    statement = sql.SQL("{} (FORMAT BINARY)").format(copy_statement(schema))
    with cur.copy(statement) as copy:
        copy.set_types(BINARY_TYPES)
        for row in zip(*python_columns(chunk, now), strict=False):
            copy.write_row(row)


BINARY_TYPES = ["varchar", "varchar", "timestamptz", "timestamptz", *["float8"] * 5, "varchar",
                "timestamptz"]


def python_columns(chunk: pd.DataFrame, now: datetime) -> list[Iterable[object]]:
    """Per ``COPY_COLUMNS`` column, its values as Python objects (constants repeated)."""
    ts = pd.DatetimeIndex(chunk["ts_event"]).tz_convert("UTC")
    return [
        chunk["symbol"].tolist(), repeat(TIMEFRAME),
        list(ts.to_pydatetime()), list((ts + pd.Timedelta(minutes=1)).to_pydatetime()),
        *(chunk[c].tolist() for c in ("open", "high", "low", "close", "volume")),
        repeat(SOURCE), repeat(now),
    ]


Loader = Callable[[psycopg.Cursor, str, pd.DataFrame, datetime], None]
LOADERS: dict[str, Loader] = {
    "to_csv text": copy_csv, "write_row text": copy_write_row, "write_row binary": copy_binary,
}


def pick_serialiser(dsn: str, sample: pd.DataFrame, now: datetime) -> tuple[str, str]:
    """Time each serialisation (+ COPY) of ``sample`` into its own fresh copy of ``bars``."""
    timings = {}
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA probe")
        for name, loader in LOADERS.items():
            cur.execute("CREATE TABLE probe.bars (LIKE public.bars INCLUDING ALL)")
            t0 = time.perf_counter()
            with conn.transaction():
                loader(cur, "probe", sample, now)
            timings[name] = time.perf_counter() - t0
            cur.execute("DROP TABLE probe.bars")
        cur.execute("DROP SCHEMA probe")
    note = ", ".join(f"{k} {len(sample) / t:,.0f} rows/s" for k, t in timings.items())
    return min(timings, key=lambda k: timings[k]), note


# --- setup and checks ----------------------------------------------------------------------------


def fresh_database(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


def make_copies(dsn: str) -> list[str]:
    """``bench_raw.bars`` and ``bench_orm.bars``: copies of the migrated table with their own
    id sequences. Returns the index definitions of ``bars`` (for the printout)."""
    with psycopg.connect(dsn) as conn:
        for schema in (RAW, ORM):
            s = sql.Identifier(schema)
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(s))
            conn.execute(sql.SQL("CREATE TABLE {}.bars (LIKE public.bars INCLUDING ALL)").format(s))
            conn.execute(sql.SQL("CREATE SEQUENCE {}.bars_id_seq OWNED BY {}.bars.id").format(s, s))
            conn.execute(sql.SQL(
                "ALTER TABLE {}.bars ALTER COLUMN id SET DEFAULT nextval({})"
            ).format(s, sql.Literal(f"{schema}.bars_id_seq")))
        defs = {
            schema: sorted(
                d.replace(f"{schema}.", "").split(" ON ", 1)[1]
                for (d,) in conn.execute(
                    "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = 'bars'",
                    (schema,),
                )
            )
            for schema in ("public", RAW, ORM)
        }
    if not defs["public"] == defs[RAW] == defs[ORM]:
        raise SystemExit(f"the table copies differ from bars: {defs}")
    return defs["public"]


def count(dsn: str, schema: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}.bars").format(
            sql.Identifier(schema))).fetchone()
    assert row is not None
    return int(row[0])


def differing_rows(dsn: str) -> int:
    """Rows of ``bars`` not in ``bench_raw.bars`` (same counts + unique keys: 0 means equal)."""
    cols = sql.SQL(", ").join(map(sql.Identifier, COPY_COLUMNS))
    query = sql.SQL(
        "SELECT count(*) FROM (SELECT {c} FROM public.bars EXCEPT SELECT {c} FROM {r}.bars) d"
    ).format(c=cols, r=sql.Identifier(RAW))
    with psycopg.connect(dsn) as conn:
        conn.execute("SET work_mem = '512MB'")
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


# --- the three paths -----------------------------------------------------------------------------


def ours(db: Database, chunk: pd.DataFrame, now: datetime) -> IngestCounts:
    with db.session() as session:
        return store_fetched(session, "bars", SOURCE, Fetched(chunk), now, TIMEFRAME, clock=None)


def naive_orm(url: str, sample: pd.DataFrame, now: datetime) -> float:
    """Seconds to add + flush ``sample`` row by row into ``bench_orm.bars``, then commit."""
    engine = create_engine(url).execution_options(schema_translate_map={None: ORM})
    try:
        t0 = time.perf_counter()
        with Session(engine) as session, session.begin():
            for r in sample.itertuples(index=False):
                ts = r.ts_event.to_pydatetime()
                session.add(BarRow(
                    symbol=r.symbol, timeframe=TIMEFRAME, ts_event=ts,
                    ts_known=ts + pd.Timedelta(minutes=1).to_pytimedelta(),
                    open=float(r.open), high=float(r.high), low=float(r.low),
                    close=float(r.close), volume=float(r.volume),
                    source=SOURCE, ingested_at=now,
                ))
                session.flush()
        return time.perf_counter() - t0
    finally:
        engine.dispose()


# --- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time bulk loading of 1-minute bars into PostgreSQL: tradebot's store path "
        "(validation + quarantine + write) vs raw psycopg COPY vs a naive ORM loop.",
    )
    parser.add_argument("--rows", type=int, default=5_000_000, help="bars (default 5,000,000)")
    parser.add_argument("--symbols", type=int, default=50, help="symbols (default 50)")
    parser.add_argument("--chunk-days", type=float, default=7.0,
                        help="days of minutes per transaction (default 7, one run_ingest unit)")
    parser.add_argument("--orm-sample", type=int, default=20_000,
                        help="rows for the naive ORM loop (default 20,000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--server", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                        help="SQLAlchemy URL of an admin database on the server "
                        "(default %(default)s)")
    parser.add_argument("--database", default="tradebot_bench",
                        help="scratch database, created and dropped (default %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.symbols < 1 or args.chunk_days <= 0 or args.orm_sample < 1:
        parser.error("need positive --rows, --symbols, --chunk-days and --orm-sample")

    admin = make_url(args.server)
    admin_dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    url = admin.set(database=args.database).render_as_string(hide_password=False)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    chunk_minutes = max(1, round(args.chunk_days * 1440))

    t0 = time.perf_counter()
    bars = make_bars(args.rows, args.symbols, chunk_minutes, args.seed)
    bounds = chunk_bounds(bars, chunk_minutes)
    chunks = [bars.iloc[a:b] for a, b in bounds]
    gen_s = time.perf_counter() - t0
    now = datetime.now(UTC).replace(microsecond=0)

    fresh_database(admin_dsn, args.database)
    db = Database(url)
    try:
        db.engine  # noqa: B018 - migrate the fresh database
        index_defs = make_copies(dsn)
        loader_name, probe = pick_serialiser(dsn, chunks[0].iloc[:PROBE_ROWS], now)
        loader = LOADERS[loader_name]

        ours_s = raw_s = 0.0
        totals = IngestCounts(SOURCE, "bars")
        with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
            for i, chunk in enumerate(chunks):
                t = time.perf_counter()
                counts = ours(db, chunk, now)
                ours_s += time.perf_counter() - t
                t = time.perf_counter()
                with conn.transaction():
                    loader(cur, RAW, chunk, now)
                raw_s += time.perf_counter() - t
                for k in ("fetched", "stored", "unchanged", "corrected", "quarantined"):
                    setattr(totals, k, getattr(totals, k) + getattr(counts, k))
                print(f"  chunk {i + 1}/{len(chunks)}: {len(chunk):,} rows", flush=True)

        t = time.perf_counter()
        rerun = ours(db, chunks[0], now)
        rerun_s = time.perf_counter() - t

        sample = bars.iloc[: min(args.orm_sample, len(bars))]
        orm_s = naive_orm(url, sample, now)

        n_ours, n_raw, n_orm = count(dsn, "public"), count(dsn, RAW), count(dsn, ORM)
        diff = differing_rows(dsn)
    finally:
        db.dispose()
        if not args.keep:
            drop_database(admin_dsn, args.database)

    n = len(bars)
    checks = [
        (f"bars holds {n_ours:,} rows", n_ours == n),
        (f"{RAW}.bars holds {n_raw:,} rows", n_raw == n),
        (f"{ORM}.bars holds {n_orm:,} rows", n_orm == len(sample)),
        (f"ours stored {totals.stored:,}, quarantined {totals.quarantined:,}",
         totals.stored == n and totals.quarantined == 0),
        (f"bars vs {RAW}.bars: {diff:,} differing rows", diff == 0),
        (f"re-run stored {rerun.stored:,}, unchanged {rerun.unchanged:,}",
         rerun.stored == 0 and rerun.unchanged == len(chunks[0])),
    ]
    failures = [text for text, ok in checks if not ok]

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"pandera {pandera.__version__}, SQLAlchemy {sqlalchemy.__version__}, "
        f"psycopg {psycopg.__version__}, PostgreSQL server {server_version(admin_dsn)}; "
        f"tradebot from {tradebot.__path__[0]}"
    )
    print(
        f"{n:,} bars ({args.symbols} symbols x {math.ceil(n / args.symbols):,} minutes) generated "
        f"in {gen_s:.1f} s; {len(chunks)} chunks of up to {max(len(c) for c in chunks):,} rows "
        f"({args.chunk_days:g} days), one transaction each"
    )
    print(f"table copies: same {len(index_defs)} indexes as bars: {'; '.join(index_defs)}")
    print(f"raw COPY serialisation: {loader_name} (probe on chunk 1: {probe})")
    rate = {"ours": n / ours_s, "raw": n / raw_s, "orm": len(sample) / orm_s}
    table = [
        ("ours (store_fetched)", n, ours_s),
        (f"raw COPY ({loader_name})", n, raw_s),
        ("naive ORM (add+flush/row)", len(sample), orm_s),
        ("ours re-run (all unchanged)", len(chunks[0]), rerun_s),
    ]
    print(f"{'path':<30}{'rows':>12}{'seconds':>10}{'rows/s':>12}")
    for name, rows, secs in table:
        print(f"{name:<30}{rows:>12,}{secs:>10.2f}{rows / secs:>12,.0f}")
    share = rate["ours"] / rate["raw"]
    print(
        f"ours/raw = {share:.2f} (target >= {TARGET:.2f}: {'MET' if share >= TARGET else 'MISSED'})"
        f"; ours/ORM = {rate['ours'] / rate['orm']:.0f}x"
    )
    print("checks:", "; ".join(f"{'OK' if ok else 'FAILED'} {text}" for text, ok in checks))
    return 1 if failures else 0


def server_version(admin_dsn: str) -> str:
    with psycopg.connect(admin_dsn) as conn:
        return str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]


if __name__ == "__main__":
    raise SystemExit(main())
