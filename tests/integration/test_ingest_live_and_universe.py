"""Live websocket bars and the Alpaca universe, stored on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import func, select

from tests.kit.fakes.alpaca import TEST_KEY, TEST_SECRET, AlpacaFake, asset
from tests.kit.fakes.alpaca_stream import AlpacaStreamFake
from tradebot.kernel.clock import MarketClock
from tradebot.kernel.db import Database
from tradebot.kernel.schema import BarRow
from tradebot.kernel.settings import load_settings
from tradebot.pipelines.ingest_jobs import live_bar_writer
from tradebot.pipelines.universe import (
    refresh_universe,
    resolve_symbols,
    stored_universe,
    universe_symbols,
)
from tradebot.sources.alpaca import AlpacaAssets
from tradebot.sources.alpaca_stream import LiveBarStream

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)


def _live_bars() -> pd.DataFrame:
    times = pd.date_range("2026-06-01T13:30Z", periods=3, freq="1min")
    rows = [
        {"symbol": s, "ts_event": t, "open": 100.0 + i, "high": 101.0 + i, "low": 99.0 + i,
         "close": 100.5 + i, "volume": 1000.0}
        for s in ("AAPL", "MSFT") for i, t in enumerate(times)
    ]
    rows.append({**rows[0], "ts_event": pd.Timestamp("2026-06-01T13:40Z"), "low": 200.0})  # bad
    return pd.DataFrame(rows)


def test_streamed_bars_land_in_the_store_through_validation(database_url, tmp_path) -> None:
    db = Database(database_url)
    with AlpacaStreamFake(_live_bars(), per_frame=2) as fake:
        cfg = load_settings(None, home=tmp_path, sources={"alpaca": {
            "stream_url": fake.url, "api_key": TEST_KEY, "secret_key": TEST_SECRET}})
        stream = LiveBarStream(cfg.sources.alpaca, ["AAPL", "MSFT"],
                               live_bar_writer(db, MarketClock(), lambda: NOW))
        thread = threading.Thread(target=stream.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while stream.received < 7 and time.monotonic() < deadline:
            time.sleep(0.05)
        stream.stop()
        thread.join(5)
    assert stream.received == 7 and stream.failed == 0
    with db.session() as session:
        stored = session.scalar(select(func.count()).select_from(BarRow))
        sources = set(session.scalars(select(BarRow.source).distinct()))
    assert stored == 6 and sources == {"alpaca"}  # the bar with low > high is quarantined
    db.dispose()


def test_universe_refresh_of_600_assets_is_stored_and_resolves_symbols(
    database_url, tmp_path
) -> None:
    names = [f"S{i:03d}" for i in range(600)]
    assets = [asset(s, exchange=("NASDAQ", "NYSE", "ARCA")[i % 3]) for i, s in enumerate(names)]
    assets += [asset("XYZW", "XYZ Corp Warrants"), asset("OTCX", exchange="OTC")]
    prices = {s: 10.0 + i for i, s in enumerate(names)} | {"XYZW": 11.0, "OTCX": 12.0}
    db = Database(database_url)
    with AlpacaFake(assets=assets, prices=prices) as fake:
        settings = load_settings(None, home=tmp_path, universe={"mode": "alpaca"}, sources={
            "alpaca": {"trading_url": fake.url, "data_url": fake.url, "api_key": TEST_KEY,
                       "secret_key": TEST_SECRET}})
        source = AlpacaAssets(settings.sources.alpaca, settings.sources.http)
        frame = refresh_universe(db, settings, source, NOW)
        again = refresh_universe(db, settings, source, NOW)
    assert len(frame) == len(again) == 602
    chosen = universe_symbols(settings, db)
    assert len(chosen) == 500 and chosen == names[:500]  # max_symbols, in symbol order
    everything = stored_universe(db, include_excluded=True).set_index("symbol")
    assert everything.loc["XYZW", "excluded_reason"] == "name matches warrant pattern"
    assert "OTC" in everything.loc["OTCX", "excluded_reason"]
    assert resolve_symbols(["s001", "S002"], settings, db) == ["S001", "S002"]
    db.dispose()
