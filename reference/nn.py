"""torch.nn twins of minitorch_edu.nn modules (and back), with the same settings and weights.

    twin = torch_twin(model)           # a torch.nn module, same configuration, copied weights
    back = minitorch_twin(twin)        # and the other way

Our modules use torch's attribute names (in_features, kernel_size, ...), so one table of
settings per layer family builds a module in either library. Containers (Sequential,
ModuleList, ModuleDict) are rebuilt recursively; weights then travel via state_dict, and
the training flags are copied module by module. Building a twin does not advance torch's
random number generator.
"""

from __future__ import annotations

from collections import OrderedDict
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
