"""The torch device of the sequence families, from ``[model].device``."""

from __future__ import annotations

import torch

from tradebot.kernel.errors import ConfigError


def select_device(preference: str) -> torch.device:
    """``cpu``; ``cuda`` (a :class:`ConfigError` when no CUDA device is usable); ``auto``: CUDA
    when available, else the CPU."""
    if preference == "cpu":
        return torch.device("cpu")
    if preference == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("model.device = 'cuda' but torch sees no usable CUDA device "
                              f"(CPU-only torch {torch.__version__}, or no GPU/driver): set "
                              "model.device to 'auto' or 'cpu'")
        return torch.device("cuda")
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    raise ConfigError(f"unknown model.device {preference!r}: use 'auto', 'cpu' or 'cuda'")
