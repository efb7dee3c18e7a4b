"""The conformance tests skip, saying why, on a torch build without its sample databases."""

from __future__ import annotations

import importlib
import sys

from . import torch_samples


def test_a_torch_build_without_the_sample_databases_gives_a_reason_to_skip(monkeypatch):
    # None in sys.modules makes the import fail, as on a build that lacks the module
    monkeypatch.setitem(sys.modules, "torch.testing._internal.common_methods_invocations", None)
    try:
        importlib.reload(torch_samples)
        assert "lacks the sample databases of torch.testing._internal" in torch_samples.MISSING
        assert "common_methods_invocations" in torch_samples.MISSING
        assert torch_samples.OPINFOS == {} and torch_samples.OPTIMINFOS == {}
    finally:
        monkeypatch.undo()
        importlib.reload(torch_samples)
    assert torch_samples.MISSING == "" and "add" in torch_samples.OPINFOS
