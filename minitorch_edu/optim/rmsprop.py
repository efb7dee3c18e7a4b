"""RMSprop: divide each gradient by a running root-mean-square of recent gradients."""

from __future__ import annotations

from typing import Any

import torch

from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.optim.optimizer import (
    Optimizer,
    ParamsT,
    check_not_negative,
    check_supported_options,
    scalar_dtype,
)


class RMSprop(Optimizer):
    r"""RMSprop, step for step PyTorch's.

        input:  γ (lr), θ (params), f (objective), α (alpha), ε (eps), λ (weight_decay),
                μ (momentum), centered, maximize
        state:  t (step) ← 0,  v (square_avg) ← 0,  b (momentum_buffer) ← 0 if μ > 0,
                ḡ (grad_avg) ← 0 if centered; made at a parameter's first step
        for t = 1, 2, ...:
            g_t ← ∇_θ f_t(θ_{t-1})
            if maximize:   g_t ← -g_t
            if λ ≠ 0:      g_t ← g_t + λ θ_{t-1}
            v_t ← α v_{t-1} + (1 - α) g_t²
            if centered:
                ḡ_t ← ḡ_{t-1} + (1 - α)(g_t - ḡ_{t-1})        (lerp)
                d_t ← √(v_t - ḡ_t²) + ε
            else:
                d_t ← √v_t + ε
            if μ > 0:
                b_t ← μ b_{t-1} + g_t / d_t
                θ_t ← θ_{t-1} - γ b_t
            else:
                θ_t ← θ_{t-1} - γ g_t / d_t

    In the code: θ is `param`, g `grad`, v `square_avg`, ḡ `grad_avg`, b `momentum_buffer`,
    d `avg` (the denominator). Each line of the update is commented with the step above that
    it computes.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_supported_options(differentiable=differentiable, capturable=capturable)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
            "capturable": capturable,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
        }
        self._check_hyperparameters(defaults)
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: dict[str, Any]) -> None:
        check_not_negative(group, "lr", "eps", "momentum", "weight_decay", "alpha")

    def _state(self, parameter: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        """The parameter's state, made at its first step (zeros, like PyTorch's).

        Buffers are checked one by one, so turning momentum or centering on later works.
        """
        state = self.state[parameter]
        if len(state) == 0:
            state["step"] = torch.tensor(0.0, dtype=scalar_dtype())
            state["square_avg"] = torch.zeros_like(parameter.data)
        if group["momentum"] > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(parameter.data)
        if group["centered"] and "grad_avg" not in state:
            state["grad_avg"] = torch.zeros_like(parameter.data)
        return state

    def _update_single_tensor(self, group: dict[str, Any], parameters: list[Tensor]) -> None:
        lr, alpha, eps = float(group["lr"]), group["alpha"], group["eps"]
        weight_decay, momentum = group["weight_decay"], group["momentum"]
        centered, maximize = group["centered"], group["maximize"]
        for parameter in parameters:
            param, grad = parameter.data, parameter.grad.data
            state = self._state(parameter, group)
            square_avg = state["square_avg"]
            if maximize:
                grad = -grad  # g ← -g
            state["step"] += 1
            if weight_decay != 0:
                grad = grad.add(param, alpha=weight_decay)  # g ← g + λθ
            square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)  # v ← αv + (1-α)g²
            if centered:
                grad_avg = state["grad_avg"]
                grad_avg.lerp_(grad, 1 - alpha)  # ḡ ← ḡ + (1-α)(g - ḡ)
                avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()  # √(v - ḡ²)
            else:
                avg = square_avg.sqrt()  # √v
            avg = avg.add_(eps)  # d ← ... + ε
            if momentum > 0:
                momentum_buffer = state["momentum_buffer"]
                momentum_buffer.mul_(momentum).addcdiv_(grad, avg)  # b ← μb + g/d
                param.add_(momentum_buffer, alpha=-lr)  # θ ← θ - γb
            else:
                param.addcdiv_(grad, avg, value=-lr)  # θ ← θ - γ g/d

    def _update_foreach(self, group: dict[str, Any], parameters: list[Tensor]) -> None:
        lr, alpha, eps = float(group["lr"]), group["alpha"], group["eps"]
        weight_decay, momentum = group["weight_decay"], group["momentum"]
        centered, maximize = group["centered"], group["maximize"]
        states = [self._state(parameter, group) for parameter in parameters]
        params = [parameter.data for parameter in parameters]
        grads = [parameter.grad.data for parameter in parameters]
        square_avgs = [state["square_avg"] for state in states]
        if maximize:
            grads = torch._foreach_neg(grads)  # g ← -g
        torch._foreach_add_([state["step"] for state in states], 1)
        if weight_decay != 0:
            grads = torch._foreach_add(grads, params, alpha=weight_decay)  # g ← g + λθ
        torch._foreach_mul_(square_avgs, alpha)  # v ← αv + (1-α)g²
        torch._foreach_addcmul_(square_avgs, grads, grads, value=1 - alpha)
        if centered:
            grad_avgs = [state["grad_avg"] for state in states]
            torch._foreach_lerp_(grad_avgs, grads, 1 - alpha)  # ḡ ← ḡ + (1-α)(g - ḡ)
            avgs = torch._foreach_addcmul(square_avgs, grad_avgs, grad_avgs, value=-1)
            torch._foreach_sqrt_(avgs)  # √(v - ḡ²)
        else:
            avgs = torch._foreach_sqrt(square_avgs)  # √v
        torch._foreach_add_(avgs, eps)  # d ← ... + ε
        if momentum > 0:
            momentum_buffers = [state["momentum_buffer"] for state in states]
            torch._foreach_mul_(momentum_buffers, momentum)  # b ← μb + g/d
            torch._foreach_addcdiv_(momentum_buffers, grads, avgs)
            torch._foreach_add_(params, momentum_buffers, alpha=-lr)  # θ ← θ - γb
        else:
            torch._foreach_addcdiv_(params, grads, avgs, value=-lr)  # θ ← θ - γ g/d
