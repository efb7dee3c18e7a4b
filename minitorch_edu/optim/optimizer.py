"""`Optimizer`: the bookkeeping every optimizer shares.

An optimizer holds

    param_groups   a list of dicts {"params": [Tensor, ...], "lr": ..., other hyperparameters};
                   each group may set any hyperparameter, the rest come from `defaults`
    defaults       the hyperparameters given to the constructor
    state          per parameter (keyed by the Tensor object itself) a dict of plain
                   torch.Tensors: step counts, momentum buffers, running averages

`step()` walks the groups, keeps the parameters whose `.grad` is not None, and hands them to
the subclass's update, written twice with the same operations in the same order:

    _update_single_tensor(group, params)   one parameter at a time
    _update_foreach(group, params)         all parameters of the group at once, with torch's
                                           grouped `torch._foreach_*` arithmetic (fewer calls)

`foreach=None` picks the grouped form whenever the group's parameters share one device: it
gives the same numbers (bit for bit on a CPU) with fewer Python-level calls, and is faster
on a CPU too. (PyTorch's own default takes it on GPUs only.)
Updates work on `.data` (raw torch.Tensors), so nothing is recorded for autograd.

`state_dict()` has PyTorch's layout, parameters replaced by their position in the groups:

    {"state": {0: {"step": tensor(3.), "exp_avg": tensor(...), ...}, ...},
     "param_groups": [{"lr": 0.001, ..., "params": [0, 1]}, ...]}

so a PyTorch optimizer's state dict loads here and ours loads into PyTorch's optimizer.
"""

from __future__ import annotations

import copy
import numbers
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any

import torch

from minitorch_edu.autograd.grad_mode import enable_grad
from minitorch_edu.autograd.tensor import Tensor

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]] | Iterable[tuple[str, Tensor]]


def scalar_dtype() -> torch.dtype:
    """The dtype of the `step` counters: float64 when that is the default dtype, else float32."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def use_foreach(foreach: bool | None, params: list[Tensor]) -> bool:
    """Whether to take the grouped path; `None` means: when the parameters share one device."""
    if foreach is None:
        return len({param.data.device for param in params}) == 1
    return bool(foreach)


# How torch's error messages name a hyperparameter ("Invalid learning rate: -1").
_MESSAGE_NAMES = {"lr": "learning rate", "eps": "epsilon value"}


def check_not_negative(group: dict[str, Any], *names: str, nan_passes: bool = False) -> None:
    """ValueError naming the first of `names` that is negative in `group`, in torch's words.

    torch's SGD writes its checks as `value < 0` (a nan passes); the other optimizers write
    `not 0 <= value` (a nan is refused): `nan_passes` picks which, so both behave as torch.
    """
    for name in names:
        value = group[name]
        if name == "lr" and isinstance(value, torch.Tensor) and value.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        check_real(value, _MESSAGE_NAMES.get(name, name + " value"))
        if value < 0.0 if nan_passes else not 0.0 <= value:
            raise ValueError(f"Invalid {_MESSAGE_NAMES.get(name, name + ' value')}: {value}")


def check_real(value: Any, what: str) -> None:
    """TypeError for a hyperparameter that is not a number (`lr='0.1'`), before comparing it."""
    if isinstance(value, numbers.Real) or (
        isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_complex()
    ):
        return
    raise TypeError(f"Invalid {what}: {value!r} (expected a number, got {type(value).__name__})")


def check_supported_options(
    differentiable: bool = False, fused: bool | None = None, capturable: bool = False
) -> None:
    """Refuse PyTorch options that this library does not implement, rather than ignore them."""
    if differentiable:
        raise NotImplementedError(
            "differentiable=True is not supported: minitorch_edu's optimizer steps update "
            "`.data` in place and are not recorded for autograd"
        )
    if fused:
        raise NotImplementedError(
            "fused=True is not supported: it asks for a fused kernel, and minitorch_edu writes "
            "each update out in elementary operations (foreach=True groups them instead)"
        )
    if capturable:
        raise NotImplementedError(
            "capturable=True (CUDA graph capture) is not supported by minitorch_edu's optimizers"
        )


class Optimizer:
    """Base class: parameter groups, per-parameter state, zero_grad, step, state dicts."""

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        self._opt_called = False  # read by the lr schedulers' call-order warning

        if isinstance(params, (Tensor, torch.Tensor)):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or "
                f"dicts, but got {_type_name(params)}"
            )
        if not isinstance(params, Iterable):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or "
                f"dicts, but got {_type_name(params)}"
            )
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for param_group in param_groups:
            self.add_param_group(param_group)

    # ------------------------------------------------------------------ hyperparameters
    def _check_hyperparameters(self, group: dict[str, Any]) -> None:
        """Raise ValueError for invalid values; each optimizer names its own checks."""

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters, with hyperparameters that override `defaults`.

        Errors like PyTorch's: a parameter that is in another group already, a parameter that
        is not a leaf Tensor. A frozen parameter (requires_grad=False) is accepted, as in
        torch: it never receives a gradient, so every step skips it.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")
        param_group = dict(param_group)
        params = param_group["params"]
        if isinstance(params, (Tensor, torch.Tensor)):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the "
                "ordering of tensors in sets will change between runs. Please use a list instead."
            )
        params = list(params)

        names = [param[0] for param in params if isinstance(param, tuple)]
        params = [param[1] if isinstance(param, tuple) else param for param in params]
        if names:
            if len(names) != len(params):
                raise ValueError(
                    "all optimizer params should be with/without names. Some param names are "
                    "missing"
                )
            param_group["param_names"] = names
        param_group["params"] = params

        for index, param in enumerate(params):
            _check_parameter(param, index)

        for name, default in self.defaults.items():
            param_group.setdefault(name, default)
        self._check_hyperparameters(param_group)

        if len(params) != len({id(param) for param in params}):
            warnings.warn(
                "optimizer contains a parameter group with duplicate parameters; "
                "in future, this will cause an error; "
                "see github.com/pytorch/pytorch/issues/40967 for more information",
                stacklevel=3,
            )
        seen = {id(param) for group in self.param_groups for param in group["params"]}
        for group in self.param_groups:
            if ("param_names" in param_group) != ("param_names" in group):
                with_names = "with names" if "param_names" in param_group else "without names"
                raise ValueError(
                    "all optimizer param groups should be with/without names. "
                    f"cannot add param group {with_names} to the optimizer"
                )
        if any(id(param) in seen for param in params):
            raise ValueError("some parameters appear in more than one parameter group")

        self.param_groups.append(param_group)

    # ------------------------------------------------------------------ gradients and steps
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: set every `.grad` to None, or (set_to_none=False) zero it in place.

        The difference matters: a parameter whose grad is None is skipped by `step()`, one
        whose grad is zero still takes a step (weight decay, momentum keep moving it).
        """
        for group in self.param_groups:
            for param in group["params"]:
                grad = param.grad
                if grad is None:
                    continue
                if set_to_none:
                    param.grad = None
                else:
                    if grad.grad_fn is not None or grad.requires_grad:
                        param.grad = grad = grad.detach()  # same storage, no graph
                    grad.data.zero_()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Take one optimization step; `closure()` (if given) recomputes the loss first.

        The closure runs with gradient recording on (even inside `mt.no_grad()`); its return
        value (the loss) is returned. Parameters whose `.grad` is None are left alone.
        """
        loss = None
        if closure is not None and not callable(closure):
            raise TypeError(
                f"step(closure): closure must be a function that returns the loss, got "
                f"{type(closure).__name__}"
            )
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [param for param in group["params"] if param.grad is not None]
            if not params:
                continue
            if use_foreach(group["foreach"], params):
                self._update_foreach(group, params)
            else:
                self._update_single_tensor(group, params)
        self._opt_called = True
        return loss

    def _update_single_tensor(self, group: dict[str, Any], params: list[Tensor]) -> None:
        raise NotImplementedError

    def _update_foreach(self, group: dict[str, Any], params: list[Tensor]) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ state dicts
    def state_dict(self) -> dict[str, Any]:
        """{"state": {index: {name: torch.Tensor}}, "param_groups": [{..., "params": [index]}]}.

        Parameters are numbered in the order they appear in the groups. As in PyTorch, the
        tensors are the optimizer's own (not copies): save the dict (torch.save) or deep-copy
        it before stepping on if it is to stay a snapshot.
        """
        index_of: dict[int, int] = {}
        param_groups = []
        for group in self.param_groups:
            packed = {key: value for key, value in group.items() if key != "params"}
            for param in group["params"]:
                index_of.setdefault(id(param), len(index_of))
            packed["params"] = [index_of[id(param)] for param in group["params"]]
            param_groups.append(packed)
        state = {
            (index_of[id(param)] if isinstance(param, Tensor) else param): dict(values)
            for param, values in self.state.items()
        }
        return {"state": state, "param_groups": param_groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict from `state_dict()`, ours or a PyTorch optimizer's of the same kind.

        Groups must match in number and size. State tensors are copied to each parameter's
        device (and, when floating, dtype); `step` counters stay on the CPU. Hyperparameters come
        from the saved groups; options a saved group lacks take this optimizer's defaults.
        Saved options this library does not implement (fused, capturable) do not change the
        update, which is the same elementary arithmetic either way.
        """
        if not (
            isinstance(state_dict, dict)
            and isinstance(state_dict.get("state"), dict)
            and isinstance(state_dict.get("param_groups"), list)
        ):
            kind = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise TypeError(
                "optimizer.load_state_dict expects a dict with 'state' (a dict) and "
                f"'param_groups' (a list), as state_dict() gives; got {kind}"
            )
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups)):
            raise ValueError(
                "loaded state dict contains a parameter group that doesn't match the size of "
                "optimizer's group"
            )
        param_of = dict(
            zip(
                chain.from_iterable(g["params"] for g in saved_groups),
                chain.from_iterable(g["params"] for g in groups),
            )
        )
        state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
        for key, values in state_dict["state"].items():
            if key in param_of:
                param = param_of[key]
                state[param] = {
                    name: _copy_state_value(param, name, value) for name, value in values.items()
                }
            else:
                state[key] = copy.deepcopy(values)

        for group, saved in zip(groups, saved_groups):
            saved["params"] = group["params"]
            if "param_names" in group and "param_names" not in saved:
                saved["param_names"] = group["param_names"]
            for name, default in self.defaults.items():
                saved.setdefault(name, default)
        self.state = state
        self.param_groups = saved_groups

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for index, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {index}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def _type_name(value: Any) -> str:
    if isinstance(value, Tensor):
        return "minitorch_edu.Tensor"
    if isinstance(value, torch.Tensor):
        return "torch.Tensor"
    return type(value).__name__


def _check_parameter(param: Any, index: int) -> None:
    """A parameter is a leaf minitorch_edu Tensor (frozen ones are allowed, as in torch)."""
    if not isinstance(param, Tensor):
        hint = ""
        if isinstance(param, torch.Tensor):
            hint = " (wrap it as a parameter: mt.tensor(t, requires_grad=True))"
        raise TypeError(
            "optimizer can only optimize minitorch_edu Tensors, but parameter "
            f"{index} is a {_type_name(param)}{hint}"
        )
    if not param.is_leaf:
        raise ValueError(
            f"can't optimize a non-leaf Tensor: parameter {index} (shape {tuple(param.shape)}) "
            f"was computed by {param.grad_fn.name()}; optimize the leaves it was made from"
        )
    if param.data.is_complex():
        raise ValueError(
            f"parameter {index} is complex ({param.dtype}); minitorch_edu's optimizers "
            "update real floating-point parameters only"
        )


def _copy_state_value(param: Tensor, name: str, value: Any) -> Any:
    """A loaded state entry as this optimizer keeps it (always a copy, never shared)."""
    if name == "step":  # a counter: a scalar tensor on the CPU, read with .item()
        if isinstance(value, torch.Tensor):
            return value.detach().to("cpu", copy=True)
        return torch.tensor(float(value), dtype=scalar_dtype())
    if isinstance(value, torch.Tensor):
        dtype = param.dtype if value.is_floating_point() else None
        return value.detach().to(device=param.device, dtype=dtype, copy=True)
    return copy.deepcopy(value)
