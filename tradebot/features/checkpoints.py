"""Checkpoints of ingest jobs, so an interrupted backfill resumes where it stopped.

A job (source, kind, timeframe, symbols, window) is split into ordered units; each unit's data
and the checkpoint advance commit in one transaction, so after a crash a unit is either fully
stored and counted or not at all. A finished job starts from the first unit when run again
(re-fetching is how restatements are found; the writes are idempotent).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tradebot.kernel.schema import IngestCheckpointRow


@dataclass(frozen=True)
class Job:
    source: str
    kind: str
    description: dict[str, Any]
    units_total: int

    @property
    def key(self) -> str:
        text = json.dumps(
            {"source": self.source, "kind": self.kind, **self.description}, sort_keys=True,
            default=str,
        )
        return hashlib.sha256(text.encode()).hexdigest()


def start(session: Session, job: Job, now: datetime, restart: bool = False) -> int:
    """Register the job; return the index of the first unit still to do."""
    row = session.get(IngestCheckpointRow, job.key)
    resumable = row is not None and row.completed_at is None and not restart
    if resumable and row is not None and row.units_total == job.units_total:
        return row.units_done
    if row is None:
        row = IngestCheckpointRow(
            job_key=job.key, source=job.source, kind=job.kind,
            description=json.dumps(job.description, sort_keys=True, default=str),
            units_total=job.units_total, units_done=0, started_at=now, updated_at=now,
        )
        session.add(row)
    else:
        row.units_total, row.units_done, row.started_at = job.units_total, 0, now
        row.updated_at, row.completed_at = now, None
    return 0


def advance(session: Session, job: Job, units_done: int, now: datetime) -> None:
    """Record ``units_done`` (call inside the transaction that stored the unit's data)."""
    row = session.get(IngestCheckpointRow, job.key)
    if row is None:
        raise LookupError(f"no checkpoint for job {job.key[:12]}")
    row.units_done, row.updated_at = units_done, now
    if units_done >= row.units_total:
        row.completed_at = now
