"""torch's own sample databases (OpInfo, ModuleInfo, OptimizerInfo), imported once.

They live in `torch.testing._internal`, which is not a public API: it moves between
releases and needs `expecttest` to import. When any piece is missing, `MISSING` says what,
and the conformance tests skip with that reason instead of failing.
"""

from __future__ import annotations

import torch
from hypothesis import settings


# Importing common_utils registers torch's own hypothesis profiles (one named "dev", as ours)
# and loads one of them: the suite's profiles and the active settings are put back after it.
def _profiles(names: tuple[str, ...]) -> dict:
    found = {}
    for name in names:
        try:
            found[name] = settings.get_profile(name)
        except Exception:  # not registered (the module imported outside the test suite)
            pass
    return found


_OUR_PROFILES = _profiles(("dev", "ci", "thorough"))
_ACTIVE = settings.default

MISSING = ""
try:
    from torch.testing._internal.common_methods_invocations import op_db
    from torch.testing._internal.common_modules import ModuleErrorEnum, module_db
    from torch.testing._internal.common_optimizers import (
        OptimizerErrorEnum,
        _get_optim_inputs_including_global_cliquey_kwargs,
        optim_db,
    )
except Exception as error:  # ImportError, or a name that moved in this torch build
    MISSING = (
        f"torch {torch.__version__} lacks the sample databases of torch.testing._internal "
        f"({type(error).__name__}: {error})"
    )
    op_db, module_db, optim_db = [], [], []
    ModuleErrorEnum = OptimizerErrorEnum = None
    _get_optim_inputs_including_global_cliquey_kwargs = None
else:
    # Importing common_utils freezes torch.backends flags for the whole process; the rest of
    # the suite may still set them directly, as it could before.
    torch.backends.__dict__["__allow_nonbracketed_mutation_flag"] = True
finally:
    for _name, _profile in _OUR_PROFILES.items():
        settings.register_profile(_name, _profile)
    settings.register_profile("minitorch-edu-active", _ACTIVE)
    settings.load_profile("minitorch-edu-active")


def opinfo_name(op) -> str:
    """`div.floor_rounding`: an OpInfo's name with its variant, as torch's test ids write it."""
    return f"{op.name}.{op.variant_test_name}" if op.variant_test_name else op.name


OPINFOS = {opinfo_name(op): op for op in op_db}
MODULEINFOS = {info.name: info for info in module_db}
OPTIMINFOS = {info.name: info for info in optim_db}
all_optim_inputs = _get_optim_inputs_including_global_cliquey_kwargs

__all__ = [
    "MISSING",
    "MODULEINFOS",
    "OPINFOS",
    "OPTIMINFOS",
    "ModuleErrorEnum",
    "OptimizerErrorEnum",
    "all_optim_inputs",
    "opinfo_name",
]
