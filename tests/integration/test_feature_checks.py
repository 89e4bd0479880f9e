"""The lookahead and parity checks pass on point-in-time features and catch a planted leak."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from tradebot.features import technical
from tradebot.features.feature_store import FeatureStore, feature_set_version
from tradebot.features.sentiment import LexiconScorer
from tradebot.kernel.clock import MarketClock
from tradebot.kernel.db import Database
from tradebot.kernel.settings import load_settings
from tradebot.pipelines.checks import check_lookahead, check_parity
from tradebot.pipelines.ingest import ingest_synthetic

SYMBOLS = ["QQQ", "AAPL"]


SESSIONS = 36  # more than the default 25 warm-up sessions, so live rows use less history


@pytest.fixture
def stocked(database_url, tmp_path):
    settings = load_settings(None, home=tmp_path, symbols=SYMBOLS)
    clock = MarketClock()
    db = Database(database_url)
    sessions = clock.sessions(settings.data.start, SESSIONS)
    ingest_synthetic(db, settings, clock, sessions, SYMBOLS, datetime(2026, 11, 21, tzinfo=UTC))
    yield db, FeatureStore(settings, clock, LexiconScorer.name)
    db.dispose()


def test_point_in_time_features_pass_both_checks(stocked) -> None:
    db, store = stocked
    lookahead = check_lookahead(db, store, SYMBOLS, samples=6, seed=1)
    assert lookahead.passed, lookahead.mismatches
    assert lookahead.rows_compared == 6 * len(SYMBOLS)
    parity = check_parity(db, store, SYMBOLS, samples=6, seed=2)
    assert parity.passed, (parity.mismatches, parity.max_difference)
    assert parity.rows_compared == 6 * len(SYMBOLS)


def test_parity_catches_a_warm_up_too_short_for_recursive_indicators(stocked) -> None:
    db, store = stocked
    short = FeatureStore(store.settings.model_copy(update={
        "features": store.settings.features.model_copy(update={"warmup_sessions": 4})}),
        store.clock, store.scorer)
    report = check_parity(db, short, SYMBOLS, samples=6, seed=2)
    assert not report.passed
    assert "adx_14" in report.mismatches  # Wilder smoothing has not forgotten its start
    assert "return_1" not in report.mismatches  # finite-window features are unaffected


def test_a_leaky_feature_is_caught_and_named(stocked, monkeypatch) -> None:
    db, store = stocked

    def leaky_return(bars: pd.DataFrame, params: dict[str, float]) -> dict[str, np.ndarray]:
        close = bars["close"].to_numpy(float)
        nxt = np.concatenate([close[1:], [np.nan]])  # the NEXT bar's close: a lookahead
        return {f"return_{int(params.get('periods', 1))}": nxt / close - 1}

    monkeypatch.setitem(technical.INDICATORS, "return", leaky_return)
    report = check_lookahead(db, store, SYMBOLS, samples=6, seed=1)
    assert not report.passed
    assert {"return_1", "return_4", "return_26"} <= set(report.mismatches)
    assert "rsi_14" not in report.mismatches  # the honest features are not blamed


def test_feature_set_version_changes_with_any_definition(tmp_path) -> None:
    base = load_settings(None, home=tmp_path)
    other = load_settings(None, home=tmp_path, label={"horizon_bars": 2})
    lexicon = LexiconScorer.name
    version = feature_set_version(base, lexicon)
    assert version == feature_set_version(load_settings(None, home=tmp_path), lexicon)
    assert version != feature_set_version(other, lexicon)
    assert version != feature_set_version(base, "finbert:ProsusAI/finbert")  # other scores
    assert version.startswith("v1-") and len(version) <= 32


def test_stored_feature_rows_are_the_training_frame_exactly_and_written_once(stocked) -> None:
    """On SQLite and PostgreSQL: rows stored under the feature-set version read back bit for
    bit equal to ``training_frame``, labels included, and a rebuild adds no row."""
    from sqlalchemy import func, select

    from tradebot.features.store import load_feature_frame
    from tradebot.kernel.schema import FeatureRow
    from tradebot.pipelines.checks import CheckReport, compare_rows
    from tradebot.pipelines.dataset import build_features

    db, store = stocked
    now = datetime(2026, 11, 21, tzinfo=UTC)
    summary = build_features(db, store, SYMBOLS, now)
    assert summary.feature_set_version == store.version
    assert summary.warmup_rows_dropped > 0  # the first bars of each symbol are warm-up
    build_features(db, store, SYMBOLS, now)
    with db.session() as session:
        stored_count = session.scalar(select(func.count()).select_from(FeatureRow))
        versions = set(session.scalars(select(FeatureRow.feature_set_version)).all())
        stored = load_feature_frame(session, store.version)
        start, end = stored["ts"].iloc[len(stored) // 2], stored["ts"].max()
        training = store.training_frame(session, SYMBOLS, start, end)
    assert stored_count == summary.rows and versions == {store.version}
    stored = stored[(stored["ts"] >= start) & (stored["ts"] < end)]
    report = CheckReport("stored", [])
    compare_rows(report, training, stored, tolerance=0.0)
    assert report.rows_compared == len(training) == len(stored) > 0
    assert not report.mismatches, report.max_difference
    merged = training.merge(stored, on=["symbol", "ts"], suffixes=("", "_stored"))
    np.testing.assert_array_equal(merged["label"].to_numpy(float),
                                  merged["label_stored"].to_numpy(float))
    np.testing.assert_array_equal(merged["forward_return"].to_numpy(float),
                                  merged["forward_return_stored"].to_numpy(float))
