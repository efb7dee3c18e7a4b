"""Grad modes: whether operations run now are recorded in the graph.

One module-level flag, read by every `Function.apply`. `no_grad` and `enable_grad` flip it
for a block (as context managers) or for a whole function (as decorators), and put the
previous value back afterwards, even when the block raises.

torch's own grad mode is honoured too, so code ported from torch keeps its
`with torch.no_grad():`, `torch.inference_mode()` and `torch.set_grad_enabled(False)`:

    recording = our flag and torch.is_grad_enabled()

Switching recording *on* (`enable_grad`, `set_grad_enabled(True)`) sets torch's flag as well,
so `mt.enable_grad()` inside `torch.no_grad()` records, as `torch.enable_grad()` would.
Switching it off sets only ours: torch code run inside `mt.no_grad()` keeps its own mode.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from torch import is_grad_enabled as torch_is_grad_enabled
from torch import set_grad_enabled as _torch_set_grad_enabled

_enabled = True

F = TypeVar("F", bound=Callable[..., Any])


def is_grad_enabled() -> bool:
    """True when new operations are recorded for backward (ours and torch's mode both on)."""
    return _enabled and torch_is_grad_enabled()


def _set(mode: bool) -> None:
    global _enabled
    _enabled = bool(mode)
    if _enabled:
        _torch_set_grad_enabled(True)


class _GradModeGuard:
    """Sets the flag on entry and restores it on exit; also usable as a decorator,
    with or without parentheses (`@no_grad()` and `@no_grad`), as in torch."""

    mode: bool

    def __new__(cls, function: Callable | None = None):  # type: ignore[misc]
        guard = super().__new__(cls)
        return guard if function is None else guard(function)

    def __enter__(self) -> None:
        self._previous = (_enabled, torch_is_grad_enabled())
        _set(self.mode)

    def __exit__(self, *exc_info: object) -> None:
        _restore(self._previous)

    def __call__(self, function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.__class__():
                return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def _restore(previous: tuple[bool, bool]) -> None:
    global _enabled
    _enabled, torch_mode = previous
    if torch_is_grad_enabled() != torch_mode:
        _torch_set_grad_enabled(torch_mode)


class no_grad(_GradModeGuard):  # noqa: N801 - torch's name
    """Nothing run inside is recorded: results have no `grad_fn`, saving time and memory."""

    mode = False


class enable_grad(_GradModeGuard):  # noqa: N801 - torch's name
    """Recording is on inside, even within an outer `no_grad`."""

    mode = True


class set_grad_enabled(_GradModeGuard):  # noqa: N801 - torch's name
    """`set_grad_enabled(False)` sets the mode at once; as a context manager it restores it."""

    def __new__(cls, mode: bool) -> set_grad_enabled:
        return object.__new__(cls)

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self._previous = (_enabled, torch_is_grad_enabled())
        _set(self.mode)

    def __enter__(self) -> None:
        pass

    def __call__(self, function: F) -> F:
        _restore(self._previous)  # used as a decorator: the mode applies only inside calls
        mode = self.mode

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with set_grad_enabled(mode):
                return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class inference_mode(_GradModeGuard):  # noqa: N801 - torch's name
    """torch's `inference_mode`: here the same as `no_grad`, and `inference_mode(False)` leaves
    the mode as it is. (minitorch_edu has no inference tensors: nothing inside is recorded.)"""

    def __new__(cls, mode: Any = True):  # type: ignore[misc]
        guard = object.__new__(cls)
        if callable(mode):  # @inference_mode without parentheses
            guard.active = True
            return guard(mode)
        return guard

    def __init__(self, mode: Any = True) -> None:
        self.active = bool(mode)

    def __enter__(self) -> None:
        self._previous = (_enabled, torch_is_grad_enabled())
        if self.active:
            _set(False)

    def __call__(self, function: F) -> F:
        active = self.active

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with inference_mode(active):
                return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]
