"""Market clock (NYSE sessions from exchange-calendars) and injectable clocks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Protocol

import exchange_calendars as xcals
import numpy as np
import pandas as pd


class Clock(Protocol):
    """Anything that tells the current time (UTC, tz-aware)."""

    def now(self) -> datetime: ...


class WallClock:
    """The real clock, used only by live shells."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class SimulatedClock:
    """A clock the backtest or replay moves explicitly."""

    current: datetime = field(default_factory=lambda: datetime(2000, 1, 1, tzinfo=UTC))

    def now(self) -> datetime:
        return self.current

    def set(self, ts: datetime) -> None:
        if ts.tzinfo is None:
            raise ValueError("SimulatedClock needs a timezone-aware datetime")
        self.current = ts


@lru_cache(maxsize=8)
def _calendar(name: str) -> xcals.ExchangeCalendar:
    return xcals.get_calendar(name)


class MarketClock:
    """Trading sessions, minutes and decision times of one exchange calendar."""

    def __init__(self, calendar: str = "XNYS", bar_minutes: int = 15) -> None:
        self.calendar = _calendar(calendar)
        self.bar_minutes = bar_minutes

    def sessions(self, start: date, count: int) -> list[date]:
        """``count`` sessions starting at the first session on or after ``start``."""
        first = self.calendar.date_to_session(pd.Timestamp(start), direction="next")
        labels = self.calendar.sessions_window(first, count)
        return [ts.date() for ts in labels]

    def sessions_between(self, start: date, end: date) -> list[date]:
        return [ts.date() for ts in self.calendar.sessions_in_range(start, end)]

    def is_session(self, day: date) -> bool:
        return bool(self.calendar.is_session(pd.Timestamp(day)))

    def open_close(self, session: date) -> tuple[datetime, datetime]:
        """Session open and close, UTC (half days close early)."""
        label = pd.Timestamp(session)
        return (
            self.calendar.session_open(label).to_pydatetime(),
            self.calendar.session_close(label).to_pydatetime(),
        )

    def minutes(self, session: date) -> pd.DatetimeIndex:
        """Open times (UTC) of every 1-minute bar in the session."""
        open_, close = self.open_close(session)
        return pd.date_range(open_, close - timedelta(minutes=1), freq="1min", tz=UTC)

    def decision_times(self, session: date) -> list[datetime]:
        """Closes of the session's decision bars (e.g. 9:45, 10:00, ... 16:00 ET)."""
        open_, close = self.open_close(session)
        step = timedelta(minutes=self.bar_minutes)
        times, t = [], open_ + step
        while t <= close:
            times.append(t)
            t += step
        return times

    def in_session(self, ts: pd.Series) -> np.ndarray:
        """Vectorised: whether each UTC time lies in [open, close) of its day's regular session."""
        if ts.empty:
            return np.zeros(0, dtype=bool)
        schedule = self.calendar.schedule
        days = ts.dt.tz_convert(self.calendar.tz).dt.tz_localize(None).dt.normalize()
        bounds = schedule.reindex(pd.DatetimeIndex(days.to_numpy()).as_unit("ns"))
        opens = pd.to_datetime(bounds["open"].to_numpy(), utc=True)
        closes = pd.to_datetime(bounds["close"].to_numpy(), utc=True)
        values = pd.DatetimeIndex(ts.to_numpy()).tz_localize("UTC") if ts.dt.tz is None else (
            pd.DatetimeIndex(ts))
        inside = (values >= opens) & (values < closes)
        return np.asarray(inside, dtype=bool) & ~np.asarray(pd.isna(opens))

    def session_close(self, day: date) -> datetime | None:
        """The close (UTC) of ``day`` if it is a session, else None."""
        return self.open_close(day)[1] if self.is_session(day) else None

    def is_open(self, ts: datetime) -> bool:
        return bool(self.calendar.is_open_on_minute(pd.Timestamp(ts), ignore_breaks=True))

    def sessions_ending(self, day: date, count: int) -> list[date]:
        """The ``count`` sessions up to and including session ``day``, oldest first."""
        labels = self.calendar.sessions_window(pd.Timestamp(day), -count)
        return [ts.date() for ts in labels]

    def next_decision_time(self, now: datetime) -> datetime:
        """The first decision-bar close strictly after ``now`` (the next session's first one
        when the market is closed; holidays and half days follow the calendar)."""
        day = self.calendar.minute_to_session(pd.Timestamp(now), direction="next").date()
        while True:
            later = [t for t in self.decision_times(day) if t > now]
            if later:
                return later[0]
            day = self.calendar.next_session(pd.Timestamp(day)).date()

    def session_of(self, ts: datetime) -> date:
        """The session a UTC timestamp belongs to (the previous one when the market is closed)."""
        return self.calendar.minute_to_session(pd.Timestamp(ts), direction="previous").date()
