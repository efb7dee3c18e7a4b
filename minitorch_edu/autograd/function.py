"""`Function`: one differentiable operation, its forward and backward side by side.

An op is a subclass with

    formula   its backward in maths notation, written once; study tools print it
    forward   `forward(ctx, *inputs, **options)` computes on plain torch.Tensors
    backward  `backward(ctx, grad)` returns one gradient per input (None where unneeded)

    class Mul(Function):
        formula = "da = grad * b;  db = grad * a"

        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, grad):
            a, b = ctx.saved_tensors
            return grad * b, grad * a

`Mul.apply(x, y)` runs forward on the inputs' `.data`, and when an input requires grad
(and grad mode is on) keeps the `ctx` object as the node of the graph: it remembers its
parents (the `grad_fn` of each input, or the input itself for a leaf) and what was saved.

Backward formulas use only methods that plain torch.Tensors and our Tensors share. The
engine normally hands them plain torch.Tensors (fast, nothing recorded); with
`create_graph=True` it hands them our Tensors with recording on, so the same lines build
the graph of the backward pass and gradients of gradients come for free.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from minitorch_edu.autograd import grad_mode
from minitorch_edu.autograd.formula import Formula
from minitorch_edu.autograd.grad_mode import torch_is_grad_enabled
from minitorch_edu.autograd.tensor import Tensor, complex_gradients_refused
from minitorch_edu.autograd.torch_function import type_name

_OUTPUT = object()  # marks "the op's own result" among the saved tensors

# The active study tracer (minitorch_edu.study.trace) or None: one check per op when unused.
# It is told: on_forward(cls, node_or_None, inputs, options, result) after every op;
# on_backward_begin(outputs) / on_backward_end() around a backward pass;
# on_backward(node, grad, input_grads) after each node's backward; and
# on_deliver(tensor, grad) when a finished gradient reaches a leaf (or a requested input).
tracer = None

FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward."
)


class Function:
    """Base class of every op. An instance is both the `ctx` of one call and its graph node."""

    formula: ClassVar[str] = ""
    # The op's formula data (minitorch_edu/autograd/formula.py): when a class declares it,
    # `formula` is made from it, so the trace, the graph and explain_gradient read one source.
    derivatives: ClassVar[Formula | None] = None

    # Defaults for nodes; a recorded call sets its own values.
    parents: tuple = ()
    needs_input_grad: tuple[bool, ...] = ()
    output_shape: torch.Size = torch.Size()
    output_dtype: torch.dtype = torch.float32
    _to_save: tuple = ()
    _saved: tuple | None = ()
    _versions: tuple = ()
    _output: torch.Tensor | None = None
    _grad_hooks: list | None = None
    options: dict | None = None  # the keyword options of the call (stride, dim, ...)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = cls.__dict__.get("derivatives")
        if declared is not None:
            if "formula" in cls.__dict__:
                raise TypeError(f"{cls.__name__}: give `derivatives` or `formula`, not both")
            cls.formula = declared.text

    @staticmethod
    def forward(ctx: Function, *inputs: Any, **options: Any) -> torch.Tensor:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Function, grad: Any) -> Any:
        raise NotImplementedError

    # ------------------------------------------------------------------ recording
    @classmethod
    def apply(cls, *inputs: Any, **options: Any) -> Tensor:
        """Run forward on the inputs' data; record a node when any input requires grad."""
        ctx = cls.__new__(cls)
        raw_inputs = []
        parents = []  # per input: its node (or itself, a leaf) when it requires grad, else None
        recording = False
        has_numpy = False
        for x in inputs:
            if isinstance(x, Tensor):
                raw_inputs.append(x.data)
                if x._requires_grad:
                    recording = True
                    parents.append(x if x.grad_fn is None else x.grad_fn)
                    continue
            else:
                has_numpy = has_numpy or isinstance(x, np.ndarray)
                raw_inputs.append(x)
            parents.append(None)
        if has_numpy:
            raw_inputs = _numpy_to_torch(raw_inputs)
        recording = recording and grad_mode._enabled and torch_is_grad_enabled()

        try:
            out = cls.forward(ctx, *raw_inputs, **options)
        except (RuntimeError, IndexError, ValueError, TypeError) as error:
            raise _explain(cls, raw_inputs, error) from None
        except AttributeError:  # forward called a tensor method on, say, a string
            has_tensor = any(isinstance(x, torch.Tensor) for x in raw_inputs)
            if has_tensor and all(
                isinstance(x, torch.Tensor | int | float | None) for x in raw_inputs
            ):
                raise  # a bug in forward itself: keep its traceback
            kinds = ", ".join(type_name(x) for x in raw_inputs)
            wanted = "tensors, NumPy arrays or numbers as inputs" if has_tensor else "a tensor"
            raise TypeError(f"{cls.__name__}: expected {wanted}, got {kinds}") from None

        if not recording:  # no_grad, or no input needs a gradient: no node, nothing kept
            result = Tensor._wrap(out)
        else:
            ctx.output_dtype = out.dtype
            if ctx.output_dtype.is_complex:  # a real input that requires grad, complex result
                raise RuntimeError(f"{cls.__name__}: {complex_gradients_refused(out.dtype)}")
            ctx.parents = tuple(parents)
            ctx.needs_input_grad = tuple([parent is not None for parent in parents])
            ctx.output_shape = out.shape
            if options:
                ctx.options = options
            if ctx._to_save:
                ctx._resolve_saved(inputs, raw_inputs, out)
            result = Tensor._wrap(out, ctx)
        if tracer is not None:
            tracer.on_forward(cls, ctx if recording else None, inputs, options, result)
        return result

    def save_for_backward(self, *tensors: Any) -> None:
        """Keep tensors for backward. Call it in forward with the plain tensors you need."""
        self._to_save = tensors

    def _resolve_saved(self, inputs: tuple, raw_inputs: list, out: torch.Tensor) -> None:
        # Remember *which* tensor each saved value is: an input (so a create_graph backward
        # can use the input Tensor, connected to the graph), the output, or a constant.
        saved = []
        for value in self._to_save:
            if value is out:
                saved.append(_OUTPUT)
                self._output = out
                continue
            for x, raw in zip(inputs, raw_inputs):
                if value is raw:
                    saved.append(x if isinstance(x, Tensor) else raw)  # raw: NumPy made torch
                    break
            else:
                saved.append(value)
        self._saved = tuple(saved)
        self._versions = tuple(getattr(v, "_version", None) for v in self._to_save)
        self._to_save = ()

    # ------------------------------------------------------------------ unpacking
    @property
    def saved_tensors(self) -> tuple:
        """What forward saved: plain tensors normally, our Tensors when recording (create_graph)."""
        if self._saved is None:
            raise RuntimeError(FREED_MESSAGE)
        plain = [
            self._output
            if value is _OUTPUT
            else (value.data if isinstance(value, Tensor) else value)
            for value in self._saved
        ]
        self._check_versions(plain)
        if grad_mode.is_grad_enabled():
            return tuple([self._unpack_recorded(value) for value in self._saved])
        return tuple(plain)

    def _unpack_recorded(self, value: Any) -> Any:
        if value is _OUTPUT:
            return Tensor._wrap(self._output, self)  # the output, with this node as grad_fn
        if isinstance(value, torch.Tensor):
            return Tensor._wrap(value)
        return value

    def _check_versions(self, plain: list) -> None:
        # (a saved Tensor of ours is checked through its .data; a torch tensor's own .data
        # would be an alias with a fresh version count, blind to changes)
        for raw, version in zip(plain, self._versions):
            if version is not None and raw._version != version:
                raise RuntimeError(
                    f"{self.name()}: one of the tensors saved for its backward was modified in "
                    f"place after the forward pass (version {version} became {raw._version}). "
                    "Run backward before changing it, e.g. before optimizer.step()."
                )

    def release(self) -> None:
        """Free saved tensors once backward has used them (unless retain_graph)."""
        if self._saved:
            self._saved = None
            self._output = None

    # ------------------------------------------------------------------ display
    @classmethod
    def name(cls) -> str:
        return f"{cls.__name__}Backward"

    def __repr__(self) -> str:
        return f"<{self.name()}>"


def _numpy_to_torch(raw_inputs: list) -> list:
    device = next((x.device for x in raw_inputs if isinstance(x, torch.Tensor)), None)
    return [
        torch.as_tensor(x, device=device) if isinstance(x, np.ndarray) else x for x in raw_inputs
    ]


def describe(x: Any) -> str:
    """`float32[2, 3] on cpu`: how error messages name a tensor."""
    if isinstance(x, torch.Tensor):
        dtype = str(x.dtype).removeprefix("torch.")
        return f"{dtype}{list(x.shape)} on {x.device}"
    return repr(x)


def _explain(cls: type[Function], raw_inputs: list, error: Exception) -> Exception:
    """Rewrite an error from inside forward so that it names the op and its inputs."""
    tensors = [x for x in raw_inputs if isinstance(x, torch.Tensor)]
    devices = sorted({str(x.device) for x in tensors})
    op = cls.__name__
    if len(devices) > 1 and isinstance(error, RuntimeError):
        return RuntimeError(
            f"{op}: expected all tensors on the same device, got {' and '.join(devices)} "
            f"(inputs: {', '.join(describe(x) for x in tensors)}). Move them with .to(device)."
        )
    inputs = ", ".join(describe(x) for x in raw_inputs if x is not None)
    return type(error)(f"{op}: {error} (inputs: {inputs})")
