"""Feature engineering: tradebot vs plain pandas + TA-Lib, on the same synthetic bars.

Four timings, all on one synthetic market generated once per run:

(a) ours, indicators:  ``technical_features`` per symbol with the default indicator specs.
(b) peer, indicators:  the same columns from raw TA-Lib calls on numpy arrays, written by hand
                       (ROCP x3, RSI, MACD, BBANDS, ATR, ADX, OBV + SUM, SMA/STDDEV for the
                       volume z-score, STDDEV of log returns, calendar columns).
(c) ours, full frame:  ``build_feature_frame`` from 1-minute bars: resampling, indicators,
                       sentiment windows (empty items frame), labels, warm-up drop, concat.
(d) peer, full frame:  per symbol: pandas resample (only the columns the features use), the
                       (b) calls, the same trailing sentiment windows with searchsorted,
                       forward-return labels, warm-up drop; one concat.

(a) and (b) get the same per-symbol 15-minute bars (resampled once, outside the timings).
Each pair is checked column by column with ``np.allclose(equal_nan=True)`` and reported OK or
MISMATCH (exit status 1), so the ratio compares the same work. Timings are the best of
``--repeat`` runs with ``time.perf_counter``, ours and peer alternating; the ratio is
ours / peer (above 1 means ours is slower).

    .venv/bin/python bench/features_vs_talib.py                          # 6 symbols x 60
    .venv/bin/python bench/features_vs_talib.py --symbols 20 --sessions 250
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from datetime import date

import numpy as np
import pandas as pd
import talib

from tradebot.features.bars import resample_bars
from tradebot.features.build import build_feature_frame
from tradebot.features.sentiment_features import ITEM_COLUMNS
from tradebot.features.technical import technical_features
from tradebot.kernel.clock import MarketClock
from tradebot.kernel.settings import (
    DEFAULT_SYMBOLS,
    DataSettings,
    FeatureSettings,
    LabelSettings,
    SyntheticSettings,
)
from tradebot.sources.synthetic import COMPANY_NAMES, generate_market

BAR_MINUTES = 15
ET = "America/New_York"
NS_PER_MIN = 60_000_000_000


def symbol_names(count: int) -> list[str]:
    """The six default symbols, then GOOGL and TSLA, then SYM08, SYM09, ..."""
    names = list(DEFAULT_SYMBOLS) + [s for s in COMPANY_NAMES if s not in DEFAULT_SYMBOLS]
    names += [f"SYM{i:02d}" for i in range(len(names), count)]
    return names[:count]


def best_of(
    repeat: int, ours: Callable[[], object], peer: Callable[[], object]
) -> tuple[float, float, object, object]:
    """Best wall time of ``repeat`` calls of each and their last results.

    The two alternate (ours, peer, ours, peer, ...) so a burst of load from other processes on
    the machine hits both sides rather than one.
    """
    best = [float("inf"), float("inf")]
    results: list[object] = [None, None]
    for _ in range(repeat):
        for i, fn in enumerate((ours, peer)):
            t0 = time.perf_counter()
            results[i] = fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best[0], best[1], results[0], results[1]


# --- the peer: what a user would write by hand with numpy + TA-Lib -----------------------------


def talib_features(
    ts: pd.DatetimeIndex, h: np.ndarray, low: np.ndarray, c: np.ndarray, v: np.ndarray
) -> dict[str, np.ndarray]:
    """The default feature set from raw TA-Lib calls (same formulas as tradebot's specs)."""
    out = {
        "return_1": talib.ROCP(c, timeperiod=1),
        "return_4": talib.ROCP(c, timeperiod=4),
        "return_26": talib.ROCP(c, timeperiod=26),
        "rsi_14": talib.RSI(c, timeperiod=14) / 100.0,
    }
    macd, signal, hist = talib.MACD(c, fastperiod=12, slowperiod=26, signalperiod=9)
    out["macd_12_26_9"] = macd / c
    out["macd_signal_12_26_9"] = signal / c
    out["macd_hist_12_26_9"] = hist / c
    upper, middle, lower = talib.BBANDS(c, timeperiod=20, nbdevup=2, nbdevdn=2)
    width = upper - lower
    with np.errstate(invalid="ignore", divide="ignore"):
        pctb = np.where(width > 0, (c - lower) / width, 0.5)
        out["bb_pctb_20"] = np.where(np.isnan(width), np.nan, pctb)
        out["bb_width_20"] = width / middle
        out["atr_14"] = talib.ATR(h, low, c, timeperiod=14) / c
        out["adx_14"] = talib.ADX(h, low, c, timeperiod=14) / 100.0
        obv = talib.OBV(c, v)
        lagged = np.full_like(obv, np.nan)
        lagged[26:] = obv[:-26]
        out["obv_slope_26"] = (obv - lagged) / talib.SUM(v, timeperiod=26)
        mean, std = talib.SMA(v, timeperiod=26), talib.STDDEV(v, timeperiod=26)
        out["volume_z_26"] = np.where(std > 0, (v - mean) / std, 0.0)
    logret = np.empty_like(c)
    logret[0] = np.nan
    logret[1:] = np.diff(np.log(c))
    out["realized_vol_26"] = talib.STDDEV(logret, timeperiod=26)
    local = ts.tz_convert(ET)
    out["time_of_day"] = (local.hour * 60 + local.minute - 570).to_numpy(float) / 390.0
    out["day_of_week"] = local.day_of_week.to_numpy(float)
    return out


def peer_indicators(per_symbol: dict[str, pd.DataFrame]) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for symbol, b in per_symbol.items():
        out[symbol] = talib_features(
            pd.DatetimeIndex(b["ts"]),
            *(b[k].to_numpy(float) for k in ("high", "low", "close", "volume")),
        )
    return out


def peer_frame(
    minute_bars: pd.DataFrame, items: pd.DataFrame, window_minutes: int, horizon: int
) -> pd.DataFrame:
    """pandas resample + raw TA-Lib + searchsorted sentiment windows + forward returns."""
    windows = sorted({BAR_MINUTES, window_minutes})
    frames = []
    for symbol, minutes in minute_bars.set_index("ts_event").groupby("symbol", sort=True):
        r = minutes.resample(f"{BAR_MINUTES}min", label="right", closed="left")
        close = r["close"].last()
        traded = close.notna().to_numpy()  # drop nights, weekends and holidays
        ts, c = close.index[traded], close.to_numpy(float)[traded]
        h, low, v = (
            r[k].agg(how).to_numpy(float)[traded]
            for k, how in (("high", "max"), ("low", "min"), ("volume", "sum"))
        )
        cols = talib_features(ts, h, low, c, v)
        keep = ~np.isnan(np.column_stack(list(cols.values()))).any(axis=1)
        t = ts.as_unit("ns").asi8
        names = items["symbols"].str.split(",")
        mine = items[names.map(lambda s, sym=symbol: sym in s).to_numpy(bool)]
        for kind in ("news", "post"):
            sub = mine[mine["kind"] == kind].sort_values("ts_known")
            known = pd.DatetimeIndex(sub["ts_known"]).as_unit("ns").asi8
            cum = np.concatenate([[0.0], np.cumsum(sub["score"].to_numpy(float))])
            hi = np.searchsorted(known, t, side="right")
            for w in windows:
                lo = np.searchsorted(known, t - w * NS_PER_MIN, side="right")
                n = (hi - lo).astype(float)
                with np.errstate(invalid="ignore", divide="ignore"):
                    cols[f"{kind}_sent_{w}m"] = np.where(n > 0, (cum[hi] - cum[lo]) / n, np.nan)
                cols[f"{kind}_count_{w}m"] = n
        fwd = np.full_like(c, np.nan)
        fwd[:-horizon] = c[horizon:] / c[:-horizon] - 1.0
        cols["forward_return"] = fwd
        cols["label"] = np.where(np.isnan(fwd), np.nan, (fwd > 0).astype(float))
        frame = pd.DataFrame({k: a[keep] for k, a in cols.items()})
        frame.insert(0, "ts", ts[keep])
        frame.insert(0, "symbol", symbol)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


# --- checks --------------------------------------------------------------------------------------


def same_columns(ours: pd.DataFrame, peer: dict[str, np.ndarray]) -> tuple[int, list[str]]:
    """Columns compared and the ones that differ (missing on either side counts as differing)."""
    bad = sorted(set(ours.columns) ^ set(peer))
    shared = [k for k in ours.columns if k in peer]
    for k in shared:
        a, b = ours[k].to_numpy(float), np.asarray(peer[k], float)
        if a.shape != b.shape or not np.allclose(a, b, equal_nan=True):
            bad.append(k)
    return len(shared), bad


def check_indicators(
    ours: dict[str, pd.DataFrame], peer: dict[str, dict[str, np.ndarray]]
) -> tuple[int, list[str]]:
    compared, bad = 0, []
    for symbol, frame in ours.items():
        n, diff = same_columns(frame, peer[symbol])
        compared += n
        bad += [f"{symbol}.{k}" for k in diff]
    return compared, bad


def check_frames(ours: pd.DataFrame, peer: pd.DataFrame) -> tuple[int, list[str]]:
    if len(ours) != len(peer):
        return 0, [f"rows {len(ours)} != {len(peer)}"]
    bad = []
    if not (ours["symbol"].to_numpy() == peer["symbol"].to_numpy()).all():
        bad.append("symbol")
    if not (pd.DatetimeIndex(ours["ts"]) == pd.DatetimeIndex(peer["ts"])).all():
        bad.append("ts")
    n, diff = same_columns(
        ours.drop(columns=["symbol", "ts"]),
        {k: peer[k].to_numpy(float) for k in peer.columns if k not in ("symbol", "ts")},
    )
    return n + 2, bad + diff


# --- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time tradebot feature building against plain pandas + TA-Lib on the same "
        "synthetic bars and print ours/peer. Default 6 symbols x 60 sessions; the larger "
        "documented size is --symbols 20 --sessions 250.",
    )
    parser.add_argument("--symbols", type=int, default=6, help="number of symbols (default 6)")
    parser.add_argument("--sessions", type=int, default=60, help="NYSE sessions (default 60)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per timing, best kept (5)")
    parser.add_argument("--seed", type=int, default=7, help="synthetic market seed (default 7)")
    parser.add_argument(
        "--start", type=date.fromisoformat, default=DataSettings().start,
        help="first session, YYYY-MM-DD (default %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.symbols < 1 or args.sessions < 30 or args.repeat < 1:
        parser.error("need --symbols >= 1, --sessions >= 30 (indicator warm-up), --repeat >= 1")

    clock = MarketClock(bar_minutes=BAR_MINUTES)
    sessions = clock.sessions(args.start, args.sessions)
    symbols = symbol_names(args.symbols)
    t0 = time.perf_counter()
    market = generate_market(symbols, sessions, clock, SyntheticSettings(seed=args.seed))
    gen_s = time.perf_counter() - t0
    minute_bars = market.bars
    items = pd.DataFrame({
        "kind": pd.Series(dtype=str),
        "symbols": pd.Series(dtype=str),
        "ts_known": pd.Series(dtype="datetime64[ns, UTC]"),
        "score": pd.Series(dtype=float),
    })[ITEM_COLUMNS]
    features, label = FeatureSettings(), LabelSettings()

    bars = resample_bars(minute_bars, BAR_MINUTES)
    per_symbol = {
        str(s): g.sort_values("ts").reset_index(drop=True)
        for s, g in bars.groupby("symbol", sort=True)
    }

    def ours_indicators() -> dict[str, pd.DataFrame]:
        return {s: technical_features(b, features.indicators) for s, b in per_symbol.items()}

    def ours_frame() -> pd.DataFrame:
        return build_feature_frame(minute_bars, items, features, label, BAR_MINUTES)

    def peer_full() -> pd.DataFrame:
        return peer_frame(minute_bars, items, features.sentiment_window_minutes, label.horizon_bars)

    rows = []
    for name, ours_fn, peer_fn, check in (
        ("indicators (a) vs (b)", ours_indicators, lambda: peer_indicators(per_symbol),
         check_indicators),
        ("full frame (c) vs (d)", ours_frame, peer_full, check_frames),
    ):
        ours_s, peer_s, ours_out, peer_out = best_of(args.repeat, ours_fn, peer_fn)
        compared, bad = check(ours_out, peer_out)
        rows.append((name, ours_s, peer_s, compared, bad))

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"TA-Lib {talib.__version__}"
    )
    print(
        f"{len(symbols)} symbols x {len(sessions)} sessions ({sessions[0]}..{sessions[-1]}): "
        f"{len(minute_bars):,} minute bars, {len(bars):,} {BAR_MINUTES}-minute bars; "
        f"generated in {gen_s:.2f} s; best of {args.repeat}"
    )
    print(f"{'bench':<24}{'ours s':>10}{'peer s':>10}{'ours/peer':>11}  check")
    failed = False
    for name, ours_s, peer_s, compared, bad in rows:
        verdict = f"OK ({compared} columns equal)" if not bad else f"MISMATCH {bad[:6]}"
        failed |= bool(bad)
        print(f"{name:<24}{ours_s:>10.4f}{peer_s:>10.4f}{ours_s / peer_s:>11.2f}  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
