"""torch's OptimizerInfo configurations against every optimizer we implement
(mapping.OPTIMIZERS): each with every update path torch has on a CPU (foreach off and on,
which are our two paths; differentiable; fused), several steps compared bit for bit, state
dicts both ways; and torch's error inputs, which we must refuse (or warn about) as torch
does.
"""

from __future__ import annotations

import pytest
import torch

from .mapping import OPTIMIZERS
from .optimizers import configurations, run_configuration, run_error_input
from .report import Report, select
from .torch_samples import MISSING, OPTIMINFOS, OptimizerErrorEnum

if MISSING:
    pytest.skip(MISSING, allow_module_level=True)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_matches_torch_on_its_configurations(name, record_property):
    info, our_class = OPTIMINFOS[name], OPTIMIZERS[name]
    report = Report(name)
    configs = configurations(info)
    for config in select(configs, name, limit=len(configs)):
        report.add(config, run_configuration(info, our_class, config.kwargs), repr(config))
    error_inputs = info.optim_error_inputs_func(device="cpu", dtype=torch.float64)
    for error_input in error_inputs:
        step_error = error_input.error_on == OptimizerErrorEnum.STEP_ERROR
        sample = error_input.optimizer_error_input
        result = run_error_input(info, our_class, error_input, step_error)
        report.add(sample, result, f"error input {sample.desc!r} {sample.kwargs}")
    report.check_list_used(configs + [e.optimizer_error_input for e in error_inputs])
    record_property("conformance", report.summary())
    assert not report.failures, report.message()


def test_every_mapped_optimizer_exists_in_torchs_database():
    assert sorted(set(OPTIMIZERS) - set(OPTIMINFOS)) == []
