"""`minitorch_edu.backends`: `backends.mps.is_available()`, as older tutorials ask when they
pick a device (`"cuda" if ... else "mps" if torch.backends.mps.is_available() else "cpu"`)."""

from __future__ import annotations

from types import SimpleNamespace

import torch

mps = SimpleNamespace(
    is_available=lambda: torch.backends.mps.is_available(),
    is_built=lambda: torch.backends.mps.is_built(),
)
cuda = SimpleNamespace(is_built=lambda: torch.backends.cuda.is_built())
