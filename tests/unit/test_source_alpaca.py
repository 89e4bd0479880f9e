"""Alpaca bars and assets through the real alpaca-py clients against the loopback fake."""

from __future__ import annotations

import itertools
import logging
import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from tests.kit.fakes.alpaca import TEST_KEY, TEST_SECRET, AlpacaFake, asset
from tests.kit.fakes.server import Reply, malformed, server_error, slow, throttled
from tradebot.kernel.errors import ConfigError, SourceError
from tradebot.kernel.records import BAR_COLUMNS, FetchWindow
from tradebot.kernel.settings import AlpacaSource, HttpSettings, UniverseSettings
from tradebot.pipelines.symbols import filter_universe, included
from tradebot.sources.alpaca import AlpacaAssets, AlpacaBars
from tradebot.sources.http import RequestBudget

SYMBOLS = ("AAPL", "AMZN", "MSFT", "NVDA", "QQQ")
T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
BARS_PATH = r"/v2/stocks/bars"
HTTP = HttpSettings(attempts=3, timeout_seconds=0.3, backoff_seconds=0.01,
                    max_backoff_seconds=0.05)


def make_bars(symbols=SYMBOLS, start=T0, n=20, freq="1min", seed=1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for i, symbol in enumerate(symbols):
        close = np.round(100 + 10 * i + np.cumsum(rng.normal(0, 0.3, n)), 2)
        frames.append(pd.DataFrame({
            "symbol": symbol,
            "ts_event": pd.date_range(start, periods=n, freq=freq, tz="UTC").as_unit("ns"),
            "open": np.round(close - 0.05, 2), "high": np.round(close + 0.11, 2),
            "low": np.round(close - 0.13, 2), "close": close,
            "volume": rng.integers(100, 5000, n).astype(float),
        }))
    return pd.concat(frames, ignore_index=True)


def expected(frame: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    keep = (frame["ts_event"] >= start) & (frame["ts_event"] < end)
    out = frame[keep].sort_values(["symbol", "ts_event"])[BAR_COLUMNS].reset_index(drop=True)
    return out.astype({"symbol": object})


def cfg(fake: AlpacaFake, **overrides) -> AlpacaSource:
    values = {"api_key": TEST_KEY, "secret_key": TEST_SECRET, "data_url": fake.url,
              "trading_url": fake.url, **overrides}
    return AlpacaSource(**values)


def check(actual: pd.DataFrame, wanted: pd.DataFrame) -> None:
    assert list(actual.columns) == BAR_COLUMNS
    assert str(actual["ts_event"].dtype) == "datetime64[ns, UTC]"
    pd.testing.assert_frame_equal(actual.astype({"symbol": object}), wanted)


@pytest.fixture
def sleeps() -> list[float]:
    return []


def source(fake: AlpacaFake, sleeps: list[float], http: HttpSettings = HTTP, **overrides):
    asset_class = overrides.pop("asset_class", "us_equity")
    budget = overrides.pop("budget", None)
    return AlpacaBars(cfg(fake, **overrides), http, asset_class, budget=budget,
                      sleep=sleeps.append)


WINDOW = FetchWindow(SYMBOLS, T0, T0 + pd.Timedelta(minutes=20))


def test_multi_symbol_fetch_across_pages_equals_source(sleeps):
    bars = make_bars()
    with AlpacaFake(bars, page_size=7) as fake:
        frame = source(fake, sleeps).fetch(WINDOW)
        hits = fake.server.hits(BARS_PATH)
    check(frame, expected(bars, WINDOW.start, WINDOW.end))
    assert len(frame) == 100
    assert len(hits) == 15  # ceil(100 / 7): one batch, alpaca-py follows next_page_token
    first = hits[0]
    assert first.arg("symbols") == ",".join(SYMBOLS)
    assert (first.arg("timeframe"), first.arg("feed"), first.arg("adjustment")) == (
        "1Min", "iex", "raw")
    assert first.arg("limit") == "10000" and first.arg("page_token") is None
    assert first.arg("start") == "2026-01-05T14:30:00+00:00"
    assert all(h.arg("page_token") for h in hits[1:])
    assert sleeps == []


def test_symbols_are_batched_per_request(sleeps):
    bars = make_bars()
    with AlpacaFake(bars) as fake:
        frame = source(fake, sleeps, symbols_per_request=2).fetch(WINDOW)
        sent = [h.arg("symbols") for h in fake.server.hits(BARS_PATH)]
    assert sent == ["AAPL,AMZN", "MSFT,NVDA", "QQQ"]
    check(frame, expected(bars, WINDOW.start, WINDOW.end))


def test_end_is_exclusive_and_start_inclusive(sleeps):
    bars = make_bars()
    start, end = T0 + pd.Timedelta(minutes=3), T0 + pd.Timedelta(minutes=8)
    with AlpacaFake(bars) as fake:
        frame = source(fake, sleeps).fetch(FetchWindow(("MSFT",), start, end))
    assert frame["ts_event"].min() == start
    assert frame["ts_event"].max() == end - pd.Timedelta(minutes=1)
    assert len(frame) == 5
    check(frame, expected(bars[bars.symbol == "MSFT"], start, end))


@pytest.mark.parametrize(("timeframe", "freq"), [("15Min", "15min"), ("1Day", "1D")])
def test_other_timeframes(sleeps, timeframe, freq):
    one_min = make_bars(n=30)
    other = make_bars(n=12, freq=freq, seed=2)
    end = T0 + pd.Timedelta(days=30)
    with AlpacaFake({"1Min": one_min, timeframe: other}, page_size=5) as fake:
        frame = source(fake, sleeps).fetch(FetchWindow(SYMBOLS, T0, end, timeframe))
        sent = {h.arg("timeframe") for h in fake.server.hits(BARS_PATH)}
    assert sent == {timeframe}
    check(frame, expected(other, T0, end))


def test_crypto_bars_without_keys(sleeps):
    bars = make_bars(symbols=("BTC/USD", "ETH/USD"), seed=3)
    bars["volume"] = bars["volume"] / 1000 + 0.123  # fractional coin volumes
    with AlpacaFake(bars, page_size=7) as fake:
        config = AlpacaSource(data_url=fake.url, trading_url=fake.url)
        crypto = AlpacaBars(config, HTTP, "crypto", sleep=sleeps.append)
        frame = crypto.fetch(FetchWindow(("BTC/USD", "ETH/USD"), T0, T0 + pd.Timedelta(hours=1)))
        hits = fake.server.hits(r"/v1beta3/crypto/us/bars")
    assert len(hits) == 6 and hits[0].arg("symbols") == "BTC/USD,ETH/USD"
    assert "apca-api-key-id" not in hits[0].headers
    check(frame, expected(bars, T0, T0 + pd.Timedelta(hours=1)))


def test_429_honours_retry_after(sleeps):
    bars = make_bars()
    with AlpacaFake(bars) as fake:
        fake.server.fail(BARS_PATH, throttled(2))
        frame = source(fake, sleeps).fetch(WINDOW)
        assert len(fake.server.hits(BARS_PATH)) == 2
    check(frame, expected(bars, WINDOW.start, WINDOW.end))
    assert sleeps == [2.0]


def test_persistent_429_is_not_retried_again_by_alpaca_py(sleeps):
    with AlpacaFake(make_bars()) as fake:
        fake.server.fail(BARS_PATH, throttled(1), times=10)
        started = time.monotonic()
        with pytest.raises(SourceError, match=r"HTTP 429.*rate limit exceeded"):
            source(fake, sleeps).fetch(WINDOW)
        assert len(fake.server.hits(BARS_PATH)) == HTTP.attempts
    assert time.monotonic() - started < 2.5  # alpaca-py's own loop would add 3 s sleeps
    assert sleeps == [1.0, 1.0]


def test_server_errors_then_success(sleeps):
    bars = make_bars()
    with AlpacaFake(bars, page_size=40) as fake:
        fake.server.fail(BARS_PATH, server_error(500), times=2)
        frame = source(fake, sleeps).fetch(WINDOW)
        assert len(fake.server.hits(BARS_PATH)) == 2 + 3
    check(frame, expected(bars, WINDOW.start, WINDOW.end))
    assert len(sleeps) == 2 and all(0 <= s <= HTTP.max_backoff_seconds for s in sleeps)


def test_timeouts_on_every_attempt(sleeps):
    with AlpacaFake(make_bars()) as fake:
        fake.server.fail(BARS_PATH, slow(1.0), times=HTTP.attempts)
        with pytest.raises(SourceError, match="timed out") as info:
            source(fake, sleeps).fetch(WINDOW)
    assert "/v2/stocks/bars" in str(info.value) and len(sleeps) == HTTP.attempts - 1


@pytest.mark.parametrize("reply", [
    malformed(),
    Reply(200, {"next_page_token": None}),
    Reply(200, {"bars": {"AAPL": [{"t": "2026-01-05T14:30:00Z", "o": 1.0}]}}),
    Reply(200, {"bars": {"AAPL": [{"t": "yesterday", "o": 1, "h": 1, "l": 1, "c": 1, "v": 1}]}}),
], ids=["invalid-json", "missing-bars-key", "missing-fields", "bad-time"])
def test_malformed_bodies(sleeps, caplog, reply):
    caplog.set_level(logging.DEBUG)
    with AlpacaFake(make_bars()) as fake:
        fake.server.fail(BARS_PATH, reply)
        with pytest.raises(SourceError, match="malformed response body from /v2/stocks/bars"
                           ) as info:
            source(fake, sleeps).fetch(WINDOW)
    for secret in (TEST_KEY, TEST_SECRET):
        assert secret not in str(info.value) and secret not in caplog.text


def test_invalid_json_is_named(sleeps):
    with AlpacaFake(make_bars()) as fake:
        fake.server.fail(BARS_PATH, malformed())
        with pytest.raises(SourceError, match="invalid JSON"):
            source(fake, sleeps).fetch(WINDOW)


def test_wrong_credentials(sleeps, caplog):
    with AlpacaFake(make_bars()) as fake:
        bad = source(fake, sleeps, secret_key="wrong-secret-789")
        with pytest.raises(SourceError, match=r"HTTP 403: forbidden\.") as info:
            bad.fetch(WINDOW)
    assert "wrong-secret-789" not in str(info.value) + caplog.text
    assert TEST_KEY not in str(info.value)


def test_missing_credentials():
    config = AlpacaSource(api_key=TEST_KEY, data_url="http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="ALPACA_API_KEY and ALPACA_SECRET_KEY"):
        AlpacaBars(config, HTTP)
    with pytest.raises(ConfigError, match="ALPACA_SECRET_KEY"):
        AlpacaAssets(AlpacaSource(), HTTP)


def test_client_side_budget_paces_requests(sleeps):
    bars = make_bars()
    budget = RequestBudget("alpaca", 2, "second", max_wait=10)
    acquired: list[float] = []
    take = budget.acquire
    budget.acquire = lambda: (take(), acquired.append(time.monotonic()))[0]  # type: ignore[method-assign]
    with AlpacaFake(bars, page_size=25) as fake:
        started = time.monotonic()
        frame = source(fake, sleeps, budget=budget).fetch(WINDOW)
        assert len(fake.server.hits(BARS_PATH)) == 4
    check(frame, expected(bars, WINDOW.start, WINDOW.end))
    assert len(acquired) == 4
    assert acquired[2] - started >= 0.5  # the third request waited for a slot


def universe_assets() -> tuple[list[dict], dict[str, float]]:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    names = ["".join(p) for p in itertools.product(letters, repeat=3)][:600]
    assets = [asset(s, exchange=("NASDAQ", "NYSE", "ARCA")[i % 3]) for i, s in enumerate(names)]
    prices = {s: round(10 + (i % 97) * 1.37, 2) for i, s in enumerate(names)}
    specials = {
        "XYZW": (asset("XYZW", "XYZ Corp Warrants"), 11.5),
        "ABCU": (asset("ABCU", "ABC Acquisition Corp Units"), 10.1),
        "OLDX": (asset("OLDX", status="inactive", tradable=False), 20.0),
        "NOTR": (asset("NOTR", tradable=False), 20.0),
        "OTCX": (asset("OTCX", exchange="OTC"), 20.0),
        "PNNY": (asset("PNNY", exchange="NYSE"), 1.0),
        "BRKZ": (asset("BRKZ", exchange="NYSE"), 725_000.0),
        "NOPX": (asset("NOPX"), None),
    }
    for symbol, (item, price) in specials.items():
        assets.append(item)
        if price is not None:
            prices[symbol] = price
    return assets, prices


def test_assets_prices_and_universe_filter(sleeps):
    assets, prices = universe_assets()
    with AlpacaFake(assets=assets, prices=prices) as fake:
        client = AlpacaAssets(cfg(fake), HTTP, sleep=sleeps.append)
        frame = client.fetch_assets()
        latest = client.latest_prices(frame["symbol"].tolist())
        asset_hits = fake.server.hits(r"/v2/assets")
        trade_hits = fake.server.hits(r"/v2/stocks/trades/latest")
    assert list(frame.columns) == [
        "symbol", "name", "exchange", "asset_class", "status", "tradable"]
    assert frame.loc[frame.symbol == "OTCX", ["exchange", "tradable"]].values.tolist() == [
        ["OTC", True]]
    assert asset_hits[0].query == {"status": ["active"], "asset_class": ["us_equity"]}
    assert "OLDX" not in set(frame["symbol"]) and len(frame) == 607  # the API drops inactive
    assert len(trade_hits) == 7 and all(h.arg("feed") == "iex" for h in trade_hits)
    assert max(len(h.arg("symbols").split(",")) for h in trade_hits) == 100
    assert latest == {s: p for s, p in prices.items() if s != "OLDX"}

    inactive = pd.DataFrame([{"symbol": "OLDX", "name": "Old Co", "exchange": "NASDAQ",
                              "asset_class": "us_equity", "status": "inactive",
                              "tradable": True}])
    universe = UniverseSettings(max_symbols=550, max_price=10_000)
    chosen = filter_universe(pd.concat([frame, inactive], ignore_index=True),
                             {**latest, "OLDX": 20.0}, universe)
    reasons = dict(zip(chosen["symbol"], chosen["excluded_reason"], strict=True))
    assert reasons["XYZW"] == "name matches warrant pattern"
    assert reasons["ABCU"] == "name matches unit pattern"
    assert reasons["OLDX"] == "status is inactive"
    assert reasons["NOTR"] == "not tradable"
    assert reasons["OTCX"] == "exchange OTC not in universe.exchanges"
    assert reasons["PNNY"] == "price 1.00 below min_price 5"
    assert reasons["BRKZ"] == "price 725000.00 above max_price 10000"
    assert reasons["NOPX"] == "no latest trade price"
    symbols = included(chosen)
    assert len(symbols) == 550 and symbols == sorted(symbols)
    assert symbols[-1] == "AVD"  # 550 of the 600 clean names, in symbol order
    beyond = chosen[chosen["excluded_reason"] == "beyond max_symbols"]
    assert len(beyond) == 50 and beyond["symbol"].min() > symbols[-1]
    assert chosen.loc[chosen["symbol"] == "AAA", "price"].item() == prices["AAA"]
    assert chosen.loc[chosen["symbol"] == "NOPX", "price"].isna().all()
