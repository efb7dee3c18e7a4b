"""gradcheck: compare an analytic gradient with central finite differences, in float64.

For a function f and a fixed random tensor v of f's output shape, let L(x) = sum(f(x) * v)
(for a function with several outputs, the sum of one such term per floating-point output).
Backward gives dL/dx exactly (up to rounding); finite differences estimate it:

    dL/dx_i  ~  (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)        error O(eps^2)

A random v makes every output element count, so one backward checks the whole
vector-Jacobian product. An element passes when |analytic - numeric| <= atol + rtol |numeric|.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from minitorch_edu.autograd import engine, grad_mode
from minitorch_edu.autograd.tensor import Tensor, as_torch


class GradcheckError(AssertionError):
    """The analytic gradient disagrees with finite differences."""


@dataclass
class GradcheckResult:
    ok: bool
    input_index: int  # which input holds the worst element
    element: tuple[int, ...]  # its index
    analytic: float
    numeric: float
    relative_error: float
    checked: int  # how many elements were checked

    def __str__(self) -> str:
        verdict = "passed" if self.ok else "FAILED"
        return (
            f"gradcheck {verdict} ({self.checked} elements): worst is input {self.input_index}"
            f"{list(self.element)}: analytic {self.analytic:.10g}, numeric {self.numeric:.10g}, "
            f"relative error {self.relative_error:.3g}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "ok": self.ok,
            "input_index": self.input_index,
            "element": list(self.element),
            "analytic": self.analytic,
            "numeric": self.numeric,
            "relative_error": self.relative_error,
            "checked": self.checked,
        }

    def _repr_html_(self) -> str:
        from minitorch_edu.study.display import gradcheck_html

        return gradcheck_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence[Any],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    seed: int = 0,
) -> GradcheckResult:
    """Check fn's backward against finite differences for every floating-point input.

    Inputs are copied to float64 leaves; integer tensors and other values are passed as
    they are. Returns the worst element; raises GradcheckError on failure unless
    raise_exception=False.
    """
    leaves = [_as_leaf(x) for x in inputs]
    checked_inputs = [i for i, x in enumerate(leaves) if isinstance(x, Tensor) and x.requires_grad]
    if not checked_inputs:
        raise ValueError("gradcheck: no floating-point input to differentiate")

    outputs = _floating_outputs(fn(*leaves))
    generator = torch.Generator().manual_seed(seed)
    vs = [
        torch.randn(out.shape, generator=generator, dtype=torch.float64).to(out.device)
        for out in outputs
    ]
    wanted = [leaves[i] for i in checked_inputs]
    differentiable = [(out, v) for out, v in zip(outputs, vs) if out.requires_grad]
    if differentiable:
        outs, grad_outputs = zip(*differentiable)
        analytic = engine.grad(list(outs), wanted, list(grad_outputs), allow_unused=True)
    else:  # nothing depends on the inputs: every gradient is 0
        analytic = (None,) * len(wanted)

    worst = None
    checked = 0
    for position, i in enumerate(checked_inputs):
        data = leaves[i].data
        grad = analytic[position]
        grad = torch.zeros_like(data) if grad is None else grad.data
        for element in _indices(data.shape):
            numeric = _central_difference(fn, leaves, i, element, vs, eps)
            exact = grad[element].item()
            error = abs(exact - numeric)
            score = error / (atol + rtol * abs(numeric))
            checked += 1
            if worst is None or score > worst[0]:
                relative = error / max(abs(exact), abs(numeric), 1e-300)
                worst = (score, i, element, exact, numeric, relative)

    if worst is None:  # every input is empty: nothing to check, nothing wrong
        return GradcheckResult(True, checked_inputs[0], (), 0.0, 0.0, 0.0, 0)
    score, i, element, exact, numeric, relative = worst
    result = GradcheckResult(score <= 1.0, i, element, exact, numeric, relative, checked)
    if not result.ok and raise_exception:
        raise GradcheckError(str(result))
    return result


def _as_leaf(x: Any) -> Any:
    if isinstance(x, Tensor | torch.Tensor) and x.is_floating_point():
        return Tensor(as_torch(x).to(torch.float64).clone(), requires_grad=True)
    return x


def _indices(shape: torch.Size):
    if len(shape) == 0:
        yield ()
        return
    for flat in range(shape.numel()):
        index = []
        for size in reversed(shape):
            index.append(flat % size)
            flat //= size
        yield tuple(reversed(index))


def _floating_outputs(result: Any) -> list[Tensor]:
    """fn's outputs that carry gradients: one Tensor, or the floating ones of a tuple."""
    outputs = list(result) if isinstance(result, tuple | list) else [result]
    return [out for out in outputs if out.is_floating_point()]


def _central_difference(fn, leaves, i, element, vs, eps) -> float:
    data = leaves[i].data
    original = data[element].item()
    values = []
    with grad_mode.no_grad():
        for shifted in (original + eps, original - eps):
            data[element] = shifted
            outputs = _floating_outputs(fn(*leaves))
            values.append(sum((out.data * v).sum().item() for out, v in zip(outputs, vs)))
    data[element] = original
    return (values[0] - values[1]) / (2 * eps)
