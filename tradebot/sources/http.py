"""Resilient HTTP for the official API clients: request budgets, Retry-After and jittered back-off.

alpaca-py, newsapi-python and praw (through prawcore) all speak HTTP through a
``requests.Session``. We mount :class:`ResilientAdapter` on that session, so every request they
make, pagination included, is paced by a client-side limiter (pyrate-limiter) and retried here
(tenacity) in one place:

* 429 (and 503) honour ``Retry-After`` (seconds or an HTTP date), capped;
* other 5xx, connection errors and timeouts back off exponentially with full jitter;
* when the attempts run out, the last error reply goes back to the client (which raises its own
  error, turned into :class:`~tradebot.kernel.errors.SourceError` by the source), or a
  ``SourceError`` is raised for a request that never got a reply.

Log lines and errors name the service, method and URL path only: never query strings or headers,
which is where API keys travel.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

import requests
from pyrate_limiter import Duration, Limiter, Rate, SQLiteBucket
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from tradebot.kernel.errors import SourceError
from tradebot.kernel.settings import HttpSettings

log = logging.getLogger(__name__)

LOCK_WAIT = 1.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
PERIODS = {"second": Duration.SECOND, "minute": Duration.MINUTE, "day": Duration.DAY}


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one HTTP request."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0
    timeout: float = 15.0

    @classmethod
    def from_settings(cls, http: HttpSettings) -> RetryPolicy:
        return cls(
            attempts=http.attempts, base_delay=http.backoff_seconds,
            max_delay=http.max_backoff_seconds, max_retry_after=http.max_retry_after_seconds,
            timeout=http.timeout_seconds,
        )


class RequestBudget:
    """A client-side limit of ``limit`` requests per ``period`` for one service.

    In memory by default; with ``state_file`` the budget is kept in a SQLite file shared by
    every process on the machine (needed for daily budgets such as NewsAPI's 100/day).
    ``max_wait`` bounds how long a request may wait for a slot before the fetch fails."""

    def __init__(
        self, service: str, limit: int, period: str = "minute", *,
        state_file: Path | None = None, max_wait: float = 120.0,
    ) -> None:
        if period not in PERIODS:
            raise ValueError(f"period must be one of {sorted(PERIODS)}")
        self.service, self.limit, self.period, self.max_wait = service, limit, period, max_wait
        rate = Rate(limit, PERIODS[period])
        if state_file is None:
            self._limiter = Limiter(rate)
        else:
            state_file.parent.mkdir(parents=True, exist_ok=True)
            bucket = SQLiteBucket.init_from_file(
                [rate], table=f"budget_{service}", db_path=str(state_file), use_file_lock=True
            )
            self._limiter = Limiter(bucket)

    def acquire(self) -> None:
        """Take one request slot, waiting up to ``max_wait``; raise if the budget is spent."""
        # At least LOCK_WAIT: the limiter's background leak briefly holds the bucket's (file)
        # lock, and a zero timeout would then report a free budget as used up.
        timeout = max(self.max_wait, LOCK_WAIT)
        if not self._limiter.try_acquire(self.service, blocking=True, timeout=timeout):
            raise SourceError(
                f"{self.service}: client-side request budget of {self.limit}/{self.period} is "
                f"used up (waited {self.max_wait:g} s); try again later or raise the limit"
            )


class _Retryable(Exception):
    def __init__(self, what: str, response: requests.Response | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(what)
        self.response = response
        self.retry_after = retry_after


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Parse a ``Retry-After`` header: delta seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _where(request: requests.PreparedRequest) -> str:
    return f"{request.method} {urlsplit(request.url or '').path}"


class ResilientAdapter(HTTPAdapter):
    """A ``requests`` transport adapter that paces and retries every request it sends.

    ``rewrite=(prefix, replacement)`` redirects URLs a client hard-codes (newsapi-python) to a
    configured endpoint such as a proxy or a test fake."""

    def __init__(
        self, service: str, policy: RetryPolicy | None = None, budget: RequestBudget | None = None,
        rewrite: tuple[str, str] | None = None, sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        self.service = service
        self.policy = policy or RetryPolicy()
        self.budget = budget
        self.rewrite = rewrite
        self.sleep = sleep
        self._jitter = wait_random_exponential(
            multiplier=self.policy.base_delay, max=self.policy.max_delay
        )

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return min(exc.retry_after, self.policy.max_retry_after)
        return float(self._jitter(state))

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s: %s, retrying in %.1f s (attempt %d/%d)",
            self.service, exc, wait, state.attempt_number + 1, self.policy.attempts,
        )

    def send(self, request: requests.PreparedRequest, stream: bool = False,  # type: ignore[override]
             timeout: float | tuple[float, float] | None = None, verify: bool | str = True,
             cert: object = None, proxies: object = None) -> requests.Response:
        if self.rewrite and request.url and request.url.startswith(self.rewrite[0]):
            request.url = self.rewrite[1] + request.url[len(self.rewrite[0]):]
        where = _where(request)
        retrying = Retrying(
            stop=stop_after_attempt(self.policy.attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            sleep=self.sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._send_once(request, where, stream, timeout, verify, cert, proxies)
        except _Retryable as exc:
            if exc.response is not None:
                return exc.response  # the client turns the final error reply into its own error
            raise SourceError(
                f"{self.service}: {exc} (gave up after {self.policy.attempts} attempts)"
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _send_once(self, request: requests.PreparedRequest, where: str, stream: bool,
                   timeout: object, verify: object, cert: object, proxies: object
                   ) -> requests.Response:
        if self.budget is not None:
            self.budget.acquire()
        try:
            # The configured timeout wins over a client's hard-coded one (newsapi-python: 30 s).
            response = super().send(
                request, stream=stream, timeout=self.policy.timeout,
                verify=verify, cert=cert, proxies=proxies,  # type: ignore[arg-type]
            )
        except requests.Timeout:
            raise _Retryable(f"{where} timed out") from None
        except requests.ConnectionError as exc:
            reason = type(exc.args[0]).__name__ if exc.args else type(exc).__name__
            raise _Retryable(f"{where} connection failed ({reason})") from None
        if response.status_code in RETRY_STATUSES:
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            response.content  # noqa: B018 - read the body so the connection is released
            raise _Retryable(
                f"{where} returned HTTP {response.status_code}", response, retry_after
            )
        return response


def mount_resilience(session: requests.Session, adapter: ResilientAdapter) -> requests.Session:
    """Route every http(s) request of ``session`` through ``adapter``."""
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def resilient_session(adapter: ResilientAdapter) -> requests.Session:
    """A new ``requests.Session`` whose requests all go through ``adapter``."""
    return mount_resilience(requests.Session(), adapter)
