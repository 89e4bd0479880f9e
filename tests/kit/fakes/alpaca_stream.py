"""A loopback fake of Alpaca's market-data websocket (``wss://stream.data.alpaca.markets/v2/*``).

It speaks the real protocol as alpaca-py's ``DataStream`` expects it: every server message is
an array of objects; frames are msgpack when the client sends ``Content-Type:
application/msgpack`` (alpaca-py always does; bar times are then msgpack Timestamps) and JSON
text otherwise (times as RFC 3339 strings). Flow: ``connected`` on open, ``auth`` ->
``authenticated`` or error 402, ``subscribe`` -> a ``subscription`` listing every channel, then
the scripted bars (``T: "b"``) for subscribed symbols, ``per_frame`` to a frame. Bars are
consumed across sessions, so after a reconnect the fake resumes with the bars not yet pushed.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import msgpack
import pandas as pd
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds",
            "corrections", "cancelErrors")


class AlpacaStreamFake:
    """Serve ``bars`` (a frame with ``BAR_COLUMNS``) to clients that subscribe to them.

    ``per_session`` caps how many bars one connection gets; with ``close_after`` the server
    closes a connection (1001 going away) after pushing its share, to exercise reconnects.
    ``ignore_subscription`` pushes every bar, subscribed or not (a misbehaving server).
    """

    def __init__(self, bars: pd.DataFrame | None = None, *, expected_key: str = "test-key-123",
                 expected_secret: str = "test-secret-456", per_frame: int = 1,
                 per_session: int | None = None, close_after: bool = False,
                 ignore_subscription: bool = False) -> None:
        self.expected_key = expected_key
        self.expected_secret = expected_secret
        self.per_frame = per_frame
        self.per_session = per_session
        self.close_after = close_after
        self.ignore_subscription = ignore_subscription
        self._pending = [] if bars is None else [_bar_message(r) for r in bars.itertuples()]
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.port = 0
        self.sessions = 0
        self.paths: list[str] = []
        self.auth_failures = 0
        self.subscribe_messages: list[dict[str, Any]] = []
        self.frames_sent = 0
        self.pushed = 0
        self._subscribed: set[str] = set()

    @property
    def url(self) -> str:
        """The base URL (``AlpacaSource.stream_url``); clients append ``/v2/{feed}``."""
        return f"ws://127.0.0.1:{self.port}"

    @property
    def subscribed(self) -> set[str]:
        """Bar symbols the latest session subscribed to."""
        with self._lock:
            return set(self._subscribed)

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._pending)

    def start(self) -> AlpacaStreamFake:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()),
                                        name="alpaca-stream-fake", daemon=True)
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("alpaca stream fake did not start within 5 s")
        return self

    def stop(self) -> None:
        """Close every connection (1001) and the server; join the thread (5 s at most)."""
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> AlpacaStreamFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        async with serve(self._session, "127.0.0.1", 0) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stopping.wait()

    async def _session(self, ws: ServerConnection) -> None:
        request = ws.request
        packed = "msgpack" in (request.headers.get("Content-Type", "") if request else "")
        with self._lock:
            self.sessions += 1
            self.paths.append(request.path if request else "")

        async def send(*messages: dict[str, Any]) -> None:
            batch = [_encodable(m, packed) for m in messages]
            await ws.send(msgpack.packb(batch) if packed else json.dumps(batch))

        authenticated = False
        subscribed: set[str] = set()
        try:
            await send({"T": "success", "msg": "connected"})
            async for raw in ws:
                msg = msgpack.unpackb(raw) if isinstance(raw, bytes) else json.loads(raw)
                action = msg.get("action") if isinstance(msg, dict) else None
                if action == "auth":
                    if authenticated:
                        await send({"T": "error", "code": 403, "msg": "already authenticated"})
                    elif (msg.get("key"), msg.get("secret")) == (self.expected_key,
                                                                 self.expected_secret):
                        authenticated = True
                        await send({"T": "success", "msg": "authenticated"})
                    else:
                        self.auth_failures += 1
                        await send({"T": "error", "code": 402, "msg": "auth failed"})
                elif action in ("subscribe", "unsubscribe"):
                    if not authenticated:
                        await send({"T": "error", "code": 401, "msg": "not authenticated"})
                        continue
                    symbols = set(msg.get("bars") or [])
                    subscribed = subscribed | symbols if action == "subscribe" else (
                        subscribed - symbols)
                    with self._lock:
                        self.subscribe_messages.append(msg)
                        self._subscribed = set(subscribed)
                    await send({"T": "subscription", **{c: [] for c in CHANNELS},
                                "bars": sorted(subscribed)})
                    if await self._push(send, subscribed) and self.close_after:
                        await ws.close(1001, "going away")
                        return
                else:
                    await send({"T": "error", "code": 400, "msg": "invalid syntax"})
        except ConnectionClosed:
            return

    async def _push(self, send: Any, subscribed: set[str]) -> int:
        """Send this session's share of the pending bars; return how many were sent."""
        with self._lock:
            wanted = [m for m in self._pending if self.ignore_subscription
                      or m["S"] in subscribed or "*" in subscribed][: self.per_session]
            taken = {id(m) for m in wanted}
            self._pending = [m for m in self._pending if id(m) not in taken]
        for i in range(0, len(wanted), self.per_frame):
            frame = wanted[i: i + self.per_frame]
            await send(*frame)
            with self._lock:
                self.frames_sent += 1
                self.pushed += len(frame)
        return len(wanted)


def _bar_message(row: Any) -> dict[str, Any]:
    ts = pd.Timestamp(row.ts_event).tz_convert("UTC").as_unit("ns")
    volume = float(row.volume)
    return {
        "T": "b", "S": str(row.symbol),
        "o": float(row.open), "h": float(row.high), "l": float(row.low), "c": float(row.close),
        "v": int(volume) if volume.is_integer() else volume, "t": ts,
        "n": int(getattr(row, "trade_count", 1)), "vw": float(getattr(row, "vwap", row.close)),
    }


def _encodable(message: dict[str, Any], packed: bool) -> dict[str, Any]:
    ts = message.get("t")
    if not isinstance(ts, pd.Timestamp):
        return message
    t: Any = (msgpack.Timestamp.from_unix_nano(ts.value) if packed
              else ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    return {**message, "t": t}
