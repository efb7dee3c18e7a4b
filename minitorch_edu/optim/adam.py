"""Adam and AdamW: steps scaled by running averages of the gradient and its square."""

from __future__ import annotations

from typing import Any

import torch

from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.optim.optimizer import (
    Optimizer,
    ParamsT,
    check_not_negative,
    check_real,
    check_supported_options,
    scalar_dtype,
)


class Adam(Optimizer):
    r"""Adam (and AMSGrad), step for step PyTorch's.

        input:  γ (lr), β1, β2 (betas), θ (params), f (objective), λ (weight_decay),
                ε (eps), amsgrad, maximize, decoupled_weight_decay
        state:  t (step) ← 0,  m (exp_avg) ← 0,  v (exp_avg_sq) ← 0,
                v_max (max_exp_avg_sq) ← 0 if amsgrad; made at a parameter's first step
        for t = 1, 2, ...:
            g_t ← ∇_θ f_t(θ_{t-1})
            if maximize:   g_t ← -g_t
            if λ ≠ 0:
                if decoupled_weight_decay:   θ_{t-1} ← θ_{t-1} (1 - γλ)      (AdamW)
                else:                        g_t ← g_t + λ θ_{t-1}
            m_t ← m_{t-1} + (1 - β1)(g_t - m_{t-1})        (lerp: = β1 m_{t-1} + (1 - β1) g_t)
            v_t ← β2 v_{t-1} + (1 - β2) g_t²
            c1 ← 1 - β1^t,   c2 ← 1 - β2^t                 (bias corrections)
            if amsgrad:
                v_max_t ← max(v_max_{t-1}, v_t)
                d_t ← √v_max_t / √c2 + ε
            else:
                d_t ← √v_t / √c2 + ε
            θ_t ← θ_{t-1} - (γ / c1) m_t / d_t

    In the code: θ is `param`, g `grad`, m `exp_avg`, v `exp_avg_sq`, v_max
    `max_exp_avg_sq`, c1 and c2 `bias_correction1` and `bias_correction2`, γ / c1
    `step_size`, d `denom`. Each line of the update is commented with the step above that it
    computes.

    This is m̂_t / (√v̂_t + ε) with m̂ = m / c1 and v̂ = v / c2, the paper's form, with the
    divisions arranged as PyTorch arranges them so that the numbers agree to the last bit.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float | torch.Tensor, float | torch.Tensor] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        check_supported_options(differentiable=differentiable, fused=fused, capturable=capturable)
        if not isinstance(betas, tuple | list):
            raise TypeError(f"betas must be a pair (beta1, beta2), but got {betas!r}")
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
            "fused": fused,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        self._check_hyperparameters(defaults)
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: dict[str, Any]) -> None:
        betas = group["betas"]
        check_not_negative(group, "lr", "eps")
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), but got {betas}")
        for index, beta in enumerate(betas):
            check_real(beta, f"beta parameter at index {index}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        check_not_negative(group, "weight_decay")
        both_floats = all(isinstance(beta, float) for beta in betas)
        both_tensors = all(isinstance(beta, torch.Tensor) for beta in betas)
        if not (both_floats or both_tensors):
            raise ValueError("betas must be either both floats or both Tensors")
        for index, beta in enumerate(betas):
            if isinstance(beta, torch.Tensor) and beta.numel() != 1:
                raise ValueError(f"Tensor betas[{index}] must be 1-element")

    def _state(self, parameter: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        """The parameter's state, made at its first step (zeros, like PyTorch's)."""
        state = self.state[parameter]
        if len(state) == 0:
            state["step"] = torch.tensor(0.0, dtype=scalar_dtype())
            state["exp_avg"] = torch.zeros_like(parameter.data)
            state["exp_avg_sq"] = torch.zeros_like(parameter.data)
        if group["amsgrad"] and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = torch.zeros_like(parameter.data)
        return state

    def _update_single_tensor(self, group: dict[str, Any], parameters: list[Tensor]) -> None:
        lr, eps, weight_decay = float(group["lr"]), group["eps"], group["weight_decay"]
        beta1, beta2 = (float(beta) for beta in group["betas"])
        amsgrad, maximize = group["amsgrad"], group["maximize"]
        decoupled_weight_decay = group["decoupled_weight_decay"]
        for parameter in parameters:
            param, grad = parameter.data, parameter.grad.data
            state = self._state(parameter, group)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            if maximize:
                grad = -grad  # g ← -g
            state["step"] += 1
            if weight_decay != 0:
                if decoupled_weight_decay:
                    param.mul_(1 - lr * weight_decay)  # θ ← θ(1 - γλ)
                else:
                    grad = grad.add(param, alpha=weight_decay)  # g ← g + λθ
            exp_avg.lerp_(grad, 1 - beta1)  # m ← m + (1-β1)(g - m)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)  # v ← β2 v + (1-β2)g²
            step = state["step"].item()
            bias_correction1 = 1 - beta1**step  # c1 ← 1 - β1^t
            bias_correction2 = 1 - beta2**step  # c2 ← 1 - β2^t
            step_size = lr / bias_correction1  # γ / c1
            bias_correction2_sqrt = bias_correction2**0.5
            if amsgrad:
                max_exp_avg_sq = state["max_exp_avg_sq"]
                torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)  # v_max ← max(.)
                denom = (max_exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)  # d
            else:
                denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)  # d ← √v/√c2 + ε
            param.addcdiv_(exp_avg, denom, value=-step_size)  # θ ← θ - (γ/c1) m / d

    def _update_foreach(self, group: dict[str, Any], parameters: list[Tensor]) -> None:
        lr, eps, weight_decay = float(group["lr"]), group["eps"], group["weight_decay"]
        beta1, beta2 = (float(beta) for beta in group["betas"])
        amsgrad, maximize = group["amsgrad"], group["maximize"]
        states = [self._state(parameter, group) for parameter in parameters]
        params = [parameter.data for parameter in parameters]
        grads = [parameter.grad.data for parameter in parameters]
        exp_avgs = [state["exp_avg"] for state in states]
        exp_avg_sqs = [state["exp_avg_sq"] for state in states]
        steps = [state["step"] for state in states]
        if maximize:
            grads = torch._foreach_neg(grads)  # g ← -g
        torch._foreach_add_(steps, 1)
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                torch._foreach_mul_(params, 1 - lr * weight_decay)  # θ ← θ(1 - γλ)
            else:
                grads = torch._foreach_add(grads, params, alpha=weight_decay)  # g ← g + λθ
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)  # m ← m + (1-β1)(g - m)
        torch._foreach_mul_(exp_avg_sqs, beta2)  # v ← β2 v + (1-β2)g²
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
        bias_corrections1 = [1 - beta1 ** step.item() for step in steps]  # c1 ← 1 - β1^t
        bias_corrections2 = [1 - beta2 ** step.item() for step in steps]  # c2 ← 1 - β2^t
        negative_step_sizes = [-(lr / correction) for correction in bias_corrections1]  # -γ/c1
        bias_corrections2_sqrt = [correction**0.5 for correction in bias_corrections2]
        if amsgrad:
            max_exp_avg_sqs = [state["max_exp_avg_sq"] for state in states]
            torch._foreach_maximum_(max_exp_avg_sqs, exp_avg_sqs)  # v_max ← max(v_max, v)
            denoms = torch._foreach_sqrt(max_exp_avg_sqs)  # d ← √v_max / √c2 + ε
        else:
            denoms = torch._foreach_sqrt(exp_avg_sqs)  # d ← √v / √c2 + ε
        torch._foreach_div_(denoms, bias_corrections2_sqrt)
        torch._foreach_add_(denoms, eps)
        # θ ← θ - (γ/c1) m / d
        torch._foreach_addcdiv_(params, exp_avgs, denoms, negative_step_sizes)


class AdamW(Adam):
    r"""AdamW: Adam with the weight decay decoupled from the gradient, step for step PyTorch's.

        input:  γ (lr), β1, β2 (betas), θ (params), f (objective), λ (weight_decay),
                ε (eps), amsgrad, maximize
        state:  t (step) ← 0,  m (exp_avg) ← 0,  v (exp_avg_sq) ← 0,
                v_max (max_exp_avg_sq) ← 0 if amsgrad; made at a parameter's first step
        for t = 1, 2, ...:
            g_t ← ∇_θ f_t(θ_{t-1})
            if maximize:   g_t ← -g_t
            θ_{t-1} ← θ_{t-1} (1 - γλ)                      (decay the weights, not g)
            m_t ← m_{t-1} + (1 - β1)(g_t - m_{t-1})
            v_t ← β2 v_{t-1} + (1 - β2) g_t²
            c1 ← 1 - β1^t,   c2 ← 1 - β2^t
            if amsgrad:
                v_max_t ← max(v_max_{t-1}, v_t)
                d_t ← √v_max_t / √c2 + ε
            else:
                d_t ← √v_t / √c2 + ε
            θ_t ← θ_{t-1} - (γ / c1) m_t / d_t

    It is `Adam(..., decoupled_weight_decay=True)` with weight_decay defaulting to 1e-2; the
    update is Adam's `decoupled_weight_decay` branch (see `Adam` for the code names).
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float | torch.Tensor, float | torch.Tensor] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
        )

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """As `Optimizer.load_state_dict`; the groups stay decoupled, as in PyTorch's AdamW."""
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
