"""Reddit posts through praw (the official client), paced and retried by the resilient adapter.

What praw 8 / prawcore 4 do on their own, and how this module fits around it:

* Token: a read-only (application-only) OAuth token from ``POST {reddit_url}/api/v1/access_token``
  with HTTP basic auth (client id/secret) and ``grant_type=client_credentials``, fetched lazily
  before the first API call; listings then go to ``GET {oauth_url}/r/{sub}/new?limit=..&
  raw_json=1[&after=t3_..]`` with ``Authorization: bearer <token>``.
* prawcore itself retries 500/502/503/504/408/520/522, connection errors and read timeouts twice,
  sleeping 0-4 s with ``time.sleep``; it never retries 429 (``TooManyRequests``) and retries a 401
  once after refreshing the token. Stacked on our adapter that would be up to 3x ``attempts``
  tries, so :class:`_Requestor` stops a reply whose retries the adapter already spent (and our
  adapter's own ``SourceError`` for timeouts) from reaching prawcore's retry loop.
* prawcore's ``RateLimiter`` reads ``x-ratelimit-remaining/used/reset`` and only sleeps when we
  run ahead of Reddit's window; our :class:`RequestBudget` paces on top of it.
* prawcore sends ``timeout=16`` on every API call, which would override our policy's timeout;
  :class:`_Requestor` enforces the configured one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import praw
import prawcore
from praw.models import Submission
from praw.models.reddit.base import RedditBase

from tradebot.kernel.errors import ConfigError, SourceError
from tradebot.kernel.records import REJECT_COLUMNS, Fetched, FetchWindow, conform, no_rejects
from tradebot.kernel.settings import HttpSettings, RedditSource
from tradebot.sources.http import (
    RETRY_STATUSES,
    RequestBudget,
    ResilientAdapter,
    RetryPolicy,
    resilient_session,
)
from tradebot.sources.tickers import TickerMatcher

TOKEN_PATH = "/api/v1/access_token"


@dataclass
class _Trace:
    """The path of the last request, for error messages (never the query string)."""

    path: str = ""


class _Requestor(prawcore.Requestor):
    """prawcore's requestor with our timeout, no second retry layer and a request trace."""

    def __init__(self, *, trace: _Trace, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.trace = trace

    def request(self, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        method, url = str(args[0]).upper(), str(args[1])
        path = self.trace.path = urlsplit(url).path
        try:
            response = super().request(*args, timeout=self.timeout, **kwargs)
        except prawcore.RequestException as exc:
            if isinstance(exc.original_exception, SourceError):  # the adapter gave up already
                raise exc.original_exception from None
            raise
        if response.status_code in RETRY_STATUSES:  # the adapter spent its retries on this
            raise SourceError(
                f"reddit: {method} {path} returned HTTP {response.status_code} "
                "(retries exhausted)"
            )
        return response


class _LenientSubmission(Submission):
    """Parses listing children; a child praw cannot build (e.g. no ``id``) stays a raw dict."""

    @classmethod
    def parse(cls, data: dict[str, Any], reddit: praw.Reddit) -> Any:
        if not isinstance(data.get("id"), str) or not data["id"]:
            return dict(data)
        try:
            return Submission(reddit, _data=data)
        except (ValueError, TypeError, AttributeError):
            return dict(data)


class RedditPosts:
    """Newest posts of the configured subreddits that mention the window's symbols."""

    name = "reddit"
    kind = "posts"

    def __init__(
        self, cfg: RedditSource, http: HttpSettings, universe: Collection[str] | None = None,
        budget: RequestBudget | None = None, sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        client_id = cfg.client_id.get_secret_value() if cfg.client_id else ""
        secret = cfg.client_secret.get_secret_value() if cfg.client_secret else ""
        if not client_id or not secret:
            raise ConfigError(
                "reddit: client credentials are missing; set REDDIT_CLIENT_ID and "
                "REDDIT_CLIENT_SECRET (a 'script' app from https://www.reddit.com/prefs/apps)"
            )
        self.cfg = cfg
        self.universe = frozenset(s.upper() for s in universe) if universe else None
        policy = RetryPolicy(
            attempts=http.attempts, base_delay=http.backoff_seconds,
            max_delay=http.max_backoff_seconds, max_retry_after=http.max_retry_after_seconds,
            timeout=http.timeout_seconds,
        )
        budget = budget or RequestBudget(
            "reddit", cfg.requests_per_minute, "minute", max_wait=http.max_budget_wait_seconds
        )
        self._trace = _Trace()
        session = resilient_session(ResilientAdapter("reddit", policy, budget, sleep=sleep))
        self.reddit = praw.Reddit(
            client_id=client_id, client_secret=secret, user_agent=cfg.user_agent,
            # listings: urljoin(oauth_url, "r/..."), token: reddit_url + "/api/v1/access_token"
            oauth_url=cfg.oauth_url.rstrip("/") + "/", reddit_url=cfg.reddit_url.rstrip("/"),
            # pin the read-only (client credentials) flow whatever a praw.ini might say
            username=None, password=None, refresh_token=None,
            check_for_updates=False, ratelimit_seconds=int(http.max_retry_after_seconds),
            requestor_class=_Requestor,
            requestor_kwargs={"session": session, "timeout": policy.timeout, "trace": self._trace},
        )
        # praw has no public hook for listing-child parsing; this keeps one bad child from
        # failing a whole page (praw raises ValueError for a submission without an id).
        self.reddit._objector.parsers[self.reddit.config.kinds["submission"]] = _LenientSubmission

    def fetch(self, window: FetchWindow) -> pd.DataFrame:
        return self.fetch_with_rejects(window).frame

    def fetch_with_rejects(self, window: FetchWindow) -> Fetched:
        """Posts with ``start <= created_utc < end`` naming a window symbol, plus rejects."""
        wanted = {s.upper() for s in window.symbols}
        matcher = TickerMatcher(self.universe or wanted, self.cfg.ambiguous_tickers)
        start, end = window.start.timestamp(), window.end.timestamp()
        rows: list[dict[str, Any]] = []
        rejects: list[dict[str, Any]] = []
        seen: set[str] = set()
        for sub in self.cfg.subreddits:
            listing = self.reddit.subreddit(sub).new(limit=self.cfg.posts_per_subreddit)
            for position, post in enumerate(self._guarded(listing), start=1):
                raw = _raw_fields(post)
                key = f"r/{sub} post {raw.get('id') or f'#{position} (no id)'}"
                created = raw.get("created_utc")
                if not _finite(created):
                    rejects.append(_reject(key, "missing or non-numeric created_utc", raw))
                    continue
                if created < start:
                    break  # /new is newest first: everything further is older
                if created >= end:
                    continue
                problem = _problem(raw)
                if problem:
                    rejects.append(_reject(key, problem, raw))
                    continue
                if raw["id"] in seen:
                    continue
                seen.add(raw["id"])
                body = raw.get("selftext") or ""
                tickers = matcher.extract(f"{raw['title']}\n{body}")
                if wanted.isdisjoint(tickers):
                    continue
                subreddit = raw.get("subreddit")
                rows.append({
                    "external_id": raw["id"],
                    "subreddit": (subreddit if isinstance(subreddit, str) and subreddit
                                  else sub).lower(),
                    "symbols": ",".join(tickers),
                    "created_at": created,
                    "title": raw["title"],
                    "body": body if isinstance(body, str) else str(body),
                    "score": int(raw.get("score") or 0),
                })
        rejected = pd.DataFrame(rejects, columns=REJECT_COLUMNS) if rejects else no_rejects()
        return Fetched(_frame(rows), rejected)

    def _guarded(self, listing: Iterable[Any]) -> Iterator[Any]:
        """Iterate a praw listing, turning client errors into ``SourceError``."""
        iterator = iter(listing)
        while True:
            try:
                post = next(iterator)
            except StopIteration:
                return
            except SourceError:
                raise
            except Exception as exc:  # every client failure becomes a SourceError
                raise self._error(exc) from None
            yield post

    def _error(self, exc: Exception) -> SourceError:
        path = self._trace.path or "?"
        if isinstance(exc, prawcore.OAuthException):
            return SourceError(
                f"reddit: token request to {TOKEN_PATH} was refused ({exc.error}); "
                "check REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET"
            )
        if isinstance(exc, prawcore.BadJSON):
            return SourceError(f"reddit: malformed response body from {path}: not valid JSON")
        if isinstance(exc, prawcore.ResponseException):
            status = exc.response.status_code
            path = urlsplit(exc.response.url or "").path or path
            if path.endswith(TOKEN_PATH) and status in (400, 401, 403):
                return SourceError(
                    f"reddit: authentication failed (HTTP {status} from {TOKEN_PATH}); "
                    "check REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET"
                )
            what = {302: "subreddit not found (redirected)", 403: "access forbidden",
                    404: "not found", 429: "rate limited"}.get(status, "request failed")
            return SourceError(f"reddit: {what}: {path} returned HTTP {status}")
        if isinstance(exc, prawcore.RequestException):
            reason = type(exc.original_exception).__name__
            return SourceError(f"reddit: request to {path} failed ({reason})")
        if isinstance(exc, ValueError | KeyError | TypeError | AttributeError | IndexError):
            detail = f"{type(exc).__name__}: {str(exc)[:120]}"
            return SourceError(f"reddit: malformed response body from {path}: {detail}")
        return SourceError(f"reddit: {path} failed ({type(exc).__name__}: {str(exc)[:120]})")


_PRAW_ATTRIBUTES = frozenset({"comment_limit", "comment_sort"})


def _raw_fields(post: Any) -> dict[str, Any]:
    """The scalar fields of a listing child (a Submission or a raw dict), without fetching."""
    items = post.items() if isinstance(post, dict) else vars(post).items()
    raw: dict[str, Any] = {}
    for name, value in items:
        if name.startswith("_") or name in _PRAW_ATTRIBUTES:
            continue
        if isinstance(value, RedditBase):  # subreddit / author objects: their display name
            value = str(value)
        if value is None or isinstance(value, str | int | float | bool):
            raw[name] = value
    return raw


def _problem(raw: dict[str, Any]) -> str | None:
    if not isinstance(raw.get("id"), str) or not raw["id"]:
        return "missing id"
    if not isinstance(raw.get("title"), str) or not raw["title"].strip():
        return "missing title"
    if raw.get("score") is not None and not _finite(raw["score"]):
        return "non-numeric score"
    return None


def _finite(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _reject(key: str, reason: str, raw: dict[str, Any]) -> dict[str, Any]:
    return {"record_key": key, "reason": reason, "payload": raw}


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["external_id", "subreddit", "symbols", "created_at",
                                        "title", "body", "score"])
    if frame.empty:
        return conform(frame, "posts")
    frame["created_at"] = pd.to_datetime(frame["created_at"], unit="s", utc=True).astype(
        "datetime64[ns, UTC]"
    )
    frame["score"] = frame["score"].astype("int64")
    return conform(frame, "posts")
