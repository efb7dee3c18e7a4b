"""Adagrad: each coordinate's step shrinks with the sum of its squared gradients."""

from __future__ import annotations

from typing import Any

import torch

from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.optim.optimizer import (
    Optimizer,
    ParamsT,
    as_given,
    check_not_negative,
    check_supported_options,
    scalar_dtype,
)


class Adagrad(Optimizer):
    r"""Adagrad, step for step PyTorch's.

        input:  γ (lr), θ (params), f (objective), λ (weight_decay), η (lr_decay),
                τ (initial_accumulator_value), ε (eps), maximize
        state:  t (step) ← 0,  s (sum) ← τ, for every parameter when its group is added
        for t = 1, 2, ...:
            g_t ← ∇_θ f_t(θ_{t-1})
            if maximize:   g_t ← -g_t
            if λ ≠ 0:      g_t ← g_t + λ θ_{t-1}
            γ̃ ← γ / (1 + (t - 1) η)
            s_t ← s_{t-1} + g_t²
            θ_t ← θ_{t-1} - γ̃ g_t / (√s_t + ε)

    In the code: θ is `param`, g `grad`, s `state_sum` (state key "sum"), t `step`,
    γ̃ `clr` (the decayed learning rate), √s + ε `std`. Each line of the update is commented
    with the step above that it computes.

    The accumulator starts at the group's `initial_accumulator_value`. (PyTorch starts every
    group at the constructor's value, even a group that sets its own.)
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_supported_options(differentiable=differentiable, fused=fused)
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "eps": eps,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "fused": fused,
        }
        self._check_hyperparameters(defaults)
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: dict[str, Any]) -> None:
        check_not_negative(
            group, "lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"
        )

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add the group, and start its parameters' state at once (as PyTorch does)."""
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for parameter in group["params"]:
            state = self.state[parameter]
            state["step"] = torch.tensor(0.0, dtype=scalar_dtype())
            state["sum"] = torch.full_like(parameter.data, group["initial_accumulator_value"])

    def _update_single_tensor(self, group: dict[str, Any], parameters: list[Tensor]) -> None:
        lr, lr_decay, eps = as_given(group["lr"]), group["lr_decay"], group["eps"]
        weight_decay, maximize = group["weight_decay"], group["maximize"]
        for parameter in parameters:
            param, grad = parameter.data, parameter.grad.data
            state = self.state[parameter]
            state_sum = state["sum"]
            state["step"] += 1
            step = state["step"].item()
            if maximize:
                grad = -grad  # g ← -g
            if weight_decay != 0:
                grad = grad.add(param, alpha=weight_decay)  # g ← g + λθ
            clr = float(lr / (1 + (step - 1) * lr_decay))  # γ̃ ← γ / (1 + (t-1)η)
            state_sum.addcmul_(grad, grad, value=1)  # s ← s + g²
            std = state_sum.sqrt().add_(eps)  # √s + ε
            param.addcdiv_(grad, std, value=-clr)  # θ ← θ - γ̃ g / (√s + ε)

    def _update_foreach(self, group: dict[str, Any], parameters: list[Tensor]) -> None:
        lr, lr_decay, eps = as_given(group["lr"]), group["lr_decay"], group["eps"]
        weight_decay, maximize = group["weight_decay"], group["maximize"]
        states = [self.state[parameter] for parameter in parameters]
        params = [parameter.data for parameter in parameters]
        grads = [parameter.grad.data for parameter in parameters]
        state_sums = [state["sum"] for state in states]
        steps = [state["step"] for state in states]
        torch._foreach_add_(steps, 1)
        if maximize:
            grads = torch._foreach_neg(grads)  # g ← -g
        if weight_decay != 0:
            grads = torch._foreach_add(grads, params, alpha=weight_decay)  # g ← g + λθ
        clrs = [float(lr / (1 + (step.item() - 1) * lr_decay)) for step in steps]  # γ̃ per parameter
        torch._foreach_addcmul_(state_sums, grads, grads, value=1)  # s ← s + g²
        stds = torch._foreach_sqrt(state_sums)  # √s + ε
        torch._foreach_add_(stds, eps)
        torch._foreach_addcdiv_(params, grads, stds, [-clr for clr in clrs])  # θ ← θ - γ̃ g/(√s+ε)
