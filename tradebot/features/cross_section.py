"""Cross-sectional features: each symbol against the benchmark and the other symbols at the
same decision time.

Only values at the same ``ts`` are combined, and each of them is itself point-in-time, so
the result at ``t`` uses nothing known after ``t``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def cross_sectional_features(
    frame: pd.DataFrame, benchmark: str, horizons: Sequence[int]
) -> pd.DataFrame:
    """Add to the concatenated per-symbol rows (columns ``symbol``, ``ts``, ``return_<n>``):

    - ``rel_return_<n>`` = the symbol's ``return_<n>`` minus the benchmark's at the same ts
      (0 for the benchmark itself; NaN where the benchmark has no row at that ts);
    - ``xs_rank_return_<m>``, m the shortest horizon: percentile rank (0, 1] of ``return_<m>``
      among all symbols with a row at that ts (ties share their mean rank).
    """
    horizons = sorted({int(n) for n in horizons})
    missing = [f"return_{n}" for n in horizons if f"return_{n}" not in frame.columns]
    if missing:
        raise ValueError(f"cross-sectional features need the columns {missing}")
    out = frame.copy()
    if not horizons:
        return out
    bench = frame[frame["symbol"] == benchmark].drop_duplicates("ts", keep="last").set_index("ts")
    for n in horizons:
        col = f"return_{n}"
        bench_at_ts = out["ts"].map(bench[col]).to_numpy(float)
        out[f"rel_return_{n}"] = out[col].to_numpy(float) - bench_at_ts
    shortest = f"return_{horizons[0]}"
    ranks = out.groupby("ts", sort=False)[shortest].rank(pct=True, method="average")
    out[f"xs_rank_{shortest}"] = ranks.to_numpy(np.float64)
    return out
