"""Pick the tradable universe from Alpaca's asset list and latest prices (pure, no I/O).

Every asset keeps a row: ``excluded_reason`` is ``None`` for the chosen symbols and says why
for the others, so the choice can be stored and explained. The first failing rule wins, in the
order: status, tradable, exchange, name pattern, missing price, price range, ``max_symbols``.
"""

from __future__ import annotations

import re

import pandas as pd

from tradebot.kernel.settings import UniverseSettings

BEYOND_MAX = "beyond max_symbols"


def pattern_label(pattern: str) -> str:
    """A readable word for a name regex: ``\\bwarrants?\\b`` -> ``warrant``."""
    label = re.sub(r"\\[A-Za-z]|.\?|[^A-Za-z0-9 ]", "", pattern).strip()
    return label or pattern


def filter_universe(
    assets: pd.DataFrame, prices: dict[str, float], cfg: UniverseSettings
) -> pd.DataFrame:
    """``assets`` sorted by symbol plus ``price`` and ``excluded_reason`` (None = included).

    ``assets`` has the columns symbol, name, exchange, status and tradable (as returned by
    :meth:`~tradebot.sources.alpaca.AlpacaAssets.fetch_assets`)."""
    frame = assets.sort_values("symbol", kind="stable").reset_index(drop=True)
    frame["price"] = pd.to_numeric(frame["symbol"].map(prices), errors="coerce").astype(float)
    reason = pd.Series([None] * len(frame), index=frame.index, dtype=object)

    def exclude(mask: pd.Series, why: pd.Series | str) -> None:
        fill = mask.fillna(False).astype(bool) & reason.isna()
        reason[fill] = why if isinstance(why, str) else why[fill]

    status = frame["status"].astype(str)
    exchange = frame["exchange"].astype(str)
    names = frame["name"].astype(object).where(frame["name"].notna(), "").astype(str)
    price = frame["price"]
    exclude(status != "active", "status is " + status)
    exclude(~frame["tradable"].fillna(False).astype(bool), "not tradable")
    exclude(~exchange.isin(cfg.exchanges), "exchange " + exchange + " not in universe.exchanges")
    for pattern in cfg.exclude_name_patterns:
        matches = names.str.contains(pattern, flags=re.IGNORECASE, regex=True)
        exclude(matches, f"name matches {pattern_label(pattern)} pattern")
    exclude(price.isna(), "no latest trade price")
    exclude(price < cfg.min_price,
            price.map(lambda p: f"price {p:.2f} below min_price {cfg.min_price:g}"))
    exclude(price > cfg.max_price,
            price.map(lambda p: f"price {p:.2f} above max_price {cfg.max_price:g}"))
    kept = reason.isna().cumsum()
    exclude(reason.isna() & (kept > cfg.max_symbols), BEYOND_MAX)
    frame["excluded_reason"] = reason
    return frame


def included(frame: pd.DataFrame) -> list[str]:
    """The chosen symbols of a :func:`filter_universe` result, in its order."""
    return frame.loc[frame["excluded_reason"].isna(), "symbol"].tolist()
