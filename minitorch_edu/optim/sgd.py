"""SGD: stochastic gradient descent, with optional momentum (heavy ball or Nesterov)."""

from __future__ import annotations

from typing import Any

import torch

from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.optim.optimizer import (
    Optimizer,
    ParamsT,
    check_not_negative,
    check_supported_options,
)


class SGD(Optimizer):
    r"""Stochastic gradient descent (optionally with momentum), step for step PyTorch's.

        input:  γ (lr), θ (params), f (objective), λ (weight_decay), μ (momentum),
                τ (dampening), nesterov, maximize
        state:  b (momentum_buffer), only when μ ≠ 0, made from the first gradient
        for t = 1, 2, ...:
            g_t ← ∇_θ f_t(θ_{t-1})
            if maximize:   g_t ← -g_t
            if λ ≠ 0:      g_t ← g_t + λ θ_{t-1}
            if μ ≠ 0:
                if t > 1:  b_t ← μ b_{t-1} + (1 - τ) g_t
                else:      b_t ← g_t                       (a copy: no dampening at t = 1)
                if nesterov:   g_t ← g_t + μ b_t
                else:          g_t ← b_t
            θ_t ← θ_{t-1} - γ g_t

    In the code: θ is `param`, g `grad`, b `momentum_buffer`; the hyperparameters keep their
    argument names. Each line of the update is commented with the step above that it computes.

    Momentum here is PyTorch's form, b ← μ b + (1 - τ) g and θ ← θ - γ b, which differs from
    Sutskever et al.'s (v ← μ v + γ g, θ ← θ - v) once γ changes during training.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_supported_options(differentiable=differentiable, fused=fused)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
            "foreach": foreach,
            "differentiable": differentiable,
            "fused": fused,
        }
        self._check_hyperparameters(defaults)
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: dict[str, Any]) -> None:
        check_not_negative(group, "lr", "momentum", "weight_decay", nan_passes=True)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _update_single_tensor(self, group: dict[str, Any], parameters: list[Tensor]) -> None:
        lr, momentum, dampening = float(group["lr"]), group["momentum"], group["dampening"]
        weight_decay, nesterov = group["weight_decay"], group["nesterov"]
        maximize = group["maximize"]
        for parameter in parameters:
            param, grad = parameter.data, parameter.grad.data
            if maximize:
                grad = -grad  # g ← -g
            if weight_decay != 0:
                grad = grad.add(param, alpha=weight_decay)  # g ← g + λθ
            if momentum != 0:
                state = self.state[parameter]
                momentum_buffer = state.get("momentum_buffer")
                if momentum_buffer is None:
                    momentum_buffer = state["momentum_buffer"] = grad.clone()  # b ← g
                else:
                    # b ← μb + (1-τ)g
                    momentum_buffer.mul_(momentum).add_(grad, alpha=1 - dampening)
                if nesterov:
                    grad = grad.add(momentum_buffer, alpha=momentum)  # g ← g + μb
                else:
                    grad = momentum_buffer  # g ← b
            param.add_(grad, alpha=-lr)  # θ ← θ - γg

    def _update_foreach(self, group: dict[str, Any], parameters: list[Tensor]) -> None:
        lr, momentum, dampening = float(group["lr"]), group["momentum"], group["dampening"]
        weight_decay, nesterov = group["weight_decay"], group["nesterov"]
        maximize = group["maximize"]
        params = [parameter.data for parameter in parameters]
        grads = [parameter.grad.data for parameter in parameters]
        if maximize:
            grads = torch._foreach_neg(grads)  # g ← -g
        if weight_decay != 0:
            grads = torch._foreach_add(grads, params, alpha=weight_decay)  # g ← g + λθ
        if momentum != 0:
            states = [self.state[parameter] for parameter in parameters]
            momentum_buffers = [state.get("momentum_buffer") for state in states]
            if all(buffer is not None for buffer in momentum_buffers):
                torch._foreach_mul_(momentum_buffers, momentum)  # b ← μb + (1-τ)g
                torch._foreach_add_(momentum_buffers, grads, alpha=1 - dampening)
            else:  # some parameters take their first step: those buffers start as g
                for i, state in enumerate(states):
                    if momentum_buffers[i] is None:
                        momentum_buffers[i] = state["momentum_buffer"] = grads[i].clone()
                    else:
                        momentum_buffers[i].mul_(momentum).add_(grads[i], alpha=1 - dampening)
            if nesterov:
                # g ← g + μb
                grads = torch._foreach_add(grads, momentum_buffers, alpha=momentum)
            else:
                grads = momentum_buffers  # g ← b
        torch._foreach_add_(params, grads, alpha=-lr)  # θ ← θ - γg
