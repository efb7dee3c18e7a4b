"""`minitorch_edu.cuda`: what ported code asks of `torch.cuda` (is there a GPU?).

minitorch_edu computes on torch tensors, so a GPU torch sees is one it uses: these answer
exactly as torch.cuda's functions of the same names.
"""

from __future__ import annotations

import torch


def is_available() -> bool:
    """Whether torch finds a CUDA GPU (then `.to("cuda")` puts tensors and models on it)."""
    return torch.cuda.is_available()


def device_count() -> int:
    return torch.cuda.device_count()


def current_device() -> int:
    return torch.cuda.current_device()


def get_device_name(device: int | str | torch.device | None = None) -> str:
    return torch.cuda.get_device_name(device)


def manual_seed(seed: int) -> None:
    """Seed the current GPU's generator (the CPU's is seeded by `minitorch_edu.manual_seed`)."""
    torch.cuda.manual_seed(seed)


def manual_seed_all(seed: int) -> None:
    torch.cuda.manual_seed_all(seed)


def synchronize(device: int | str | torch.device | None = None) -> None:
    """Wait for the GPU's queued work to finish (before reading a clock, say)."""
    torch.cuda.synchronize(device)
