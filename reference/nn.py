"""torch.nn twins of minitorch_edu.nn modules (and back), with the same settings and weights.

    twin = torch_twin(model)           # a torch.nn module, same configuration, copied weights
    back = minitorch_twin(twin)        # and the other way
    assert_matches_twin(model, x)      # same output, input gradients and parameter gradients

Our modules use torch's attribute names (in_features, kernel_size, ...), so one table of
settings per layer family builds a module in either library. Containers (Sequential,
ModuleList, ModuleDict) are rebuilt recursively; weights then travel via state_dict, and
the training flags are copied module by module. Building a twin does not advance torch's
random number generator.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch

import minitorch_edu as mt

# Family name -> the constructor arguments read off a module of either library.
SETTINGS: dict[str, tuple[str, ...]] = {
    "Linear": ("in_features", "out_features", "bias"),
    "Conv1d": (
        "in_channels",
        "out_channels",
        "kernel_size",
        "stride",
        "padding",
        "dilation",
        "groups",
        "bias",
        "padding_mode",
    ),
    "MaxPool2d": ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"),
    "AvgPool2d": (
        "kernel_size",
        "stride",
        "padding",
        "ceil_mode",
        "count_include_pad",
        "divisor_override",
    ),
    "ReLU": ("inplace",),
    "LeakyReLU": ("negative_slope", "inplace"),
    "Sigmoid": (),
    "Tanh": (),
    "Softmax": ("dim",),
    "LogSoftmax": ("dim",),
    "Dropout": ("p", "inplace"),
    "Flatten": ("start_dim", "end_dim"),
    "Identity": (),
    "CrossEntropyLoss": ("weight", "ignore_index", "reduction", "label_smoothing"),
    "NLLLoss": ("weight", "ignore_index", "reduction"),
    "MSELoss": ("reduction",),
    "BCEWithLogitsLoss": ("weight", "reduction", "pos_weight"),
}
SETTINGS["Conv2d"] = SETTINGS["Conv1d"]

CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")


def _setting(module: Any, name: str) -> Any:
    value = getattr(module, name)
    if name == "bias":
        return value is not None
    if isinstance(value, mt.Tensor | torch.Tensor):
        return value.data.detach().clone() if isinstance(value, mt.Tensor) else value.clone()
    return value


def _build(module: Any, library: Any) -> Any:
    """The module's counterpart in `library` (torch.nn or minitorch_edu.nn), weights not copied."""
    family = type(module).__name__
    if family in CONTAINERS:
        children = [(name, _build(child, library)) for name, child in module.named_children()]
        if family == "Sequential":
            twin = library.Sequential(OrderedDict(children))
        elif family == "ModuleList":
            twin = library.ModuleList([child for _, child in children])
        else:
            twin = library.ModuleDict(OrderedDict(children))
    elif family in SETTINGS:
        kwargs = {name: _setting(module, name) for name in SETTINGS[family]}
        twin = getattr(library, family)(**kwargs)
    else:
        raise TypeError(
            f"no twin is known for {family}: build the counterpart yourself and copy the weights "
            "with twin.load_state_dict(module.state_dict())"
        )
    twin.training = module.training
    return twin


def _dtype_and_device(module: Any) -> tuple[torch.dtype | None, torch.device | None]:
    for tensor in module.state_dict().values():
        if tensor.is_floating_point():
            return tensor.dtype, tensor.device
    return None, None


def _twin(module: Any, library: Any) -> Any:
    with torch.random.fork_rng(devices=[]):  # building initialises weights: keep the seed's stream
        twin = _build(module, library)
    dtype, device = _dtype_and_device(module)
    if dtype is not None:
        twin.to(device=device, dtype=dtype)
    twin.load_state_dict(module.state_dict())
    return twin


def torch_twin(module: mt.nn.Module) -> torch.nn.Module:
    """A torch.nn module configured like `module`, holding copies of its weights and buffers."""
    return _twin(module, torch.nn)


def minitorch_twin(module: torch.nn.Module) -> mt.nn.Module:
    """A minitorch_edu.nn module configured like the torch.nn `module`, with its weights."""
    return _twin(module, mt.nn)


@dataclass
class SideBySide:
    """One forward and backward of a module and of its torch twin on the same inputs."""

    output: torch.Tensor
    torch_output: torch.Tensor
    input_grads: list[torch.Tensor | None]
    torch_input_grads: list[torch.Tensor | None]
    grads: dict[str, torch.Tensor | None]  # parameter name -> gradient
    torch_grads: dict[str, torch.Tensor | None]


def side_by_side(
    module: mt.nn.Module, *inputs: Any, twin: torch.nn.Module | None = None, seed: int = 0
) -> SideBySide:
    """Run `module` and its twin (built by torch_twin unless given) on copies of `inputs`.

    Floating-point torch.Tensor inputs become leaves that require grad on both sides; other
    inputs (class indices, numbers) pass as they are. If the output needs a gradient, the
    same random grad_output (from `seed`) is sent back through both.
    """
    twin = torch_twin(module) if twin is None else twin
    ours, theirs = [], []
    for x in inputs:
        if isinstance(x, torch.Tensor):
            wants_grad = x.is_floating_point()
            ours.append(mt.Tensor(x.detach().clone(), requires_grad=wants_grad))
            theirs.append(x.detach().clone().requires_grad_(wants_grad))
        else:
            ours.append(x)
            theirs.append(x)
    output, torch_output = module(*ours), twin(*theirs)
    if torch_output.requires_grad:
        generator = torch.Generator().manual_seed(seed)
        grad_output = torch.randn(torch_output.shape, generator=generator, dtype=torch_output.dtype)
        grad_output = grad_output.to(torch_output.device)
        output.backward(grad_output)
        torch_output.backward(grad_output)

    def grad_of(x: Any) -> torch.Tensor | None:
        grad = getattr(x, "grad", None)
        return grad.data if isinstance(grad, mt.Tensor) else grad

    return SideBySide(
        output=output.data,
        torch_output=torch_output.detach(),
        input_grads=[grad_of(x) for x in ours],
        torch_input_grads=[grad_of(x) for x in theirs],
        grads={name: grad_of(p) for name, p in module.named_parameters()},
        torch_grads={name: grad_of(p) for name, p in twin.named_parameters()},
    )


def assert_matches_twin(
    module: mt.nn.Module,
    *inputs: Any,
    twin: torch.nn.Module | None = None,
    rtol: float = 1e-7,
    atol: float = 1e-9,
) -> SideBySide:
    """Assert equal outputs, input gradients and parameter gradients (by name) with the twin."""
    run = side_by_side(module, *inputs, twin=twin)
    pairs = [("output", run.output, run.torch_output)]
    pairs += [
        (f"gradient of input {i}", ours, theirs)
        for i, (ours, theirs) in enumerate(zip(run.input_grads, run.torch_input_grads))
    ]
    if set(run.grads) != set(run.torch_grads):
        raise AssertionError(f"parameters differ: {sorted(run.grads)} vs {sorted(run.torch_grads)}")
    pairs += [(f"gradient of {name}", run.grads[name], run.torch_grads[name]) for name in run.grads]
    for what, ours, theirs in pairs:
        if ours is None or theirs is None:
            if ours is not theirs:
                raise AssertionError(f"{what}: one side has none ({ours!r} vs {theirs!r})")
            continue
        if ours.shape != theirs.shape or ours.dtype != theirs.dtype:
            ours_text, theirs_text = (
                f"{ours.dtype}{list(ours.shape)}",
                f"{theirs.dtype}{list(theirs.shape)}",
            )
            raise AssertionError(f"{what}: {ours_text} vs torch's {theirs_text}")
        try:
            torch.testing.assert_close(ours, theirs, rtol=rtol, atol=atol, equal_nan=True)
        except AssertionError as error:
            raise AssertionError(f"{what} differs from torch:\n{error}") from None
    return run
