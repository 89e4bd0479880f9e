"""Technical indicators through TA-Lib, declared in the config by name and parameters.

Every indicator is causal: the value at decision time ``t`` uses decision bars closed by ``t``.
Session-based features (VWAP distance, overnight gap, daily context) live in
:mod:`tradebot.features.technical_session`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import talib

from tradebot.features.technical_session import SESSION_INDICATORS
from tradebot.kernel.settings import IndicatorSpec

Indicator = Callable[[pd.DataFrame, dict[str, float]], dict[str, np.ndarray]]
ET = "America/New_York"


def _p(params: dict[str, float], key: str, default: int) -> int:
    return int(params.get(key, default))


def _returns(b: pd.DataFrame, p: dict[str, float]) -> dict[str, np.ndarray]:
    n = _p(p, "periods", 1)
    return {f"return_{n}": talib.ROCP(b["close"].to_numpy(float), timeperiod=n)}


def _rsi(b: pd.DataFrame, p: dict[str, float]) -> dict[str, np.ndarray]:
    n = _p(p, "timeperiod", 14)
    return {f"rsi_{n}": talib.RSI(b["close"].to_numpy(float), timeperiod=n) / 100.0}


def _macd(b: pd.DataFrame, p: dict[str, float]) -> dict[str, np.ndarray]:
    f, s, g = _p(p, "fastperiod", 12), _p(p, "slowperiod", 26), _p(p, "signalperiod", 9)
    close = b["close"].to_numpy(float)
    line, signal, hist = talib.MACD(close, fastperiod=f, slowperiod=s, signalperiod=g)
    tag = f"{f}_{s}_{g}"
    return {f"macd_{tag}": line / close, f"macd_signal_{tag}": signal / close,
            f"macd_hist_{tag}": hist / close}


def _bbands(b: pd.DataFrame, p: dict[str, float]) -> dict[str, np.ndarray]:
    n, dev = _p(p, "timeperiod", 20), float(p.get("nbdev", 2))
    close = b["close"].to_numpy(float)
    upper, middle, lower = talib.BBANDS(close, timeperiod=n, nbdevup=dev, nbdevdn=dev)
    width = upper - lower
    with np.errstate(invalid="ignore", divide="ignore"):
        pctb = np.where(width > 0, (close - lower) / width, 0.5)
    pctb = np.where(np.isnan(width), np.nan, pctb)
    return {f"bb_pctb_{n}": pctb, f"bb_width_{n}": width / middle}


def _atr(b: pd.DataFrame, p: dict[str, float]) -> dict[str, np.ndarray]:
    n = _p(p, "timeperiod", 14)
    h, low, c = (b[k].to_numpy(float) for k in ("high", "low", "close"))
    return {f"atr_{n}": talib.ATR(h, low, c, timeperiod=n) / c}


def _adx(b: pd.DataFrame, p: dict[str, float]) -> dict[str, np.ndarray]:
    n = _p(p, "timeperiod", 14)
    h, low, c = (b[k].to_numpy(float) for k in ("high", "low", "close"))
    return {f"adx_{n}": talib.ADX(h, low, c, timeperiod=n) / 100.0}


def _stoch(b: pd.DataFrame, p: dict[str, float]) -> dict[str, np.ndarray]:
    k = _p(p, "fastk_period", 14)
    h, low, c = (b[x].to_numpy(float) for x in ("high", "low", "close"))
    slowk, slowd = talib.STOCH(h, low, c, fastk_period=k)
    return {f"stoch_k_{k}": slowk / 100.0, f"stoch_d_{k}": slowd / 100.0}


def _obv(b: pd.DataFrame, p: dict[str, float]) -> dict[str, np.ndarray]:
    n = _p(p, "timeperiod", 26)
    vol = b["volume"].to_numpy(float)
    obv = talib.OBV(b["close"].to_numpy(float), vol)
    flow = talib.SUM(vol, timeperiod=n)
    delta = obv - np.concatenate([np.full(n, np.nan), obv[:-n]]) if len(obv) > n else obv * np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        return {f"obv_slope_{n}": delta / flow}


def _mfi(b: pd.DataFrame, p: dict[str, float]) -> dict[str, np.ndarray]:
    n = _p(p, "timeperiod", 14)
    h, low, c, v = (b[k].to_numpy(float) for k in ("high", "low", "close", "volume"))
    return {f"mfi_{n}": talib.MFI(h, low, c, v, timeperiod=n) / 100.0}


def _volume_z(b: pd.DataFrame, p: dict[str, float]) -> dict[str, np.ndarray]:
    n = _p(p, "timeperiod", 26)
    vol = b["volume"].to_numpy(float)
    mean, std = talib.SMA(vol, timeperiod=n), talib.STDDEV(vol, timeperiod=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {f"volume_z_{n}": np.where(std > 0, (vol - mean) / std, 0.0)}


def _realized_vol(b: pd.DataFrame, p: dict[str, float]) -> dict[str, np.ndarray]:
    n = _p(p, "timeperiod", 26)
    logret = np.diff(np.log(b["close"].to_numpy(float)), prepend=np.nan)
    return {f"realized_vol_{n}": talib.STDDEV(logret, timeperiod=n)}


def _time_of_day(b: pd.DataFrame, p: dict[str, float]) -> dict[str, np.ndarray]:
    local = pd.DatetimeIndex(b["ts"]).tz_convert(ET)
    minutes = (local.hour * 60 + local.minute - 570).to_numpy(float)
    return {"time_of_day": minutes / 390.0}


def _day_of_week(b: pd.DataFrame, p: dict[str, float]) -> dict[str, np.ndarray]:
    return {"day_of_week": pd.DatetimeIndex(b["ts"]).tz_convert(ET).day_of_week.to_numpy(float)}


INDICATORS: dict[str, Indicator] = {
    "return": _returns, "rsi": _rsi, "macd": _macd, "bbands": _bbands, "atr": _atr,
    "adx": _adx, "stoch": _stoch, "obv": _obv, "mfi": _mfi, "volume_z": _volume_z,
    "realized_vol": _realized_vol, "time_of_day": _time_of_day, "day_of_week": _day_of_week,
    **SESSION_INDICATORS,
}


def technical_features(bars: pd.DataFrame, specs: Sequence[IndicatorSpec]) -> pd.DataFrame:
    """Indicators for ONE symbol's decision bars (sorted by ``ts``), indexed by ``ts``."""
    if bars["symbol"].nunique() > 1:
        raise ValueError("technical_features takes one symbol at a time")
    columns: dict[str, np.ndarray] = {}
    for spec in specs:
        columns.update(INDICATORS[spec.name](bars, dict(spec.params)))
    return pd.DataFrame(columns, index=pd.DatetimeIndex(bars["ts"], name="ts"))
