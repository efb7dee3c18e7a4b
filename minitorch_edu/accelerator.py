"""`minitorch_edu.accelerator`: the device-neutral questions of newer tutorials
(`torch.accelerator.current_accelerator().type if torch.accelerator.is_available() else
"cpu"`), answered as torch answers them."""

from __future__ import annotations

import torch


def is_available() -> bool:
    return _accelerator() is not None and bool(_accelerator().is_available())


def current_accelerator() -> torch.device | None:
    """The accelerator's device (cuda, mps, ...), or None where there is none."""
    return _accelerator().current_accelerator() if _accelerator() is not None else None


def device_count() -> int:
    return _accelerator().device_count() if _accelerator() is not None else 0


def _accelerator():  # noqa: ANN202 - torch.accelerator, in torch 2.6 and later
    return getattr(torch, "accelerator", None)
