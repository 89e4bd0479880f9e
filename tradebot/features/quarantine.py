"""The quarantine: every rejected record with its reason and raw payload, counted by kind."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tradebot.kernel.db import upsert
from tradebot.kernel.records import RecordKind
from tradebot.kernel.schema import QuarantineRow

KEY_LENGTH = 256


def quarantine(
    session: Session, kind: RecordKind, source: str, rejected: pd.DataFrame, now: datetime
) -> int:
    """Store rejects (``REJECT_COLUMNS``); a reject already quarantined is not stored twice.

    Returns the number of rejects passed in (what the caller reports as quarantined)."""
    if rejected.empty:
        return 0
    rows = [
        {
            "kind": kind,
            "source": source,
            "record_key": str(key)[:KEY_LENGTH],
            "reason": str(reason)[:KEY_LENGTH],
            "payload": payload if isinstance(payload, dict) else {"raw": str(payload)},
            "quarantined_at": now,
        }
        for key, reason, payload in rejected[["record_key", "reason", "payload"]].itertuples(
            index=False
        )
    ]
    upsert(session, QuarantineRow.__table__, rows, ["kind", "source", "record_key", "reason"])
    return len(rows)


def quarantine_counts(session: Session) -> dict[str, int]:
    """Quarantined rows per kind (bars, news, posts)."""
    stmt = select(QuarantineRow.kind, func.count()).group_by(QuarantineRow.kind)
    return {kind: int(n) for kind, n in session.execute(stmt).all()}


def load_quarantine(session: Session, kind: str | None = None, limit: int = 100) -> pd.DataFrame:
    """The newest quarantined rows, for inspection."""
    stmt = select(
        QuarantineRow.kind, QuarantineRow.source, QuarantineRow.record_key, QuarantineRow.reason,
        QuarantineRow.payload, QuarantineRow.quarantined_at,
    ).order_by(QuarantineRow.id.desc()).limit(limit)
    if kind is not None:
        stmt = stmt.where(QuarantineRow.kind == kind)
    columns = ["kind", "source", "record_key", "reason", "payload", "quarantined_at"]
    return pd.DataFrame(session.execute(stmt).all(), columns=columns)
