"""Pattern day trader (PDT) bookkeeping: day trades counted from fills.

A day trade is a buy and a later sell of the same symbol in the same session. Pure functions:
the caller passes the fills, the session of a timestamp and the sessions to count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime

from tradebot.kernel.domain import Fill, Side


def _orders(fills: Iterable[Fill], session_of: Callable[[datetime], date],
            sessions: set[date]) -> dict[tuple[date, str], list[tuple[datetime, int, Side]]]:
    """Per (session, symbol): one entry per order (client_order_id) with its first fill time,
    the position of that fill in the input (ties keep the input order) and its side."""
    first: dict[tuple[date, str, str], tuple[datetime, int, Side]] = {}
    for i, fill in enumerate(fills):
        session = session_of(fill.ts_fill)
        if session not in sessions:
            continue
        key = (session, fill.symbol, fill.client_order_id)
        seen = first.get(key)
        if seen is None or (fill.ts_fill, i) < seen[:2]:
            first[key] = (fill.ts_fill, i, Side(fill.side))
    grouped: dict[tuple[date, str], list[tuple[datetime, int, Side]]] = {}
    for (session, symbol, _), entry in first.items():
        grouped.setdefault((session, symbol), []).append(entry)
    for entries in grouped.values():
        entries.sort(key=lambda e: (e[0], e[1]))
    return grouped


def day_trades(fills: Iterable[Fill], session_of: Callable[[datetime], date],
               window: Sequence[date]) -> int:
    """The number of day trades in the sessions of ``window``.

    Per (session, symbol), in fill-time order, a sell order that follows a buy order of the same
    session counts one day trade, then the count restarts: buy, buy, sell is one; buy, sell,
    buy, sell is two; sell, buy is none. The fills of one client_order_id are one order (a
    partially filled order counts once, at its first fill)."""
    count = 0
    for entries in _orders(fills, session_of, set(window)).values():
        bought = False
        for _, _, side in entries:
            if side is Side.BUY:
                bought = True
            elif bought:
                count += 1
                bought = False
    return count


def opened_today(fills: Iterable[Fill], session_of: Callable[[datetime], date],
                 session: date) -> frozenset[str]:
    """The symbols bought in ``session``: selling one of them in that session can be a day
    trade (the risk engine's PDT rule blocks such sells once the limit is reached)."""
    return frozenset(f.symbol for f in fills
                     if Side(f.side) is Side.BUY and session_of(f.ts_fill) == session)
