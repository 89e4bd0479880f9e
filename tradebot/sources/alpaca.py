"""Alpaca market data and the asset list through the official alpaca-py clients.

Every request the clients make (pagination included) goes through a :class:`ResilientAdapter`
mounted on the client's ``requests`` session, so pacing, Retry-After and back-off live in one
place. alpaca-py's errors and malformed bodies become :class:`SourceError`; messages name the
endpoint path and HTTP status, never the API keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Literal, TypeVar

import pandas as pd
import requests
from alpaca.common.exceptions import APIError
from alpaca.common.rest import RESTClient
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.historical import CryptoHistoricalDataClient, StockHistoricalDataClient
from alpaca.data.models import BarSet
from alpaca.data.requests import CryptoBarsRequest, StockBarsRequest, StockLatestTradeRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import AssetClass, AssetStatus
from alpaca.trading.requests import GetAssetsRequest
from pydantic import SecretStr

from tradebot.kernel.errors import ConfigError, SourceError
from tradebot.kernel.records import BAR_COLUMNS, FetchWindow, RecordKind, conform, empty
from tradebot.kernel.settings import AlpacaSource, HttpSettings
from tradebot.sources.http import RequestBudget, ResilientAdapter, RetryPolicy, mount_resilience

NAME = "alpaca"
TIMEFRAMES: dict[str, TimeFrame] = {
    "1Min": TimeFrame(1, TimeFrameUnit.Minute),
    "5Min": TimeFrame(5, TimeFrameUnit.Minute),
    "15Min": TimeFrame(15, TimeFrameUnit.Minute),
    "1Hour": TimeFrame(1, TimeFrameUnit.Hour),
    "1Day": TimeFrame(1, TimeFrameUnit.Day),
}
ASSET_COLUMNS = ["symbol", "name", "exchange", "asset_class", "status", "tradable"]
ClientT = TypeVar("ClientT", bound=RESTClient)
CREDENTIALS_HINT = "Alpaca credentials missing: set ALPACA_API_KEY and ALPACA_SECRET_KEY"


def default_budget(cfg: AlpacaSource, http: HttpSettings) -> RequestBudget:
    return RequestBudget(NAME, cfg.requests_per_minute, "minute",
                         max_wait=http.max_budget_wait_seconds)


def credentials(cfg: AlpacaSource, required: bool = True) -> tuple[str | None, str | None]:
    """The key pair; ``(None, None)`` when absent and not ``required`` (crypto data)."""
    key, secret = _reveal(cfg.api_key), _reveal(cfg.secret_key)
    if key and secret:
        return key, secret
    if required or key or secret:
        raise ConfigError(CREDENTIALS_HINT)
    return None, None


def _reveal(value: SecretStr | None) -> str | None:
    if value is None:
        return None
    return value.get_secret_value().strip() or None


def harden(client: ClientT, adapter: ResilientAdapter) -> ClientT:
    """Send all of ``client``'s requests through ``adapter``; switch off its own retry loop."""
    # alpaca-py's RESTClient retries 429/504 itself: three more times, 3 s apart, ignoring
    # Retry-After and outside our budget. The adapter has already retried (honouring
    # Retry-After) before an error reply reaches the client, so that reply is final.
    client._retry = 0
    mount_resilience(client._session, adapter)
    return client


def _adapter(policy: RetryPolicy, budget: RequestBudget, sleep: Callable[[float], None]
             ) -> ResilientAdapter:
    return ResilientAdapter(NAME, policy, budget, sleep=sleep)


def batches(symbols: Sequence[str], size: int) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(symbols))
    for i in range(0, len(unique), size):
        yield unique[i : i + size]


def _api_message(exc: APIError) -> str:
    try:
        message = str(exc.message)
    except (ValueError, KeyError, TypeError):
        message = str(exc)
    return " ".join(message.split())[:200]


@contextmanager
def reporting(path: str) -> Iterator[None]:
    """Turn alpaca-py errors and malformed bodies from ``path`` into :class:`SourceError`."""
    try:
        yield
    except APIError as exc:
        status = exc.status_code
        raise SourceError(
            f"{NAME}: GET {path} failed with HTTP {status}: {_api_message(exc)}"
        ) from None
    except (requests.JSONDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        detail = "invalid JSON" if isinstance(exc, requests.JSONDecodeError) else (
            f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:120]}"
        )
        raise SourceError(f"{NAME}: malformed response body from {path}: {detail}") from None


class AlpacaBars:
    """Historical OHLCV bars (stocks or crypto) for a :class:`FetchWindow`."""

    name = NAME
    kind: RecordKind = "bars"

    def __init__(
        self, cfg: AlpacaSource, http: HttpSettings,
        asset_class: Literal["us_equity", "crypto"] = "us_equity",
        budget: RequestBudget | None = None, sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cfg, self.asset_class = cfg, asset_class
        self.budget = budget or default_budget(cfg, http)
        adapter = _adapter(RetryPolicy.from_settings(http), self.budget, sleep)
        self.client: StockHistoricalDataClient | CryptoHistoricalDataClient
        if asset_class == "crypto":
            key, secret = credentials(cfg, required=False)
            self.client = harden(
                CryptoHistoricalDataClient(key, secret, url_override=cfg.data_url), adapter
            )
            self.path = "/v1beta3/crypto/us/bars"
        else:
            key, secret = credentials(cfg)
            self.client = harden(
                StockHistoricalDataClient(key, secret, url_override=cfg.data_url), adapter
            )
            self.path = "/v2/stocks/bars"

    def fetch(self, window: FetchWindow) -> pd.DataFrame:
        """Bars with ``start <= ts_event < end``, sorted by symbol and time."""
        timeframe = TIMEFRAMES[window.timeframe]
        frames = [
            self._frame(self._bars(batch, window.start, window.end, timeframe))
            for batch in batches(window.symbols, self.cfg.symbols_per_request)
        ]
        frames = [f for f in frames if not f.empty]
        if not frames:
            return empty("bars")
        frame = pd.concat(frames, ignore_index=True)
        start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
        # Alpaca's ``end`` is inclusive; the window is half-open.
        frame = frame[(frame["ts_event"] >= start) & (frame["ts_event"] < end)]
        return conform(frame.sort_values(["symbol", "ts_event"], kind="stable"), "bars")

    def _bars(self, symbols: list[str], start: datetime, end: datetime,
              timeframe: TimeFrame) -> BarSet:
        with reporting(self.path):
            if isinstance(self.client, CryptoHistoricalDataClient):
                return self.client.get_crypto_bars(CryptoBarsRequest(
                    symbol_or_symbols=symbols, timeframe=timeframe, start=start, end=end,
                ))
            return self.client.get_stock_bars(StockBarsRequest(
                symbol_or_symbols=symbols, timeframe=timeframe, start=start, end=end,
                feed=DataFeed(self.cfg.feed), adjustment=Adjustment.RAW,
            ))

    def _frame(self, barset: BarSet) -> pd.DataFrame:
        rows = [bar for bars in barset.data.values() for bar in bars]
        if not rows:
            return empty("bars")
        ts = pd.DatetimeIndex(pd.to_datetime([b.timestamp for b in rows], utc=True))
        return pd.DataFrame({
            "symbol": [b.symbol for b in rows],
            "ts_event": ts.as_unit("ns"),
            **{c: [float(getattr(b, c)) for b in rows] for c in BAR_COLUMNS[2:]},
        })


class AlpacaAssets:
    """Alpaca's tradable US equities and their latest trade prices."""

    name = NAME

    def __init__(self, cfg: AlpacaSource, http: HttpSettings, budget: RequestBudget | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.cfg = cfg
        key, secret = credentials(cfg)
        self.budget = budget or default_budget(cfg, http)
        policy = RetryPolicy.from_settings(http)
        self.trading = harden(
            TradingClient(key, secret, paper=True, url_override=cfg.trading_url),
            _adapter(policy, self.budget, sleep),
        )
        self.data = harden(
            StockHistoricalDataClient(key, secret, url_override=cfg.data_url),
            _adapter(policy, self.budget, sleep),
        )

    def fetch_assets(self) -> pd.DataFrame:
        """Active US equities: symbol, name, exchange, asset_class, status, tradable."""
        request = GetAssetsRequest(status=AssetStatus.ACTIVE, asset_class=AssetClass.US_EQUITY)
        with reporting("/v2/assets"):
            assets = self.trading.get_all_assets(request)
            rows = [
                (a.symbol, a.name, a.exchange.value, a.asset_class.value, a.status.value,
                 bool(a.tradable))
                for a in assets
            ]
        frame = pd.DataFrame(rows, columns=ASSET_COLUMNS)
        frame["tradable"] = frame["tradable"].astype(bool)
        return frame.sort_values("symbol", kind="stable").reset_index(drop=True)

    def latest_prices(self, symbols: list[str]) -> dict[str, float]:
        """Last trade price per symbol; symbols without a trade are left out."""
        prices: dict[str, float] = {}
        for batch in batches(symbols, self.cfg.symbols_per_request):
            request = StockLatestTradeRequest(symbol_or_symbols=batch, feed=DataFeed(self.cfg.feed))
            with reporting("/v2/stocks/trades/latest"):
                trades = self.data.get_stock_latest_trade(request)
                prices.update({s: float(t.price) for s, t in trades.items()})
        return prices
