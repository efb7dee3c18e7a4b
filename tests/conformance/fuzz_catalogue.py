"""What the differential fuzz test draws: bad and edge inputs, and the ops that get them.

Tensors come in every dtype a user meets (floating, integer, bool, complex), with empty
dims and 0-d shapes, with edge values (±0, ±inf, nan, 1e±300, 65504, dtype limits), in
other memory layouts, and sometimes requiring grad. Any argument may instead be a Python
number or something that is no tensor at all (a string, None, a list). Dims may be out of
range, repeated, or of the wrong type.

Each `FuzzOp` names torch's callable and ours, which take the same arguments (torch
tensors are made ours before the call), and a strategy for those arguments as
`(args, kwargs)`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as torch_functional
from hypothesis import strategies as st

import minitorch_edu as mt
import minitorch_edu.nn.functional as F

FLOATING = [torch.float64, torch.float32, torch.float16, torch.bfloat16]
INTEGER = [torch.int64, torch.int32, torch.uint8]
DTYPES = [*FLOATING, *INTEGER, torch.bool, torch.complex64]

EDGE_FLOATS = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    -2.5,
    3.0,
    1e-300,
    -1e-300,
    1e300,
    -1e300,
    65504.0,
    1e-8,
    math.inf,
    -math.inf,
    math.nan,
]


def _floats() -> st.SearchStrategy[float]:
    return st.one_of(st.sampled_from(EDGE_FLOATS), st.floats(-10, 10))


def _elements(dtype: torch.dtype) -> st.SearchStrategy[Any]:
    if dtype == torch.bool:
        return st.booleans()
    if dtype.is_complex:
        return st.builds(complex, _floats(), _floats())
    if dtype.is_floating_point:
        return _floats()
    info = torch.iinfo(dtype)
    edges = [v for v in (0, 1, -1, 2, -2, 7, info.min, info.max) if info.min <= v <= info.max]
    return st.one_of(st.sampled_from(edges), st.integers(info.min, info.max))


@st.composite
def tensors(
    draw: st.DrawFn,
    dtypes: list[torch.dtype] = DTYPES,
    shape: Any = None,
    min_dims: int = 0,
    max_dims: int = 3,
    max_side: int = 3,
) -> torch.Tensor:
    """A tensor of a drawn dtype and shape (sides from 0), edge values, any layout."""
    dtype = draw(st.sampled_from(dtypes))
    if shape is None:
        shape = draw(st.lists(st.integers(0, max_side), min_size=min_dims, max_size=max_dims))
    values = draw(st.lists(_elements(dtype), min_size=math.prod(shape), max_size=math.prod(shape)))
    with torch.no_grad():
        tensor = torch.tensor(values, dtype=dtype).reshape(shape)
        if tensor.dim() >= 2 and draw(st.booleans()):  # same values, column-major memory
            tensor = tensor.transpose(0, 1).contiguous().transpose(0, 1)
    if (dtype.is_floating_point or dtype.is_complex) and draw(st.booleans()):
        tensor.requires_grad_()
    return tensor


JUNK = ["a", None, [1.0, 2.0], (2,), 1.5j]


def numbers() -> st.SearchStrategy[Any]:
    return st.one_of(st.booleans(), st.integers(-3, 3), _floats())


def operands(**kwargs: Any) -> st.SearchStrategy[Any]:
    """Mostly a tensor; sometimes a Python number, sometimes no tensor at all."""
    return st.one_of(
        tensors(**kwargs), tensors(**kwargs), tensors(**kwargs), numbers(), st.sampled_from(JUNK)
    )


def dims(junk: bool = True) -> st.SearchStrategy[Any]:
    """A dim: usually in range for a tensor of up to 3 dims, sometimes not, or not an int."""
    options = [st.integers(-4, 3), st.integers(-1, 1)]
    if junk:
        options.append(st.sampled_from([None, 1.5, "a", (0, 0), (0, -1), ()]))
    return st.one_of(*options)


def floating_tensors(**kwargs: Any) -> st.SearchStrategy[torch.Tensor]:
    return tensors(dtypes=[torch.float64, torch.float32], **kwargs)


def indices(max_value: int = 4) -> st.SearchStrategy[torch.Tensor]:
    """Index tensors: int64 mostly, sometimes int32 or uint8 or bool; values may be out of range."""
    return st.builds(
        lambda values, dtype: torch.tensor(values).to(dtype),
        st.lists(st.integers(-max_value, max_value), max_size=4),
        st.sampled_from([torch.int64, torch.int64, torch.int32, torch.uint8]),
    )


# ---------------------------------------------------------------------------- the ops
@dataclass(frozen=True)
class FuzzOp:
    theirs: Callable[..., Any]
    ours: Callable[..., Any]
    arguments: st.SearchStrategy[tuple[tuple, dict]]


def _call(*positional: st.SearchStrategy, **keyword: st.SearchStrategy) -> st.SearchStrategy:
    """(args, kwargs) drawn from one strategy per argument."""
    return st.tuples(st.tuples(*positional), st.fixed_dictionaries(keyword))


def _same(fn: Callable[..., Any], *positional: st.SearchStrategy, **keyword) -> FuzzOp:
    """An op written the same way for both (an operator, a method): fn(*args, **kwargs)."""
    return FuzzOp(fn, fn, _call(*positional, **keyword))


def _pair(theirs, ours, *positional: st.SearchStrategy, **keyword) -> FuzzOp:
    return FuzzOp(theirs, ours, _call(*positional, **keyword))


def _maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.none(), strategy)


def _unary(name: str) -> FuzzOp:
    return _pair(getattr(torch, name), getattr(mt, name), operands())


def _binary(name: str, **keyword: st.SearchStrategy) -> FuzzOp:
    return _pair(getattr(torch, name), getattr(mt, name), operands(), operands(), **keyword)


def _method(name: str, *positional: st.SearchStrategy, **keyword) -> FuzzOp:
    return _same(lambda x, *a, **k: getattr(x, name)(*a, **k), tensors(), *positional, **keyword)


def _reduction(name: str, **keyword: st.SearchStrategy) -> FuzzOp:
    return _pair(getattr(torch, name), getattr(mt, name), tensors(), dims(), **keyword)


SHAPES = st.one_of(
    st.lists(st.integers(-1, 4), max_size=3).map(tuple), st.sampled_from([(), (0,), "a", 1.5])
)
KEEPDIM = st.booleans()
REDUCTIONS = st.sampled_from(["mean", "sum", "none", "max"])

OPS: dict[str, FuzzOp] = {
    # pointwise
    **{name: _unary(name) for name in ("exp", "log", "sqrt", "abs", "neg", "sign", "tanh")},
    "sigmoid": _unary("sigmoid"),
    "relu": _pair(torch.relu, mt.relu, operands()),
    "square": _method("square"),
    "leaky_relu": _pair(
        torch_functional.leaky_relu, F.leaky_relu, operands(), st.sampled_from([0.01, 0.0, -2.0])
    ),
    "clamp": _pair(torch.clamp, mt.clamp, operands(), _maybe(operands()), _maybe(operands())),
    # arithmetic and comparisons
    "add": _binary("add", alpha=st.sampled_from([1, 2, 0.5, True])),
    "sub": _binary("sub", alpha=st.sampled_from([1, -1, 0.5])),
    "mul": _binary("mul"),
    "div": _binary("div", rounding_mode=st.sampled_from([None, "trunc", "floor", "round"])),
    "pow": _binary("pow"),
    "maximum": _binary("maximum"),
    "minimum": _binary("minimum"),
    "+": _same(lambda a, b: a + b, tensors(), operands()),
    "r-": _same(lambda a, b: b - a, tensors(), operands()),
    "*": _same(lambda a, b: a * b, tensors(), operands()),
    "/": _same(lambda a, b: a / b, tensors(), operands()),
    "r/": _same(lambda a, b: b / a, tensors(), operands()),
    "**": _same(lambda a, b: a**b, tensors(), operands()),
    "r**": _same(lambda a, b: b**a, tensors(), operands()),
    "@": _same(lambda a, b: a @ b, tensors(), operands()),
    "-x": _same(lambda a: -a, tensors()),
    "&": _same(lambda a, b: a & b, tensors(), operands()),
    "|": _same(lambda a, b: a | b, tensors(), operands()),
    "^": _same(lambda a, b: a ^ b, tensors(), operands()),
    "~": _same(lambda a: ~a, tensors()),
    "==": _same(lambda a, b: a == b, tensors(), operands()),
    "!=": _same(lambda a, b: a != b, tensors(), operands()),
    "<": _same(lambda a, b: a < b, tensors(), operands()),
    ">=": _same(lambda a, b: a >= b, tensors(), operands()),
    **{name: _binary(name) for name in ("eq", "ne", "lt", "le", "gt", "ge")},
    "where": _pair(
        torch.where, mt.where, operands(dtypes=[torch.bool, torch.float32]), operands(), operands()
    ),
    "masked_fill": _method("masked_fill", operands(dtypes=[torch.bool, torch.uint8]), operands()),
    "matmul": _binary("matmul"),
    "mm": _method("mm", operands()),
    # reductions
    "sum": _reduction("sum", keepdim=KEEPDIM),
    "mean": _reduction("mean", keepdim=KEEPDIM),
    "amax": _reduction("amax", keepdim=KEEPDIM),
    "amin": _reduction("amin", keepdim=KEEPDIM),
    "max": _pair(torch.max, mt.max, tensors(), _maybe(dims())),
    "min_dim": _reduction("min", keepdim=KEEPDIM),
    "var": _reduction("var", correction=st.sampled_from([0, 1, 2.5]), keepdim=KEEPDIM),
    "std": _pair(torch.std, mt.std, tensors(), st.one_of(dims(), st.booleans())),
    "logsumexp": _reduction("logsumexp", keepdim=KEEPDIM),
    "argmax": _pair(torch.argmax, mt.argmax, tensors(), _maybe(dims(junk=False))),
    "argmin": _pair(torch.argmin, mt.argmin, tensors(), _maybe(dims(junk=False))),
    "all": _method("all", _maybe(dims())),
    "any": _method("any", _maybe(dims())),
    # shapes
    "reshape": _pair(torch.reshape, mt.reshape, tensors(), SHAPES),
    "view": _method("view", SHAPES),
    "flatten": _pair(torch.flatten, mt.flatten, tensors(), dims(), dims()),
    "squeeze": _pair(torch.squeeze, mt.squeeze, tensors(), dims()),
    "unsqueeze": _pair(torch.unsqueeze, mt.unsqueeze, tensors(), dims()),
    "transpose": _pair(torch.transpose, mt.transpose, tensors(), dims(), dims()),
    "permute": _pair(
        torch.permute, mt.permute, tensors(), st.lists(st.integers(-3, 3), max_size=3)
    ),
    "expand": _method("expand", SHAPES),
    "t": _method("t"),
    "T": _same(lambda a: a.T, tensors()),
    "contiguous": _method("contiguous"),
    "to": _method("to", st.sampled_from([torch.float64, torch.int32, torch.bool, "cpu", 1.5])),
    "float": _method("float"),
    "long": _method("long"),
    # indexing
    "getitem": _same(
        lambda a, index: a[index],
        tensors(),
        st.one_of(st.integers(-4, 3), st.slices(4), indices(), st.sampled_from([None, ..., 1.5])),
    ),
    "gather": _pair(torch.gather, mt.gather, tensors(), dims(junk=False), indices()),
    "scatter_add": _method("scatter_add", dims(junk=False), indices(), tensors()),
    "index_select": _pair(
        torch.index_select, mt.index_select, tensors(), dims(junk=False), indices()
    ),
    "index_add": _method("index_add", dims(junk=False), indices(), tensors()),
    "narrow": _pair(
        torch.narrow, mt.narrow, tensors(), dims(), st.integers(-3, 3), st.integers(-1, 3)
    ),
    "select": _pair(torch.select, mt.select, tensors(), dims(), st.integers(-3, 3)),
    # joining and splitting
    "cat": _pair(torch.cat, mt.cat, st.lists(tensors(), max_size=3).map(tuple) | tensors(), dims()),
    "stack": _pair(torch.stack, mt.stack, st.lists(tensors(), max_size=3), dims()),
    "split": _pair(
        torch.split,
        mt.split,
        tensors(),
        st.one_of(st.integers(-1, 3), st.lists(st.integers(0, 3))),
        dims(),
    ),
    "chunk": _pair(torch.chunk, mt.chunk, tensors(), st.integers(-1, 4), dims()),
    "unbind": _pair(torch.unbind, mt.unbind, tensors(), dims()),
    "pad": _pair(
        torch_functional.pad,
        F.pad,
        tensors(),
        st.lists(st.integers(-2, 2), max_size=4).map(tuple),
        st.sampled_from(["constant", "reflect", "replicate", "circular"]),
    ),
    # nn.functional
    "softmax": _pair(torch_functional.softmax, F.softmax, tensors(), dims()),
    "log_softmax": _pair(torch_functional.log_softmax, F.log_softmax, tensors(), dims()),
    "linear": _pair(torch_functional.linear, F.linear, tensors(), tensors(), _maybe(tensors())),
    "conv1d": _pair(
        torch_functional.conv1d,
        F.conv1d,
        tensors(min_dims=2, max_dims=3),
        tensors(min_dims=3, max_dims=3),
        stride=st.integers(0, 2),
        padding=st.sampled_from([0, 1, "same", "valid"]),
    ),
    "conv2d": _pair(
        torch_functional.conv2d,
        F.conv2d,
        tensors(min_dims=3, max_dims=4, max_side=2),
        tensors(min_dims=4, max_dims=4, max_side=2),
        stride=st.integers(1, 2),
        groups=st.integers(0, 2),
    ),
    "max_pool2d": _pair(
        torch_functional.max_pool2d,
        F.max_pool2d,
        tensors(min_dims=2, max_dims=4),
        st.integers(0, 2),
        stride=_maybe(st.integers(0, 2)),
        padding=st.integers(-1, 1),
        ceil_mode=st.booleans(),
    ),
    "avg_pool2d": _pair(
        torch_functional.avg_pool2d,
        F.avg_pool2d,
        tensors(min_dims=2, max_dims=4),
        st.integers(0, 2),
        padding=st.integers(0, 1),
        count_include_pad=st.booleans(),
    ),
    "dropout": _pair(
        torch_functional.dropout, F.dropout, tensors(), st.sampled_from([0.0, 1.0, -0.5, 1.5])
    ),
    "mse_loss": _pair(
        torch_functional.mse_loss, F.mse_loss, tensors(), operands(), reduction=REDUCTIONS
    ),
    "cross_entropy": _pair(
        torch_functional.cross_entropy,
        F.cross_entropy,
        tensors(),
        operands(),
        reduction=REDUCTIONS,
        ignore_index=st.sampled_from([-100, 0, 1]),
    ),
    "nll_loss": _pair(
        torch_functional.nll_loss, F.nll_loss, tensors(), operands(), reduction=REDUCTIONS
    ),
    "binary_cross_entropy_with_logits": _pair(
        torch_functional.binary_cross_entropy_with_logits,
        F.binary_cross_entropy_with_logits,
        tensors(),
        operands(),
        reduction=REDUCTIONS,
    ),
    # creation
    "tensor": _pair(
        torch.tensor,
        mt.tensor,
        st.one_of(numbers(), st.lists(numbers(), max_size=3), st.sampled_from(JUNK)),
        dtype=_maybe(st.sampled_from(DTYPES)),
    ),
    "zeros": _pair(torch.zeros, mt.zeros, SHAPES, dtype=_maybe(st.sampled_from(DTYPES))),
    "full": _pair(torch.full, mt.full, SHAPES, numbers()),
    "arange": _pair(
        torch.arange, mt.arange, numbers(), numbers(), st.sampled_from([1, -1, 0.5, 0])
    ),
    "linspace": _pair(torch.linspace, mt.linspace, numbers(), numbers(), st.integers(-1, 4)),
}
