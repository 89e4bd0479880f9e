"""Reddit ingestion through praw against the loopback Reddit fake (token endpoint + listings)."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from tests.kit.fakes.reddit import RedditFake
from tests.kit.fakes.server import Reply, malformed, server_error, slow, throttled
from tradebot.kernel.errors import ConfigError, SourceError
from tradebot.kernel.records import POST_COLUMNS, REJECT_COLUMNS, FetchWindow
from tradebot.kernel.settings import HttpSettings, RedditSource
from tradebot.sources.reddit import RedditPosts

CLIENT_ID, SECRET = "test-client-id", "test-secret-123"
DAY = datetime(2026, 1, 5, tzinfo=UTC)
WINDOW = FetchWindow(("AAPL", "NVDA"), DAY, DAY + timedelta(days=1))
HTTP = HttpSettings(attempts=3, timeout_seconds=0.5, backoff_seconds=0.01,
                    max_backoff_seconds=0.05, max_budget_wait_seconds=0)
SUBS = ["stocks", "investing", "wallstreetbets"]


def at(minutes: float) -> float:
    return (DAY + timedelta(minutes=minutes)).timestamp()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def fake() -> Iterator[RedditFake]:
    with RedditFake(CLIENT_ID, SECRET, page_size=2) as server:
        for sub in SUBS:
            server.add_subreddit(sub)
        yield server


def source(fake: RedditFake, sleeps: list[float], http: HttpSettings = HTTP,
           universe: set[str] | None = None, **cfg: Any) -> RedditPosts:
    settings = {"client_id": CLIENT_ID, "client_secret": SECRET, "oauth_url": fake.url,
                "reddit_url": fake.url, "subreddits": SUBS, **cfg}
    return RedditPosts(RedditSource(**settings), http, universe=universe, sleep=sleeps.append)


def stocks_posts(fake: RedditFake, n: int = 3) -> None:
    for i in range(n):
        fake.add_post("stocks", f"s{i}", f"$AAPL update {i}", at(60 + i), score=i)


def test_posts_across_subreddits_with_pagination(fake: RedditFake, sleeps: list[float]) -> None:
    for i in range(5):
        fake.add_post("stocks", f"1abc{i}", f"$AAPL earnings {i}", at(60 + i), score=10 + i)
        fake.add_post("investing", f"2abc{i}", f"NVDA guidance {i}", at(120 + i),
                      selftext="long read")
        fake.add_post("wallstreetbets", f"3abc{i}", f"YOLO on $tsla {i}", at(180 + i),
                      selftext="and some $nvda calls")
    frame = source(fake, sleeps).fetch(WINDOW)

    assert list(frame.columns) == POST_COLUMNS
    assert len(frame) == 15
    assert str(frame["created_at"].dtype) == "datetime64[ns, UTC]"
    assert frame["score"].dtype == "int64"
    first = frame.set_index("external_id").loc["1abc4"]
    assert first["subreddit"] == "stocks"
    assert first["symbols"] == "AAPL"
    assert first["title"] == "$AAPL earnings 4"
    assert first["body"] == ""
    assert first["score"] == 14
    assert first["created_at"] == pd.Timestamp(DAY + timedelta(minutes=64))
    wsb = frame[frame["subreddit"] == "wallstreetbets"]
    assert set(wsb["symbols"]) == {"NVDA"}  # TSLA is not a window symbol, NVDA is in the body
    assert set(wsb["body"]) == {"and some $nvda calls"}
    # 5 posts at 2 per page: 3 pages per subreddit, one token for the whole run
    for prefix, sub in enumerate(SUBS, start=1):
        hits = fake.listing_hits(sub)
        assert [h.arg("after") for h in hits] == [None, f"t3_{prefix}abc3", f"t3_{prefix}abc1"]
        assert all(h.arg("raw_json") == "1" for h in hits)
        assert all(h.headers["authorization"] == "bearer fake-token" for h in hits)
    tokens = fake.token_hits()
    assert len(tokens) == 1
    assert tokens[0].form() == {"grant_type": "client_credentials"}
    basic = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
    assert tokens[0].headers["authorization"] == f"Basic {basic}"
    assert sleeps == []


def test_window_is_half_open_and_recent_windows_stop_paging_early(
    fake: RedditFake, sleeps: list[float],
) -> None:
    start = DAY + timedelta(days=3)
    for i in range(40):  # one post every 6 hours going back 10 days from `start + 1 day`
        created = (start + timedelta(days=1) - timedelta(hours=6 * i)).timestamp()
        fake.add_post("stocks", f"p{i}", f"AAPL note {i}", created)
    recent = FetchWindow(("AAPL",), start, start + timedelta(days=1))

    frame = source(fake, sleeps, subreddits=["stocks"]).fetch(recent)

    # p0 sits exactly at `end` (excluded), p4 exactly at `start` (included)
    assert sorted(frame["external_id"]) == ["p1", "p2", "p3", "p4"]
    assert frame["created_at"].min() == pd.Timestamp(start)
    recent_pages = len(fake.listing_hits("stocks"))
    assert recent_pages == 3  # stopped at p5, the first post older than the window

    older = FetchWindow(("AAPL",), start - timedelta(days=7), start - timedelta(days=6))
    assert len(source(fake, sleeps, subreddits=["stocks"]).fetch(older)) == 4
    assert len(fake.listing_hits("stocks")) - recent_pages > recent_pages


def test_ticker_extraction_end_to_end(fake: RedditFake, sleeps: list[float]) -> None:
    fake.add_post("stocks", "t1", "MSFT and $aapl both up", at(10))
    fake.add_post("stocks", "t2", "IT is great, ALL in", at(11))     # ambiguous words only
    fake.add_post("stocks", "t3", "MSFT only", at(12))                 # no window symbol
    fake.add_post("stocks", "t4", "Thoughts?", at(13), selftext="$IT and aapl.com")
    fake.add_post("stocks", "t5", "Buying $brk.b", at(14))
    universe = {"AAPL", "MSFT", "IT", "ALL", "BRK.B"}
    window = FetchWindow(("AAPL", "IT", "BRK.B"), DAY, DAY + timedelta(days=1))

    frame = source(fake, sleeps, universe=universe, subreddits=["stocks"]).fetch(window)

    assert dict(zip(frame["external_id"], frame["symbols"], strict=True)) == {
        "t1": "AAPL,MSFT", "t4": "IT", "t5": "BRK.B",
    }


def test_without_a_universe_only_window_symbols_are_extracted(
    fake: RedditFake, sleeps: list[float],
) -> None:
    fake.add_post("stocks", "u1", "MSFT and $aapl", at(10))
    frame = source(fake, sleeps, subreddits=["stocks"]).fetch(WINDOW)
    assert frame["symbols"].tolist() == ["AAPL"]


def test_duplicate_posts_collapse_to_one_row(fake: RedditFake, sleeps: list[float]) -> None:
    post = fake.add_post("stocks", "dup1", "$NVDA crossposted", at(30))
    fake.add_child("investing", post)  # the same thing listed in another subreddit
    fake.add_post("wallstreetbets", "solo", "$NVDA solo", at(31))
    frame = source(fake, sleeps).fetch(WINDOW)
    assert sorted(frame["external_id"]) == ["dup1", "solo"]
    assert frame.set_index("external_id").loc["dup1", "subreddit"] == "stocks"


def test_throttled_request_honours_retry_after(fake: RedditFake, sleeps: list[float]) -> None:
    stocks_posts(fake)
    fake.server.fail("/r/stocks/new", throttled(7), times=1)
    frame = source(fake, sleeps, subreddits=["stocks"]).fetch(WINDOW)
    assert len(frame) == 3
    assert sleeps == [7.0]
    assert len(fake.listing_hits("stocks")) == 3  # 429, then pages 1 and 2


def test_server_error_then_success(fake: RedditFake, sleeps: list[float]) -> None:
    stocks_posts(fake)
    # like a real server (and the fake's own token replies), close the connection prawcore
    # asked to close, so the client does not reuse it
    token_error = replace(server_error(503), headers={"Connection": "close"})
    fake.server.fail("/api/v1/access_token", token_error, times=1)
    fake.server.fail("/r/stocks/new", server_error(500), times=1)
    frame = source(fake, sleeps, subreddits=["stocks"]).fetch(WINDOW)
    assert len(frame) == 3
    assert len(sleeps) == 2
    assert len(fake.token_hits()) == 2


def test_persistent_server_errors_are_not_retried_twice(
    fake: RedditFake, sleeps: list[float],
) -> None:
    stocks_posts(fake)
    fake.server.fail("/r/stocks/new", server_error(502), times=20)
    with pytest.raises(SourceError, match=r"reddit: GET /r/stocks/new returned HTTP 502"):
        source(fake, sleeps, subreddits=["stocks"]).fetch(WINDOW)
    assert len(fake.listing_hits("stocks")) == HTTP.attempts  # prawcore added no retries


def test_persistent_throttling_fails_with_source_error(
    fake: RedditFake, sleeps: list[float],
) -> None:
    stocks_posts(fake)
    fake.server.fail("/r/stocks/new", throttled(1), times=20)
    with pytest.raises(SourceError, match="HTTP 429"):
        source(fake, sleeps, subreddits=["stocks"]).fetch(WINDOW)
    assert sleeps == [1.0, 1.0]


def test_timeouts_raise_source_error(fake: RedditFake, sleeps: list[float]) -> None:
    stocks_posts(fake)
    fake.server.fail("/r/stocks/new", slow(1.0), times=5)
    http = HttpSettings(attempts=2, timeout_seconds=0.2, backoff_seconds=0.01,
                        max_backoff_seconds=0.05)
    with pytest.raises(SourceError, match=r"reddit: GET /r/stocks/new timed out"):
        source(fake, sleeps, http=http, subreddits=["stocks"]).fetch(WINDOW)
    assert len(fake.listing_hits("stocks")) == 2


@pytest.mark.parametrize("path", ["/r/stocks/new", "/api/v1/access_token"])
def test_malformed_json_raises_source_error(
    fake: RedditFake, sleeps: list[float], path: str,
) -> None:
    stocks_posts(fake)
    fake.server.fail(path, malformed(), times=1)
    with pytest.raises(SourceError, match=f"reddit: malformed response body from {path}"):
        source(fake, sleeps, subreddits=["stocks"]).fetch(WINDOW)


def test_listing_of_the_wrong_shape_raises_source_error(
    fake: RedditFake, sleeps: list[float],
) -> None:
    fake.server.fail("/r/stocks/new", Reply(200, {"kind": "Listing", "data": {"x": 1}}))
    with pytest.raises(SourceError, match="malformed response body from /r/stocks/new"):
        source(fake, sleeps, subreddits=["stocks"]).fetch(WINDOW)


def test_bad_credentials_raise_source_error_without_the_secret(
    fake: RedditFake, sleeps: list[float], caplog: pytest.LogCaptureFixture,
) -> None:
    stocks_posts(fake)
    wrong = "wrong-secret-456"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SourceError) as info:
        source(fake, sleeps, client_secret=wrong, subreddits=["stocks"]).fetch(WINDOW)
    message = str(info.value)
    assert "HTTP 401" in message and "/api/v1/access_token" in message
    assert "REDDIT_CLIENT_ID" in message and "REDDIT_CLIENT_SECRET" in message
    assert wrong not in message and CLIENT_ID not in message
    assert wrong not in caplog.text
    assert fake.listing_hits("stocks") == []


def test_unknown_subreddit_raises_source_error(fake: RedditFake, sleeps: list[float]) -> None:
    with pytest.raises(SourceError, match=r"/r/nosuchsub/new returned HTTP 404"):
        source(fake, sleeps, subreddits=["nosuchsub"]).fetch(WINDOW)


@pytest.mark.parametrize("missing", ["client_id", "client_secret"])
def test_missing_credentials_raise_config_error(fake: RedditFake, missing: str) -> None:
    with pytest.raises(ConfigError, match="REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET"):
        source(fake, [], **{missing: None})
    assert fake.server.requests == []


def test_unparseable_posts_are_rejected(fake: RedditFake, sleeps: list[float]) -> None:
    fake.add_post("stocks", "good1", "$AAPL fine", at(50))
    fake.add_child("stocks", {"id": "notitle", "name": "t3_notitle", "subreddit": "stocks",
                              "selftext": "$AAPL body only", "created_utc": at(40)})
    fake.add_child("stocks", {"name": "t3_x", "subreddit": "stocks", "title": "$AAPL no id",
                              "created_utc": at(30)})
    fake.add_child("stocks", {"id": "notime", "name": "t3_notime", "title": "$AAPL no time"})
    fake.add_child("stocks", {"id": "old1", "name": "t3_old1", "created_utc": at(-60)})  # outside
    fetched = source(fake, sleeps, subreddits=["stocks"]).fetch_with_rejects(WINDOW)

    assert fetched.frame["external_id"].tolist() == ["good1"]
    rejected = fetched.rejected
    assert list(rejected.columns) == REJECT_COLUMNS
    reasons = dict(zip(rejected["record_key"], rejected["reason"], strict=True))
    assert reasons == {
        "r/stocks post notitle": "missing title",
        "r/stocks post #4 (no id)": "missing id",
        "r/stocks post notime": "missing or non-numeric created_utc",
    }
    payloads = {row["reason"]: row["payload"] for _, row in rejected.iterrows()}
    assert payloads["missing title"]["selftext"] == "$AAPL body only"
    assert payloads["missing title"]["subreddit"] == "stocks"
    assert payloads["missing id"]["title"] == "$AAPL no id"
    # praw never lazily fetched the broken submissions: only token and listing requests
    assert {r.path for r in fake.server.requests} == {"/api/v1/access_token", "/r/stocks/new"}
