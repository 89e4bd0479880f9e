"""Extended features: session VWAP distance, overnight gap, daily context, cross-sectional
returns, decayed sentiment and surprise, threshold labels, warm-up counts, and no lookahead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.kit.market import tiny_market
from tradebot.features.build import build_feature_frame, feature_columns, features_at
from tradebot.features.cross_section import cross_sectional_features
from tradebot.features.labels import forward_labels, label_threshold_bps
from tradebot.features.sentiment_features import (
    decayed_sentiment,
    extended_sentiment_features,
    sentiment_features,
)
from tradebot.features.technical import technical_features
from tradebot.kernel.errors import ConfigError
from tradebot.kernel.settings import (
    BrokerSettings,
    FeatureSettings,
    IndicatorSpec,
    LabelSettings,
    TradebotSettings,
)
from tradebot.pipelines.train import train_and_register

NEW_INDICATORS = [
    IndicatorSpec(name="vwap_distance"),
    IndicatorSpec(name="overnight_gap"),
    IndicatorSpec(name="daily_return", params={"sessions": 1}),
    IndicatorSpec(name="daily_range", params={"sessions": 2}),
]
SESSION_COLUMNS = ["vwap_distance", "overnight_gap", "daily_return_1", "daily_range_2"]
MON, TUE, WED = "2026-06-01", "2026-06-02", "2026-06-03"  # EDT: 9:45 ET = 13:45 UTC


def decision_bars(rows: list[tuple[str, str, float, float, float, float, float, float]],
                  symbol: str = "AAPL") -> pd.DataFrame:
    """Decision bars from (date, ET close time, open, high, low, close, volume, vwap)."""
    ts = [pd.Timestamp(f"{d} {hm}", tz="America/New_York").tz_convert("UTC")
          for d, hm, *_ in rows]
    values = np.array([r[2:] for r in rows], float)
    frame = pd.DataFrame(values, columns=["open", "high", "low", "close", "volume", "vwap"])
    frame.insert(0, "ts", pd.DatetimeIndex(ts))
    frame.insert(1, "symbol", symbol)
    return frame


def one(specs: list[IndicatorSpec] | IndicatorSpec, bars: pd.DataFrame) -> pd.DataFrame:
    return technical_features(bars, specs if isinstance(specs, list) else [specs])


def random_bars(n_sessions: int = 5, per_session: int = 26, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2026-06-01", periods=n_sessions)
    ts = [d.tz_localize("America/New_York") + pd.Timedelta(minutes=9 * 60 + 45 + 15 * i)
          for d in days for i in range(per_session)]
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.003, len(ts))))
    open_ = np.concatenate([[100.0], close[:-1]]) * (1 + rng.normal(0, 0.001, len(ts)))
    high = np.maximum(open_, close) * 1.001
    low = np.minimum(open_, close) * 0.999
    volume = rng.integers(0, 5, len(ts)) * 1000.0  # some bars trade nothing
    vwap = np.where(volume > 0, (high + low + close) / 3, np.nan)
    return pd.DataFrame({"ts": pd.DatetimeIndex(ts).tz_convert("UTC"), "symbol": "AAPL",
                         "open": open_, "high": high, "low": low, "close": close,
                         "volume": volume, "vwap": vwap})


# --- session features, by hand ------------------------------------------------------------


def test_vwap_distance_accumulates_from_the_session_open_and_resets() -> None:
    bars = decision_bars([
        (MON, "09:45", 100, 101, 99, 100.5, 1, 100),
        (MON, "10:00", 100.5, 102, 100, 101.0, 2, 101),
        (MON, "10:15", 101, 102, 101, 101.5, 1, 102),
        (TUE, "09:45", 110, 112, 109, 111.0, 5, 110),
    ])
    got = one(IndicatorSpec(name="vwap_distance"), bars)["vwap_distance"].to_numpy()
    expected = [100.5 / 100 - 1, 101 / ((100 + 2 * 101) / 3) - 1, 101.5 / (404 / 4) - 1,
                111 / 110 - 1]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_vwap_distance_uses_typical_price_without_vwap_and_zero_before_volume() -> None:
    bars = decision_bars([
        (MON, "09:45", 100, 101, 99, 100.0, 0, np.nan),  # no volume yet: VWAP := close
        (MON, "10:00", 100, 103, 100, 102.0, 10, np.nan),
    ]).drop(columns="vwap")
    got = one(IndicatorSpec(name="vwap_distance"), bars)["vwap_distance"].to_numpy()
    np.testing.assert_allclose(got, [0.0, 102 / ((103 + 100 + 102) / 3) - 1], rtol=1e-12)


def test_overnight_gap_is_the_session_open_over_the_previous_close() -> None:
    bars = decision_bars([
        (MON, "09:45", 100, 101, 99, 100.5, 1, 100),
        (MON, "16:00", 100.5, 102, 100, 101.5, 2, 101),
        (TUE, "09:45", 103, 104, 102, 103.5, 1, 103),
        (TUE, "10:00", 103.5, 104, 90, 95.0, 1, 95),
    ])
    got = one(IndicatorSpec(name="overnight_gap"), bars)["overnight_gap"].to_numpy()
    assert np.isnan(got[:2]).all()  # no previous session in the data
    np.testing.assert_allclose(got[2:], [103 / 101.5 - 1] * 2, rtol=1e-12)


def test_daily_context_uses_only_previous_completed_sessions() -> None:
    bars = decision_bars([
        (MON, "09:45", 100, 101, 99, 100.0, 1, 100),
        (MON, "16:00", 100, 104, 98, 102.0, 1, 101),    # Mon: H 104 L 98 C 102
        (TUE, "09:45", 102, 103, 96, 97.0, 1, 99),
        (TUE, "16:00", 97, 99, 95, 98.0, 1, 97),        # Tue: H 103 L 95 C 98
        (WED, "09:45", 98, 150, 50, 120.0, 1, 100),     # Wed's own bars must not count
        (WED, "10:00", 120, 121, 119, 120.0, 1, 120),
    ])
    specs = [IndicatorSpec(name="daily_return"), IndicatorSpec(name="daily_range"),
             IndicatorSpec(name="daily_range", params={"sessions": 2})]
    out = one(specs, bars)
    ret, rng1, rng2 = out["daily_return_1"], out["daily_range_1"], out["daily_range_2"]
    assert ret.iloc[:4].isna().all() and rng1.iloc[:2].isna().all() and rng2.iloc[:4].isna().all()
    np.testing.assert_allclose(rng1.iloc[2:4], [(104 - 98) / 102] * 2, rtol=1e-12)
    np.testing.assert_allclose(ret.iloc[4:], [98 / 102 - 1] * 2, rtol=1e-12)
    np.testing.assert_allclose(rng1.iloc[4:], [(103 - 95) / 98] * 2, rtol=1e-12)
    np.testing.assert_allclose(rng2.iloc[4:], [((104 - 98) / 102 + (103 - 95) / 98) / 2] * 2,
                               rtol=1e-12)


def test_session_is_the_new_york_date_not_the_utc_date() -> None:
    # 19:45 ET = 23:45 UTC and 20:15 ET = 00:15 UTC next day: same New York session
    bars = decision_bars([(MON, "19:45", 100, 100, 100, 100, 1, 100),
                          (MON, "20:15", 100, 100, 100, 101, 1, 101),
                          (TUE, "09:45", 102, 102, 102, 102, 1, 102)])
    gap = one(IndicatorSpec(name="overnight_gap"), bars)["overnight_gap"].to_numpy()
    assert np.isnan(gap[:2]).all()
    assert gap[2] == pytest.approx(102 / 101 - 1)


# --- cross-section ------------------------------------------------------------------------


def test_rel_return_against_benchmark_at_the_same_ts_and_rank() -> None:
    t1, t2 = pd.Timestamp("2026-06-01 14:00", tz="UTC"), pd.Timestamp("2026-06-01 14:15", tz="UTC")
    frame = pd.DataFrame({
        "symbol": ["AAPL", "MSFT", "QQQ", "AAPL", "MSFT"],
        "ts": [t1, t1, t1, t2, t2],  # no QQQ row at t2
        "return_1": [0.02, -0.01, 0.005, 0.01, 0.03],
        "return_4": [0.05, 0.00, 0.01, 0.02, 0.01],
    })
    out = cross_sectional_features(frame, "QQQ", [4, 1])
    np.testing.assert_allclose(out["rel_return_1"].iloc[:3], [0.015, -0.015, 0.0], atol=1e-15)
    np.testing.assert_allclose(out["rel_return_4"].iloc[:3], [0.04, -0.01, 0.0], atol=1e-15)
    assert out["rel_return_1"].iloc[3:].isna().all()
    np.testing.assert_allclose(out["xs_rank_return_1"], [1.0, 1 / 3, 2 / 3, 0.5, 1.0])
    with pytest.raises(ValueError, match="return_26"):
        cross_sectional_features(frame, "QQQ", [26])


# --- sentiment ----------------------------------------------------------------------------

T = datetime(2026, 6, 2, 15, 0, tzinfo=UTC)


def sentiment_items(rows: list[tuple[str, float, float]]) -> pd.DataFrame:
    """Items from (kind, minutes before T (negative: after T), score)."""
    return pd.DataFrame({
        "kind": [k for k, _, _ in rows], "symbols": "AAPL",
        "ts_known": pd.DatetimeIndex([T - timedelta(minutes=m) for _, m, _ in rows]).as_unit("us"),
        "score": [s for _, _, s in rows],
    })


def test_decayed_sentiment_and_surprise_by_hand() -> None:
    items = sentiment_items([
        ("news", 300, 0.8),   # baseline only for a 240-minute lookback: outside it
        ("news", 120, -0.5),  # baseline (T-240, T-60]
        ("news", 60, 1.0),    # exactly at T-60: baseline, not the current window
        ("news", 30, 0.2),    # current window (T-60, T]
        ("news", 0, 0.4),     # known exactly at T: counts
        ("news", -1, -1.0),   # known after T: never
        ("post", 10, np.nan),  # no score: ignored
    ])
    out = extended_sentiment_features(items, pd.DatetimeIndex([T]).as_unit("ns"), 60, 60, 240)
    row = out.iloc[0]
    weights = {300: 2 ** -5, 120: 0.25, 60: 0.5, 30: 2 ** -0.5, 0: 1.0}
    scores = {300: 0.8, 120: -0.5, 60: 1.0, 30: 0.2, 0: 0.4}
    assert row["news_sent_decay_60m"] == pytest.approx(sum(weights[m] * scores[m] for m in scores))
    assert row["news_count_decay_60m"] == pytest.approx(sum(weights.values()))
    assert row["news_sent_surprise_60m_240m"] == pytest.approx((0.2 + 0.4) / 2 - (-0.5 + 1.0) / 2)
    # no posts with a score: nothing decayed, and no current window -> NaN surprise
    assert row["post_sent_decay_60m"] == 0 and row["post_count_decay_60m"] == 0
    assert np.isnan(row["post_sent_surprise_60m_240m"])


def test_surprise_with_empty_baseline_is_the_window_mean() -> None:
    items = sentiment_items([("post", 5, -0.6)])
    out = extended_sentiment_features(items, pd.DatetimeIndex([T]).as_unit("ns"), 30, 60, 1440)
    assert out["post_sent_surprise_60m_1440m"].iloc[0] == pytest.approx(-0.6)
    assert out["post_sent_decay_30m"].iloc[0] == pytest.approx(-0.6 * 2 ** (-5 / 30))


def test_decayed_sentiment_is_stable_over_long_histories() -> None:
    """Two years of items, a 1-minute half-life: no overflow, equal to the direct sum."""
    rng = np.random.default_rng(3)
    start = pd.Timestamp("2024-06-01", tz="UTC").value
    known = np.sort(start + rng.integers(0, 2 * 365 * 1440, 3000) * 60_000_000_000)
    scores = rng.uniform(-1, 1, len(known))
    t = np.sort(rng.choice(known, 50)) + rng.integers(0, 5, 50) * 60_000_000_000
    total, count = decayed_sentiment(known, scores, t, 1.0)
    for i, ti in enumerate(t):
        age = (ti - known[known <= ti]) / 60_000_000_000
        w = 2.0 ** -age
        assert total[i] == pytest.approx(float(w @ scores[known <= ti]), rel=1e-9, abs=1e-12)
        assert count[i] == pytest.approx(float(w.sum()), rel=1e-9)


def test_window_sentiment_is_bit_identical_whatever_history_precedes() -> None:
    """Live rows see a short history, training rows a long one; a window mean must not carry a
    residue of the earlier items (a tree splitting at 0 would decide differently)."""
    rng = np.random.default_rng(5)
    old = [("news", int(60 * 24 * d + m), float(s)) for d, m, s in
           zip(rng.integers(1, 200, 3000), rng.integers(0, 600, 3000),
               rng.choice([-0.3, 0.1, 0.2, 0.7, -0.45], 3000), strict=True)]
    recent = [("news", 10, 0.1), ("news", 5, 0.2), ("news", 2, -0.3), ("post", 1, 0.0)]
    times = pd.DatetimeIndex([T]).as_unit("ns")
    long_history = sentiment_items(old + recent)
    short_history = sentiment_items(recent)
    for build in (lambda i: sentiment_features(i, times, [15, 60]),
                  lambda i: extended_sentiment_features(i, times, 60, 15, 60)
                  .filter(like="surprise")):
        a, b = build(long_history).iloc[0], build(short_history).iloc[0]
        assert a.index.equals(b.index)
        assert all(x == y or (np.isnan(x) and np.isnan(y)) for x, y in zip(a, b, strict=True))
    row = sentiment_features(long_history, times, [15]).iloc[0]
    assert row["news_sent_15m"] == pytest.approx(0.0, abs=1e-16) and row["post_sent_15m"] == 0.0
    assert row["news_count_15m"] == 3 and row["post_count_15m"] == 1


def test_surprise_baseline_must_exceed_the_window() -> None:
    with pytest.raises(ValueError, match="sentiment_baseline_minutes"):
        FeatureSettings(sentiment_window_minutes=120, sentiment_baseline_minutes=120)


# --- labels -------------------------------------------------------------------------------


def test_threshold_is_the_flat_threshold_or_the_round_trip_cost() -> None:
    assert label_threshold_bps(0.0, False, 1.0, 2.0) == 0.0
    assert label_threshold_bps(0.0, True, 1.0, 2.0) == 6.0  # 2 * (1 + 2)
    assert label_threshold_bps(10.0, True, 1.0, 2.0) == 10.0
    assert label_threshold_bps(4.0, False, 1.0, 2.0) == 4.0


def label_bars(closes: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"ts": pd.date_range(T, periods=len(closes), freq="15min"),
                         "close": closes})


# forward returns at positions 0, 2, 4, 6, 7: +6.1, +5.9, -5.9, -6.1 bps and 0 (the odd
# positions move back to 100); the last bar has no label
CLOSES = [100.0, 100.061, 100.0, 100.059, 100.0, 99.941, 100.0, 99.939, 99.939]


def test_ternary_and_direction_labels_with_a_threshold() -> None:
    ternary = forward_labels(label_bars(CLOSES), 1, "ternary", 6.0)["label"]
    assert list(ternary.iloc[[0, 2, 4, 6, 7]]) == [1.0, 0.0, 0.0, -1.0, 0.0]
    assert np.isnan(ternary.iloc[-1])
    direction = forward_labels(label_bars(CLOSES), 1, "direction", 6.0)["label"]
    assert list(direction.iloc[[0, 2, 4, 6, 7]]) == [1.0, 0.0, 0.0, 0.0, 0.0]
    plain = forward_labels(label_bars(CLOSES), 1)["label"]
    assert list(plain.iloc[[0, 2, 4, 6, 7]]) == [1.0, 1.0, 0.0, 0.0, 0.0]


@pytest.fixture(scope="module")
def market():
    return tiny_market(symbols=("QQQ", "AAPL", "MSFT"), n_sessions=6)


@pytest.fixture(scope="module")
def items(market):
    rng = np.random.default_rng(1)
    news = market.news.assign(kind="news", ts_known=market.news["published_at"])
    posts = market.posts.assign(kind="post", ts_known=market.posts["created_at"])
    frame = pd.concat([news, posts], ignore_index=True)
    frame["score"] = rng.uniform(-1, 1, len(frame))
    return frame[["kind", "symbols", "ts_known", "score"]]


def test_cost_aware_labels_in_the_build_use_the_broker_costs(market, items) -> None:
    label = LabelSettings(cost_aware=True)
    with pytest.raises(ConfigError, match="broker"):
        build_feature_frame(market.bars, items, FeatureSettings(), label, 15)
    broker = BrokerSettings(commission_bps=1.5, slippage_bps=2.5)  # round trip 8 bps
    frame = build_feature_frame(market.bars, items, FeatureSettings(), label, 15, broker=broker)
    labelled = frame.dropna(subset=["label"])
    expected = (labelled["forward_return"] > 8e-4).astype(float)
    pd.testing.assert_series_equal(labelled["label"], expected, check_names=False)
    ternary = build_feature_frame(market.bars, items, FeatureSettings(),
                                  LabelSettings(kind="ternary", flat_threshold_bps=5), 15)
    assert set(ternary["label"].dropna().unique()) == {-1.0, 0.0, 1.0}


def test_training_refuses_ternary_labels() -> None:
    settings = TradebotSettings(label=LabelSettings(kind="ternary"))
    with pytest.raises(ConfigError, match=r"label\.kind='ternary' is computed and stored"):
        train_and_register(None, None, settings, T, T,  # type: ignore[arg-type]
                           feature_version="v1-x")


# --- warm-up ------------------------------------------------------------------------------


def test_warmup_rows_dropped_are_reported(market, items) -> None:
    feats = FeatureSettings(indicators=[IndicatorSpec(name="return", params={"periods": 3})])
    frame = build_feature_frame(market.bars, items, feats, LabelSettings(), 15)
    assert frame.attrs["warmup_rows_dropped"] == {"AAPL": 3, "MSFT": 3, "QQQ": 3}
    gap = FeatureSettings(indicators=[IndicatorSpec(name="overnight_gap")])
    frame = build_feature_frame(market.bars, items, gap, LabelSettings(), 15)
    assert frame.attrs["warmup_rows_dropped"] == {"AAPL": 26, "MSFT": 26, "QQQ": 26}  # 1 session
    assert build_feature_frame(market.bars, items, FeatureSettings(), LabelSettings(), 15) \
        .attrs["warmup_rows_dropped"] == {"AAPL": 33, "MSFT": 33, "QQQ": 33}  # MACD 26+9-2


def test_defaults_add_no_new_columns(market, items) -> None:
    cols = feature_columns(build_feature_frame(market.bars, items, FeatureSettings(),
                                               LabelSettings(), 15))
    new = ("vwap", "gap", "daily", "rel_", "xs_", "decay", "surprise")
    assert not [c for c in cols if any(k in c for k in new)]


# --- no lookahead: prefix invariance ------------------------------------------------------

EXTENDED = FeatureSettings(
    indicators=[*FeatureSettings().indicators, *NEW_INDICATORS],
    sentiment_extended=True, sentiment_half_life_minutes=45, sentiment_baseline_minutes=600,
    cross_sectional=True,
)
NEW_COLUMN_MARKS = ("vwap_distance", "overnight_gap", "daily_", "rel_return_", "xs_rank_",
                    "_decay_", "_surprise_")


@pytest.fixture(scope="module")
def full(market, items) -> pd.DataFrame:
    return build_feature_frame(market.bars, items, EXTENDED, LabelSettings(), 15)


def test_every_new_feature_is_present(full) -> None:
    cols = feature_columns(full)
    for mark in NEW_COLUMN_MARKS:
        assert [c for c in cols if mark in c], mark
    assert {"rel_return_1", "rel_return_4", "rel_return_26", "xs_rank_return_1"} <= set(cols)
    assert full.loc[full["symbol"] == "QQQ", "rel_return_4"].eq(0).all()


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fraction=st.floats(0.0, 0.999))
def test_prefix_invariance_of_every_new_feature(market, items, full, fraction) -> None:
    """A row computed from data truncated at t (exactly what live serving sees) equals the
    row computed from the full history. A feature peeking past t fails this."""
    times = sorted(full["ts"].unique())
    ts = pd.Timestamp(times[int(fraction * len(times))])
    live = features_at(market.bars, items, ts.to_pydatetime(), EXTENDED, LabelSettings(), 15)
    cols = [c for c in feature_columns(full) if any(m in c for m in NEW_COLUMN_MARKS)]
    expected = full[full["ts"] == ts].set_index("symbol")[cols].sort_index()
    got = live.set_index("symbol")[cols].sort_index()
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-12, atol=1e-15)


def test_session_features_on_every_prefix_equal_the_full_history() -> None:
    bars = random_bars()
    full_out = technical_features(bars, NEW_INDICATORS)
    for k in range(len(bars)):
        prefix = technical_features(bars.iloc[: k + 1], NEW_INDICATORS).iloc[-1]
        pd.testing.assert_series_equal(prefix, full_out.iloc[k], check_names=False)
    assert full_out[SESSION_COLUMNS].iloc[-1].notna().all()


def test_sentiment_features_on_every_prefix_equal_the_full_history(items) -> None:
    aapl = items[items["symbols"].str.contains("AAPL")]
    times = pd.DatetimeIndex(sorted(aapl["ts_known"].sample(40, random_state=0))).as_unit("ns")
    full_out = extended_sentiment_features(aapl, times, 60, 60, 1440)
    for k, t in enumerate(times):
        known = aapl[aapl["ts_known"] <= t]
        prefix = extended_sentiment_features(known, times[k: k + 1], 60, 60, 1440).iloc[0]
        pd.testing.assert_series_equal(prefix, full_out.iloc[k], check_names=False)


def test_future_data_cannot_change_new_features(market, items, full) -> None:
    cut = pd.Timestamp(sorted(full["ts"].unique())[len(full["ts"].unique()) // 2])
    bars = market.bars.copy()
    later = bars["ts_event"] >= cut
    bars.loc[later, ["open", "high", "low", "close"]] *= 1.5
    bars.loc[later, "volume"] *= 3
    flipped = items.copy()
    flipped.loc[flipped["ts_known"] > cut, "score"] *= -1
    changed = build_feature_frame(bars, flipped, EXTENDED, LabelSettings(), 15)
    cols = feature_columns(full)
    before = full[full["ts"] <= cut].set_index(["symbol", "ts"])[cols]
    after = changed[changed["ts"] <= cut].set_index(["symbol", "ts"])[cols]
    pd.testing.assert_frame_equal(before, after)
