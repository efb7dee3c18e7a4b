"""Results without a gradient: comparisons, logical ops, argmax/argmin.

Their outputs are piecewise constant (bool or integer), so no gradient flows through
them; they return plain Tensors with no `grad_fn`.
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np
import torch

from minitorch_edu.autograd.tensor import Tensor


def _raw(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def _no_grad(op: Any, *args: Any, **kwargs: Any) -> Tensor:
    raw = [_raw(a) for a in args]
    if builtins.any(
        isinstance(a, np.ndarray) for a in raw
    ):  # a NumPy constant, on the others' device
        device = next((a.device for a in raw if isinstance(a, torch.Tensor)), None)
        raw = [torch.as_tensor(a, device=device) if isinstance(a, np.ndarray) else a for a in raw]
    return Tensor._wrap(op(*raw, **kwargs))


def eq(a: Any, b: Any) -> Tensor:
    return _no_grad(torch.eq, a, b)


def ne(a: Any, b: Any) -> Tensor:
    return _no_grad(torch.ne, a, b)


def lt(a: Any, b: Any) -> Tensor:
    return _no_grad(torch.lt, a, b)


def le(a: Any, b: Any) -> Tensor:
    return _no_grad(torch.le, a, b)


def gt(a: Any, b: Any) -> Tensor:
    return _no_grad(torch.gt, a, b)


def ge(a: Any, b: Any) -> Tensor:
    return _no_grad(torch.ge, a, b)


def logical_and(a: Any, b: Any) -> Tensor:
    return _no_grad(torch.logical_and, a, b)


def logical_or(a: Any, b: Any) -> Tensor:
    return _no_grad(torch.logical_or, a, b)


def logical_not(a: Any) -> Tensor:
    return _no_grad(torch.logical_not, a)


# The operators & | ^ ~ are bitwise, as torch's: on bool tensors they are the logical ops.
def bitwise_and(a: Any, b: Any) -> Tensor:
    return _no_grad(torch.bitwise_and, a, b)


def bitwise_or(a: Any, b: Any) -> Tensor:
    return _no_grad(torch.bitwise_or, a, b)


def bitwise_xor(a: Any, b: Any) -> Tensor:
    return _no_grad(torch.bitwise_xor, a, b)


def bitwise_not(a: Any) -> Tensor:
    return _no_grad(torch.bitwise_not, a)


def isnan(a: Any) -> Tensor:
    return _no_grad(torch.isnan, a)


def all(a: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Whether every element (along `dim`, an int or a tuple; None: all) is nonzero."""
    return _no_grad(torch.all, a, dim=dim, keepdim=keepdim)


def any(a: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Whether some element (along `dim`, an int or a tuple; None: all) is nonzero."""
    return _no_grad(torch.any, a, dim=dim, keepdim=keepdim)


def argmax(a: Any, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return _no_grad(torch.argmax, a, dim=dim, keepdim=keepdim)


def argmin(a: Any, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return _no_grad(torch.argmin, a, dim=dim, keepdim=keepdim)
