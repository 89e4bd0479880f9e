"""A loopback Alpaca REST API (market data v2/v1beta3 and trading v2) in the real wire format.

Routes (paths and parameters as alpaca-py 0.44 sends them):

* ``GET /v2/stocks/bars`` and ``GET /v1beta3/crypto/us/bars``: ``symbols`` (comma list),
  ``timeframe`` (``1Min``, ``15Min``, ``1Day``...), ``start``/``end`` (RFC 3339, both
  inclusive), ``limit`` (1..10000, default 1000), ``page_token``, ``sort``; stocks also ``feed``
  and ``adjustment``. Replies ``{"bars": {SYM: [{"t","o","h","l","c","v","n","vw"}]},
  "next_page_token": str | null}``, paginated across symbols (ordered by symbol, then time) at
  ``min(limit, page_size)`` bars per page.
* ``GET /v2/stocks/trades/latest``: ``symbols``, ``feed`` -> ``{"trades": {SYM: {...}}}``.
* ``GET /v2/assets``: ``status``, ``asset_class``, ``exchange`` filters -> list of assets.

Stock and trading routes check the ``APCA-API-KEY-ID``/``APCA-API-SECRET-KEY`` headers; crypto
data is open, but wrong keys are still refused. Errors are ``{"code": ..., "message": ...}``.
"""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

import pandas as pd

from tests.kit.fakes.server import FakeServer, Reply, Request, serve

TEST_KEY, TEST_SECRET = "test-key-123", "test-secret-456"
TIMEFRAME_RX = re.compile(r"\d+(Min|T|Hour|H|Day|D|Week|W|Month|M)")
FEEDS = {"iex", "sip", "delayed_sip", "otc", "boats", "overnight"}
ADJUSTMENTS = {"raw", "split", "dividend", "all"}
MAX_LIMIT, DEFAULT_LIMIT = 10_000, 1000
TAPE_BY_FEED = {"iex": "V", "sip": "Q"}


def asset(symbol: str, name: str | None = None, **fields: Any) -> dict[str, Any]:
    """A full Alpaca asset object; ``fields`` override the defaults (e.g. ``status``)."""
    base = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{symbol}.alpaca.test")),
        "class": "us_equity", "exchange": "NASDAQ", "symbol": symbol,
        "name": name if name is not None else f"{symbol} Inc. Common Stock",
        "status": "active", "tradable": True, "marginable": True,
        "maintenance_margin_requirement": 30, "margin_requirement_long": "30",
        "margin_requirement_short": "100", "shortable": True, "easy_to_borrow": True,
        "fractionable": True, "attributes": [],
    }
    return {**base, **fields}


def bad_request(message: str) -> Reply:
    return Reply(400, {"code": 40010001, "message": message})


class AlpacaFake:
    """Serves ``bars`` (one frame for ``timeframe``, or ``{timeframe: frame}``), ``assets`` and
    latest trade ``prices``. Use as a context manager; ``url`` is the base for every client."""

    def __init__(
        self, bars: pd.DataFrame | dict[str, pd.DataFrame] | None = None, *,
        timeframe: str = "1Min", assets: list[dict[str, Any]] | None = None,
        prices: dict[str, float] | None = None, page_size: int = MAX_LIMIT,
        api_key: str = TEST_KEY, secret_key: str = TEST_SECRET,
        trade_time: str = "2026-01-05T20:59:59.912345678Z",
    ) -> None:
        frames = bars if isinstance(bars, dict) else {timeframe: bars} if bars is not None else {}
        self.bars = {tf: _sorted(f) for tf, f in frames.items()}
        self.assets = list(assets or [])
        self.prices = dict(prices or {})
        self.page_size, self.trade_time = page_size, trade_time
        self.keys = (api_key, secret_key)
        self.server = FakeServer()
        self.server.route("GET", r"/v2/stocks/bars", self._authed(self._bars))
        self.server.route("GET", r"/v1beta3/crypto/us/bars", self._crypto_bars)
        self.server.route("GET", r"/v2/stocks/trades/latest", self._authed(self._latest_trades))
        self.server.route("GET", r"/v2/assets", self._authed(self._assets))
        self._serving: Any = None

    @property
    def url(self) -> str:
        return self.server.url

    def __enter__(self) -> AlpacaFake:
        self._serving = serve(self.server)
        self._serving.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._serving.__exit__(*exc)

    def _auth_error(self, request: Request, required: bool) -> Reply | None:
        key = request.headers.get("apca-api-key-id")
        secret = request.headers.get("apca-api-secret-key")
        if key is None and secret is None:
            return Reply(401, {"message": "unauthorized."}) if required else None
        if (key, secret) != self.keys:
            return Reply(403, {"message": "forbidden."})
        return None

    def _authed(self, handler: Any) -> Any:
        def checked(request: Request) -> Reply:
            return self._auth_error(request, required=True) or handler(request)
        return checked

    def _crypto_bars(self, request: Request) -> Reply:
        return self._auth_error(request, required=False) or self._bars(request, stock=False)

    def _bars(self, request: Request, stock: bool = True) -> Reply:
        symbols = [s for s in (request.arg("symbols") or "").split(",") if s]
        if not symbols:
            return bad_request("symbols is required")
        timeframe = request.arg("timeframe") or ""
        if not TIMEFRAME_RX.fullmatch(timeframe):
            return bad_request(f"invalid timeframe: {timeframe!r}")
        if stock and request.arg("feed", "sip") not in FEEDS:
            return bad_request(f"invalid feed: {request.arg('feed')}")
        if stock and request.arg("adjustment", "raw") not in ADJUSTMENTS:
            return bad_request(f"invalid adjustment: {request.arg('adjustment')}")
        sort = request.arg("sort", "asc")
        if sort not in ("asc", "desc"):
            return bad_request(f"invalid sort: {sort}")
        try:
            limit = int(request.arg("limit") or DEFAULT_LIMIT)
            start = _time(request.arg("start"))
            end = _time(request.arg("end"))
            offset = _offset(request.arg("page_token"))
        except ValueError as exc:
            return bad_request(str(exc))
        if not 1 <= limit <= MAX_LIMIT:
            return bad_request("invalid limit: must be between 1 and 10000")
        frame = self.bars.get(timeframe, _sorted(None))
        keep = frame["symbol"].isin(symbols)
        if start is not None:
            keep &= frame["ts_event"] >= start
        if end is not None:
            keep &= frame["ts_event"] <= end
        rows = frame[keep]
        if sort == "desc":
            rows = rows.sort_values(["symbol", "ts_event"], ascending=[True, False])
        size = min(limit, self.page_size)
        page = rows.iloc[offset : offset + size]
        bars: dict[str, list[dict[str, Any]]] = {}
        for row in page.itertuples(index=False):
            bars.setdefault(row.symbol, []).append(_bar_json(row))
        token = _token(offset + size) if offset + size < len(rows) else None
        return Reply(200, {"bars": bars, "next_page_token": token})

    def _latest_trades(self, request: Request) -> Reply:
        symbols = [s for s in (request.arg("symbols") or "").split(",") if s]
        if not symbols:
            return bad_request("symbols is required")
        feed = request.arg("feed", "iex") or "iex"
        if feed not in FEEDS:
            return bad_request(f"invalid feed: {feed}")
        trades = {
            s: {"t": self.trade_time, "x": TAPE_BY_FEED.get(feed, "V"), "p": self.prices[s],
                "s": 100, "c": ["@"], "i": 52983525029461 + n, "z": "C"}
            for n, s in enumerate(symbols) if s in self.prices
        }
        return Reply(200, {"trades": trades})

    def _assets(self, request: Request) -> Reply:
        wanted = {k: request.arg(k) for k in ("status", "asset_class", "exchange")}
        field = {"status": "status", "asset_class": "class", "exchange": "exchange"}
        chosen = [
            a for a in self.assets
            if all(v is None or a.get(field[k]) == v for k, v in wanted.items())
        ]
        return Reply(200, chosen)


def _sorted(frame: pd.DataFrame | None) -> pd.DataFrame:
    if frame is None:
        return pd.DataFrame({"symbol": pd.Series(dtype=object),
                             "ts_event": pd.Series(dtype="datetime64[ns, UTC]")})
    out = frame.assign(ts_event=pd.to_datetime(frame["ts_event"], utc=True))
    return out.sort_values(["symbol", "ts_event"], kind="stable").reset_index(drop=True)


def _time(value: str | None) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except ValueError:
        raise ValueError(f"invalid time: {value!r} is not RFC 3339") from None
    if ts.tzinfo is None:
        raise ValueError(f"invalid time: {value!r} lacks a UTC offset")
    return ts.tz_convert("UTC")


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        return int(text.removeprefix("offset:"))
    except ValueError:
        raise ValueError("invalid page_token") from None


def _bar_json(row: Any) -> dict[str, Any]:
    volume = float(row.volume)
    o, h, low, c = (float(x) for x in (row.open, row.high, row.low, row.close))
    return {
        "t": row.ts_event.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "o": o, "h": h, "l": low, "c": c,
        "v": int(volume) if volume.is_integer() else volume,
        "n": int(getattr(row, "trade_count", volume // 100 + 1)),
        "vw": float(getattr(row, "vwap", round((h + low + c) / 3, 4))),
    }
