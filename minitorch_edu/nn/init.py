"""Weight initialisation, written out: fans, gains and the bounds they give.

For a weight of shape (out, in, k1, k2, ...) the receptive field is k1 * k2 * ...:

    fan_in  = in  * receptive field      (inputs that feed one output)
    fan_out = out * receptive field      (outputs that one input feeds)

Keeping the variance of activations steady through a layer asks for Var(w) = gain^2 / fan:

    kaiming_uniform_:  U(-bound, bound),  bound = gain * sqrt(3 / fan)
    kaiming_normal_:   N(0, std^2),       std   = gain / sqrt(fan)
    xavier_uniform_:   U(-a, a),          a     = gain * sqrt(6 / (fan_in + fan_out))
    xavier_normal_:    N(0, std^2),       std   = gain * sqrt(2 / (fan_in + fan_out))

(a uniform U(-b, b) has variance b^2 / 3, hence the sqrt(3)). Every function fills the
tensor in place and draws from torch's generator with the same calls, in the same order,
as torch's nn.init, so after the same manual_seed both give the same numbers.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch

from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.autograd.torch_function import type_name

_LINEAR_LIKE = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)


def _raw(tensor: Any) -> torch.Tensor:
    """The torch.Tensor to fill: our Tensor's (or Parameter's) `.data`, or a torch.Tensor."""
    if isinstance(tensor, Tensor):
        return tensor.data
    if isinstance(tensor, torch.Tensor):
        return tensor
    raise TypeError(f"expected a Tensor to initialise, got {type_name(tensor)}")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor that keeps activations' variance steady after `nonlinearity`.

    linear, conv, sigmoid: 1;  tanh: 5/3;  relu: sqrt(2);
    leaky_relu with slope s (default 0.01): sqrt(2 / (1 + s^2));  selu: 3/4.
    """
    if nonlinearity in _LINEAR_LIKE or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif isinstance(param, int | float) and not isinstance(param, bool):
            negative_slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def calculate_fan_in_and_fan_out(tensor: Any) -> tuple[int, int]:
    """(in * receptive field, out * receptive field) for a weight of shape (out, in, *kernel)."""
    raw = _raw(tensor)
    if raw.dim() < 2:
        raise ValueError(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"
        )
    receptive_field = 1
    for size in raw.shape[2:]:
        receptive_field *= size
    return raw.size(1) * receptive_field, raw.size(0) * receptive_field


_calculate_fan_in_and_fan_out = calculate_fan_in_and_fan_out  # torch's private name


def _fan(tensor: Any, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of ['fan_in', 'fan_out']")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(
    tensor: Any, a: float = 0.0, b: float = 1.0, generator: torch.Generator | None = None
) -> Any:
    """Fill with U(a, b)."""
    _raw(tensor).uniform_(a, b, generator=generator)
    return tensor


def normal_(
    tensor: Any, mean: float = 0.0, std: float = 1.0, generator: torch.Generator | None = None
) -> Any:
    """Fill with N(mean, std^2)."""
    _raw(tensor).normal_(mean, std, generator=generator)
    return tensor


def constant_(tensor: Any, val: float) -> Any:
    _raw(tensor).fill_(val)
    return tensor


def zeros_(tensor: Any) -> Any:
    _raw(tensor).zero_()
    return tensor


def ones_(tensor: Any) -> Any:
    _raw(tensor).fill_(1.0)
    return tensor


def kaiming_uniform_(
    tensor: Any,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: torch.Generator | None = None,
) -> Any:
    """Fill with U(-bound, bound), bound = gain * sqrt(3 / fan) (He et al., 2015).

    `a` is the negative slope of the leaky_relu that follows. Linear and Conv layers use
    a = sqrt(5), which gives bound = 1 / sqrt(fan_in).
    """
    if 0 in _raw(tensor).shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor: Any,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: torch.Generator | None = None,
) -> Any:
    """Fill with N(0, std^2), std = gain / sqrt(fan) (He et al., 2015)."""
    if 0 in _raw(tensor).shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan)
    return normal_(tensor, 0, std, generator)


def xavier_uniform_(
    tensor: Any, gain: float = 1.0, generator: torch.Generator | None = None
) -> Any:
    """Fill with U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010)."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor: Any, gain: float = 1.0, generator: torch.Generator | None = None) -> Any:
    """Fill with N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def default_bias_bound(weight: Any) -> float:
    """Linear and Conv draw their bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    fan_in, _ = calculate_fan_in_and_fan_out(weight)
    return 1 / math.sqrt(fan_in) if fan_in > 0 else 0
