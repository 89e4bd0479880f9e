"""A loopback Reddit: the OAuth token endpoint and ``/r/{sub}/new`` listings, on the real wire.

praw fetches an application-only token with ``POST /api/v1/access_token`` (HTTP basic auth of
the client id/secret, form ``grant_type=client_credentials``), then pages
``GET /r/{sub}/new?limit=N&raw_json=1[&after=t3_<id>]`` with ``Authorization: bearer <token>``.
One server answers for both ``reddit_url`` and ``oauth_url``. Faults are scripted on
:attr:`RedditFake.server` (``fake.server.fail(r"/r/stocks/new", throttled(3))``).
"""

from __future__ import annotations

import base64
import html
import re
from typing import Any, Self

from tests.kit.fakes.server import FakeServer, Reply, Request

TOKEN = "fake-token"
MAX_LIMIT = 100  # Reddit serves at most 100 listing children per request
RATE_HEADERS = {  # generous values: prawcore's RateLimiter never needs to sleep
    "x-ratelimit-remaining": "995.0", "x-ratelimit-used": "5", "x-ratelimit-reset": "300",
}
_LISTING = re.compile(r"/r/([^/]+)/new(?:\.json)?")


class RedditFake:
    """Subreddits of posts served newest first, ``page_size`` per page at most."""

    def __init__(self, client_id: str = "test-client-id", client_secret: str = "test-secret-123",
                 page_size: int = MAX_LIMIT) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.page_size = page_size
        self.server = FakeServer()
        self.posts: dict[str, list[dict[str, Any]]] = {}
        self.server.route("POST", "/api/v1/access_token", self._token)
        self.server.route("GET", _LISTING.pattern, self._listing)

    @property
    def url(self) -> str:
        return self.server.url

    def __enter__(self) -> Self:
        self.server.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.stop()

    def add_subreddit(self, name: str) -> None:
        self.posts.setdefault(name.lower(), [])

    def add_post(self, subreddit: str, post_id: str, title: str, created_utc: float,
                 selftext: str = "", score: int = 1, author: str = "someone",
                 **extra: Any) -> dict[str, Any]:
        """Add a t3 child as Reddit serializes it; ``extra`` overrides or adds fields."""
        data: dict[str, Any] = {
            "id": post_id, "name": f"t3_{post_id}", "subreddit": subreddit,
            "subreddit_name_prefixed": f"r/{subreddit}", "title": title, "selftext": selftext,
            "created_utc": float(created_utc), "score": score, "author": author,
            "permalink": f"/r/{subreddit}/comments/{post_id}/post/",
            "url": f"https://www.reddit.com/r/{subreddit}/comments/{post_id}/post/",
            "num_comments": 0, "is_self": True, "over_18": False,
        }
        data.update(extra)
        return self.add_child(subreddit, data)

    def add_child(self, subreddit: str, data: dict[str, Any]) -> dict[str, Any]:
        """Add raw child data as is (e.g. without an id or title, to test rejects)."""
        self.posts.setdefault(subreddit.lower(), []).append(data)
        return data

    def listing_hits(self, subreddit: str) -> list[Request]:
        return self.server.hits(f"/r/{re.escape(subreddit)}/new(?:\\.json)?")

    def token_hits(self) -> list[Request]:
        return self.server.hits("/api/v1/access_token")

    def _token(self, request: Request) -> Reply:
        # prawcore asks for "Connection: close"; answer like a real server so the client does
        # not put a connection the server is about to close back into its pool
        headers = {**RATE_HEADERS, "Connection": "close"}
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return Reply(401, {"message": "Unauthorized", "error": 401}, headers)
        if request.form().get("grant_type") != "client_credentials":
            return Reply(200, {"error": "unsupported_grant_type"}, headers)
        return Reply(200, {"access_token": TOKEN, "token_type": "bearer", "expires_in": 86400,
                           "scope": "*"}, headers)

    def _listing(self, request: Request) -> Reply:
        if request.headers.get("authorization", "").lower() != f"bearer {TOKEN}":
            return Reply(401, {"message": "Unauthorized", "error": 401}, RATE_HEADERS)
        match = _LISTING.fullmatch(request.path)
        assert match is not None
        sub = match.group(1).lower()
        if sub not in self.posts:
            return Reply(404, {"message": "Not Found", "error": 404}, RATE_HEADERS)
        posts = sorted(self.posts[sub], key=_newest_first)
        start = 0
        after = request.arg("after")
        if after:
            names = [p.get("name") for p in posts]
            start = names.index(after) + 1 if after in names else len(posts)
        limit = min(int(request.arg("limit", "25") or 25), MAX_LIMIT, self.page_size)
        page = posts[start:start + limit]
        more = start + limit < len(posts)
        raw = request.arg("raw_json") == "1"
        children = [{"kind": "t3", "data": p if raw else _escaped(p)} for p in page]
        body = {"kind": "Listing", "data": {
            "after": page[-1].get("name") if more and page else None, "dist": len(children),
            "modhash": None, "geo_filter": "", "children": children, "before": None,
        }}
        return Reply(200, body, RATE_HEADERS)


def _newest_first(data: dict[str, Any]) -> float:
    created = data.get("created_utc")
    return -float(created) if isinstance(created, int | float) else float("-inf")


def _escaped(data: dict[str, Any]) -> dict[str, Any]:
    """Without ``raw_json=1`` Reddit HTML-escapes ``&``, ``<`` and ``>`` in text fields."""
    out = dict(data)
    for key in ("title", "selftext"):
        if isinstance(out.get(key), str):
            out[key] = html.escape(out[key], quote=False)
    return out
