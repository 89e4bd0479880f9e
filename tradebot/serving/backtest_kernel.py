"""The compiled (numba) core of the backtest engine: the per-bar simulation loop, round trips
and the small index helpers. :mod:`tradebot.serving.backtest_engine` prepares the inputs and
turns the outputs into frames; its docstring describes the semantics."""

from __future__ import annotations

import numba
import numpy as np

_SIGNAL, _STOP_LOSS, _TAKE_PROFIT, _TRAILING, _SHUTDOWN = range(5)
# Fill record: row, symbol, qty, price, commission, reason, partial.
_FILL_COLS = 7


# The per-bar loop is one function with no calls that take arrays on its hot path: such a call
# (inlined or not) kept reference counting on every array argument, which made each bar several
# times slower. error_model="numpy": a division by zero gives inf/NaN instead of raising.
_jit = numba.njit(cache=True, error_model="numpy")
_OPEN_STOPS, _OPEN_ORDERS, _BAR_STOPS, _CLOSE_ORDERS = range(4)
_CHUNK = 1024  # bars between buffer checks (a bar adds at most 3 fills per symbol, 2 events)


@_jit
def _grow(buf: np.ndarray, need: int) -> np.ndarray:
    size = buf.shape[0]
    while size < need:
        size *= 2
    out = np.empty((size, buf.shape[1]))
    out[: buf.shape[0]] = buf
    return out


@_jit
def _slip(h: float, lo: float, c: float, slip_fixed: float, slip_vol: float) -> float:
    """Slippage fraction at a bar: fixed plus ``slip_vol`` times its range over its close."""
    return slip_fixed + slip_vol * (h - lo) / c if slip_vol > 0.0 else slip_fixed


@_jit
def _reached(goal: float, qty: float) -> bool:
    """An order's goal is reached (to 1e-9 relative, for fractional remainders)."""
    return abs(goal - qty) <= 1e-9 * max(1.0, abs(goal))


@_jit
def simulate(o, h, lo, c, v, po, tw, sess, p, at_close, borrow, daily, maxdd):
    """The backtest kernel over (T, N) float64 price grids (NaN: no bar).

    ``po``: the price orders fill at in a bar (its open, or its VWAP); stops use ``o``.
    ``tw``: new target weights (NaN: none) by the row they start to apply; ``sess``: session
    code per row; ``p``: sl, tp, trailing, commission per share, commission fraction, fixed
    slippage fraction, slippage volatility multiplier, volume cap, fractional, allow short,
    initial cash. Returns equity, cash, positions, fees, fills, events and the last closes; a
    fill row is (row, symbol, qty, price, commission, reason, partial), an event row (row, kind,
    equity, reference equity).
    """
    sl, tp, tr, cps, cbps, slip_fixed, slip_vol = p[0], p[1], p[2], p[3], p[4], p[5], p[6]
    cap_pct, fractional, allow_short, cash = p[7], p[8] > 0.0, p[9] > 0.0, p[10]
    t_len, n = c.shape
    equity, cash_out, fees = np.empty(t_len), np.empty(t_len), np.zeros(t_len)
    positions = np.empty((t_len, n))
    qty, mark, avg, best = np.zeros(n), np.full(n, np.nan), np.full(n, np.nan), np.zeros(n)
    pend, goal, want = np.full(n, np.nan), np.full(n, np.nan), np.zeros(n)
    split = np.zeros(n, dtype=np.bool_)
    xq, xpx, xr = np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64)  # this phase's fills
    xpart = np.zeros(n, dtype=np.bool_)
    fills = np.empty((max(64, 4 * n), _FILL_COLS))
    events = np.empty((8, 4))
    nf = ne = 0
    any_stop = sl > 0.0 or tp > 0.0 or tr > 0.0
    eq = peak = start_eq = cash
    blocked = halted = busy = False
    for first in range(0, t_len, _CHUNK):  # buffers grow between chunks, not inside the loop
        last = min(first + _CHUNK, t_len)
        if nf + 3 * n * (last - first) > fills.shape[0]:
            fills = _grow(fills, nf + 3 * n * (last - first))
        if ne + 2 * (last - first) > events.shape[0]:
            events = _grow(events, ne + 2 * (last - first))
        for i in range(first, last):
            if i > 0 and sess[i] != sess[i - 1]:
                start_eq, blocked = eq, False
            if not halted:
                for j in range(n):
                    w = tw[i, j]
                    if not np.isnan(w) and w != want[j]:  # a repeated weight is no change
                        want[j], pend[j], goal[j] = w, w, np.nan
                        busy = True
            for phase in range(4):
                if phase == _CLOSE_ORDERS:
                    for j in range(n):
                        if not np.isnan(c[i, j]):
                            mark[j] = c[i, j]
                stops = phase % 2 == 0  # _OPEN_STOPS, _BAR_STOPS
                if stops and not any_stop:
                    continue
                if not stops and (not busy or at_close != (phase == _CLOSE_ORDERS)):
                    continue
                planned = False
                if stops:
                    # Exit whole positions at a stop / take-profit / trailing level.
                    at_open = phase == _OPEN_STOPS
                    for j in range(n):
                        xq[j] = 0.0
                        q = qty[j]
                        if q == 0.0 or np.isnan(c[i, j]):
                            continue
                        side = 1.0 if q > 0.0 else -1.0
                        stop, reason = -np.inf * side, _STOP_LOSS
                        if sl > 0.0:
                            stop = avg[j] * (1.0 - side * sl)
                        if tr > 0.0:
                            trail = best[j] * (1.0 - side * tr)
                            if side * (trail - stop) > 0.0:
                                stop, reason = trail, _TRAILING
                        take = avg[j] * (1.0 + side * tp) if tp > 0.0 else np.inf * side
                        # Against the position first: the low for a long, the high for a short.
                        adverse = o[i, j] if at_open else (lo[i, j] if side > 0.0 else h[i, j])
                        favourable = o[i, j] if at_open else (h[i, j] if side > 0.0 else lo[i, j])
                        if side * (adverse - stop) <= 0.0:
                            raw = adverse if at_open else stop
                        elif side * (favourable - take) >= 0.0:
                            raw, reason = (favourable if at_open else take), _TAKE_PROFIT
                        else:
                            if side * (favourable - best[j]) > 0.0:
                                best[j] = favourable
                            continue
                        s = _slip(h[i, j], lo[i, j], c[i, j], slip_fixed, slip_vol)
                        xq[j], xpx[j], xr[j], xpart[j] = -q, raw * (1.0 - side * s), reason, False
                        goal[j] = np.nan
                        planned = True
                else:
                    # Orders: size new targets, continue capped remainders, or flatten (shutdown).
                    value = cash
                    for j in range(n):
                        if qty[j] != 0.0:
                            value += qty[j] * mark[j]
                    for j in range(n):
                        xq[j] = 0.0
                        price = po[i, j] if phase == _OPEN_ORDERS else c[i, j]
                        if np.isnan(price):
                            continue
                        s = _slip(h[i, j], lo[i, j], c[i, j], slip_fixed, slip_vol)
                        q = 0.0
                        if halted:
                            q = -qty[j]
                        else:
                            if not np.isnan(pend[j]):
                                w = pend[j]
                                side = 1.0 if w * value / price > qty[j] else -1.0
                                desired = w * value / (price * (1.0 + side * s))
                                goal[j] = desired if fractional else np.trunc(desired)
                                if goal[j] == 0.0 and w != 0.0:  # not one share: not sent
                                    want[j] = np.nan
                                pend[j] = np.nan
                                split[j] = False
                            if not np.isnan(goal[j]):
                                q = goal[j] - qty[j]
                                if _reached(goal[j], qty[j]):
                                    q, goal[j] = 0.0, np.nan
                            if not allow_short and qty[j] + q < 0.0:
                                q = -qty[j]
                            held = qty[j]
                            if blocked and q != 0.0 and (
                                held == 0.0 or (q > 0.0) == (held > 0.0) or abs(q) > abs(held)
                            ):  # daily loss: reduce only, drop the rest; the same weight may return
                                q = -held if held != 0.0 and (q > 0.0) != (held > 0.0) else 0.0
                                goal[j] = want[j] = np.nan
                            if cap_pct > 0.0 and q != 0.0:
                                cap = cap_pct * v[i, j] if v[i, j] > 0.0 else 0.0
                                cap = cap if fractional else np.floor(cap)
                                if abs(q) > cap:
                                    q = cap if q > 0.0 else -cap
                                    split[j] = True
                        if q == 0.0:
                            continue
                        xq[j], xpx[j] = q, (price * (1.0 + s) if q > 0.0 else price * (1.0 - s))
                        xr[j] = _SHUTDOWN if halted else _SIGNAL
                        xpart[j] = split[j] and not halted
                        planned = True
                # Book the planned fills: sells first, then buys with the cash left.
                for buys in range(2 if planned else 0):
                    for j in range(n):
                        q = xq[j]
                        if q == 0.0 or (q > 0.0) != (buys == 1):
                            continue
                        price, partial = xpx[j], xpart[j]
                        if q > 0.0 and not stops and not halted:
                            afford = max(cash, 0.0) / (price + price * cbps + cps)
                            afford = afford if fractional else np.floor(afford)
                            if q > afford:
                                q, partial, goal[j] = afford, True, np.nan
                            if q <= 0.0:  # nothing bought: a repeat of the weight is new
                                want[j] = np.nan
                                continue
                        comm = cps * abs(q) + cbps * abs(q) * price
                        cash -= q * price + comm
                        old = qty[j]
                        new = old + q
                        if old == 0.0 or ((old > 0.0) != (new > 0.0) and new != 0.0):
                            avg[j] = best[j] = price  # a new position or a reversal
                        elif (q > 0.0) == (old > 0.0):
                            avg[j] = (avg[j] * abs(old) + price * abs(q)) / abs(new)
                        qty[j] = new
                        fills[nf, 0], fills[nf, 1], fills[nf, 2], fills[nf, 3] = i, j, q, price
                        fills[nf, 4], fills[nf, 5] = comm, xr[j]
                        fills[nf, 6] = 1.0 if partial else 0.0
                        nf += 1
                        if _reached(goal[j], new):
                            goal[j] = np.nan
                if not stops:  # still waiting: a target or remainder, or a shutdown to finish
                    busy = False
                    for j in range(n):
                        waiting = not (np.isnan(pend[j]) and np.isnan(goal[j]))
                        if waiting or (halted and qty[j] != 0.0):
                            busy = True
            value = short = 0.0
            for j in range(n):
                if qty[j] != 0.0:
                    value += qty[j] * mark[j]
                    if qty[j] < 0.0:
                        short -= qty[j] * mark[j]
            if borrow > 0.0 and short > 0.0 and (i == t_len - 1 or sess[i + 1] != sess[i]):
                fees[i] = short * borrow / 1e4 / 252.0
                cash -= fees[i]
            eq = cash + value
            if daily > 0.0 and not blocked and eq < start_eq * (1.0 - daily):
                blocked = True
                events[ne, 0], events[ne, 1], events[ne, 2], events[ne, 3] = i, 0.0, eq, start_eq
                ne += 1
            peak = max(peak, eq)
            if maxdd > 0.0 and not halted and peak - eq >= maxdd * peak:
                halted = busy = True
                for j in range(n):
                    pend[j] = goal[j] = np.nan
                events[ne, 0], events[ne, 1], events[ne, 2], events[ne, 3] = i, 1.0, eq, peak
                ne += 1
            equity[i], cash_out[i] = eq, cash
            for j in range(n):
                positions[i, j] = qty[j]
    return equity, cash_out, positions, fees, fills[:nf].copy(), events[:ne].copy(), mark


@_jit
def _add(st: np.ndarray, at: int, q: float, price: float) -> None:
    """Add ``q`` shares at ``price`` to the quantity st[at] and its average price st[at + 1]."""
    total = st[at] + q
    st[at + 1] = price if st[at] == 0.0 else (st[at + 1] * st[at] + price * q) / total
    st[at] = total


@_jit
def _trade_row(r, j, held, st, exit_row, exit_price, pnl, reason) -> None:
    r[0], r[1], r[2], r[3], r[4] = j, 1.0 if held > 0.0 else -1.0, st[0], exit_row, st[1]
    r[5], r[6], r[7], r[8], r[9] = st[2], exit_price, pnl, pnl / (st[1] * st[2]), reason


@_jit
def round_trips(fills: np.ndarray, n: int, mark: np.ndarray) -> np.ndarray:
    """Round trips from the fills in time order: (symbol, side, entry row, exit row, qty,
    entry price, exit price, pnl, return, exit reason); open trades are marked at ``mark``."""
    out = np.empty((fills.shape[0] + n, 10))
    nt = 0
    pos = np.zeros(n)
    st = np.zeros((n, 6))  # entry row, qty in, avg price in, qty out, avg price out, cash flow
    for k in range(fills.shape[0]):
        j = int(fills[k, 1])
        q, price, comm = fills[k, 2], fills[k, 3], fills[k, 4]
        held = pos[j]
        if held == 0.0 or (q > 0.0) == (held > 0.0):
            if held == 0.0:
                st[j, :] = 0.0
                st[j, 0] = fills[k, 0]
            _add(st[j], 1, abs(q), price)
            st[j, 5] -= q * price + comm
            pos[j] = held + q
            continue
        closed = min(abs(q), abs(held))
        frac = closed / abs(q)
        _add(st[j], 3, closed, price)
        st[j, 5] += (closed if held > 0.0 else -closed) * price - comm * frac
        pos[j] = held + q
        if abs(q) < abs(held):
            continue
        _trade_row(out[nt], j, held, st[j], fills[k, 0], st[j, 4], st[j, 5], fills[k, 5])
        nt += 1
        pos[j] = held + q if abs(q) > abs(held) else 0.0
        if pos[j] != 0.0:  # reversal: the rest of the fill opens the next trade
            st[j, :] = 0.0
            st[j, 0] = fills[k, 0]
            st[j, 1], st[j, 2] = abs(q) - closed, price
            st[j, 5] = -pos[j] * price - comm * (1.0 - frac)
    for j in range(n):
        if pos[j] != 0.0:
            _trade_row(out[nt], j, pos[j], st[j], -1.0, np.nan, st[j, 5] + pos[j] * mark[j], -1.0)
            nt += 1
    return out[:nt]


@_jit
def _rows(times: np.ndarray, t_ns: np.ndarray) -> np.ndarray:
    """``np.searchsorted(times, t_ns, "left")``, a linear merge over time-ordered runs."""
    out = np.empty(t_ns.shape[0], dtype=np.int64)
    r = 0
    for k in range(t_ns.shape[0]):
        t = t_ns[k]
        if k > 0 and t < t_ns[k - 1]:
            r = np.searchsorted(times, t)
        while r < times.shape[0] and times[r] < t:
            r += 1
        out[k] = r
    return out


@_jit
def _scatter_latest(out, stamp, row, sym, t_ns, weight) -> None:
    """out[row, sym] = weight, the latest ``t_ns`` winning (the later row on a tie)."""
    for k in range(row.shape[0]):
        r, j = row[k], sym[k]
        if np.isnan(out[r, j]) or t_ns[k] >= stamp[r, j]:
            out[r, j], stamp[r, j] = weight[k], t_ns[k]
