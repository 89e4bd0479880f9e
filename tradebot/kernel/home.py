"""The state home: where the project database, MLflow, Optuna, reports and Prefect live."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tradebot.kernel.settings import TradebotSettings


@dataclass(frozen=True)
class Home:
    """Paths and URLs derived from ``settings.home``; each tool keeps its own database."""

    root: Path
    database_url: str

    @classmethod
    def from_settings(cls, settings: TradebotSettings) -> Home:
        root = settings.home.expanduser().resolve()
        url = (
            settings.database_url.get_secret_value()
            if settings.database_url is not None
            else f"sqlite:///{root / 'tradebot.db'}"
        )
        return cls(root=root, database_url=url)

    @property
    def mlflow_db(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def mlflow_tracking_uri(self) -> str:
        return f"sqlite:///{self.mlflow_db}"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.root / "mlartifacts"

    @property
    def optuna_url(self) -> str:
        return f"sqlite:///{self.root / 'optuna.db'}"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def prefect_home(self) -> Path:
        return self.root / "prefect"

    def ensure(self) -> None:
        """Create the folders (not the databases: migrations own those)."""
        for path in (self.root, self.mlflow_artifacts, self.reports, self.prefect_home):
            path.mkdir(parents=True, exist_ok=True)
