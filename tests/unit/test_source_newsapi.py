"""NewsAPI ingestion through newsapi-python against the loopback NewsAPI fake."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.kit.fakes.newsapi import EVERYTHING, NewsApiFake, api_error, article, rate_limited
from tests.kit.fakes.server import Reply, malformed, server_error, slow
from tradebot.kernel.errors import ConfigError, SourceError
from tradebot.kernel.records import ARTICLE_COLUMNS, REJECT_COLUMNS, FetchWindow
from tradebot.kernel.settings import HttpSettings, NewsApiSource
from tradebot.sources.http import RequestBudget
from tradebot.sources.newsapi import NewsApiArticles, external_id, query_for

KEY = "test-key-123"
DAY = datetime(2026, 1, 5, tzinfo=UTC)
WINDOW = FetchWindow(("AAPL",), DAY, DAY + timedelta(days=1))
HTTP = HttpSettings(attempts=3, timeout_seconds=0.5, backoff_seconds=0.01,
                    max_backoff_seconds=0.05, max_budget_wait_seconds=0)


def stamp(minutes: float) -> str:
    return (DAY + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def many(n: int, name: str = "Apple", prefix: str = "a") -> list[dict[str, Any]]:
    return [article(f"{name} story {i}", stamp(60 + i), f"https://news.test/{prefix}/{i}")
            for i in range(n)]


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def running() -> Iterator[Any]:
    """``running(articles, **fake_kwargs)`` serves a NewsApiFake for the test."""
    servers: list[NewsApiFake] = []

    def start(articles: list[dict[str, Any]], **kwargs: Any) -> NewsApiFake:
        fake = NewsApiFake(articles, **kwargs)
        fake.server.start()
        servers.append(fake)
        return fake

    yield start
    for fake in servers:
        fake.server.stop()


def source(fake: NewsApiFake, sleeps: list[float], key: str = KEY, **cfg: Any
           ) -> NewsApiArticles:
    settings = NewsApiSource(api_key=key, base_url=fake.base_url + "/", **cfg)
    return NewsApiArticles(settings, HTTP, budget=RequestBudget("newsapi", 1000, "day"),
                           sleep=sleeps.append)


def test_pages_through_all_matching_articles(running, sleeps) -> None:
    fake = running(many(35) + many(5, name="Banana", prefix="b"))
    frame = source(fake, sleeps, page_size=10).fetch(WINDOW)
    assert list(frame.columns) == ARTICLE_COLUMNS
    assert len(frame) == 35 and frame["external_id"].is_unique
    assert set(frame["symbols"]) == {"AAPL"}
    assert str(frame["published_at"].dtype) == "datetime64[ns, UTC]"
    assert frame["published_at"].is_monotonic_increasing
    hits = fake.requests()
    assert [h.arg("page") for h in hits] == ["1", "2", "3", "4"]
    first = hits[0]
    assert first.arg("q") == '"AAPL" OR "Apple"'
    assert (first.arg("from"), first.arg("to")) == ("2026-01-05T00:00:00", "2026-01-06T00:00:00")
    assert (first.arg("language"), first.arg("sortBy"), first.arg("pageSize")) == (
        "en", "publishedAt", "10")
    assert first.headers["authorization"] == KEY  # newsapi-python's auth: the bare key


def test_stops_at_the_plan_cap_without_a_426(running, sleeps, caplog) -> None:
    fake = running(many(150))
    with caplog.at_level(logging.WARNING):
        frame = source(fake, sleeps, page_size=10, max_results=100).fetch(WINDOW)
    assert len(frame) == 100
    pages = [int(h.arg("page")) * int(h.arg("pageSize")) for h in fake.requests()]
    assert len(pages) == 10 and max(pages) == 100
    assert "150 articles match" in caplog.text and "AAPL" in caplog.text


def test_a_426_keeps_the_articles_so_far_and_warns(running, sleeps, caplog) -> None:
    fake = running(many(60), max_results=40)  # the server's cap is lower than configured
    with caplog.at_level(logging.WARNING):
        frame = source(fake, sleeps, page_size=20, max_results=100).fetch(WINDOW)
    assert len(frame) == 40
    assert len(fake.requests()) == 3
    assert "AAPL: result cap reached" in caplog.text


def test_company_name_finds_articles_without_the_ticker(running, sleeps) -> None:
    fake = running([
        article("Microsoft beats estimates", stamp(10), "https://news.test/m1"),
        article("MSFT shares rise", stamp(20), "https://news.test/m2"),
        article("Microsoftware is not a company", stamp(30), "https://news.test/m3"),
    ])
    frame = source(fake, sleeps).fetch(FetchWindow(("MSFT",), WINDOW.start, WINDOW.end))
    assert sorted(frame["url"]) == ["https://news.test/m1", "https://news.test/m2"]
    assert query_for("MSFT", {"MSFT": "Microsoft"}) == '"MSFT" OR "Microsoft"'
    assert query_for("XYZ", {}) == '"XYZ"'


def test_an_article_for_two_symbols_is_one_row_with_both(running, sleeps) -> None:
    fake = running([
        article("Apple and Microsoft sign AI pact", stamp(5), "https://news.test/both",
                description=None),
        article("Apple opens store", stamp(6), "https://news.test/aapl"),
    ])
    window = FetchWindow(("AAPL", "MSFT"), WINDOW.start, WINDOW.end)
    frame = source(fake, sleeps).fetch(window).set_index("url")
    assert len(frame) == 2
    assert frame.loc["https://news.test/both", "symbols"] == "AAPL,MSFT"
    assert frame.loc["https://news.test/both", "description"] == ""
    assert frame.loc["https://news.test/aapl", "symbols"] == "AAPL"


def test_keeps_only_the_half_open_window(running, sleeps) -> None:
    end = WINDOW.end.strftime("%Y-%m-%dT%H:%M:%SZ")
    fake = running([
        article("Apple early", "2026-01-04T23:59:59Z", "https://news.test/before"),
        article("Apple at start", "2026-01-05T00:00:00Z", "https://news.test/start"),
        article("Apple at end", end, "https://news.test/end"),  # NewsAPI's `to` is inclusive
    ])
    frame = source(fake, sleeps).fetch(WINDOW)
    assert list(frame["url"]) == ["https://news.test/start"]
    assert frame["published_at"].iloc[0] == pd.Timestamp("2026-01-05", tz="UTC")


def test_long_urls_get_a_hashed_id() -> None:
    long_url = "https://news.test/" + "x" * 200
    assert external_id("https://news.test/a") == "https://news.test/a"
    assert len(external_id(long_url)) == 64 and external_id(long_url) != long_url


def test_429_rate_limited_honours_retry_after(running, sleeps) -> None:
    fake = running(many(3))
    fake.server.fail(EVERYTHING, rate_limited(7))
    assert len(source(fake, sleeps).fetch(WINDOW)) == 3
    assert sleeps == [7.0]
    assert len(fake.requests()) == 2


def test_500_then_success(running, sleeps) -> None:
    fake = running(many(3))
    fake.server.fail(EVERYTHING, server_error(500))
    assert len(source(fake, sleeps).fetch(WINDOW)) == 3
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= HTTP.max_backoff_seconds


def test_persistent_5xx_is_a_source_error_with_the_status(running, sleeps) -> None:
    fake = running(many(3))
    fake.server.fail(EVERYTHING, server_error(503), times=3)
    with pytest.raises(SourceError, match=r"newsapi: .*HTTP 503"):
        source(fake, sleeps).fetch(WINDOW)


def test_timeouts_raise_source_error(running, sleeps) -> None:
    fake = running(many(3))
    fake.server.fail(EVERYTHING, slow(1.5), times=3)
    with pytest.raises(SourceError, match=r"newsapi: GET /v2/everything timed out"):
        source(fake, sleeps).fetch(WINDOW)
    assert len(sleeps) == 2


def test_malformed_json_raises_source_error(running, sleeps) -> None:
    fake = running(many(3))
    fake.server.fail(EVERYTHING, malformed())
    with pytest.raises(SourceError, match="malformed response body from GET /v2/everything"):
        source(fake, sleeps).fetch(WINDOW)


def test_body_without_articles_is_malformed(running, sleeps) -> None:
    fake = running(many(3))
    fake.server.fail(EVERYTHING, Reply(200, {"status": "ok"}))
    with pytest.raises(SourceError, match=r"malformed response body.*'articles'"):
        source(fake, sleeps).fetch(WINDOW)


def test_invalid_key_is_a_source_error_without_the_key(running, sleeps, caplog) -> None:
    fake = running(many(3))
    with caplog.at_level(logging.DEBUG), pytest.raises(SourceError) as err:
        source(fake, sleeps, key="wrong-key-456").fetch(WINDOW)
    assert str(err.value).startswith("newsapi: apiKeyInvalid: Your API key is invalid")
    assert "HTTP 401" in str(err.value)
    assert "wrong-key-456" not in str(err.value) and "wrong-key-456" not in caplog.text


def test_an_error_message_echoing_the_key_is_redacted(running, sleeps) -> None:
    fake = running(many(3))
    fake.server.fail(EVERYTHING, api_error(401, "apiKeyDisabled",
                                           f"Your API key {KEY} has been disabled."))
    with pytest.raises(SourceError, match=r"apiKeyDisabled: Your API key \*\*\* has") as err:
        source(fake, sleeps).fetch(WINDOW)
    assert KEY not in str(err.value)


def test_parameter_errors_are_mapped(running, sleeps) -> None:
    fake = running(many(3))
    fake.server.fail(EVERYTHING, api_error(400, "parameterInvalid", "You are trying to request "
                                           "results too far in the past."))
    with pytest.raises(SourceError, match="newsapi: parameterInvalid: You are trying"):
        source(fake, sleeps).fetch(WINDOW)


def test_missing_key_or_bad_language_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="NEWSAPI_KEY"):
        NewsApiArticles(NewsApiSource(), HTTP)
    with pytest.raises(ConfigError, match="language 'english'"):
        NewsApiArticles(NewsApiSource(api_key=KEY, language="english"), HTTP)


def test_unusable_articles_are_rejected_with_reasons(running, sleeps) -> None:
    no_date = article("Apple undated", stamp(1), "https://news.test/undated")
    no_date["publishedAt"] = None
    no_url = article("Apple without link", stamp(2), "https://news.test/x")
    del no_url["url"]
    removed = article("[Removed]", "1970-01-01T00:00:00Z", "https://removed.com",
                      description="[Removed]", source="[Removed]")
    fake = running([*many(2), no_date, no_url, removed])
    fetched = source(fake, sleeps).fetch_with_rejects(WINDOW)
    assert sorted(fetched.frame["url"]) == ["https://news.test/a/0", "https://news.test/a/1"]
    rejected = fetched.rejected.set_index("record_key")
    assert list(fetched.rejected.columns) == REJECT_COLUMNS
    assert rejected.loc["https://news.test/undated", "reason"] == "missing publishedAt"
    assert rejected.loc["https://news.test/undated", "payload"] == no_date
    # sorted newest first, articles without a date last: the url-less one is item 3 of page 1
    assert rejected.loc["AAPL page 1 item 3", "reason"] == "missing url"
    assert "[Removed]" in rejected.loc["AAPL page 1 item 4", "reason"]


def test_daily_budget_is_shared_through_its_file(running, sleeps, tmp_path: Path) -> None:
    fake = running(many(35))
    state = tmp_path / "rate_budgets.sqlite"
    budget = RequestBudget("newsapi", 3, "day", state_file=state, max_wait=0)
    settings = NewsApiSource(api_key=KEY, base_url=fake.base_url, page_size=10,
                             requests_per_day=3)
    first = NewsApiArticles(settings, HTTP, budget=budget, sleep=sleeps.append)
    with pytest.raises(SourceError, match=r"newsapi: client-side request budget of 3/day"):
        first.fetch(WINDOW)  # needs 4 pages
    assert len(fake.requests()) == 3
    second = NewsApiArticles(settings, HTTP, sleep=sleeps.append, budget_file=state)
    with pytest.raises(SourceError, match="budget of 3/day is used up"):
        second.fetch(WINDOW)
    assert len(fake.requests()) == 3


def test_the_fake_accepts_the_key_as_header_or_param(running) -> None:
    import requests

    fake = running(many(2))
    params = {"q": '"AAPL" OR "Apple"', "pageSize": 1}
    by_param = requests.get(fake.base_url + "/everything", params={**params, "apiKey": KEY},
                            timeout=5).json()
    by_header = requests.get(fake.base_url + "/everything", params=params,
                             headers={"X-Api-Key": KEY}, timeout=5).json()
    assert by_param == by_header
    assert by_param["totalResults"] == 2 and len(by_param["articles"]) == 1
    missing = requests.get(fake.base_url + "/everything", params=params, timeout=5)
    assert missing.status_code == 401 and missing.json()["code"] == "apiKeyMissing"

