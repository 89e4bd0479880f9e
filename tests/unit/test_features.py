"""Feature layer: decision-bar resampling, sentiment windows, labels, and no lookahead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from tests.kit.market import tiny_market
from tradebot.features.bars import resample_bars
from tradebot.features.build import build_feature_frame, feature_columns, features_at
from tradebot.features.labels import direction_labels
from tradebot.features.sentiment import LexiconScorer, content_hash
from tradebot.features.sentiment_features import sentiment_features
from tradebot.kernel.settings import FeatureSettings, LabelSettings

T = datetime(2026, 6, 2, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def market():
    return tiny_market(symbols=("QQQ", "AAPL"), n_sessions=6)


@pytest.fixture(scope="module")
def items(market):
    scorer = LexiconScorer()
    news = market.news.assign(kind="news", ts_known=market.news["published_at"])
    posts = market.posts.assign(kind="post", ts_known=market.posts["created_at"])
    frame = pd.concat([news, posts], ignore_index=True)
    texts = (frame["title"] + " " + frame.get("description", "").fillna("")).tolist()
    frame["score"] = [s.score for s in scorer.score(texts)]
    return frame[["kind", "symbols", "ts_known", "score"]]


def test_resample_labels_bars_by_close_and_uses_only_their_minutes(market) -> None:
    bars = market.bars[market.bars["symbol"] == "AAPL"]
    out = resample_bars(bars, 15)
    first = out.iloc[0]
    minutes = bars[(bars["ts_event"] >= first["ts"] - timedelta(minutes=15))
                   & (bars["ts_event"] < first["ts"])]
    assert len(minutes) == 15
    assert first["open"] == minutes["open"].iloc[0]
    assert first["close"] == minutes["close"].iloc[-1]
    assert first["high"] == minutes["high"].max()
    assert first["volume"] == minutes["volume"].sum()
    # 9:30 ET open -> first decision bar closes 9:45 ET; nothing overnight
    assert first["ts"].tz_convert("America/New_York").strftime("%H:%M") == "09:45"
    assert out.groupby(out["ts"].dt.date).size().max() == 26


def test_sentiment_window_is_half_open_and_point_in_time() -> None:
    items = pd.DataFrame({
        "kind": ["news"] * 4,
        "symbols": ["AAPL"] * 4,
        "ts_known": pd.to_datetime([T - timedelta(minutes=15), T - timedelta(minutes=14),
                                    T, T + timedelta(seconds=1)], utc=True).as_unit("us"),
        "score": [1.0, 0.5, -1.0, 1.0],
    })
    decision = pd.DatetimeIndex([T]).as_unit("ns")
    out = sentiment_features(items, decision, [15])
    # (T-15m, T]: excludes the item exactly 15 minutes old and the one after T
    assert out["news_count_15m"].iloc[0] == 2
    assert out["news_sent_15m"].iloc[0] == pytest.approx(-0.25)
    assert np.isnan(out["post_sent_15m"].iloc[0])


def test_direction_labels_use_strictly_later_bars() -> None:
    bars = pd.DataFrame({"ts": pd.date_range(T, periods=4, freq="15min"),
                         "close": [100.0, 101.0, 100.5, 100.5]})
    out = direction_labels(bars, 1)
    assert out["forward_return"].iloc[0] == pytest.approx(0.01)
    assert list(out["label"].iloc[:3]) == [1.0, 0.0, 0.0]
    assert np.isnan(out["label"].iloc[-1])


def test_lexicon_scores_polarity_and_hash_ignores_whitespace() -> None:
    pos, neg, neutral = LexiconScorer().score(
        ["Apple profit improved, results surpassed estimates",
         "Nvidia shortfall and litigation after downgrade", "Shares traded on Tuesday"])
    assert pos.score > 0 > neg.score
    assert neutral.score == 0
    assert content_hash("a  b\n c") == content_hash("a b c")


def test_features_at_equals_training_rows_no_lookahead(market, items) -> None:
    """Freqtrade-style lookahead check: a row computed with data cut at t equals the row the
    training build computed with all data. Same function, so also live/training parity."""
    feats, label = FeatureSettings(), LabelSettings()
    full = build_feature_frame(market.bars, items, feats, label, 15)
    cols = feature_columns(full)
    times = sorted(full["ts"].unique())
    rng = np.random.default_rng(0)
    for ts in rng.choice(times[:-1], size=6, replace=False):
        ts = pd.Timestamp(ts)
        live = features_at(market.bars, items, ts.to_pydatetime(), feats, label, 15)
        expected = full[full["ts"] == ts].set_index("symbol")[cols]
        got = live.set_index("symbol")[cols]
        pd.testing.assert_frame_equal(got.sort_index(), expected.sort_index(), check_dtype=False,
                                      rtol=1e-9, atol=1e-12)


def test_future_data_cannot_change_past_rows(market, items) -> None:
    """Perturbing everything after t leaves every feature at or before t unchanged."""
    feats, label = FeatureSettings(), LabelSettings()
    full = build_feature_frame(market.bars, items, feats, label, 15)
    cut = pd.Timestamp(sorted(full["ts"].unique())[len(full["ts"].unique()) // 2])
    bars = market.bars.copy()
    later = bars["ts_event"] >= cut
    bars.loc[later, ["open", "high", "low", "close"]] *= 1.5
    bars.loc[later, "volume"] *= 3
    shuffled = items.copy()
    shuffled.loc[shuffled["ts_known"] > cut, "score"] *= -1
    changed = build_feature_frame(bars, shuffled, feats, label, 15)
    cols = feature_columns(full)
    before = full[full["ts"] <= cut].set_index(["symbol", "ts"])[cols]
    after = changed[changed["ts"] <= cut].set_index(["symbol", "ts"])[cols]
    pd.testing.assert_frame_equal(before, after)
