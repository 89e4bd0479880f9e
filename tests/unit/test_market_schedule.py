"""When the trade loop runs next: 15-minute decision times in NYSE hours, holidays skipped,
half days closing early."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from tradebot.kernel.clock import MarketClock

CLOCK = MarketClock()


@pytest.mark.parametrize(("now", "expected"), [
    (datetime(2026, 6, 1, 13, 0), datetime(2026, 6, 1, 13, 45)),  # before the open: 9:45 ET
    (datetime(2026, 6, 1, 14, 7), datetime(2026, 6, 1, 14, 15)),  # mid-session
    (datetime(2026, 6, 1, 14, 15), datetime(2026, 6, 1, 14, 30)),  # on a boundary: the next
    (datetime(2026, 6, 1, 20, 0), datetime(2026, 6, 2, 13, 45)),  # after the close
    (datetime(2026, 6, 6, 12, 0), datetime(2026, 6, 8, 13, 45)),  # Saturday -> Monday
    (datetime(2026, 7, 2, 20, 30), datetime(2026, 7, 6, 13, 45)),  # Jul 3 (observed) holiday
    (datetime(2026, 11, 27, 17, 50), datetime(2026, 11, 27, 18, 0)),  # half day: 13:00 ET close
    (datetime(2026, 11, 27, 18, 0), datetime(2026, 11, 30, 14, 45)),  # then Monday (EST)
])
def test_next_decision_time(now: datetime, expected: datetime) -> None:
    assert CLOCK.next_decision_time(now.replace(tzinfo=UTC)) == expected.replace(tzinfo=UTC)


def test_pdt_window_is_five_sessions_ending_today() -> None:
    assert CLOCK.sessions_ending(date(2026, 6, 2), 5) == [
        date(2026, 5, 27), date(2026, 5, 28), date(2026, 5, 29), date(2026, 6, 1),
        date(2026, 6, 2)]
