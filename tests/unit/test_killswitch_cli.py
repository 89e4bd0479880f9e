"""``tradebot killswitch``: the state every order passes is set and read from the CLI, and it
persists in the project database (a restart keeps it)."""

from __future__ import annotations

from pathlib import Path

from tests.kit.cli import cli
from tradebot.kernel.db import Database
from tradebot.kernel.domain import KillSwitchState
from tradebot.serving.ledger import get_kill_switch


def switch(tmp_path: Path, *args: str) -> str:
    result = cli(tmp_path, "killswitch", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def stored(tmp_path: Path) -> KillSwitchState:
    db = Database(f"sqlite:///{tmp_path / 'home' / 'tradebot.db'}")
    with db.session() as session:
        return get_kill_switch(session)


def test_killswitch_states_persist_with_their_reason(tmp_path: Path) -> None:
    assert "ACTIVE" in switch(tmp_path, "status")
    out = switch(tmp_path, "reducing", "--reason", "earnings week")
    assert "REDUCING" in out and "earnings week" in out
    assert stored(tmp_path) is KillSwitchState.REDUCING
    assert "HALTED" in switch(tmp_path, "on")
    assert stored(tmp_path) is KillSwitchState.HALTED
    assert "HALTED" in switch(tmp_path, "status")  # a new process reads the persisted state
    assert "ACTIVE" in switch(tmp_path, "off")
    assert stored(tmp_path) is KillSwitchState.ACTIVE


def test_killswitch_rejects_an_unknown_state(tmp_path: Path) -> None:
    result = cli(tmp_path, "killswitch", "maybe")
    assert result.returncode == 2
    assert "maybe" in result.stderr and "Traceback" not in result.stderr
