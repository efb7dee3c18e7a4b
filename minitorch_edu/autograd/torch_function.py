"""torch's functions called on our Tensors run our ops: the `__torch_function__` protocol.

Our Tensor is not a `torch.Tensor` (it holds one, `.data`), so torch's functions cannot
compute on it. Before refusing an argument it does not know, torch looks for a
`__torch_function__` method on it (also inside lists: `torch.cat([a, b])`) and, when there is
one, hands the whole call over:

    Tensor.__torch_function__(func, types, args, kwargs)

`dispatch` finds our op of the same name and calls it, so the result is our Tensor, recorded
in our graph:

    torch.argmax(out, 1)              minitorch_edu.argmax(out, 1)
    torch.softmax(out, 1)             minitorch_edu.nn.functional.softmax(out, 1)
    torch.nn.functional.relu(x)       minitorch_edu.nn.functional.relu(x)
    torch_tensor + x                  minitorch_edu.Tensor.add(torch_tensor, x)

A torch function we have no op for raises NotImplementedError naming it; a torch tensor that
requires grad (a torch.nn parameter, say) cannot join our graph, and says so.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

# Functions of these torch modules are looked up among ours under the same name.
_TOP_LEVEL = ("torch", "torch.functional")
_FUNCTIONAL = ("torch.nn.functional", "torch._C._nn")
# torch functions whose answer has no gradient (a bool, a count): computed by torch on `.data`.
_ON_DATA = frozenset(
    "equal allclose isclose isfinite isinf isnan isneginf isposinf is_nonzero numel "
    "is_floating_point is_complex count_nonzero nonzero argwhere argsort bincount unique".split()
)


def type_name(value: Any) -> str:
    """'minitorch_edu.Tensor', 'torch.Tensor', 'numpy.ndarray', 'int': a type, with its library
    where two libraries share a name."""
    kind = type(value)
    module = kind.__module__.split(".")[0]
    if module in ("minitorch_edu", "torch", "numpy"):
        return f"{module}.{kind.__qualname__}"
    return kind.__qualname__


def torch_name(func: Callable) -> str:
    """How a torch user writes `func`: 'torch.argmax', 'torch.nn.functional.linear',
    'torch.Tensor.add'."""
    name = getattr(func, "__name__", repr(func))
    module = getattr(func, "__module__", None)
    if _is_tensor_method(func):
        return f"torch.Tensor.{name}"
    if module in _FUNCTIONAL:
        return f"torch.nn.functional.{name}"
    if module in _TOP_LEVEL:
        return f"torch.{name}"
    if module and module.startswith("torch._C._"):  # torch.fft.fft is torch._C._fft.fft_fft
        namespace = module.removeprefix("torch._C._")
        return f"torch.{namespace}.{name.removeprefix(namespace + '_')}"
    return f"{module}.{name}" if module else name


def _is_tensor_method(func: Callable) -> bool:
    owner = getattr(func, "__objclass__", None)
    if owner is not None:
        return issubclass(torch.Tensor, owner)
    return getattr(func, "__qualname__", "").startswith(("Tensor.", "TensorBase."))


def dispatch(func: Callable, args: tuple, kwargs: dict | None) -> Any:
    """Run torch's `func(*args, **kwargs)` as our op of the same name."""
    from minitorch_edu.autograd.tensor import Tensor

    kwargs = dict(kwargs or {})
    name = getattr(func, "__name__", "")
    _refuse_torch_autograd(func, args, kwargs)
    if name in _ON_DATA and not _is_tensor_method(func):
        result = func(*_unwrap(args), **_unwrap(kwargs))
        return Tensor._wrap(result) if isinstance(result, torch.Tensor) else result
    ours = _our_function(func, name)
    if ours is None:
        raise NotImplementedError(
            f"{torch_name(func)} was called with a minitorch_edu Tensor, and minitorch_edu has no "
            f"op '{name}'. Use its own ops (see dir(minitorch_edu) and "
            "minitorch_edu.nn.functional), or call torch on tensor.data (a torch.Tensor) where "
            "no gradient is needed."
        )
    if _is_tensor_method(func) and args and not isinstance(args[0], Tensor):
        args = (Tensor._wrap(args[0].detach()), *args[1:])  # `torch_tensor + ours`: a constant
    return ours(*args, **_our_keywords(func, ours, kwargs, args))


def _our_function(func: Callable, name: str) -> Callable | None:
    import minitorch_edu
    import minitorch_edu.nn.functional as functional
    from minitorch_edu.autograd.tensor import Tensor

    module = getattr(func, "__module__", None)
    if _is_tensor_method(func):  # the method, or else the function: x.lt(y) is mt.lt(x, y)
        found = getattr(Tensor, name, None) or getattr(minitorch_edu, name, None)
    elif module in _FUNCTIONAL:
        found = getattr(functional, name, None)
    elif module in _TOP_LEVEL:
        found = getattr(minitorch_edu, name, None) or getattr(functional, name, None)
    else:
        found = None
    return found if callable(found) and not isinstance(found, type) else None


def _our_keywords(func: Callable, ours: Callable, kwargs: dict, args: tuple) -> dict:
    """kwargs for our function: torch's private ones (`_stacklevel`) dropped, and arguments we
    do not have dropped where torch's call leaves them at their default (`size_average=None`)."""
    try:
        accepted = inspect.signature(ours).parameters
    except (TypeError, ValueError):
        return kwargs
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        return {key: value for key, value in kwargs.items() if not key.startswith("_")}
    try:
        torch_defaults = {key: p.default for key, p in inspect.signature(func).parameters.items()}
    except (TypeError, ValueError):
        torch_defaults = {}
    kept = {}
    for key, value in kwargs.items():
        if key in accepted:
            kept[key] = value
        elif key.startswith("_") or value is None or _is_default(torch_defaults, key, value):
            continue
        else:
            raise NotImplementedError(
                f"{torch_name(func)} was called with a minitorch_edu Tensor and {key}={value!r}; "
                f"minitorch_edu's {getattr(ours, '__name__', '')} has no argument {key!r}"
            )
    return kept


def _is_default(defaults: dict, key: str, value: Any) -> bool:
    default = defaults.get(key, inspect.Parameter.empty)
    return type(default) is type(value) and default == value


def _refuse_torch_autograd(func: Callable, args: tuple, kwargs: dict) -> None:
    for value in _leaves(args, kwargs):
        if isinstance(value, torch.Tensor) and value.requires_grad:
            kind = "a torch.nn.Parameter" if type(value).__name__ == "Parameter" else "one"
            raise TypeError(
                f"{torch_name(func)} got a minitorch_edu Tensor and a torch.Tensor that requires "
                f"grad ({kind} of shape {list(value.shape)}): gradients cannot flow between "
                "torch's autograd and minitorch_edu's. Build the model from minitorch_edu.nn, "
                "or give torch's modules torch tensors (tensor.data)."
            )


def _leaves(*values: Any) -> Any:
    for value in values:
        if isinstance(value, list | tuple):
            yield from _leaves(*value)
        elif isinstance(value, dict):
            yield from _leaves(*value.values())
        else:
            yield value


def _unwrap(value: Any) -> Any:
    from minitorch_edu.autograd.tensor import Tensor

    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, list | tuple):
        return type(value)(_unwrap(item) for item in value)
    if isinstance(value, dict):
        return {key: _unwrap(item) for key, item in value.items()}
    return value
