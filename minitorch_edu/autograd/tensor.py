"""`Tensor`: a torch.Tensor (`.data`) plus what reverse-mode autograd needs.

    data           the numbers, a plain torch.Tensor (never requires_grad itself)
    requires_grad  whether gradients should flow to this tensor
    grad_fn        the Function node that produced it (None for leaves)
    grad           after backward: d(output)/d(this), a Tensor of the same shape

Every maths method here is one line that calls an op from `minitorch_edu.ops`, where the
forward and backward of that op sit side by side.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from minitorch_edu.autograd import grad_mode

Index = Any  # whatever torch accepts inside [...]
LIBRARY_PREFIX = "minitorch_edu."  # our repr: minitorch_edu.tensor([1., 2.])


def as_torch(data: Any, dtype: torch.dtype | None = None, device: Any = None) -> torch.Tensor:
    """Any tensor-like (our Tensor, torch.Tensor, NumPy array, number, list) as a torch.Tensor."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, torch.Tensor):
        data = data.detach()
        return data if dtype is None and device is None else data.to(device=device, dtype=dtype)
    if isinstance(data, np.ndarray):
        return torch.as_tensor(data, dtype=dtype, device=device)
    return torch.tensor(data, dtype=dtype, device=device)


class RemovableHandle:
    """Returned by `register_hook`; `.remove()` takes the hook off again."""

    def __init__(self, hooks: list, hook: Callable, on_remove: Callable | None = None) -> None:
        self._hooks = hooks
        self._hook = hook
        self._on_remove = on_remove

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)
            if self._on_remove is not None:
                self._on_remove()


def _one_post_hook_fewer() -> None:
    Tensor.post_accumulate_hook_count -= 1


def complex_gradients_refused(dtype: torch.dtype) -> str:
    # torch's complex gradients follow the conjugate Wirtinger convention (grad * conj(f'(z)));
    # every backward here is written for real numbers, so a complex one would be silently wrong.
    return (
        f"minitorch_edu computes gradients of real floating tensors only, not of {dtype} "
        "ones: complex gradients (torch's conjugate Wirtinger convention) are not "
        "implemented. Compute with complex numbers under mt.no_grad(), or split real and "
        "imaginary parts into real tensors."
    )


class _RetainGrad:
    """The hook `retain_grad` installs: it stores the gradient on the tensor, after other hooks."""

    def __init__(self, tensor: Tensor) -> None:
        self.owner = weakref.ref(tensor)  # the node must not keep its output alive

    def __call__(self, grad: Tensor) -> None:
        tensor = self.owner()
        if tensor is not None:
            # A copy: the gradient flowing on through the graph must not become this .grad.
            tensor._grad = grad.clone() if tensor._grad is None else tensor._grad + grad


class Tensor:
    __slots__ = (
        "data",
        "_grad",
        "_requires_grad",
        "grad_fn",
        "_hooks",
        "_post_accumulate_hooks",
        "__weakref__",
    )
    __array_ufunc__ = None  # `ndarray * Tensor` calls our __rmul__ instead of looping in NumPy
    # Post-accumulate hooks registered and not removed, on all tensors: while it is 0 the
    # engine skips the bookkeeping that tells when a leaf's gradient is final.
    post_accumulate_hook_count = 0

    def __init__(self, data: Any, requires_grad: bool = False) -> None:
        self.data = as_torch(data)
        self._grad: Tensor | None = None
        self._requires_grad = False
        self.grad_fn = None
        self._hooks: list | None = None
        self._post_accumulate_hooks: list | None = None
        if requires_grad:
            self.requires_grad = True

    @staticmethod
    def _wrap(data: torch.Tensor, grad_fn: Any = None) -> Tensor:
        """Fast constructor for op results: `data` is already a fresh torch.Tensor."""
        out = Tensor.__new__(Tensor)
        out.data = data
        out._grad = None
        out._requires_grad = grad_fn is not None
        out.grad_fn = grad_fn
        out._hooks = None
        out._post_accumulate_hooks = None
        return out

    # ------------------------------------------------------------------ autograd state
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if self.grad_fn is not None:
            if value:
                return  # a computed tensor already requires grad
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use "
                "a computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach()."
            )
        if value and self.data.is_complex():
            raise RuntimeError(complex_gradients_refused(self.data.dtype))
        if value and not self.data.is_floating_point():
            raise RuntimeError(
                "only Tensors of floating point dtype can require gradients "
                f"(this one is {self.data.dtype})"
            )
        self._requires_grad = bool(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def grad(self) -> Tensor | None:
        return self._grad

    @grad.setter
    def grad(self, value: Any) -> None:
        if value is not None:
            value = value if isinstance(value, Tensor) else Tensor(as_torch(value))
            for what, mine, theirs in (
                ("size", self.shape, value.shape),
                ("type", self.dtype, value.dtype),
                ("device", self.device, value.device),
            ):
                if mine != theirs:
                    raise RuntimeError(
                        f"assigned grad has data of a different {what}: expected {mine}, "
                        f"got {theirs}"
                    )
        self._grad = value

    def backward(
        self,
        gradient: Any = None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
        inputs: Any = None,
    ) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` (see `autograd/engine.py`)."""
        from minitorch_edu.autograd.engine import backward

        backward([self], [gradient], retain_graph, create_graph, inputs)

    def detach(self) -> Tensor:
        """The same numbers (shared storage), cut off from the graph."""
        return Tensor._wrap(self.data)

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> RemovableHandle:
        """Call `hook(grad)` when this tensor's gradient is computed; a returned Tensor is used."""
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is None:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        else:
            if self.grad_fn._grad_hooks is None:
                self.grad_fn._grad_hooks = []
            hooks = self.grad_fn._grad_hooks
        if hooks and isinstance(hooks[-1], _RetainGrad):
            hooks.insert(len(hooks) - 1, hook)  # .grad is kept after every other hook, as in torch
        else:
            hooks.append(hook)
        return RemovableHandle(hooks, hook)

    def register_post_accumulate_grad_hook(self, hook: Callable[[Tensor], None]) -> RemovableHandle:
        """Call `hook(self)` once backward has added this leaf's gradient into `.grad`.

        It runs in each backward pass that reaches the leaf, as soon as no other part of the
        graph can add to its gradient (torch's hook of the same name), while the engine goes
        on with the rest of the graph: DistributedDataParallel starts sending a gradient
        from here. Not for autograd.grad, which leaves `.grad` alone.
        """
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            raise RuntimeError(
                "post accumulate grad hooks cannot be registered on non-leaf tensors"
            )
        if self._post_accumulate_hooks is None:
            self._post_accumulate_hooks = []
        self._post_accumulate_hooks.append(hook)
        Tensor.post_accumulate_hook_count += 1
        return RemovableHandle(self._post_accumulate_hooks, hook, _one_post_hook_fewer)

    def retain_grad(self) -> None:
        """Keep `.grad` on a non-leaf tensor too (leaves always keep theirs)."""
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is None or self.retains_grad:
            return
        self.register_hook(_RetainGrad(self))

    @property
    def retains_grad(self) -> bool:
        """True for a non-leaf tensor on which `retain_grad()` was called."""
        hooks = self.grad_fn._grad_hooks if self.grad_fn is not None else None
        return bool(hooks) and isinstance(hooks[-1], _RetainGrad) and hooks[-1].owner() is self

    # ------------------------------------------------------------------ metadata
    @property
    def shape(self) -> torch.Size:
        return self.data.shape

    def size(self, dim: int | None = None) -> Any:
        return self.data.size() if dim is None else self.data.size(dim)

    def dim(self) -> int:
        return self.data.dim()

    @property
    def ndim(self) -> int:
        return self.data.dim()

    def numel(self) -> int:
        return self.data.numel()

    @property
    def dtype(self) -> torch.dtype:
        return self.data.dtype

    @property
    def device(self) -> torch.device:
        return self.data.device

    @property
    def is_cuda(self) -> bool:
        return self.data.is_cuda

    def is_floating_point(self) -> bool:
        return self.data.is_floating_point()

    def is_contiguous(self) -> bool:
        return self.data.is_contiguous()

    def stride(self, dim: int | None = None) -> Any:
        return self.data.stride() if dim is None else self.data.stride(dim)

    # ------------------------------------------------------------------ conversion
    def item(self) -> Any:
        return self.data.item()

    def tolist(self) -> Any:
        return self.data.tolist()

    def numpy(self) -> np.ndarray:
        if self._requires_grad:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. "
                "Use tensor.detach().numpy() instead."
            )
        return self.data.cpu().numpy() if self.data.is_cuda else self.data.numpy()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """np.asarray(tensor): the numbers as a NumPy array (like .numpy())."""
        array = self.numpy()
        return array if dtype is None else array.astype(dtype, copy=False)

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """`to(dtype)`, `to(device)`, `to(device, dtype)`, `to(other)`, each optionally with
        non_blocking, copy and memory_format, as torch's: a differentiable copy."""
        return convert.to(self, **convert.to_arguments(args, kwargs))

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self, device: Any = None) -> Tensor:
        return self.to(torch.device("cuda") if device is None else torch.device("cuda", device))

    def float(self, memory_format: torch.memory_format | None = None) -> Tensor:
        return convert.to(self, torch.float32, memory_format=memory_format)

    def double(self, memory_format: torch.memory_format | None = None) -> Tensor:
        return convert.to(self, torch.float64, memory_format=memory_format)

    def long(self, memory_format: torch.memory_format | None = None) -> Tensor:
        return convert.to(self, torch.int64, memory_format=memory_format)

    def type(self, dtype: Any = None, non_blocking: bool = False) -> Any:
        """torch's old spelling: `x.type(torch.float)` converts (like `.to`); `x.type()` names
        the type, 'torch.FloatTensor' (also accepted as `dtype`)."""
        if dtype is None:
            return self.data.type()
        if isinstance(dtype, str):
            dtype = self.data.new_empty(0).type(dtype).dtype
        return self.to(dtype)

    def clone(self, *, memory_format: torch.memory_format | None = None) -> Tensor:
        return convert.clone(self, memory_format=memory_format)

    def new_zeros(self, *size: Any, dtype: Any = None, device: Any = None) -> Tensor:
        """Zeros of `size` (`new_zeros(2, 3)` or `new_zeros((2, 3))`), this tensor's dtype and
        device unless given; a constant, like every new_* tensor."""
        size = shape_ops.shape_arg(size)
        return Tensor._wrap(self.data.new_zeros(size, dtype=dtype, device=device))

    def new_ones(self, *size: Any, dtype: Any = None, device: Any = None) -> Tensor:
        size = shape_ops.shape_arg(size)
        return Tensor._wrap(self.data.new_ones(size, dtype=dtype, device=device))

    def new_full(
        self, size: Any, fill_value: float, dtype: Any = None, device: Any = None
    ) -> Tensor:
        return Tensor._wrap(self.data.new_full(size, fill_value, dtype=dtype, device=device))

    def new_tensor(self, data: Any, dtype: Any = None, device: Any = None) -> Tensor:
        """A copy of `data` with this tensor's dtype and device unless given."""
        dtype = self.data.dtype if dtype is None else dtype
        device = self.data.device if device is None else device
        return Tensor._wrap(as_torch(data, dtype=dtype, device=device).clone())

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        # torch's text with our library's name in front, so the two are never confused.
        text = LIBRARY_PREFIX + repr(self.data).replace("\n", "\n" + " " * len(LIBRARY_PREFIX))
        if self.grad_fn is not None:
            return f"{text[:-1]}, grad_fn=<{self.grad_fn.name()}>)"
        if self._requires_grad:
            return f"{text[:-1]}, requires_grad=True)"
        return text

    def __format__(self, spec: str) -> str:
        if self.data.dim() == 0:
            return format(self.data.item(), spec)
        return format(repr(self), spec)

    # ------------------------------------------------------------------ Python protocol
    @classmethod
    def __torch_function__(
        cls, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        """torch's functions called on our Tensors run our ops (autograd/torch_function.py)."""
        return torch_function.dispatch(func, args, kwargs)

    __hash__ = object.__hash__  # tensors are dict keys by identity, as in torch

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator[Tensor]:
        if self.data.dim() == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.data.shape[0]))

    def __bool__(self) -> bool:
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.data)

    def __int__(self) -> int:
        return int(self.data)

    def __index__(self) -> int:
        return self.data.__index__()

    # ------------------------------------------------------------------ arithmetic
    def __add__(self, other: Any) -> Tensor:
        return arithmetic.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return arithmetic.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return arithmetic.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return arithmetic.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return arithmetic.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return arithmetic.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return arithmetic.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        if isinstance(other, torch.Tensor | np.ndarray):  # torch's own `/` would divide
            return arithmetic.div(other, self)
        # number / self as torch computes it: the reciprocal first, then the product
        return arithmetic.mul(arithmetic.div(1, self), other)

    def __neg__(self) -> Tensor:
        return arithmetic.neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __pow__(self, exponent: Any) -> Tensor:
        return arithmetic.pow(self, exponent)

    def __rpow__(self, base: Any) -> Tensor:
        return arithmetic.pow(base, self)

    def __matmul__(self, other: Any) -> Tensor:
        if isinstance(other, int | float):
            return NotImplemented  # Python then raises TypeError, as for torch tensors
        return matmul_ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        if isinstance(other, int | float):
            return NotImplemented
        return matmul_ops.matmul(other, self)

    def __abs__(self) -> Tensor:
        return pointwise.abs(self)

    def add(self, other: Any, *, alpha: Any = 1) -> Tensor:
        return arithmetic.add(self, other, alpha=alpha)

    def sub(self, other: Any, *, alpha: Any = 1) -> Tensor:
        return arithmetic.sub(self, other, alpha=alpha)

    def mul(self, other: Any) -> Tensor:
        return arithmetic.mul(self, other)

    def div(self, other: Any, *, rounding_mode: str | None = None) -> Tensor:
        return arithmetic.div(self, other, rounding_mode=rounding_mode)

    def neg(self) -> Tensor:
        return arithmetic.neg(self)

    def pow(self, exponent: Any) -> Tensor:
        return arithmetic.pow(self, exponent)

    def square(self) -> Tensor:
        return arithmetic.pow(self, 2)

    def matmul(self, other: Any) -> Tensor:
        return matmul_ops.matmul(self, other)

    def mm(self, other: Any) -> Tensor:
        return matmul_ops.mm(self, other)

    # ------------------------------------------------------------------ in place (no graph)
    def _in_place(self, name: str, *args: Any, **kwargs: Any) -> Tensor:
        if grad_mode.is_grad_enabled() and (
            self._requires_grad or any(isinstance(a, Tensor) and a._requires_grad for a in args)
        ):
            raise RuntimeError(
                f"{name}: a tensor that requires grad is being used in an in-place operation "
                "(in-place operations are not recorded); wrap it in `with mt.no_grad():` "
                "(e.g. for a hand-written update) or use the out-of-place form"
            )
        args = tuple(as_torch(a) if isinstance(a, Tensor | np.ndarray) else a for a in args)
        getattr(self.data, name)(*args, **kwargs)
        return self

    def __iadd__(self, other: Any) -> Tensor:
        return self._in_place("add_", other)

    def __isub__(self, other: Any) -> Tensor:
        return self._in_place("sub_", other)

    def __imul__(self, other: Any) -> Tensor:
        return self._in_place("mul_", other)

    def __itruediv__(self, other: Any) -> Tensor:
        return self._in_place("div_", other)

    def add_(self, other: Any, alpha: float = 1) -> Tensor:
        return self._in_place("add_", other, alpha=alpha)

    def sub_(self, other: Any, alpha: float = 1) -> Tensor:
        return self._in_place("sub_", other, alpha=alpha)

    def mul_(self, other: Any) -> Tensor:
        return self._in_place("mul_", other)

    def div_(self, other: Any) -> Tensor:
        return self._in_place("div_", other)

    def zero_(self) -> Tensor:
        return self._in_place("zero_")

    def fill_(self, value: float) -> Tensor:
        return self._in_place("fill_", value)

    def copy_(self, source: Any) -> Tensor:
        if isinstance(source, Tensor):
            return self._in_place("copy_", source)
        return self._in_place("copy_", as_torch(source))

    def clamp_(self, min: float | None = None, max: float | None = None) -> Tensor:
        return self._in_place("clamp_", min, max)

    def uniform_(self, a: float = 0.0, b: float = 1.0) -> Tensor:
        return self._in_place("uniform_", a, b)

    def normal_(self, mean: float = 0.0, std: float = 1.0) -> Tensor:
        return self._in_place("normal_", mean, std)

    def __setitem__(self, index: Index, value: Any) -> None:
        if grad_mode.is_grad_enabled() and (
            self._requires_grad or (isinstance(value, Tensor) and value._requires_grad)
        ):
            raise RuntimeError(
                "index assignment on a tensor that requires grad is not recorded; build the "
                "new tensor out of place (e.g. with mt.where or mt.cat) or use mt.no_grad()"
            )
        self.data[_raw_index(index)] = value.data if isinstance(value, Tensor) else value

    # ------------------------------------------------------------------ pointwise maths
    def exp(self) -> Tensor:
        return pointwise.exp(self)

    def log(self) -> Tensor:
        return pointwise.log(self)

    def sqrt(self) -> Tensor:
        return pointwise.sqrt(self)

    def abs(self) -> Tensor:
        return pointwise.abs(self)

    def tanh(self) -> Tensor:
        return pointwise.tanh(self)

    def sigmoid(self) -> Tensor:
        return pointwise.sigmoid(self)

    def relu(self) -> Tensor:
        return pointwise.relu(self)

    def clamp(self, min: Any = None, max: Any = None) -> Tensor:
        return pointwise.clamp(self, min, max)

    clip = clamp

    def clamp_min(self, min: Any) -> Tensor:
        return pointwise.clamp(self, min, None)

    def clamp_max(self, max: Any) -> Tensor:
        return pointwise.clamp(self, None, max)

    def maximum(self, other: Any) -> Tensor:
        return selection.maximum(self, other)

    def minimum(self, other: Any) -> Tensor:
        return selection.minimum(self, other)

    def where(self, condition: Any, other: Any) -> Tensor:
        """torch's method form: `x.where(condition, y)` is `where(condition, x, y)`."""
        return selection.where(condition, self, other)

    def masked_fill(self, mask: Any, value: Any) -> Tensor:
        return selection.masked_fill(self, mask, value)

    # ------------------------------------------------------------------ reductions
    def sum(self, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
        return reduce.sum(self, dim, keepdim, dtype=dtype)

    def mean(self, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
        return reduce.mean(self, dim, keepdim, dtype=dtype)

    def amax(self, dim: Any = (), keepdim: bool = False) -> Tensor:
        return reduce.amax(self, dim, keepdim)

    def amin(self, dim: Any = (), keepdim: bool = False) -> Tensor:
        return reduce.amin(self, dim, keepdim)

    def max(self, dim: Any = None, keepdim: bool = False) -> Any:
        return reduce.max(self, dim, keepdim)

    def min(self, dim: Any = None, keepdim: bool = False) -> Any:
        return reduce.min(self, dim, keepdim)

    def logsumexp(self, dim: Any, keepdim: bool = False) -> Tensor:
        return reduce.logsumexp(self, dim, keepdim)

    def softmax(self, dim: int, dtype: torch.dtype | None = None) -> Tensor:
        from minitorch_edu.nn.functional.softmax import softmax

        return softmax(self, dim, dtype=dtype)

    def log_softmax(self, dim: int, dtype: torch.dtype | None = None) -> Tensor:
        from minitorch_edu.nn.functional.softmax import log_softmax

        return log_softmax(self, dim, dtype=dtype)

    def var(
        self,
        dim: Any = None,
        unbiased: bool | None = None,
        keepdim: bool = False,
        *,
        correction: float | None = None,
    ) -> Tensor:
        return reduce.var(self, dim, unbiased, keepdim, correction=correction)

    def std(
        self,
        dim: Any = None,
        unbiased: bool | None = None,
        keepdim: bool = False,
        *,
        correction: float | None = None,
    ) -> Tensor:
        return reduce.std(self, dim, unbiased, keepdim, correction=correction)

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return comparison.argmax(self, dim, keepdim)

    def argmin(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return comparison.argmin(self, dim, keepdim)

    # ------------------------------------------------------------------ shape
    def reshape(self, *shape: Any) -> Tensor:
        return shape_ops.reshape(self, shape_ops.shape_arg(shape))

    def view(self, *shape: Any) -> Tensor:
        return shape_ops.view(self, shape_ops.shape_arg(shape))

    def view_as(self, other: Any) -> Tensor:
        return shape_ops.view(self, other.shape)

    def reshape_as(self, other: Any) -> Tensor:
        return shape_ops.reshape(self, other.shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        return shape_ops.flatten(self, start_dim, end_dim)

    def squeeze(self, dim: Any = None) -> Tensor:
        return shape_ops.squeeze(self, dim)

    def unsqueeze(self, dim: int) -> Tensor:
        return shape_ops.unsqueeze(self, dim)

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        return shape_ops.transpose(self, dim0, dim1)

    def t(self) -> Tensor:
        """The transpose of a matrix; a 0-d or 1-d tensor is returned as it is, as in torch."""
        if self.data.dim() > 2:
            raise RuntimeError(
                f"t() expects a tensor with <= 2 dimensions, but self is {self.dim()}D"
            )
        return shape_ops.transpose(self, 0, 1) if self.data.dim() == 2 else self

    @property
    def T(self) -> Tensor:  # noqa: N802 - torch's name
        return shape_ops.permute(self, tuple(reversed(range(self.data.dim()))))

    @property
    def mT(self) -> Tensor:  # noqa: N802 - torch's name
        return shape_ops.transpose(self, -2, -1)

    def permute(self, *dims: Any) -> Tensor:
        return shape_ops.permute(self, shape_ops.shape_arg(dims))

    def expand(self, *sizes: Any) -> Tensor:
        return shape_ops.expand(self, shape_ops.shape_arg(sizes))

    def expand_as(self, other: Any) -> Tensor:
        return shape_ops.expand(self, other.shape)

    def contiguous(self, memory_format: torch.memory_format | None = None) -> Tensor:
        return shape_ops.contiguous(self, memory_format)

    # ------------------------------------------------------------------ indexing
    def __getitem__(self, index: Index) -> Tensor:
        return indexing.getitem(self, index)

    def gather(self, dim: int, index: Any) -> Tensor:
        return indexing.gather(self, dim, index)

    def scatter_add(self, dim: int, index: Any, src: Any) -> Tensor:
        return indexing.scatter_add(self, dim, index, src)

    def index_select(self, dim: int, index: Any) -> Tensor:
        return indexing.index_select(self, dim, index)

    def index_add(self, dim: int, index: Any, source: Any, *, alpha: Any = 1) -> Tensor:
        return indexing.index_add(self, dim, index, source, alpha=alpha)

    def narrow(self, dim: int, start: Any, length: int) -> Tensor:
        return indexing.narrow(self, dim, start, length)

    def select(self, dim: int, index: int) -> Tensor:
        return indexing.select(self, dim, index)

    def split(self, split_size: Any, dim: int = 0) -> tuple[Tensor, ...]:
        return join.split(self, split_size, dim)

    def chunk(self, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
        return join.chunk(self, chunks, dim)

    def unbind(self, dim: int = 0) -> tuple[Tensor, ...]:
        return join.unbind(self, dim)

    def unfold(self, dimension: int, size: int, step: int) -> Tensor:
        return windows.unfold(self, dimension, size, step)

    def as_strided(self, size: Any, stride: Any, storage_offset: int | None = None) -> Tensor:
        return windows.as_strided(self, size, stride, storage_offset)

    # ------------------------------------------------------------------ no gradient
    def __eq__(self, other: Any) -> Any:  # type: ignore[override]
        # As torch: an operand it cannot compare (None, a list, a string) gives
        # NotImplemented, so Python answers by identity (`tensor == None` is False).
        try:
            return comparison.eq(self, other)
        except TypeError:
            return NotImplemented

    def __ne__(self, other: Any) -> Any:  # type: ignore[override]
        try:
            return comparison.ne(self, other)
        except TypeError:
            return NotImplemented

    def __lt__(self, other: Any) -> Tensor:
        return comparison.lt(self, other)

    def __le__(self, other: Any) -> Tensor:
        return comparison.le(self, other)

    def __gt__(self, other: Any) -> Tensor:
        return comparison.gt(self, other)

    def __ge__(self, other: Any) -> Tensor:
        return comparison.ge(self, other)

    def __and__(self, other: Any) -> Tensor:
        return comparison.bitwise_and(self, other)

    def __rand__(self, other: Any) -> Tensor:
        return comparison.bitwise_and(other, self)

    def __or__(self, other: Any) -> Tensor:
        return comparison.bitwise_or(self, other)

    def __ror__(self, other: Any) -> Tensor:
        return comparison.bitwise_or(other, self)

    def __xor__(self, other: Any) -> Tensor:
        return comparison.bitwise_xor(self, other)

    def __rxor__(self, other: Any) -> Tensor:
        return comparison.bitwise_xor(other, self)

    def __invert__(self) -> Tensor:
        return comparison.bitwise_not(self)

    def eq(self, other: Any) -> Tensor:
        return comparison.eq(self, other)

    def ne(self, other: Any) -> Tensor:
        return comparison.ne(self, other)

    def lt(self, other: Any) -> Tensor:
        return comparison.lt(self, other)

    def le(self, other: Any) -> Tensor:
        return comparison.le(self, other)

    def gt(self, other: Any) -> Tensor:
        return comparison.gt(self, other)

    def ge(self, other: Any) -> Tensor:
        return comparison.ge(self, other)

    def sign(self) -> Tensor:
        return pointwise.sign(self)

    def isnan(self) -> Tensor:
        return comparison.isnan(self)

    def all(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return comparison.all(self, dim, keepdim)

    def any(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return comparison.any(self, dim, keepdim)


def _raw_index(index: Index) -> Index:
    """An index with our Tensors replaced by their torch data."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


# The ops import Tensor, so they are imported after it is defined.
from minitorch_edu.autograd import torch_function  # noqa: E402
from minitorch_edu.ops import (  # noqa: E402
    arithmetic,
    comparison,
    convert,
    indexing,
    join,
    pointwise,
    reduce,
    selection,
    windows,
)
from minitorch_edu.ops import matmul as matmul_ops  # noqa: E402
from minitorch_edu.ops import shape as shape_ops  # noqa: E402
