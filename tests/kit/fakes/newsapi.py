"""A loopback NewsAPI ``/v2/everything`` speaking the real wire format.

The API key is accepted the ways NewsAPI accepts it: the ``Authorization`` header (what
newsapi-python sends, the bare key), ``X-Api-Key`` or the ``apiKey`` query parameter. Replies are
``{"status": "ok", "totalResults": N, "articles": [...]}``; errors are
``{"status": "error", "code": ..., "message": ...}`` with NewsAPI's status codes. Like the
developer plan, a request reaching past ``max_results`` (``page * pageSize``) gets HTTP 426.

Articles titled ``[Removed]`` (NewsAPI's placeholder for taken-down articles, dated 1970) are
served for every query and date range, as NewsAPI does. Article dicts may carry a ``language``
key (default ``"en"``) that the fake filters on and strips from replies, since NewsAPI articles
do not include it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from typing import Any

from tests.kit.fakes.server import FakeServer, Reply, Request

EVERYTHING = r"/v2/everything"
SORTS = ("relevancy", "popularity", "publishedAt")
REMOVED = "[Removed]"


def api_error(status: int, code: str, message: str, headers: dict[str, str] | None = None
              ) -> Reply:
    return Reply(status, {"status": "error", "code": code, "message": message}, headers or {})


def rate_limited(retry_after: float | str = 1) -> Reply:
    """NewsAPI's 429 ``rateLimited`` reply, with ``Retry-After``."""
    return api_error(
        429, "rateLimited",
        "You have been rate limited. Back off for a while before trying the request again.",
        {"Retry-After": str(retry_after)},
    )


def article(title: str, published_at: str, url: str, description: str | None = None,
            source: str = "Reuters", **extra: Any) -> dict[str, Any]:
    """An article dict in NewsAPI's shape."""
    return {
        "source": {"id": None, "name": source}, "author": "Staff", "title": title,
        "description": description, "url": url, "urlToImage": None,
        "publishedAt": published_at, "content": description, **extra,
    }


def _when(text: str, *, end_of_day: bool) -> datetime:
    """A ``from``/``to`` value: a date or ISO datetime, naive meaning UTC."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if len(text) == len("YYYY-MM-DD") and end_of_day:
        parsed = datetime.combine(parsed.date(), time.max)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _terms(q: str) -> list[str]:
    """The quoted phrases of ``q`` (``"AAPL" OR "Apple"``), else its OR-separated words."""
    quoted = re.findall(r'"([^"]+)"', q)
    return quoted or [t.strip() for t in re.split(r"\bOR\b", q) if t.strip()]


def _mentions(item: dict[str, Any], terms: list[str]) -> bool:
    text = f"{item.get('title') or ''}\n{item.get('description') or ''}"
    return any(re.search(rf"(?<!\w){re.escape(t)}(?!\w)", text, re.IGNORECASE) for t in terms)


class NewsApiFake:
    """A fake NewsAPI over ``articles``; ``server`` is the :class:`FakeServer` to ``serve``."""

    def __init__(self, articles: list[dict[str, Any]], api_key: str = "test-key-123",
                 max_results: int = 100) -> None:
        self.articles = list(articles)
        self.api_key = api_key
        self.max_results = max_results
        self.server = FakeServer()
        self.server.route("GET", EVERYTHING, self._everything)

    @property
    def base_url(self) -> str:
        """The ``base_url`` to configure (the running server's ``/v2``)."""
        return f"{self.server.url}/v2"

    def requests(self) -> list[Request]:
        return self.server.hits(EVERYTHING)

    def _key(self, request: Request) -> str | None:
        return (request.headers.get("authorization") or request.headers.get("x-api-key")
                or request.arg("apiKey"))

    def _everything(self, request: Request) -> Reply:
        key = self._key(request)
        if not key:
            return api_error(401, "apiKeyMissing", "Your API key is missing. Append this to the "
                             "URL with the apiKey param, or use the x-api-key HTTP header.")
        if key != self.api_key:
            return api_error(401, "apiKeyInvalid", "Your API key is invalid or incorrect. Check "
                             "your key, or go to https://newsapi.org to create a free API key.")
        try:
            page = int(request.arg("page", "1") or 1)
            size = int(request.arg("pageSize", "100") or 100)
            start = _when(request.arg("from") or "0001-01-01", end_of_day=False)
            end = _when(request.arg("to") or "9999-12-31", end_of_day=True)
        except ValueError as exc:
            return api_error(400, "parameterInvalid", f"Invalid parameter: {exc}")
        sort = request.arg("sortBy", "publishedAt")
        if page < 1 or not 1 <= size <= 100 or sort not in SORTS:
            return api_error(400, "parameterInvalid", "page, pageSize or sortBy is invalid.")
        q = request.arg("q")
        if not q:
            return api_error(400, "parametersMissing", "Required parameters are missing. "
                             "Please set any of the following parameters and try again: q, "
                             "qInTitle, sources, domains.")
        if page * size > self.max_results:
            return api_error(426, "maximumResultsReached", "You have requested too many "
                             f"results. Developer accounts are limited to a max of "
                             f"{self.max_results} results. You are trying to request results "
                             f"{(page - 1) * size} to {page * size}. Please upgrade to a paid "
                             "plan if you need more results.")
        found = self._matching(_terms(q), start, end, request.arg("language"))
        if sort == "publishedAt":
            found.sort(key=lambda a: a.get("publishedAt") or "", reverse=True)
        chunk = found[(page - 1) * size: page * size]
        return Reply(200, {"status": "ok", "totalResults": len(found), "articles": chunk})

    def _matching(self, terms: list[str], start: datetime, end: datetime,
                  language: str | None) -> list[dict[str, Any]]:
        found = []
        for item in self.articles:
            if item.get("title") == REMOVED:  # placeholders come back whatever the query
                found.append(dict(item))
                continue
            if language and item.get("language", "en") != language:
                continue
            published = item.get("publishedAt")
            if published:  # articles without a date are still served (to test rejects)
                when = _when(published, end_of_day=False)
                if not start <= when <= end:
                    continue
            if _mentions(item, terms):
                found.append({k: v for k, v in item.items() if k != "language"})
        return found
