"""Scaler and look-back windows of the sequence families: same-symbol history in ts order,
zero-padded and masked at the start, independent of the frame's row order, never a later row."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tradebot.models.sequences import CLIP, Scaler, SequenceIndex


def _frame(seed: int = 0) -> pd.DataFrame:
    """Two symbols with different history lengths, shuffled; value = 100*symbol + ts."""
    rows = [("AAA", t) for t in range(6)] + [("BBB", t) for t in range(2, 5)]
    frame = pd.DataFrame(rows, columns=["symbol", "ts"])
    frame["ts"] = pd.Timestamp("2026-06-01 14:30", tz="UTC") + pd.to_timedelta(
        frame["ts"] * 15, unit="min")
    frame["value"] = [100 * (s == "BBB") + t for s, t in rows]
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _windows(frame: pd.DataFrame, length: int) -> tuple[np.ndarray, np.ndarray]:
    values = frame[["value"]].to_numpy(np.float32)
    return SequenceIndex(frame, values, length).batch(np.arange(len(frame)))


def test_window_holds_the_symbols_previous_rows_in_ts_order_padded_at_the_start() -> None:
    frame = _frame()
    windows, mask = _windows(frame, 4)
    assert windows.shape == (len(frame), 4, 1) and windows.dtype == np.float32
    assert mask.shape == (len(frame), 4) and mask.dtype == bool
    for i, row in frame.iterrows():
        history = frame[(frame["symbol"] == row["symbol"]) & (frame["ts"] <= row["ts"])]
        expected = history.sort_values("ts")["value"].to_numpy()[-4:]
        n_pad = 4 - len(expected)
        assert mask[i].tolist() == [False] * n_pad + [True] * len(expected)
        assert windows[i, n_pad:, 0].tolist() == expected.tolist()
        assert (windows[i, :n_pad] == 0).all()
        assert windows[i, -1, 0] == row["value"]  # ends at the row itself


def test_first_row_of_a_symbol_sees_only_itself() -> None:
    frame = _frame()
    first = frame.index[(frame["symbol"] == "BBB") & (frame["value"] == 102)][0]
    windows, mask = _windows(frame, 3)
    assert mask[first].tolist() == [False, False, True]
    assert windows[first, :, 0].tolist() == [0.0, 0.0, 102.0]


def test_shuffling_the_rows_does_not_change_any_rows_window() -> None:
    a, b = _frame(seed=1), _frame(seed=2)
    wa, ma = _windows(a, 5)
    wb, mb = _windows(b, 5)
    key_a = list(zip(a["symbol"], a["ts"], strict=True))
    key_b = list(zip(b["symbol"], b["ts"], strict=True))
    position_b = {k: i for i, k in enumerate(key_b)}
    reorder = [position_b[k] for k in key_a]
    np.testing.assert_array_equal(wa, wb[reorder])
    np.testing.assert_array_equal(ma, mb[reorder])


def test_removing_later_rows_changes_no_window() -> None:
    frame = _frame()
    cutoff = frame["ts"].sort_values().iloc[4]
    early = frame[frame["ts"] <= cutoff]
    full_w, full_m = _windows(frame, 4)
    early_w, early_m = _windows(early.reset_index(drop=True), 4)
    np.testing.assert_array_equal(full_w[early.index], early_w)
    np.testing.assert_array_equal(full_m[early.index], early_m)


def test_batches_gather_any_row_subset_and_length_one_is_the_row_alone() -> None:
    frame = _frame()
    index = SequenceIndex(frame, frame[["value"]].to_numpy(np.float32), 1)
    windows, mask = index.batch(np.array([3, 0]))
    assert windows[:, 0, 0].tolist() == frame["value"].iloc[[3, 0]].tolist()
    assert mask.all()
    empty = SequenceIndex(frame.iloc[:0], np.zeros((0, 2), np.float32), 4)
    assert len(empty) == 0 and empty.batch(np.array([], int))[0].shape == (0, 4, 2)


def test_mismatched_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="n_rows"):
        SequenceIndex(_frame(), np.zeros((3, 1), np.float32), 2)


def test_scaler_standardises_ignoring_nan_and_round_trips_through_json() -> None:
    train = pd.DataFrame({"a": [1.0, 3.0, np.nan, 5.0], "flat": [2.0] * 4,
                          "empty": [np.nan] * 4})
    scaler = Scaler.fit(train, ["a", "flat", "empty"])
    assert scaler.mean.tolist() == [3.0, 2.0, 0.0]
    assert scaler.std[0] == pytest.approx(np.std([1.0, 3.0, 5.0]))
    assert scaler.std[1:].tolist() == [1.0, 1.0]
    out = scaler.transform(pd.DataFrame({"a": [3.0, np.nan, 1e9], "flat": [2.0, 4.0, 2.0],
                                         "empty": [1.0, np.nan, np.inf]}))
    assert out.dtype == np.float32
    assert out[:, 0].tolist() == [0.0, 0.0, CLIP]
    assert out[:, 1].tolist() == [0.0, 2.0, 0.0]
    assert out[:, 2].tolist() == [1.0, 0.0, 0.0]
    again = Scaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    np.testing.assert_array_equal(again.transform(train), scaler.transform(train))
