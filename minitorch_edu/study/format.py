"""How the study tools show numbers, tensors and names.

    format_number(0.123456789)        '0.1235'   (and -0.0 is '0')
    snapshot(t)                       a copy of t's numbers (or, for a big t, a summary)
    snapshot(t).text(print_limit=16)  '[[0.1, 0.2], [0.3, 0.4]]'  or
                                      'float64[64, 784] min -2.1 max 3 mean 0.012 norm 221.4'

Names: every tool that prints tensors accepts `names`, either a dict {tensor: "name"} (or
{"name": tensor}) or any object with `named_parameters()` (a Module), and labels tensors
it does not know by what made them: `leaf1`, `const1`, `matmul1`, `tanh2`, ...
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from minitorch_edu.autograd.tensor import Tensor

Number = int | float | bool


def format_number(x: Any, digits: int = 4) -> str:
    """A number in `digits` significant digits: 0.1235, -3, 1.2e-07, nan."""
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    x = float(x)
    if x == 0:  # -0.0 too: a sign on zero only confuses
        return "0"
    return f"{x:.{digits}g}"


def format_shape(shape: Iterable[int]) -> str:
    """`[4, 5]`; a scalar is `[]`."""
    return "[" + ", ".join(str(size) for size in shape) + "]"


def format_values(values: torch.Tensor, digits: int = 4) -> str:
    """A small tensor as nested lists of short numbers, one row per line from 2-D up:

    [[0.1, -2],
     [3.5, 4]]
    """

    def show(item: Any, depth: int) -> str:
        if not isinstance(item, list):
            return format_number(item, digits)
        parts = [show(x, depth + 1) for x in item]
        if item and isinstance(item[0], list):
            return "[" + (",\n" + " " * (depth + 1)).join(parts) + "]"
        return "[" + ", ".join(parts) + "]"

    return show(values.tolist(), 0)


@dataclass(frozen=True)
class Snapshot:
    """A tensor as it was at one moment: a copy of its numbers, or a summary of them.

    `values` is a CPU copy (later in-place changes of the tensor do not reach it), or None
    when the tensor was too big to keep; the summary (min, max, mean, norm) is always there
    for non-empty tensors.
    """

    shape: tuple[int, ...]
    dtype: str
    device: str
    values: torch.Tensor | None
    min: float | None
    max: float | None
    mean: float | None
    norm: float | None

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def stored(self) -> bool:
        """Whether the numbers themselves were kept (not only the summary)."""
        return self.values is not None

    def summary(self, digits: int = 4) -> str:
        """`float64[64, 784] min -2.1 max 3 mean 0.012 norm 221.4`."""
        head = f"{self.dtype}{format_shape(self.shape)}"
        if self.min is None:
            return head
        stats = (("min", self.min), ("max", self.max), ("mean", self.mean), ("norm", self.norm))
        return head + "".join(f" {name} {format_number(v, digits)}" for name, v in stats)

    def text(self, print_limit: int = 16, digits: int = 4) -> str:
        """The numbers themselves when there are at most `print_limit`, else the summary."""
        if self.values is not None and self.numel <= print_limit:
            return format_values(self.values, digits)
        return self.summary(digits)

    def to_dict(self, values: bool = True) -> dict[str, Any]:
        """JSON-ready: shape, dtype, device, summary, and the numbers when kept."""
        result: dict[str, Any] = {
            "shape": list(self.shape),
            "dtype": self.dtype,
            "device": self.device,
            "summary": {
                "min": _json_number(self.min),
                "max": _json_number(self.max),
                "mean": _json_number(self.mean),
                "norm": _json_number(self.norm),
            },
        }
        if values and self.values is not None:
            result["values"] = _json_numbers(self.values.tolist())
        return result


def snapshot(x: Any, store: bool = True) -> Snapshot:
    """Copy a tensor's numbers (to the CPU) and summarise them; `store=False`: summary only.

    Accepts our Tensor, a torch.Tensor or a NumPy array.
    """
    if isinstance(x, Tensor):
        x = x.data
    elif isinstance(x, np.ndarray):
        x = torch.as_tensor(x)
    x = x.detach()
    values = x.to("cpu", copy=True) if store else None
    low = high = mean = norm = None
    if x.numel() and not x.is_complex():
        as_float = x.double() if not x.is_floating_point() else x
        low, high = as_float.min().item(), as_float.max().item()
        mean = as_float.mean(dtype=torch.float64).item()
        norm = as_float.double().norm().item()
    return Snapshot(
        shape=tuple(x.shape),
        dtype=str(x.dtype).removeprefix("torch."),
        device=str(x.device),
        values=values,
        min=low,
        max=high,
        mean=mean,
        norm=norm,
    )


def _json_number(x: Any) -> Any:
    """Numbers for strict JSON: nan and the infinities become the strings 'nan', 'inf', '-inf'."""
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def _json_numbers(item: Any) -> Any:
    if isinstance(item, list):
        return [_json_numbers(x) for x in item]
    return _json_number(item)


# ---------------------------------------------------------------------- names
def name_table(names: Any) -> dict[int, str]:
    """`names` as {id(tensor): name}.

    Accepts None, a dict {tensor: name}, a dict {name: tensor}, or any object with
    `named_parameters()` (a Module). Tensors are found by identity, as dict keys are in torch.
    """
    if names is None:
        return {}
    if hasattr(names, "named_parameters"):
        pairs = [(tensor, name) for name, tensor in names.named_parameters()]
    elif isinstance(names, dict):
        pairs = [
            (value, key) if isinstance(key, str) else (key, value) for key, value in names.items()
        ]
    else:
        raise TypeError(
            "names must be a dict {tensor: name} or an object with named_parameters() "
            f"(a Module), got {type(names).__name__}"
        )
    table = {}
    for tensor, name in pairs:
        if not isinstance(tensor, Tensor) or not isinstance(name, str):
            raise TypeError(
                f"names: expected minitorch_edu Tensors named by strings, got "
                f"{type(tensor).__name__} -> {type(name).__name__}"
            )
        table[id(tensor)] = name
        if tensor.grad_fn is not None:  # a named result names the node that made it
            table[id(tensor.grad_fn)] = name
    return table


def op_label(node: Any) -> str:
    """What made a node's output, lower case: `MatMul` -> 'matmul'."""
    return type(node).__name__.lower()


class Labeller:
    """Stable labels for the tensors and graph nodes one tool shows.

    A named tensor keeps its name; others get what made them and a count: `leaf1` (a leaf
    that requires grad), `const1` (a tensor that does not), `matmul1` (a MatMul's output).
    A node and the tensor it produced share one label. Objects are recognised by identity,
    checked through a weak reference so that a new object at a dead one's address is new.
    """

    def __init__(self, names: Any = None) -> None:
        self.names = name_table(names)
        self._names_source = names  # keeps named tensors alive, so their ids stay theirs
        self._known: dict[int, tuple[Any, int, str]] = {}  # id -> (weak ref, number, label)
        self._counts: dict[str, int] = {}

    def identify(self, obj: Any, prefix: str) -> tuple[int, str]:
        """(number, label) of a tensor or node; the same object always gets the same pair."""
        entry = self._known.get(id(obj))
        if entry is not None and entry[0]() is obj:
            return entry[1], entry[2]
        label = self.names.get(id(obj)) or self.fresh(prefix)
        number = len(self._known)
        self._known[id(obj)] = (weakref.ref(obj), number, label)
        return number, label

    def known(self, obj: Any) -> tuple[int, str] | None:
        """(number, label) of an object seen before, else None."""
        entry = self._known.get(id(obj))
        return entry[1:] if entry is not None and entry[0]() is obj else None

    def fresh(self, prefix: str) -> str:
        self._counts[prefix] = self._counts.get(prefix, 0) + 1
        return f"{prefix}{self._counts[prefix]}"

    def tensor(self, tensor: Tensor) -> tuple[int, str]:
        """A result is labelled as its node; a leaf as `leaf` (requires grad) or `const`."""
        if tensor.grad_fn is not None:
            return self.node(tensor.grad_fn)
        return self.identify(tensor, "leaf" if tensor.requires_grad else "const")

    def node(self, node: Any) -> tuple[int, str]:
        return self.identify(node, op_label(node))

    def label(self, obj: Any) -> str:
        """The label of a tensor or a node."""
        return (self.tensor(obj) if isinstance(obj, Tensor) else self.node(obj))[1]


def option_text(value: Any) -> str:
    """An op's option as a person reads it: numbers short, tensors by their shape."""
    if isinstance(value, torch.Tensor):
        return f"tensor{format_shape(value.shape)}"
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return format_number(value, 6)
    return repr(value)
