"""Which of torch's OpInfo / ModuleInfo / OptimizerInfo entries we implement, and as what.

One line per entry. `ours` is called exactly as the OpInfo calls torch's op: `ours(input,
*args, **kwargs)`, with the sample's tensors made ours. Where torch's op is a function we
have as a function, that function; where we have only a Tensor method (or operator), the
unbound method (`mt.Tensor.square`), which is called the same way. `method` names our Tensor
method of the same name, held against torch's method variant of the op on every sample.

Entries of torch's databases that are not listed here are things minitorch_edu does not
implement (linear algebra, FFTs, special functions, most of torch.nn).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch.testing._utils import wrapper_set_seed

import minitorch_edu as mt
import minitorch_edu.nn.functional as F

Tensor = mt.Tensor


@dataclass(frozen=True)
class Op:
    ours: Callable[..., Any]
    method: str | None = None


OPS: dict[str, Op] = {
    # arithmetic (minitorch_edu/ops/arithmetic.py)
    "add": Op(mt.add, "add"),
    "sub": Op(mt.sub, "sub"),
    "mul": Op(mt.mul, "mul"),
    "div.no_rounding_mode": Op(mt.div, "div"),
    "div.trunc_rounding": Op(mt.div, "div"),
    "div.floor_rounding": Op(mt.div, "div"),
    "neg": Op(mt.neg, "neg"),
    "pow": Op(mt.pow, "pow"),
    "square": Op(Tensor.square, "square"),
    "__radd__": Op(Tensor.__radd__),
    "__rsub__": Op(Tensor.__rsub__),
    "__rmul__": Op(Tensor.__rmul__),
    "__rdiv__": Op(Tensor.__rtruediv__),
    "__rpow__": Op(Tensor.__rpow__),
    "__rmatmul__": Op(Tensor.__rmatmul__),
    # pointwise (ops/pointwise.py, nn/functional/activation.py)
    "abs": Op(mt.abs, "abs"),
    "exp": Op(mt.exp, "exp"),
    "log": Op(mt.log, "log"),
    "sqrt": Op(mt.sqrt, "sqrt"),
    "tanh": Op(mt.tanh, "tanh"),
    "sigmoid": Op(mt.sigmoid, "sigmoid"),
    "nn.functional.relu": Op(F.relu, "relu"),
    "nn.functional.leaky_relu": Op(F.leaky_relu),
    "clamp": Op(mt.clamp, "clamp"),
    "clamp_min": Op(Tensor.clamp_min, "clamp_min"),
    "clamp_max": Op(Tensor.clamp_max, "clamp_max"),
    # no gradient (ops/comparison.py)
    "sign": Op(mt.sign, "sign"),
    "eq": Op(mt.eq, "eq"),
    "ne": Op(mt.ne, "ne"),
    "lt": Op(mt.lt, "lt"),
    "le": Op(mt.le, "le"),
    "gt": Op(mt.gt, "gt"),
    "ge": Op(mt.ge, "ge"),
    "isnan": Op(Tensor.isnan, "isnan"),
    "argmax": Op(mt.argmax, "argmax"),
    "argmin": Op(mt.argmin, "argmin"),
    "all": Op(Tensor.all, "all"),
    "any": Op(Tensor.any, "any"),
    # selection (ops/selection.py)
    "maximum": Op(mt.maximum, "maximum"),
    "minimum": Op(mt.minimum, "minimum"),
    "max.binary": Op(mt.max, "max"),
    "min.binary": Op(mt.min, "min"),
    "where": Op(lambda input, condition, other: mt.where(condition, input, other), "where"),
    "masked_fill": Op(Tensor.masked_fill, "masked_fill"),
    # reductions (ops/reduce.py)
    "sum": Op(mt.sum, "sum"),
    "mean": Op(mt.mean, "mean"),
    "amax": Op(mt.amax, "amax"),
    "amin": Op(mt.amin, "amin"),
    "max.reduction_no_dim": Op(mt.max, "max"),
    "max.reduction_with_dim": Op(mt.max, "max"),
    "min.reduction_no_dim": Op(mt.min, "min"),
    "min.reduction_with_dim": Op(mt.min, "min"),
    "var": Op(mt.var, "var"),
    "var.unbiased": Op(mt.var, "var"),
    "std": Op(mt.std, "std"),
    "std.unbiased": Op(mt.std, "std"),
    "logsumexp": Op(mt.logsumexp, "logsumexp"),
    # matrix products (ops/matmul.py)
    "matmul": Op(mt.matmul, "matmul"),
    "mm": Op(Tensor.mm, "mm"),
    # copies (ops/convert.py)
    "clone": Op(mt.clone, "clone"),
    "contiguous": Op(Tensor.contiguous, "contiguous"),
    "to": Op(Tensor.to, "to"),
    "float": Op(Tensor.float, "float"),
    "double": Op(Tensor.double, "double"),
    "long": Op(Tensor.long, "long"),
    # indexing (ops/indexing.py)
    "__getitem__": Op(Tensor.__getitem__),
    "gather": Op(mt.gather, "gather"),
    "scatter_add": Op(mt.scatter_add, "scatter_add"),
    "index_select": Op(mt.index_select, "index_select"),
    "index_add": Op(mt.index_add, "index_add"),
    "narrow": Op(mt.narrow, "narrow"),
    "select": Op(mt.select, "select"),
    # joining and splitting (ops/join.py)
    "cat": Op(mt.cat),
    "stack": Op(mt.stack),
    "split": Op(mt.split, "split"),
    "split.list_args": Op(mt.split, "split"),
    "chunk": Op(mt.chunk, "chunk"),
    "unbind": Op(mt.unbind, "unbind"),
    # shapes (ops/shape.py)
    "reshape": Op(mt.reshape, "reshape"),
    "reshape_as": Op(Tensor.reshape_as, "reshape_as"),
    "view": Op(Tensor.view, "view"),
    "view_as": Op(Tensor.view_as, "view_as"),
    "flatten": Op(mt.flatten, "flatten"),
    "squeeze": Op(mt.squeeze, "squeeze"),
    "squeeze.multiple": Op(mt.squeeze, "squeeze"),
    "unsqueeze": Op(mt.unsqueeze, "unsqueeze"),
    "transpose": Op(mt.transpose, "transpose"),
    "permute": Op(mt.permute, "permute"),
    "expand": Op(Tensor.expand, "expand"),
    "expand_as": Op(Tensor.expand_as, "expand_as"),
    "t": Op(Tensor.t, "t"),
    "T": Op(lambda input: input.T),
    "mT": Op(lambda input: input.mT),
    # strided windows (ops/windows.py)
    "as_strided": Op(mt.as_strided, "as_strided"),
    "as_strided.partial_views": Op(mt.as_strided, "as_strided"),
    "unfold": Op(Tensor.unfold, "unfold"),
    # nn.functional
    "softmax": Op(F.softmax, "softmax"),
    "softmax.with_dtype": Op(F.softmax, "softmax"),
    "log_softmax": Op(F.log_softmax, "log_softmax"),
    "log_softmax.with_dtype": Op(F.log_softmax, "log_softmax"),
    "nn.functional.pad.constant": Op(F.pad),
    "nn.functional.pad.reflect": Op(F.pad),
    "nn.functional.pad.replicate": Op(F.pad),
    "nn.functional.pad.replicate_negative": Op(F.pad),
    "nn.functional.pad.circular": Op(F.pad),
    "nn.functional.linear": Op(F.linear),
    "nn.functional.conv1d": Op(F.conv1d),
    "nn.functional.conv2d": Op(F.conv2d),
    "nn.functional.max_pool2d": Op(F.max_pool2d),
    "nn.functional.avg_pool2d": Op(F.avg_pool2d),
    # torch's sample op seeds the generator with 42 around the call; ours is seeded alike
    "nn.functional.dropout": Op(
        lambda *args, **kwargs: wrapper_set_seed(F.dropout, *args, **kwargs)
    ),
    "nn.functional.cross_entropy": Op(F.cross_entropy),
    "nn.functional.nll_loss": Op(F.nll_loss),
    "nn.functional.mse_loss": Op(F.mse_loss),
    "nn.functional.binary_cross_entropy_with_logits": Op(F.binary_cross_entropy_with_logits),
    # creation (creation.py)
    "zeros": Op(mt.zeros),
    "ones": Op(mt.ones),
    "full": Op(mt.full),
    "eye": Op(mt.eye),
    "arange": Op(mt.arange),
    "linspace": Op(mt.linspace),
    "linspace.tensor_overload": Op(mt.linspace),
    "zeros_like": Op(mt.zeros_like),
    "ones_like": Op(mt.ones_like),
    "full_like": Op(mt.full_like),
    "new_zeros": Op(Tensor.new_zeros, "new_zeros"),
    "new_ones": Op(Tensor.new_ones, "new_ones"),
    "new_full": Op(Tensor.new_full, "new_full"),
}

# torch.nn ModuleInfo name -> our layer class (constructed with the same arguments).
MODULES: dict[str, type] = {
    "nn.Linear": mt.nn.Linear,
    "nn.Conv1d": mt.nn.Conv1d,
    "nn.Conv2d": mt.nn.Conv2d,
    "nn.MaxPool2d": mt.nn.MaxPool2d,
    "nn.AvgPool2d": mt.nn.AvgPool2d,
    "nn.ReLU": mt.nn.ReLU,
    "nn.LeakyReLU": mt.nn.LeakyReLU,
    "nn.Sigmoid": mt.nn.Sigmoid,
    "nn.Tanh": mt.nn.Tanh,
    "nn.Softmax": mt.nn.Softmax,
    "nn.LogSoftmax": mt.nn.LogSoftmax,
    "nn.CrossEntropyLoss": mt.nn.CrossEntropyLoss,
    "nn.NLLLoss": mt.nn.NLLLoss,
    "nn.MSELoss": mt.nn.MSELoss,
    "nn.BCEWithLogitsLoss": mt.nn.BCEWithLogitsLoss,
}

# torch.optim OptimizerInfo name -> our optimizer class.
OPTIMIZERS: dict[str, type] = {
    "SGD": mt.optim.SGD,
    "Adagrad": mt.optim.Adagrad,
    "RMSprop": mt.optim.RMSprop,
    "Adam": mt.optim.Adam,
    "AdamW": mt.optim.AdamW,
}
