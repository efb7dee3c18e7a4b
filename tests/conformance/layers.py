"""torch's ModuleInfo samples through a torch.nn layer and through ours.

For each sample both layers are built from the same constructor arguments, ours takes
torch's weights (`load_state_dict(torch_layer.state_dict())`), both are put in the
sample's training mode, and then:

    forward and gradients   as for ops (harness.compare_calls), the gradients taken with
                            respect to the inputs and to every parameter
    state dicts             ours holds torch's keys and numbers, and torch's layer loads
                            ours back (strict)
"""

from __future__ import annotations

from typing import Any

import torch

import minitorch_edu as mt

from .harness import (
    DIFFERS,
    PASSED,
    Result,
    Stop,
    both_refuse,
    compare_calls,
    compare_values,
    leaves,
    our_copy,
    refused,
    torch_copy,
)


def build_pair(info: Any, our_class: type, constructor: Any) -> tuple[Any, Any]:
    """torch's layer (float64, as torch's own module tests build it) and ours with its weights."""
    torch_layer = info.module_cls(*constructor.args, **constructor.kwargs)
    torch_layer = torch_layer.to(torch.float64)
    our_layer = our_class(*our_copy(constructor.args), **our_copy(constructor.kwargs))
    our_layer.to(torch.float64)
    our_layer.load_state_dict(torch_layer.state_dict())
    return torch_layer, our_layer


def run_module_input(info: Any, our_class: type, module_input: Any, training: bool) -> Result:
    """Compare one ModuleInput through torch's layer and ours."""
    constructor, forward = module_input.constructor_input, module_input.forward_input
    try:
        torch_layer, our_layer = build_pair(info, our_class, constructor)
    except Exception as error:
        return refused("construction", error).result
    torch_layer.train(training)
    our_layer.train(training)
    theirs_in = torch_copy((tuple(forward.args), dict(forward.kwargs)))
    ours_in = our_copy((tuple(forward.args), dict(forward.kwargs)))
    torch_parameters = list(torch_layer.parameters())
    our_parameters = [
        dict(our_layer.named_parameters())[n] for n, _ in torch_layer.named_parameters()
    ]
    try:
        compare_calls(
            lambda: torch_layer(*theirs_in[0], **theirs_in[1]),
            lambda: our_layer(*ours_in[0], **ours_in[1]),
            leaves(theirs_in) + torch_parameters,
            leaves(ours_in) + our_parameters,
            gradients=True,
            second_order=info.supports_gradgrad,
        )
        _compare_state_dicts(torch_layer, our_layer)
    except Stop as stop:
        return stop.result
    return PASSED


def _compare_state_dicts(torch_layer: Any, our_layer: Any) -> None:
    theirs, ours = torch_layer.state_dict(), our_layer.state_dict()
    if list(ours) != list(theirs):
        raise Stop(Result(DIFFERS, "state_dict", f"keys {list(ours)}, torch's {list(theirs)}"))
    compare_values(
        [mt.Tensor(value) for value in ours.values()], list(theirs.values()), "state_dict value"
    )
    try:
        torch_layer.load_state_dict(ours)
    except Exception as error:
        raise Stop(Result(DIFFERS, "state_dict", f"torch cannot load ours: {error}")) from None


def run_module_error_input(
    info: Any, our_class: type, error_input: Any, training: bool, construction_only: bool
) -> Result | None:
    """A ModuleErrorInput: torch refuses it at construction or at forward; so must we."""
    sample = error_input.module_error_input
    constructor, forward = sample.constructor_input, sample.forward_input

    def theirs() -> None:
        layer = info.module_cls(*constructor.args, **constructor.kwargs).to(torch.float64)
        if not construction_only:
            layer.train(training)
            layer(*forward.args, **forward.kwargs)

    def ours() -> None:
        layer = our_class(*our_copy(constructor.args), **our_copy(constructor.kwargs))
        if not construction_only:
            layer.to(torch.float64)
            layer.train(training)
            arguments = our_copy((tuple(forward.args), dict(forward.kwargs)))
            layer(*arguments[0], **arguments[1])

    return both_refuse(theirs, ours, f"torch: {error_input.error_regex}")
