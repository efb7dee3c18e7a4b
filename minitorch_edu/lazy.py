"""Packages that import their public names on first use (PEP 562's module `__getattr__`).

`import minitorch_edu` runs only a few lines: the names a user reaches for (`mt.tensor`,
`mt.nn`, `mt.float64`) are defined in `minitorch_edu/api.py`, which imports torch, and that
module is imported the first time one of them is asked for. Python calls a module's
`__getattr__` only for names it does not hold yet, so from then on every name is a plain
module attribute, as if the package had imported them itself.

Why: importing torch takes a second or more, and the `minitorch-edu` command must answer
`--help` and a mistyped option at once (it imports torch inside the command that needs it).
"""

from __future__ import annotations

import importlib
import types
from collections.abc import Callable
from typing import Any


def load_on_first_use(
    package: dict[str, Any], api_module: str
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for the package whose globals are `package`: they import
    `api_module` and copy its public names into the package.

    `__all__` (the names `from package import *` takes) is the API module's `__all__`, or
    else all its public names.
    """

    def load() -> list[str]:
        api = importlib.import_module(api_module)
        names = [name for name in vars(api) if not name.startswith("_")]
        package.update((name, getattr(api, name)) for name in names)
        return names

    def __getattr__(name: str) -> Any:
        if name == "__all__":
            names = load()
            return list(getattr(importlib.import_module(api_module), "__all__", names))
        if not name.startswith("__"):  # dunder probes (__wrapped__, ...) are not API names
            load()
            if name in package:
                return package[name]
        raise AttributeError(f"module {package['__name__']!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(package) | set(load()))

    return __getattr__, __dir__


class SubmodulesDoNotShadow(types.ModuleType):
    """A package in which importing a submodule never shadows a public name (its `__all__`).

    The import system sets `package.<name>` to each submodule it imports. minitorch_edu.study
    has a submodule `trace` and a function `trace` in its API: were the submodule imported
    before the API is loaded, `study.trace` would be the module. Here the submodule is left
    out, so that `study.trace` is found by `__getattr__`, which loads the API: the function.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and name in self.__dict__.get("__all__", ()):
            return
        super().__setattr__(name, value)
