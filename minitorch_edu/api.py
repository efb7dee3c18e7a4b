"""The public API of minitorch_edu: every name `import minitorch_edu as mt` offers.

`minitorch_edu/__init__.py` imports this module the first time one of its names is used
(see minitorch_edu/lazy.py). Add a public name here, and it is `mt.<name>`.
"""

import torch as _torch

from minitorch_edu import autograd
from minitorch_edu.autograd import (
    Formula,
    Function,
    Tensor,
    enable_grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from minitorch_edu.creation import (
    arange,
    empty,
    eye,
    full,
    full_like,
    linspace,
    manual_seed,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from minitorch_edu.ops.arithmetic import add, div, mul, neg, pow, sub
from minitorch_edu.ops.comparison import argmax, argmin, eq, ge, gt, le, lt, ne, sign
from minitorch_edu.ops.convert import clone
from minitorch_edu.ops.indexing import gather, index_add, index_select, narrow, scatter_add, select
from minitorch_edu.ops.join import cat, chunk, pad, split, stack, unbind
from minitorch_edu.ops.matmul import matmul
from minitorch_edu.ops.pointwise import abs, clamp, exp, log, relu, sigmoid, sqrt, tanh
from minitorch_edu.ops.reduce import amax, amin, logsumexp, max, mean, min, std, sum, var
from minitorch_edu.ops.selection import maximum, minimum, where
from minitorch_edu.ops.shape import (
    contiguous,
    expand,
    flatten,
    permute,
    reshape,
    squeeze,
    transpose,
    unsqueeze,
    view,
)
from minitorch_edu.ops.windows import as_strided, unfold

# torch's dtypes under the same names, so ported code can write mt.float64.
float16 = _torch.float16
bfloat16 = _torch.bfloat16
float32 = float = _torch.float32
float64 = double = _torch.float64
int32 = int = _torch.int32
int64 = long = _torch.int64
bool = _torch.bool
device = _torch.device

# Subpackages, built on the core above.
# What ported torch programs call: torch.cuda, torch.save/load, torch.utils.data.
from minitorch_edu import accelerator, backends, cuda, data, nn, optim, study, utils  # noqa: E402  # noqa: E402
from minitorch_edu.serialization import load, save  # noqa: E402
