"""Live Alpaca minute bars through alpaca-py's websocket :class:`StockDataStream`.

What alpaca-py (0.44, ``alpaca/data/live/websocket.py``) does, and what this module adds:

- ``url_override`` is used verbatim as the endpoint (alpaca-py appends ``/v2/{feed}`` only to
  its default URL), so :func:`stream_endpoint` appends ``/v2/iex`` or ``/v2/sip`` itself.
- Frames are msgpack (the client sends ``Content-Type: application/msgpack``); bar times arrive
  as msgpack Timestamps and are parsed into :class:`Bar` models with UTC datetimes.
- On a websocket error or a server-side close ``_run_forever`` closes the socket and reconnects
  with jittered exponential back-off (about 1 s doubling to 30 s), authenticates again and
  re-sends the whole subscription. Bars published while disconnected are not replayed: backfill
  gaps with the REST source.
- A failed authentication raises ``ValueError`` inside ``_start_ws``, which ``_run_forever``
  logs and retries forever (it gives up silently only on "insufficient subscription"). Here
  any auth error except "connection limit exceeded" (which another session may free) stops
  the stream and :meth:`LiveBarStream.run` raises :class:`SourceError`.
- With ``reconnect=False`` a server close or a failed connect ends :meth:`LiveBarStream.run`
  instead (a close returns normally, a failed connect raises :class:`SourceError`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import pandas as pd
import websockets
from alpaca.data.enums import DataFeed
from alpaca.data.live.stock import StockDataStream
from alpaca.data.models.bars import Bar
from pydantic import SecretStr

from tradebot.kernel.errors import ConfigError, SourceError
from tradebot.kernel.records import BAR_COLUMNS, empty
from tradebot.kernel.settings import AlpacaSource

log = logging.getLogger(__name__)

CREDENTIALS_HINT = "Alpaca credentials missing: set ALPACA_API_KEY and ALPACA_SECRET_KEY"
RETRYABLE_AUTH_ERRORS = ("connection limit exceeded",)
"""Auth-step errors alpaca-py may keep retrying: another (stale) session holds the slot."""


def stream_endpoint(cfg: AlpacaSource) -> str:
    """The market-data stream URL for the configured feed, e.g. ``wss://.../v2/iex``."""
    return f"{cfg.stream_url.rstrip('/')}/v2/{cfg.feed}"


def _reveal(value: SecretStr | None) -> str | None:
    return (value.get_secret_value().strip() or None) if value is not None else None


class _Stream(StockDataStream):
    """A StockDataStream that stops on auth failure (and, if asked, on disconnect)."""

    def __init__(self, *args: object, reconnect: bool, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.reconnect = reconnect
        self.auth_error: str | None = None
        self.connect_error: str | None = None

    async def _auth(self) -> None:
        try:
            await super()._auth()
        except ValueError as exc:
            if not any(text in str(exc) for text in RETRYABLE_AUTH_ERRORS):
                self.auth_error = str(exc) or "auth failed"
                await self.stop_ws()
            raise

    async def _connect(self) -> None:
        try:
            await super()._connect()
        except (OSError, websockets.WebSocketException) as exc:
            if not self.reconnect and self._should_run:
                self.connect_error = type(exc).__name__
                await self.stop_ws()
            raise

    async def _consume(self) -> bool:
        try:
            return await super()._consume()
        except websockets.WebSocketException:
            if not self.reconnect and self._should_run:
                log.info("alpaca stream: server closed the connection; not reconnecting")
                await self.stop_ws()
            raise

    async def halt(self) -> None:
        """Stop now: flag the stop and close the socket so a blocked ``recv`` returns."""
        await self.stop_ws()
        if self._ws is not None:
            await self._ws.close()


class LiveBarStream:
    """Subscribe to minute bars for ``symbols`` and hand them to ``on_bars`` as bar frames.

    ``on_bars`` receives frames with ``BAR_COLUMNS`` (``ts_event`` = the bar's open minute, UTC)
    of ``flush_every`` rows; the remainder is flushed when :meth:`run` returns. It runs on the
    thread that called :meth:`run` inside the stream's event loop, so keep it quick. If it
    raises, the error is logged, ``failed`` counts it, those rows are dropped and streaming goes
    on. ``received`` counts bars received. One-shot: after :meth:`stop`, :meth:`run` returns at
    once.
    """

    def __init__(self, cfg: AlpacaSource, symbols: Sequence[str],
                 on_bars: Callable[[pd.DataFrame], None], flush_every: int = 1, *,
                 reconnect: bool = True) -> None:
        key, secret = _reveal(cfg.api_key), _reveal(cfg.secret_key)
        if not (key and secret):
            raise ConfigError(CREDENTIALS_HINT)
        if isinstance(symbols, str) or not symbols:
            raise ConfigError("alpaca stream: give a non-empty list of symbols to subscribe")
        if flush_every < 1:
            raise ValueError(f"flush_every must be >= 1, got {flush_every}")
        self.symbols = tuple(dict.fromkeys(s.strip().upper() for s in symbols))
        self.url = stream_endpoint(cfg)
        self.feed = cfg.feed
        self.on_bars = on_bars
        self.flush_every = flush_every
        self.received = 0
        self.failed = 0
        self._buffer: list[Bar] = []
        self._lock = threading.RLock()  # re-entrant: stop() may run in a signal handler
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested = False
        self._halting: asyncio.Task[None] | None = None
        self._stream = _Stream(key, secret, feed=DataFeed(cfg.feed), url_override=self.url,
                               reconnect=reconnect)
        self._stream.subscribe_bars(self._on_bar, *self.symbols)

    def run(self) -> None:
        """Stream until :meth:`stop` (or, with ``reconnect=False``, until the server closes).

        Raises :class:`SourceError` when authentication fails (wrong keys, feed not in the
        plan) or, with ``reconnect=False``, when the endpoint cannot be reached.
        """
        try:
            asyncio.run(self._main())
        finally:
            self._flush()
        where = urlsplit(self.url).path
        if self._stream.auth_error is not None:
            raise SourceError(
                f"alpaca stream: authentication failed at {where} ({self._stream.auth_error}); "
                f"check ALPACA_API_KEY / ALPACA_SECRET_KEY and that the {self.feed!r} feed is in "
                "your market-data plan"
            )
        if self._stream.connect_error is not None:
            raise SourceError(
                f"alpaca stream: cannot connect to {urlsplit(self.url).netloc}{where} "
                f"({self._stream.connect_error})"
            )

    def stop(self) -> None:
        """Ask :meth:`run` to return; safe from any thread or a signal handler, never blocks."""
        with self._lock:
            self._stop_requested = True
            loop = self._loop
        if loop is not None:
            # RuntimeError: the loop closed meanwhile, so run() is returning anyway
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._start_halt)

    async def _main(self) -> None:
        with self._lock:
            if self._stop_requested:
                return
            self._loop = asyncio.get_running_loop()
        try:
            await self._stream._run_forever()
        finally:
            with self._lock:
                self._loop = None

    def _start_halt(self) -> None:
        self._halting = asyncio.get_running_loop().create_task(self._stream.halt())

    async def _on_bar(self, bar: Bar) -> None:
        self.received += 1
        self._buffer.append(bar)
        if len(self._buffer) >= self.flush_every:
            self._flush()

    def _flush(self) -> None:
        bars, self._buffer = self._buffer, []
        if not bars:
            return
        try:
            self.on_bars(bars_frame(bars))
        except Exception as exc:
            self.failed += 1
            log.error("alpaca stream: on_bars failed for %d bar(s), dropped, streaming goes on: "
                      "%s: %s", len(bars), type(exc).__name__, exc)


def bars_frame(bars: Sequence[Bar]) -> pd.DataFrame:
    """alpaca-py ``Bar`` models as a frame with ``BAR_COLUMNS`` and UTC ``ts_event``."""
    if not bars:
        return empty("bars")
    ts = pd.DatetimeIndex(pd.to_datetime([b.timestamp for b in bars], utc=True))
    return pd.DataFrame({
        "symbol": pd.Series([b.symbol for b in bars], dtype="object"),
        "ts_event": ts.as_unit("ns"),
        **{c: [float(getattr(b, c)) for b in bars] for c in BAR_COLUMNS[2:]},
    })
