"""The leak detector: XGBoost finds the planted sentiment signal, and finds nothing in noise."""

from __future__ import annotations

import pandas as pd
import pytest

from tradebot.features.build import build_feature_frame, feature_columns
from tradebot.features.sentiment import LexiconScorer
from tradebot.kernel.clock import MarketClock
from tradebot.kernel.settings import FeatureSettings, LabelSettings, SyntheticSettings
from tradebot.models.evaluation import classification_metrics
from tradebot.models.validation import holdout_split
from tradebot.models.xgb import XGBDirectionModel
from tradebot.sources.synthetic import generate_market

SYMBOLS = ("QQQ", "AAPL", "MSFT", "NVDA")


def _test_auc(signal: float) -> float:
    clock = MarketClock()
    sessions = clock.sessions(pd.Timestamp("2026-06-01").date(), 30)
    market = generate_market(SYMBOLS, sessions, clock, SyntheticSettings(signal_strength=signal))
    scorer = LexiconScorer()
    news = market.news.assign(kind="news", ts_known=market.news["published_at"],
                              text=market.news["title"] + " " + market.news["description"])
    posts = market.posts.assign(kind="post", ts_known=market.posts["created_at"],
                                text=market.posts["title"] + " " + market.posts["body"])
    items = pd.concat([news, posts], ignore_index=True)
    items["score"] = [s.score for s in scorer.score(items["text"].tolist())]
    frame = build_feature_frame(market.bars, items[["kind", "symbols", "ts_known", "score"]],
                                FeatureSettings(), LabelSettings(), 15).dropna(subset=["label"])
    split = holdout_split(frame["ts"].reset_index(drop=True), 0.3, 2)
    frame = frame.reset_index(drop=True)
    train, test = frame.iloc[split.train], frame.iloc[split.valid]
    cols = feature_columns(frame)
    model = XGBDirectionModel({"max_depth": 2, "eta": 0.05, "nthread": 1}, 150, seed=1,
                             features=cols)
    model.fit(train[cols], train["label"])
    return classification_metrics(test["label"].to_numpy(), model.predict_proba(test[cols]))["auc"]


@pytest.mark.slow
def test_model_finds_planted_signal_and_not_noise() -> None:
    with_signal = _test_auc(0.8)
    noise = _test_auc(0.0)
    assert with_signal > 0.55, f"planted signal not found out of sample (AUC {with_signal:.3f})"
    assert abs(noise - 0.5) < 0.04, f"model 'found' signal in pure noise (AUC {noise:.3f})"
