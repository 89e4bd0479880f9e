"""News articles from NewsAPI's ``/v2/everything`` through the official newsapi-python client.

One query per symbol, ``"<TICKER>" OR "<Company Name>"``, paged up to the plan's result cap
(the free plan answers HTTP 426 ``maximumResultsReached`` past 100 results, so we stop before).
newsapi-python hard-codes ``https://newsapi.org/v2`` URLs and a 30 s timeout; its session routes
every request through a :class:`ResilientAdapter` that rewrites the URL to ``base_url`` and paces
requests by a daily budget that can be shared across processes through a SQLite file.
NewsAPI articles have no id: ``external_id`` is the URL (a sha256 of it when longer than 128).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import requests
from newsapi import NewsApiClient
from newsapi import const as newsapi_const
from newsapi.newsapi_exception import NewsAPIException

from tradebot.kernel.errors import ConfigError, SourceError
from tradebot.kernel.records import (
    ARTICLE_COLUMNS,
    REJECT_COLUMNS,
    Fetched,
    FetchWindow,
    RecordKind,
    conform,
    empty,
    no_rejects,
)
from tradebot.kernel.settings import HttpSettings, NewsApiSource
from tradebot.sources.http import (
    RequestBudget,
    ResilientAdapter,
    RetryPolicy,
    mount_resilience,
)

log = logging.getLogger(__name__)

NEWSAPI_URL = "https://newsapi.org/v2"
EVERYTHING_PATH = "/v2/everything"
MAX_ID_LENGTH = 128
REMOVED = "[Removed]"  # NewsAPI's placeholder for articles taken down by the publisher


class _TimeoutSession(requests.Session):
    """A session that applies the configured timeout instead of newsapi-python's fixed 30 s and
    remembers the last reply's status, so error messages can name it."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout
        self.last_status: int | None = None

    def request(self, method: str | bytes, url: str | bytes, *args: Any,  # type: ignore[override]
                **kwargs: Any) -> requests.Response:
        kwargs["timeout"] = self.timeout
        response = super().request(method, url, *args, **kwargs)
        self.last_status = response.status_code
        return response


def external_id(url: str) -> str:
    """The URL itself, or its sha256 hex digest when longer than ``MAX_ID_LENGTH``."""
    return url if len(url) <= MAX_ID_LENGTH else hashlib.sha256(url.encode()).hexdigest()


def query_for(symbol: str, company_names: dict[str, str]) -> str:
    """``"AAPL" OR "Apple"``; just ``"AAPL"`` without a known company name."""
    terms = [symbol, company_names.get(symbol, "")]
    quoted = [f'"{t.replace(chr(34), "")}"' for t in dict.fromkeys(terms) if t.strip()]
    return " OR ".join(quoted)


def _param_time(ts: datetime) -> str:
    """NewsAPI's ``from``/``to`` format (UTC, whole seconds; newsapi-python rejects others)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


class NewsApiArticles:
    """Articles mentioning each symbol (ticker or company name) published in the window."""

    name = "newsapi"
    kind: RecordKind = "news"

    def __init__(self, cfg: NewsApiSource, http: HttpSettings, budget: RequestBudget | None = None,
                 sleep: Callable[[float], None] = time.sleep, budget_file: Path | None = None
                 ) -> None:
        if cfg.api_key is None or not cfg.api_key.get_secret_value().strip():
            raise ConfigError("newsapi: no API key; set NEWSAPI_KEY (sources.newsapi.api_key)")
        if cfg.language not in newsapi_const.languages:
            raise ConfigError(f"newsapi: language {cfg.language!r} is not one NewsAPI supports: "
                              f"{sorted(newsapi_const.languages)}")
        self.cfg = cfg
        self._key = cfg.api_key.get_secret_value().strip()
        if budget is None:
            budget = RequestBudget("newsapi", cfg.requests_per_day, "day", state_file=budget_file,
                                   max_wait=http.max_budget_wait_seconds)
        self.budget = budget
        policy = RetryPolicy.from_settings(http)
        adapter = ResilientAdapter("newsapi", policy, budget, sleep=sleep,
                                   rewrite=(NEWSAPI_URL, cfg.base_url.rstrip("/")))
        self._session = _TimeoutSession(policy.timeout)
        mount_resilience(self._session, adapter)
        self.client = NewsApiClient(api_key=self._key, session=self._session)

    def close(self) -> None:
        """Close the HTTP session (newsapi-python leaves a given session open)."""
        self._session.close()

    def fetch(self, window: FetchWindow) -> pd.DataFrame:
        return self.fetch_with_rejects(window).frame

    def fetch_with_rejects(self, window: FetchWindow) -> Fetched:
        rows: dict[str, dict[str, Any]] = {}  # by external_id, symbols merged across queries
        rejects: dict[str, dict[str, Any]] = {}
        start, end = (pd.Timestamp(t).tz_convert(UTC) for t in (window.start, window.end))
        for symbol in window.symbols:
            for key, item in self._articles(symbol, window):
                row, reason = _parse(item)
                if row is None:
                    rejects.setdefault(key, {"record_key": key, "reason": reason,
                                             "payload": item if isinstance(item, dict)
                                             else {"item": item}})
                elif start <= row["published_at"] < end:
                    kept = rows.setdefault(row["external_id"], {**row, "symbols": []})
                    if symbol not in kept["symbols"]:
                        kept["symbols"].append(symbol)
        rejected = pd.DataFrame(list(rejects.values()), columns=REJECT_COLUMNS)
        return Fetched(_frame(list(rows.values())), rejected if rejects else no_rejects())

    def _articles(self, symbol: str, window: FetchWindow) -> list[tuple[str, Any]]:
        """``(record_key, raw article)`` for every result of the symbol's query, within the cap."""
        page_size = min(self.cfg.page_size, self.cfg.max_results)
        query, found, page = query_for(symbol, self.cfg.company_names), [], 1
        while True:
            try:
                body = self.client.get_everything(
                    q=query, from_param=_param_time(window.start), to=_param_time(window.end),
                    language=self.cfg.language, sort_by="publishedAt", page_size=page_size,
                    page=page,
                )
            except NewsAPIException as exc:
                error = exc.get_exception()
                if isinstance(error, dict) and error.get("code") == "maximumResultsReached":
                    log.warning("newsapi: %s: result cap reached at page %d; keeping %d articles",
                                symbol, page, len(found))
                    break
                raise self._error(error) from None
            except requests.JSONDecodeError as exc:
                raise self._malformed(f"invalid JSON ({exc.msg})") from None
            articles, total = self._page(body)
            for i, item in enumerate(articles, start=1):
                url = item.get("url") if isinstance(item, dict) else None
                named = isinstance(url, str) and url and item.get("title") != REMOVED
                found.append((url if named else f"{symbol} page {page} item {i}", item))
            if len(articles) < page_size or page * page_size >= total:
                return found
            if (page + 1) * page_size > self.cfg.max_results:  # NewsAPI would answer 426
                log.warning("newsapi: %s: %d articles match but only %d results per query are "
                            "reachable on this plan; fetch shorter windows to get them all",
                            symbol, total, len(found))
                return found
            page += 1
        return found

    def _page(self, body: Any) -> tuple[list[Any], int]:
        if not isinstance(body, dict):
            raise self._malformed(f"expected an object, got {type(body).__name__}")
        if body.get("status") != "ok":
            raise self._error(body)
        articles, total = body.get("articles"), body.get("totalResults")
        if not isinstance(articles, list) or not isinstance(total, int):
            raise self._malformed("'articles' list or 'totalResults' count missing")
        return articles, total

    def _where(self) -> str:
        status = self._session.last_status
        return f"GET {EVERYTHING_PATH}" + (f" (HTTP {status})" if status is not None else "")

    def _malformed(self, detail: str) -> SourceError:
        return SourceError(self._redact(
            f"newsapi: malformed response body from {self._where()}: {detail}"))

    def _error(self, error: Any) -> SourceError:
        """``newsapi: <code>: <message>`` from a NewsAPI error body, with the API key redacted."""
        if not isinstance(error, dict):
            return self._malformed(f"error reply is not an object ({type(error).__name__})")
        code = error.get("code") or "error"
        message = error.get("message") or "no message"
        return SourceError(self._redact(f"newsapi: {code}: {message} [{self._where()}]"))

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "***")


def _parse(item: Any) -> tuple[dict[str, Any] | None, str]:
    """One article row, or ``None`` and the reason it cannot be used."""
    if not isinstance(item, dict):
        return None, f"article is not an object ({type(item).__name__})"
    if item.get("title") == REMOVED:
        return None, "article removed by NewsAPI ([Removed] placeholder)"
    missing = [f for f in ("url", "publishedAt", "title")
               if not isinstance(item.get(f), str) or not item[f].strip()]
    if missing:
        return None, "missing " + ", ".join(missing)
    try:
        published = pd.Timestamp(item["publishedAt"])
    except ValueError:
        return None, f"unparseable publishedAt {item['publishedAt']!r}"
    if published is pd.NaT:
        return None, f"unparseable publishedAt {item['publishedAt']!r}"
    published = (published.tz_localize(UTC) if published.tzinfo is None
                 else published.tz_convert(UTC))
    description = item.get("description")
    return {
        "external_id": external_id(item["url"]),
        "published_at": published,
        "title": item["title"].strip(),
        "description": "" if description is None else str(description),
        "url": item["url"],
    }, ""


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    if not rows:
        return empty("news")
    frame = pd.DataFrame(rows)
    frame["symbols"] = frame["symbols"].map(",".join)
    frame["published_at"] = pd.to_datetime(frame["published_at"], utc=True).dt.as_unit("ns")
    frame = frame.sort_values(["published_at", "external_id"], kind="stable")
    return conform(frame[ARTICLE_COLUMNS], "news")
