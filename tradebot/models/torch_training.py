"""What the torch families share: seeding, the training loop, batched prediction, and
:class:`SequenceDirectionModel`, the fit / continue_fit / predict / save / load around a net.

A family supplies the net (``_build_net``) and a *batch maker*: a function from row positions
of a frame to the net's input tensors (``_batch_maker``). The net maps those inputs to one
logit per row.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import optuna
import pandas as pd
import torch
from torch import nn

from tradebot.kernel.model_settings import SequenceNetSettings
from tradebot.kernel.settings import TradebotSettings
from tradebot.models.base import Pruning
from tradebot.models.device import select_device
from tradebot.models.evaluation import auc
from tradebot.models.sequences import Scaler

BatchMaker = Callable[[np.ndarray], tuple[torch.Tensor, ...]]
"""Row positions -> the net's input tensors for those rows (on the CPU)."""

WEIGHTS_FILE = "weights.pt"
META_FILE = "model.json"
PREDICT_BATCH = 1024
GRAD_CLIP = 1.0


def set_seeds(seed: int, device: torch.device | None = None) -> None:
    """Seed torch and numpy. On an accelerator, also ask torch for deterministic kernels
    (warn-only); the CPU kernels used here are deterministic already, and the switch costs
    seconds of torch._dynamo import on first use."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    if device is not None and device.type != "cpu" and \
            not torch.are_deterministic_algorithms_enabled():
        torch.use_deterministic_algorithms(True, warn_only=True)


def set_threads(threads: int) -> None:
    """Intra-op CPU threads of torch (``[model].torch_threads``)."""
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def predict_logits(net: nn.Module, make_batch: BatchMaker, rows: int | np.ndarray,
                   device: torch.device, batch_size: int = PREDICT_BATCH) -> np.ndarray:
    """Logits of the rows at positions ``rows`` (an int n: rows 0..n-1) in eval mode, batch
    by batch, as float64."""
    positions = np.arange(rows) if isinstance(rows, int) else np.asarray(rows, np.int64)
    net.eval()
    out = np.empty(len(positions), np.float64)
    with torch.no_grad():
        for start in range(0, len(positions), batch_size):
            inputs = [t.to(device) for t in make_batch(positions[start:start + batch_size])]
            out[start:start + batch_size] = net(*inputs).double().cpu().numpy()
    return out


def train_epochs(net: nn.Module, make_batch: BatchMaker, y: np.ndarray, *, epochs: int,
                 learning_rate: float, batch_size: int, device: torch.device, seed: int,
                 valid: tuple[BatchMaker, np.ndarray] | None = None,
                 pruning: Pruning | None = None) -> list[float]:
    """AdamW on the binary cross-entropy of the logits, shuffled mini-batches (seeded).

    With ``valid`` (its batch maker and labels), the validation AUC is computed after each
    epoch and, with ``pruning``, reported as step ``epoch`` (0-based), which may raise
    :class:`optuna.TrialPruned`. Returns the per-epoch validation AUCs (empty without
    ``valid``)."""
    n_rows = len(y)
    if n_rows == 0:
        raise ValueError("cannot train on an empty frame")
    set_seeds(seed, device)
    shuffle = torch.Generator().manual_seed(seed)
    target = torch.as_tensor(np.asarray(y, np.float32))
    optimizer = torch.optim.AdamW(net.parameters(), lr=learning_rate)
    loss_fn = nn.BCEWithLogitsLoss()
    aucs: list[float] = []
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(n_rows, generator=shuffle).numpy()
        for start in range(0, n_rows, batch_size):
            rows = order[start:start + batch_size]
            inputs = [t.to(device) for t in make_batch(rows)]
            loss = loss_fn(net(*inputs), target[rows].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), GRAD_CLIP)
            optimizer.step()
        if valid is not None:
            make_valid, y_valid = valid
            score = auc(y_valid, predict_logits(net, make_valid, len(y_valid), device))
            aucs.append(score)
            if pruning is not None:
                pruning.epoch_end(epoch, score)
    return aucs


def _plain(value: Any) -> Any:
    """numpy scalars (e.g. in tuned params) as plain JSON numbers."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _labels(y: Any, n_rows: int) -> np.ndarray:
    labels = np.asarray(y, np.float32).ravel()
    if len(labels) != n_rows:
        raise ValueError(f"{len(labels)} labels for {n_rows} rows")
    if not np.isfinite(labels).all():
        raise ValueError("labels must be finite 0/1 values")
    return labels


class SequenceDirectionModel:
    """Base of the torch families: a standardising :class:`Scaler`, a net on look-back
    windows, and the :class:`~tradebot.models.base.DirectionModel` methods around them."""

    family: ClassVar[str]
    config_type: ClassVar[type[SequenceNetSettings]]

    def __init__(self, params: dict[str, Any], features: list[str],
                 config: SequenceNetSettings, *, device: str = "auto", threads: int = 2,
                 seed: int = 0) -> None:
        if not features:
            raise ValueError(f"{self.family} needs at least one feature column")
        self.params = {**self._defaults(config), **params}
        self.features = list(features)
        self.config = config
        self.device_preference = device
        self.device = select_device(device)
        self.threads = threads
        self.seed = seed
        self.scaler: Scaler | None = None
        self.net: nn.Module | None = None
        self.history: list[float] = []

    # -- what a family defines -------------------------------------------------------------

    @staticmethod
    def _architecture_defaults(config: Any) -> dict[str, Any]:
        """The configured width and depth."""
        raise NotImplementedError

    @staticmethod
    def _architecture_space(trial: optuna.Trial, config: Any) -> dict[str, Any]:
        """Optuna's choices of width and depth around the configured ones."""
        raise NotImplementedError

    def _build_net(self) -> nn.Module:
        raise NotImplementedError

    def _batch_maker(self, frame: pd.DataFrame) -> BatchMaker:
        raise NotImplementedError

    @property
    def context_bars(self) -> int:
        return self.config.sequence_bars

    # -- construction and the Optuna search space, from the family's config section ----------

    @classmethod
    def family_config(cls, settings: TradebotSettings) -> Any:
        """The family's section: ``[model.lstm]`` or ``[model.transformer]``."""
        return getattr(settings.model, cls.family)

    @classmethod
    def from_params(cls, params: dict[str, Any], features: list[str],
                    settings: TradebotSettings, seed: int) -> SequenceDirectionModel:
        return cls(params, features, cls.family_config(settings), device=settings.model.device,
                   threads=settings.model.torch_threads, seed=seed)

    @classmethod
    def _defaults(cls, config: SequenceNetSettings) -> dict[str, Any]:
        """The hyperparameters the config sets (Optuna's trial 0)."""
        return cls._architecture_defaults(config) | {
            "dropout": config.dropout, "learning_rate": config.learning_rate,
            "epochs": config.epochs}

    @classmethod
    def default_params(cls, settings: TradebotSettings) -> dict[str, Any]:
        return cls._defaults(cls.family_config(settings))

    @classmethod
    def search_space(cls, trial: optuna.Trial, settings: TradebotSettings) -> dict[str, Any]:
        """The family's width and depth choices, then dropout, a learning rate within 10x of
        the configured one and 1..epochs epochs."""
        cfg = cls.family_config(settings)
        return cls._architecture_space(trial, cfg) | {
            "dropout": trial.suggest_float("dropout", 0.0, max(0.5, cfg.dropout)),
            "learning_rate": trial.suggest_float("learning_rate", cfg.learning_rate / 10,
                                                 cfg.learning_rate * 10, log=True),
            "epochs": trial.suggest_int("epochs", 1, cfg.epochs),
        }

    # -- the DirectionModel methods --------------------------------------------------------

    def fit(self, frame: pd.DataFrame, y: np.ndarray, *,
            valid: tuple[pd.DataFrame, np.ndarray] | None = None,
            pruning: Pruning | None = None) -> SequenceDirectionModel:
        """Fit the scaler and a fresh net for ``params['epochs']`` epochs; with ``valid``,
        the validation AUC per epoch lands in ``history`` (and goes to ``pruning``)."""
        set_threads(self.threads)
        set_seeds(self.seed, self.device)
        self.scaler = Scaler.fit(frame, self.features)
        self.net = self._build_net().to(self.device)
        self.history = self._train(frame, y, int(self.params["epochs"]), valid, pruning)
        return self

    def continue_fit(self, frame: pd.DataFrame, y: np.ndarray,
                     steps: int | None = None) -> SequenceDirectionModel:
        """Fine-tune the fitted net for ``steps`` epochs (default ``fine_tune_epochs``) on
        ``frame``; the scaler stays."""
        self._require_fitted()
        set_threads(self.threads)
        self._train(frame, y, steps or self.config.fine_tune_epochs, None, None)
        return self

    def predict_proba(self, frame: pd.DataFrame, at: np.ndarray | None = None) -> np.ndarray:
        """P(up) per row of ``frame`` (float64, the frame's row order), or of the rows at
        positions ``at`` only (the other rows are their context)."""
        net = self._require_fitted()
        rows = len(frame) if at is None else np.asarray(at, np.int64)
        if len(frame) == 0 or (at is not None and len(at) == 0):
            return np.empty(0, np.float64)
        set_threads(self.threads)
        logits = predict_logits(net, self._batch_maker(frame), rows, self.device)
        return 1.0 / (1.0 + np.exp(-logits))

    def save(self, directory: Path) -> None:
        net = self._require_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.cpu() for k, v in net.state_dict().items()}, directory / WEIGHTS_FILE)
        assert self.scaler is not None
        meta = {"family": self.family, "params": self.params, "features": self.features,
                "scaler": self.scaler.to_dict(), "config": self.config.model_dump(),
                "device": self.device_preference, "torch_threads": self.threads,
                "seed": self.seed}
        (directory / META_FILE).write_text(json.dumps(meta, indent=2, default=_plain),
                                           encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, device: str | None = None) -> SequenceDirectionModel:
        """The saved model on the saved device preference, or ``device`` when given."""
        directory = Path(directory)
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        if meta.get("family") != cls.family:
            raise ValueError(f"{directory} holds a {meta.get('family')!r} model, "
                             f"not {cls.family!r}")
        model = cls(meta["params"], meta["features"], cls.config_type(**meta["config"]),
                    device=device or meta["device"], threads=meta["torch_threads"],
                    seed=meta["seed"])
        model.scaler = Scaler.from_dict(meta["scaler"])
        net = model._build_net()
        state = torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
        model.net = net.to(model.device)
        return model

    # -- helpers ---------------------------------------------------------------------------

    def _require_fitted(self) -> nn.Module:
        if self.net is None or self.scaler is None:
            raise RuntimeError(f"{self.family} model is not fitted")
        return self.net

    def _scaled(self, frame: pd.DataFrame) -> np.ndarray:
        assert self.scaler is not None
        return self.scaler.transform(frame)

    def _train(self, frame: pd.DataFrame, y: np.ndarray, epochs: int,
               valid: tuple[pd.DataFrame, np.ndarray] | None,
               pruning: Pruning | None) -> list[float]:
        net = self._require_fitted()
        valid_batches = None
        if valid is not None:
            valid_frame, valid_y = valid
            valid_batches = (self._batch_maker(valid_frame), _labels(valid_y, len(valid_frame)))
        return train_epochs(net, self._batch_maker(frame), _labels(y, len(frame)),
                            epochs=epochs, learning_rate=float(self.params["learning_rate"]),
                            batch_size=self.config.batch_size, device=self.device,
                            seed=self.seed, valid=valid_batches, pruning=pruning)
