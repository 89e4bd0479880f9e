"""LiveBarStream through alpaca-py's real StockDataStream against the loopback protocol fake."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pandas as pd
import pytest

from tests.kit.fakes.alpaca_stream import AlpacaStreamFake
from tradebot.kernel.errors import ConfigError, SourceError
from tradebot.kernel.records import BAR_COLUMNS
from tradebot.kernel.settings import AlpacaSource
from tradebot.sources.alpaca_stream import LiveBarStream, stream_endpoint

pytestmark = pytest.mark.timeout(60)

KEY, SECRET = "test-key-123", "test-secret-456"


def bars(*rows: tuple[str, str, float, float]) -> pd.DataFrame:
    """Bars from (symbol, minute, open, volume); high/low/close derived from open."""
    return pd.DataFrame({
        "symbol": pd.Series([r[0] for r in rows], dtype="object"),
        "ts_event": pd.to_datetime([r[1] for r in rows], utc=True).as_unit("ns"),
        "open": [r[2] for r in rows],
        "high": [r[2] + 0.75 for r in rows],
        "low": [r[2] - 0.25 for r in rows],
        "close": [r[2] + 0.125 for r in rows],
        "volume": [r[3] for r in rows],
    })[BAR_COLUMNS]


FOUR = bars(
    ("AAPL", "2026-01-02T14:30Z", 190.5, 1200.0), ("MSFT", "2026-01-02T14:30Z", 410.25, 50.5),
    ("AAPL", "2026-01-02T14:31Z", 191.0, 900.0), ("MSFT", "2026-01-02T14:31Z", 409.0, 75.0),
)


def config(fake: AlpacaStreamFake, **over: object) -> AlpacaSource:
    return AlpacaSource(**{"api_key": KEY, "secret_key": SECRET, "stream_url": fake.url, **over})


def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.02)


@contextmanager
def running(stream: LiveBarStream) -> Iterator[dict[str, BaseException]]:
    """Run ``stream`` in a thread; stop and join it (5 s at most) on exit."""
    outcome: dict[str, BaseException] = {}

    def target() -> None:
        try:
            stream.run()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield outcome
    finally:
        stream.stop()
        thread.join(5)
        assert not thread.is_alive(), "run() did not return within 5 s of stop()"


class Collector:
    def __init__(self, fail_first: int = 0) -> None:
        self.frames: list[pd.DataFrame] = []
        self.fail_first = fail_first

    def __call__(self, frame: pd.DataFrame) -> None:
        if self.fail_first:
            self.fail_first -= 1
            raise RuntimeError("store hiccup")
        self.frames.append(frame)

    @property
    def rows(self) -> pd.DataFrame:
        return pd.concat(self.frames, ignore_index=True)


def test_endpoint_appends_feed_path_because_url_override_is_used_verbatim() -> None:
    cfg = AlpacaSource(stream_url="wss://stream.example/", feed="sip")
    assert stream_endpoint(cfg) == "wss://stream.example/v2/sip"


def test_pushed_bars_arrive_with_exact_values_and_utc_open_times() -> None:
    got = Collector()
    with AlpacaStreamFake(FOUR) as fake:
        stream = LiveBarStream(config(fake), ["AAPL", "MSFT"], got)
        with running(stream):
            wait_until(lambda: stream.received == 4)
        assert fake.paths == ["/v2/iex"]
        assert fake.subscribe_messages == [{"action": "subscribe", "bars": ["AAPL", "MSFT"]}]
    assert [len(f) for f in got.frames] == [1, 1, 1, 1]
    pd.testing.assert_frame_equal(got.rows, FOUR)
    assert str(got.rows["ts_event"].dtype) == "datetime64[ns, UTC]"
    assert stream.failed == 0


def test_several_bars_in_one_frame_and_batched_flush() -> None:
    got = Collector()
    with AlpacaStreamFake(FOUR, per_frame=4) as fake:
        stream = LiveBarStream(config(fake, feed="sip"), ["AAPL", "MSFT"], got, flush_every=3)
        with running(stream):
            wait_until(lambda: stream.received == 4)
            wait_until(lambda: len(got.frames) == 1)
        assert fake.frames_sent == 1 and fake.pushed == 4
        assert fake.paths == ["/v2/sip"]
    # three rows flushed on the third bar, the last one when run() returned
    assert [len(f) for f in got.frames] == [3, 1]
    pd.testing.assert_frame_equal(got.rows, FOUR)


def test_only_subscribed_symbols_reach_on_bars_even_if_the_server_sends_more() -> None:
    got = Collector()
    with AlpacaStreamFake(FOUR, per_frame=2, ignore_subscription=True) as fake:
        stream = LiveBarStream(config(fake), ["msft"], got)
        with running(stream):
            wait_until(lambda: fake.pushed == 4)
            wait_until(lambda: stream.received == 2)
            time.sleep(0.2)
        assert fake.subscribed == {"MSFT"}
    assert stream.received == 2
    pd.testing.assert_frame_equal(got.rows, FOUR[FOUR["symbol"] == "MSFT"].reset_index(drop=True))


def test_wrong_keys_raise_source_error_quickly_without_secrets(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with AlpacaStreamFake(FOUR, expected_secret="the-right-secret") as fake:
        stream = LiveBarStream(config(fake), ["AAPL"], Collector())
        with running(stream) as outcome:  # alpaca-py alone would retry forever
            wait_until(lambda: "error" in outcome)
        assert fake.auth_failures == 1 and fake.sessions == 1
        assert fake.pushed == 0
    error = outcome["error"]
    assert isinstance(error, SourceError)
    message = str(error)
    assert message.startswith("alpaca stream: authentication failed at /v2/iex")
    assert "auth failed" in message and "ALPACA_API_KEY" in message
    assert KEY not in message and SECRET not in message
    assert KEY not in caplog.text and SECRET not in caplog.text


def test_a_failing_callback_is_counted_logged_and_streaming_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    got = Collector(fail_first=1)
    with AlpacaStreamFake(FOUR) as fake:
        stream = LiveBarStream(config(fake), ["AAPL", "MSFT"], got)
        with running(stream) as outcome:
            wait_until(lambda: stream.received == 4)
        assert "error" not in outcome
    assert stream.failed == 1
    pd.testing.assert_frame_equal(got.rows, FOUR.iloc[1:].reset_index(drop=True))
    assert "on_bars failed for 1 bar(s)" in caplog.text and "store hiccup" in caplog.text
    assert SECRET not in caplog.text


def test_stop_from_another_thread_ends_an_idle_run_promptly() -> None:
    with AlpacaStreamFake(FOUR.iloc[:1]) as fake:
        stream = LiveBarStream(config(fake), ["AAPL"], Collector())
        thread = threading.Thread(target=stream.run, daemon=True)
        thread.start()
        wait_until(lambda: stream.received == 1)
        started = time.monotonic()
        threading.Thread(target=stream.stop).start()
        thread.join(5)
        assert not thread.is_alive()
        # alpaca-py only polls its stop queue every 5 s; stop() also closes the socket
        assert time.monotonic() - started < 2
        assert fake.sessions == 1


def test_stop_before_run_makes_run_return_at_once() -> None:
    with AlpacaStreamFake(FOUR) as fake:
        stream = LiveBarStream(config(fake), ["AAPL"], Collector())
        stream.stop()
        stream.run()
        assert fake.sessions == 0


def test_server_close_triggers_reconnect_resubscribe_and_later_bars_arrive() -> None:
    got = Collector()
    with AlpacaStreamFake(FOUR, per_session=2, close_after=True) as fake:
        stream = LiveBarStream(config(fake), ["AAPL", "MSFT"], got)
        with running(stream) as outcome:
            wait_until(lambda: stream.received == 4, timeout=10)
        assert "error" not in outcome
        assert fake.sessions >= 2
        assert [m["bars"] for m in fake.subscribe_messages[:2]] == [["AAPL", "MSFT"]] * 2
    pd.testing.assert_frame_equal(got.rows, FOUR)


def test_without_reconnect_a_server_close_ends_run() -> None:
    got = Collector()
    with AlpacaStreamFake(FOUR, per_session=2, close_after=True) as fake:
        stream = LiveBarStream(config(fake), ["AAPL", "MSFT"], got, reconnect=False)
        thread = threading.Thread(target=stream.run, daemon=True)
        thread.start()
        thread.join(5)
        assert not thread.is_alive()
        assert fake.sessions == 1 and fake.remaining == 2
    pd.testing.assert_frame_equal(got.rows, FOUR.iloc[:2])


def test_without_reconnect_an_unreachable_endpoint_raises() -> None:
    fake = AlpacaStreamFake().start()
    cfg = config(fake)
    fake.stop()  # nothing listens on the port any more
    stream = LiveBarStream(cfg, ["AAPL"], Collector(), reconnect=False)
    with pytest.raises(SourceError, match=r"cannot connect to 127\.0\.0\.1:\d+/v2/iex"):
        stream.run()


@pytest.mark.parametrize("over", [{"api_key": None}, {"secret_key": "  "}])
def test_missing_credentials_name_the_env_vars(over: dict[str, object]) -> None:
    cfg = AlpacaSource(**{"api_key": KEY, "secret_key": SECRET, **over})
    with pytest.raises(ConfigError, match="ALPACA_API_KEY and ALPACA_SECRET_KEY"):
        LiveBarStream(cfg, ["AAPL"], Collector())
