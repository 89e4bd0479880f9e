"""Session-based technical features: distance to the session VWAP, overnight gap, daily context.

A decision bar belongs to the session of its New York local date (bars' ``ts`` are UTC bar
close times; a bar closing exactly at midnight belongs to the day it covered). Every value at
decision time ``t`` uses only decision bars closed by ``t``: the current session's bars up to
``t`` and sessions with an earlier local date, which are complete by then.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ET = "America/New_York"


def _p(params: dict[str, float], key: str, default: int) -> int:
    return int(params.get(key, default))


def session_codes(ts: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """0, 1, 2, ... per New York local date, in time order (``ts`` sorted ascending)."""
    local = (pd.DatetimeIndex(ts) - pd.Timedelta(1, "us")).tz_convert(ET)
    days = local.tz_localize(None).floor("D")
    codes, _ = pd.factorize(days, sort=True)
    return codes


def _session_bounds(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the first and of the last bar of each session code."""
    n_sessions = int(codes.max()) + 1 if len(codes) else 0
    positions = np.arange(len(codes))
    first = np.full(n_sessions, len(codes))
    last = np.full(n_sessions, -1)
    np.minimum.at(first, codes, positions)
    np.maximum.at(last, codes, positions)
    return first, last


def _previous(per_session: np.ndarray, codes: np.ndarray, lag: int) -> np.ndarray:
    """``per_session[code - lag]`` for each bar; NaN where that session is not in the data."""
    src = codes - lag
    out = np.full(len(codes), np.nan)
    ok = src >= 0
    out[ok] = per_session[src[ok]]
    return out


def _vwap_distance(b: pd.DataFrame, p: dict[str, float]) -> dict[str, np.ndarray]:
    """close / session VWAP - 1, the VWAP accumulated from the session's first bar to ``t``.

    Bar prices are the bars' own ``vwap`` (from the minute bars) or, without it, the typical
    price (high + low + close) / 3. Before any volume trades in the session the distance is 0.
    """
    h, low, c, v = (b[k].to_numpy(float) for k in ("high", "low", "close", "volume"))
    price = (h + low + c) / 3.0
    if "vwap" in b.columns:
        bar_vwap = b["vwap"].to_numpy(float)
        price = np.where(np.isnan(bar_vwap), price, bar_vwap)
    v = np.nan_to_num(v, nan=0.0)
    codes = session_codes(b["ts"])
    cum_notional = pd.Series(price * v).groupby(codes).cumsum().to_numpy()
    cum_volume = pd.Series(v).groupby(codes).cumsum().to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        session_vwap = np.where(cum_volume > 0, cum_notional / cum_volume, c)
        return {"vwap_distance": c / session_vwap - 1.0}


def _overnight_gap(b: pd.DataFrame, p: dict[str, float]) -> dict[str, np.ndarray]:
    """Session open / previous session's close - 1, constant within a session (NaN in the
    first session of the data)."""
    codes = session_codes(b["ts"])
    if not len(codes):
        return {"overnight_gap": np.array([], dtype=float)}
    first, last = _session_bounds(codes)
    session_open = b["open"].to_numpy(float)[first][codes]
    prev_close = _previous(b["close"].to_numpy(float)[last], codes, 1)
    return {"overnight_gap": session_open / prev_close - 1.0}


def _daily_return(b: pd.DataFrame, p: dict[str, float]) -> dict[str, np.ndarray]:
    """Close-to-close return over the ``sessions`` completed sessions before the current one:
    close[d-1] / close[d-1-n] - 1."""
    n = _p(p, "sessions", 1)
    codes = session_codes(b["ts"])
    name = f"daily_return_{n}"
    if not len(codes):
        return {name: np.array([], dtype=float)}
    _, last = _session_bounds(codes)
    closes = b["close"].to_numpy(float)[last]
    return {name: _previous(closes, codes, 1) / _previous(closes, codes, 1 + n) - 1.0}


def _daily_range(b: pd.DataFrame, p: dict[str, float]) -> dict[str, np.ndarray]:
    """Mean (high - low) / close of the ``sessions`` completed sessions before the current one."""
    n = _p(p, "sessions", 1)
    codes = session_codes(b["ts"])
    name = f"daily_range_{n}"
    if not len(codes):
        return {name: np.array([], dtype=float)}
    _, last = _session_bounds(codes)
    high = pd.Series(b["high"].to_numpy(float)).groupby(codes).max().to_numpy()
    low = pd.Series(b["low"].to_numpy(float)).groupby(codes).min().to_numpy()
    ranges = (high - low) / b["close"].to_numpy(float)[last]
    total = sum(_previous(ranges, codes, lag) for lag in range(1, n + 1))
    return {name: np.asarray(total, float) / n}


SESSION_INDICATORS = {
    "vwap_distance": _vwap_distance,
    "overnight_gap": _overnight_gap,
    "daily_return": _daily_return,
    "daily_range": _daily_range,
}
