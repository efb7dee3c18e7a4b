"""torch's OpInfo samples against every op we implement (mapping.OPS), float64 on a CPU.

For each op: its reference inputs (torch's sample inputs plus extremal values,
broadcasting and large cases, where the OpInfo has them) or its sample inputs, each held
against torch at every stage (forward, Tensor method, every gradient, second order where
the OpInfo says `supports_gradgrad`); and its error inputs, which we must refuse as torch
does. Anything not in divergences.py fails the test.
"""

from __future__ import annotations

import pytest
import torch

from .harness import Call, run_error_input, run_sample
from .mapping import OPS
from .report import Report, describe, select
from .torch_samples import MISSING, OPINFOS

if MISSING:
    pytest.skip(MISSING, allow_module_level=True)


def _method(name: str):
    return lambda input, *args, **kwargs: getattr(input, name)(*args, **kwargs)


def call_for(name: str) -> Call:
    op, entry = OPINFOS[name], OPS[name]
    has_method = entry.method is not None and op.method_variant is not None
    return Call(
        theirs=op.op,
        ours=entry.ours,
        method_theirs=op.method_variant if has_method else None,
        method_ours=_method(entry.method) if has_method else None,
    )


def op_samples(name: str) -> list:
    """The op's reference inputs when it has them (a superset of its sample inputs), else
    (or where torch's own reference generator fails for float64) its sample inputs."""
    op = OPINFOS[name]
    if op.reference_inputs_func is not None:
        torch.manual_seed(0)  # the same samples every run
        try:
            return list(
                op.reference_inputs("cpu", torch.float64, requires_grad=op.supports_autograd)
            )
        except ValueError:  # clamp, where: torch asks for integer tensors that require grad
            pass
    torch.manual_seed(0)
    return list(op.sample_inputs("cpu", torch.float64, requires_grad=op.supports_autograd))


def op_error_inputs(name: str) -> list:
    op = OPINFOS[name]
    if op.error_inputs_func is None:
        return []
    torch.manual_seed(0)
    return list(op.error_inputs("cpu"))


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_matches_torch_on_its_samples(name, record_property):
    op, call = OPINFOS[name], call_for(name)
    report = Report(name)
    samples = op_samples(name)
    for sample in select(samples, name):
        result = run_sample(call, sample, op.supports_autograd, op.supports_gradgrad)
        report.add(sample, result, describe(sample))
    errors = op_error_inputs(name)
    for error_input in errors:
        sample = error_input.sample_input
        report.add(sample, run_error_input(call, error_input), describe(sample))
    report.check_list_used(samples + [e.sample_input for e in errors])
    record_property("conformance", report.summary())
    assert not report.failures, report.message()


def test_every_mapped_op_exists_in_torchs_database():
    assert sorted(set(OPS) - set(OPINFOS)) == []
