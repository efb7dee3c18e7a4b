"""Image transforms, as torchvision's `ToTensor` and `Normalize` do them for grayscale images.

    ToTensor:   x = pixel / max_value                 (0..255 -> [0, 1]; digits use max 16)
    Normalize:  x = (x - mean[c]) / std[c]           (per channel c)

They act on plain torch.Tensors (or NumPy arrays) of a whole stack of images at once; datasets
apply them once when loading, not per sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

# Mean and standard deviation of every MNIST training pixel after ToTensor (the usual values).
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


class ToTensor:
    """Grayscale pixel values in 0..max_value -> float32 in [0, 1], with a channel dim added.

    (H, W) -> (1, H, W); (N, H, W) -> (N, 1, H, W). max_value is 255 for 8-bit images (as in
    torchvision) and 16 for scikit-learn's digits.
    """

    def __init__(self, max_value: float = 255.0) -> None:
        if not (isinstance(max_value, int | float) and math.isfinite(max_value) and max_value > 0):
            raise ValueError(f"ToTensor: max_value must be a positive number, got {max_value!r}")
        self.max_value = float(max_value)

    def __call__(self, images: Any) -> torch.Tensor:
        if not isinstance(images, torch.Tensor):
            images = torch.as_tensor(np.asarray(images))
        if images.dim() < 2:
            raise ValueError(
                f"ToTensor: expected images of shape (H, W) or (N, H, W), got {tuple(images.shape)}"
            )
        return (images.to(torch.float32) / self.max_value).unsqueeze(-3)

    def __repr__(self) -> str:
        return f"ToTensor(max_value={self.max_value:g})"


class Normalize:
    """x[..., c, :, :] = (x[..., c, :, :] - mean[c]) / std[c], like torchvision's Normalize."""

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float]) -> None:
        self.mean = _per_channel("mean", mean)
        self.std = _per_channel("std", std)
        if len(self.mean) != len(self.std):
            raise ValueError(
                f"Normalize: mean has {len(self.mean)} channels but std has {len(self.std)}"
            )
        if any(value <= 0 for value in self.std):
            raise ValueError(f"Normalize: std must be positive in every channel, got {self.std}")

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or not images.is_floating_point():
            raise TypeError(
                "Normalize: expected a floating-point torch.Tensor of shape (..., C, H, W) "
                "(apply ToTensor first)"
            )
        if images.dim() < 3 or images.shape[-3] != len(self.mean):
            raise ValueError(
                f"Normalize: expected images of shape (..., C, H, W) with C={len(self.mean)} "
                f"channels, got {tuple(images.shape)}"
            )
        mean = torch.tensor(self.mean, dtype=images.dtype, device=images.device).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=images.dtype, device=images.device).view(-1, 1, 1)
        return (images - mean) / std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class Compose:
    """Apply transforms one after another: Compose([ToTensor(), Normalize(m, s)])."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, images: Any) -> Any:
        for transform in self.transforms:
            images = transform(images)
        return images

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(repr(transform) for transform in self.transforms) + "])"


def normalization_statistics(
    normalize: bool | tuple[float, float] | None, standard: tuple[float, float]
) -> tuple[float, float] | None:
    """A dataset loader's `normalize` argument as (mean, std), or None for no normalisation.

    normalize=False or None -> None; True -> `standard`, the dataset's own statistics;
    a (mean, std) pair -> that pair.
    """
    if normalize is None or normalize is False:
        return None
    if normalize is True:
        return standard
    if isinstance(normalize, tuple | list) and len(normalize) == 2:
        return float(normalize[0]), float(normalize[1])
    raise ValueError(f"normalize must be True, False or a (mean, std) pair, got {normalize!r}")


def _per_channel(name: str, value: float | Sequence[float]) -> tuple[float, ...]:
    values = (value,) if isinstance(value, int | float) else tuple(value)
    if not values or not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
        raise ValueError(
            f"Normalize: {name} must be finite numbers, one per channel; got {value!r}"
        )
    return tuple(float(v) for v in values)
