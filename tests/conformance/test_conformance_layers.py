"""torch's ModuleInfo samples against every layer and loss we implement (mapping.MODULES).

Each sample runs in training and in evaluation mode: forward, the gradients of the inputs
and of every parameter, second order where the ModuleInfo says `supports_gradgrad`, and the
state dict both ways. Error inputs (at construction or at forward) must be refused.
"""

from __future__ import annotations

import pytest
import torch

from .layers import run_module_error_input, run_module_input
from .mapping import MODULES
from .report import Report, describe, select
from .torch_samples import MISSING, MODULEINFOS, ModuleErrorEnum

if MISSING:
    pytest.skip(MISSING, allow_module_level=True)


def module_inputs(info, training: bool) -> list:
    torch.manual_seed(0)  # the same samples every run
    return list(
        info.module_inputs_func(
            info, device="cpu", dtype=torch.float64, requires_grad=True, training=training
        )
    )


def module_error_inputs(info, training: bool) -> list:
    if info.module_error_inputs_func is None:
        return []
    torch.manual_seed(0)
    return list(
        info.module_error_inputs_func(
            info, device="cpu", dtype=torch.float64, requires_grad=True, training=training
        )
    )


@pytest.mark.parametrize("name", sorted(MODULES))
def test_layer_matches_torch_on_its_samples(name, record_property):
    info, our_class = MODULEINFOS[name], MODULES[name]
    report = Report(name)
    every = []
    for training in (True, False):
        inputs = module_inputs(info, training)
        every += inputs
        for module_input in select(inputs, name):
            result = run_module_input(info, our_class, module_input, training)
            report.add(module_input, result, f"{describe_input(module_input)}, training={training}")
        for error_input in module_error_inputs(info, training):
            construction = error_input.error_on == ModuleErrorEnum.CONSTRUCTION_ERROR
            result = run_module_error_input(info, our_class, error_input, training, construction)
            sample = error_input.module_error_input
            every.append(sample)
            report.add(sample, result, f"error input {describe_input(sample)}")
    report.check_list_used(every)
    record_property("conformance", report.summary())
    assert not report.failures, report.message()


def describe_input(module_input) -> str:
    constructor = module_input.constructor_input
    forward = module_input.forward_input
    shapes = [
        list(a.shape) if isinstance(a, torch.Tensor) else a
        for a in (forward.args if forward else ())
    ]
    return describe(
        f"{module_input.desc or 'default'!r}: {constructor.args} {constructor.kwargs} on {shapes}"
    )


def test_every_mapped_layer_exists_in_torchs_database():
    assert sorted(set(MODULES) - set(MODULEINFOS)) == []
