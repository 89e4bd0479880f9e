"""Feature build end to end (read, compute, write) vs raw TA-Lib on the same arrays, one run.

Setup, not timed: one synthetic market (``generate_market``, ``--seed``, 1-minute bars of
``--symbols`` x ``--sessions`` NYSE sessions; default 100 x 250 = 9,750,000 bars) is written with
the project's own write path (``save_bars`` -> ``write_bars``: executemany upsert on SQLite,
binary COPY on PostgreSQL) into a fresh database migrated by ``Database(url)``:

``--db sqlite``    (default) a temporary file, the embedded database users get by default;
``--db postgres``  a scratch database created next to ``--server`` (default: the test server,
                   ``TRADEBOT_TEST_DATABASE_URL`` or ``postgresql+psycopg://postgres@
                   127.0.0.1:5432/test``), ``ANALYZE``d after loading and dropped at the end.

Timed, ours end to end, as ``pipelines.dataset.build_features`` does it, once (a second write
would update existing rows, which is other work):

read     ``load_minute_bars`` + ``load_scored_items`` (no texts are stored, so the items frame is
         empty and the sentiment columns are NaN / 0, as in ``features_vs_talib.py``), one
         ``db.session()``;
compute  ``build_feature_frame`` with ``FeatureSettings()`` / ``LabelSettings()``, 15-minute bars:
         resampling, indicators, sentiment windows, labels, warm-up drop, concat;
write    ``save_feature_rows`` in one ``db.session()`` transaction, commit included.

Timed, the peer: ``talib_features`` from ``features_vs_talib.py`` (the same 16 indicator columns
written by hand with raw TA-Lib calls on numpy arrays) per symbol, on the per-symbol 15-minute
high/low/close/volume arrays made once, outside the timing, with ``resample_bars`` from the very
bars the read stage returned (that step is printed as well, for scale); best of ``--repeat``
runs.

Ratios: ours compute / TA-Lib and ours total / TA-Lib (above 1 means ours is slower). Target: the
total <= 60 s on 2 cores at 100 x 250. Checks (exit status 1 on failure): rows read = bars
generated; feature rows written = rows built = rows in ``feature_rows``; per symbol, ours' rows
are exactly the peer's warm rows (same ``ts``) and the 16 columns are equal
(``np.allclose(equal_nan=True)``). ``--profile`` runs the three stages under cProfile and prints
where the time goes (the times are then inflated by the profiler).

    .venv/bin/python bench/features.py                               # 100 x 250, SQLite
    .venv/bin/python bench/features.py --db postgres
    .venv/bin/python bench/features.py --symbols 5 --sessions 40     # quick
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import resource
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import sqlalchemy
import talib
from features_vs_talib import symbol_names, talib_features
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

import tradebot
from tradebot.features.bars import resample_bars
from tradebot.features.build import build_feature_frame, feature_columns
from tradebot.features.sentiment import LexiconScorer
from tradebot.features.store import (
    load_minute_bars,
    load_scored_items,
    save_bars,
    save_feature_rows,
)
from tradebot.kernel.clock import MarketClock
from tradebot.kernel.db import Database
from tradebot.kernel.schema import FeatureRow
from tradebot.kernel.settings import (
    DataSettings,
    FeatureSettings,
    LabelSettings,
    SyntheticSettings,
)
from tradebot.sources.synthetic import generate_market

TARGET_S = 60.0  # end to end, 100 symbols x 250 sessions, 2 cores
BAR_MINUTES = 15
TIMEFRAME = "1Min"
SOURCE = "bench"
DEFAULT_SERVER = os.environ.get(  # as the tests' PostgreSQL fixtures (tests/kit/databases.py)
    "TRADEBOT_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
LOAD_SYMBOLS = 10  # symbols per setup transaction (975,000 bars at 250 sessions)
T = TypeVar("T")


# --- databases -----------------------------------------------------------------------------------


@contextmanager
def scratch_database(kind: str, server: str, keep: bool) -> Iterator[str]:
    """URL of a fresh, empty database (temp SQLite file or new PostgreSQL database)."""
    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="bench-features-"))
        try:
            yield f"sqlite:///{folder / 'tradebot.db'}"
        finally:
            if keep:
                print(f"kept {folder / 'tradebot.db'}")
            else:
                shutil.rmtree(folder, ignore_errors=True)
        return
    admin = make_url(server)
    name = f"tradebot_bench_features_{uuid.uuid4().hex[:8]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin.set(database=name).render_as_string(hide_password=False)
        finally:
            if keep:
                print(f"kept database {name}")
            else:
                with engine.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def backend_versions(db: Database) -> str:
    with db.engine.connect() as conn:
        if db.engine.dialect.name == "postgresql":
            import psycopg

            server = conn.execute(text("SHOW server_version")).scalar()
            return f"PostgreSQL server {server}, psycopg {psycopg.__version__}"
        journal = conn.execute(text("PRAGMA journal_mode")).scalar()
        return f"SQLite {sqlite3.sqlite_version} (journal_mode {journal})"


def load_bars(db: Database, bars: pd.DataFrame, clock: MarketClock, now: datetime) -> None:
    """Setup: the bars into the store with the project's write path, ``LOAD_SYMBOLS`` per
    transaction (as an ingest run would)."""
    symbols = sorted(bars["symbol"].unique())
    for start in range(0, len(symbols), LOAD_SYMBOLS):
        part = bars[bars["symbol"].isin(symbols[start:start + LOAD_SYMBOLS])]
        with db.session() as session:
            save_bars(session, part, TIMEFRAME, SOURCE, now, clock)
        print(f"  loaded {min(start + LOAD_SYMBOLS, len(symbols))}/{len(symbols)} symbols",
              flush=True)
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))


# --- timing --------------------------------------------------------------------------------------


def timed(fn: Callable[[], T], profile: cProfile.Profile | None) -> tuple[float, T]:
    t0 = time.perf_counter()
    out = fn() if profile is None else profile.runcall(fn)
    return time.perf_counter() - t0, out


def profile_report(name: str, profile: cProfile.Profile, top: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.strip_dirs().sort_stats("cumulative").print_stats(top)
    out.write(f"--- {name}: by own time ---\n")
    stats.sort_stats("tottime").print_stats(top)
    return f"=== profile of {name} ===\n{out.getvalue()}"


PeerArrays = dict[str, tuple[pd.DatetimeIndex, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


def peer_arrays(minute_bars: pd.DataFrame) -> PeerArrays:
    """Per symbol: 15-minute ts and high, low, close, volume as float arrays (not timed)."""
    bars = resample_bars(minute_bars, BAR_MINUTES)
    out: PeerArrays = {}
    for symbol, b in bars.groupby("symbol", sort=True):
        b = b.sort_values("ts")
        out[str(symbol)] = (
            pd.DatetimeIndex(b["ts"]),
            *(b[k].to_numpy(float) for k in ("high", "low", "close", "volume")),
        )
    return out


def peer(arrays: PeerArrays) -> dict[str, dict[str, np.ndarray]]:
    return {s: talib_features(*a) for s, a in arrays.items()}


def check_columns(
    frame: pd.DataFrame, arrays: PeerArrays, peer_out: dict[str, dict[str, np.ndarray]]
) -> tuple[int, list[str]]:
    """Ours' rows per symbol are the peer's warm rows (all 16 columns defined), same values."""
    compared, bad = 0, []
    groups = dict(tuple(frame.groupby("symbol", sort=True)))
    if sorted(groups) != sorted(peer_out):
        return 0, [f"symbols {sorted(groups)} != {sorted(peer_out)}"]
    for symbol, cols in peer_out.items():
        ours = groups[symbol].sort_values("ts")
        keep = ~np.isnan(np.column_stack(list(cols.values()))).any(axis=1)
        ts = arrays[symbol][0][keep]
        if len(ours) != len(ts) or not (pd.DatetimeIndex(ours["ts"]) == ts).all():
            bad.append(f"{symbol}.ts")
            continue
        for k, values in cols.items():
            if k not in ours.columns:
                bad.append(f"{symbol}.{k} missing")
            elif not np.allclose(ours[k].to_numpy(float), values[keep], equal_nan=True):
                bad.append(f"{symbol}.{k}")
            compared += 1
    return compared, bad


def stored_feature_rows(db: Database, version: str) -> int:
    with db.session() as session:
        return int(session.execute(
            select(func.count()).select_from(FeatureRow)
            .where(FeatureRow.feature_set_version == version)
        ).scalar_one())


# --- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time the feature build end to end (read minute bars from the store, "
        "build_feature_frame, save_feature_rows) and raw TA-Lib on the same 15-minute arrays "
        "in one run; print both and the ratios. Target: <= 60 s end to end at 100 x 250.",
    )
    parser.add_argument("--symbols", type=int, default=100, help="number of symbols (default 100)")
    parser.add_argument("--sessions", type=int, default=250,
                        help="NYSE sessions (default 250, about one year)")
    parser.add_argument("--seed", type=int, default=7, help="synthetic market seed (default 7)")
    parser.add_argument(
        "--start", type=date.fromisoformat, default=DataSettings().start,
        help="first session, YYYY-MM-DD (default %(default)s)",
    )
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite",
                        help="store backend (default sqlite, a temporary file)")
    parser.add_argument("--server", default=DEFAULT_SERVER,
                        help="--db postgres: SQLAlchemy URL of an existing database on the server; "
                        "the scratch database is created next to it (default "
                        "$TRADEBOT_TEST_DATABASE_URL, else postgresql+psycopg://postgres@"
                        "127.0.0.1:5432/test)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of the TA-Lib peer, best kept (default 3)")
    parser.add_argument("--profile", type=int, nargs="?", const=25, default=0, metavar="TOP",
                        help="profile ours' stages with cProfile, print the TOP functions "
                        "(default 25 when given; timings are then inflated)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args(argv)
    if args.symbols < 1 or args.sessions < 30 or args.repeat < 1:
        parser.error("need --symbols >= 1, --sessions >= 30 (indicator warm-up), --repeat >= 1")

    load_start = os.getloadavg()
    clock = MarketClock(bar_minutes=BAR_MINUTES)
    sessions = clock.sessions(args.start, args.sessions)
    symbols = symbol_names(args.symbols)
    features, label = FeatureSettings(), LabelSettings()
    now = datetime.now(UTC).replace(microsecond=0)

    t0 = time.perf_counter()
    market = generate_market(symbols, sessions, clock, SyntheticSettings(
        seed=args.seed, news_per_symbol_per_day=0.0, posts_per_symbol_per_day=0.0))
    generated = len(market.bars)
    gen_s = time.perf_counter() - t0
    print(f"generated {generated:,} minute bars in {gen_s:.1f} s; loading them into {args.db}",
          flush=True)

    profiles = {k: cProfile.Profile() for k in ("read", "compute", "write")} if args.profile \
        else {}
    with scratch_database(args.db, args.server, args.keep) as url:
        db = Database(url)
        try:
            t0 = time.perf_counter()
            load_bars(db, market.bars, clock, now)
            setup_s = time.perf_counter() - t0
            del market
            versions = backend_versions(db)

            def read() -> tuple[pd.DataFrame, pd.DataFrame]:
                with db.session() as session:
                    return (load_minute_bars(session, symbols, timeframe=TIMEFRAME),
                            load_scored_items(session, LexiconScorer.name))

            def compute() -> pd.DataFrame:
                return build_feature_frame(minute_bars, items, features, label, BAR_MINUTES)

            def write() -> int:
                with db.session() as session:
                    return save_feature_rows(session, frame, features.set_version, now)

            print("timing ours end to end", flush=True)
            read_s, (minute_bars, items) = timed(read, profiles.get("read"))
            compute_s, frame = timed(compute, profiles.get("compute"))
            write_s, written = timed(write, profiles.get("write"))
            stored = stored_feature_rows(db, features.set_version)
        finally:
            db.dispose()

    print("timing raw TA-Lib", flush=True)
    resample_s, arrays = timed(lambda: peer_arrays(minute_bars), None)
    peer_s, peer_out = float("inf"), {}
    for _ in range(args.repeat):
        t, peer_out = timed(lambda: peer(arrays), None)
        peer_s = min(peer_s, t)
    compared, bad = check_columns(frame, arrays, peer_out)
    total_s = read_s + compute_s + write_s
    load_end = os.getloadavg()
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux

    print()
    print(f"load average {load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end")
    print(
        f"{platform.processor() or platform.machine()}, nproc {os.cpu_count()}; "
        f"{platform.system()} {platform.release()}; Python {platform.python_version()}, "
        f"numpy {np.__version__}, pandas {pd.__version__}, TA-Lib {talib.__version__}, "
        f"SQLAlchemy {sqlalchemy.__version__}, {versions}; tradebot from {tradebot.__path__[0]}"
    )
    bars_15 = sum(len(a[0]) for a in arrays.values())
    print(
        f"{len(symbols)} symbols x {len(sessions)} sessions ({sessions[0]}..{sessions[-1]}): "
        f"{generated:,} minute bars, {bars_15:,} {BAR_MINUTES}-minute bars; generated in "
        f"{gen_s:.1f} s, loaded into {args.db} in {setup_s:.1f} s (not timed)"
    )
    if args.profile:
        print("PROFILED RUN: cProfile inflates the times below")
    rows = [
        ("read (load_minute_bars)", read_s, f"{len(minute_bars):,} bars read"),
        ("compute (build_feature_frame)", compute_s,
         f"{len(frame):,} rows, {len(feature_columns(frame))} feature columns + 2 targets"),
        ("write (save_feature_rows)", write_s, f"{written:,} feature rows written"),
        ("ours end to end", total_s, ""),
        (f"raw TA-Lib (best of {args.repeat})", peer_s, f"{compared:,} columns compared"),
    ]
    print(f"{'stage':<32}{'seconds':>9}  notes")
    for name, secs, note in rows:
        print(f"{name:<32}{secs:>9.3f}  {note}")
    print(f"(the peer's arrays: resample_bars + per-symbol split, {resample_s:.3f} s, not timed; "
          f"peak RSS of the whole run {peak_gb:.1f} GiB)")
    print(f"ratio ours compute / TA-Lib = {compute_s / peer_s:.1f}; "
          f"ours end to end / TA-Lib = {total_s / peer_s:.1f}")
    print(f"target <= {TARGET_S:.0f} s end to end: "
          f"{'MET' if total_s <= TARGET_S else 'MISSED'} ({total_s:.1f} s)")

    checks = [
        (f"rows read {len(minute_bars):,} = bars generated {generated:,}",
         len(minute_bars) == generated),
        (f"feature rows built {len(frame):,} = written {written:,} = stored {stored:,}",
         len(frame) == written == stored),
        (f"ours vs TA-Lib: {compared:,} columns equal" if not bad
         else f"ours vs TA-Lib MISMATCH {bad[:6]}", not bad),
    ]
    print("checks:", "; ".join(f"{'OK' if ok else 'FAILED'} {t}" for t, ok in checks))
    for name, profile in profiles.items():
        print()
        print(profile_report(name, profile, args.profile))
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
