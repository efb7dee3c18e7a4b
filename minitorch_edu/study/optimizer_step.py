"""One optimizer step, written out for one element with the numbers of that step.

    with mt.study.explain_step(optimizer, model.fc.weight, (0, 3), names=model) as step:
        optimizer.step()
    print(step)            # the update rule, each line with its numbers
    step.new_value         # θ_t as the formulas give it ...
    step.actual            # ... and as the real step left it (they agree)
    step.lines[1].value    # m_t, say; step.lines[1].formula is the line from Adam's docstring

The formula lines are the ones in the optimizer's docstring (SGD, Adagrad, RMSprop, Adam,
AdamW follow PyTorch's algorithm boxes), with the branches this step takes: with momentum
or without, the first step or a later one, centered or not, and so on.

How it works: inside the `with` block, `optimizer.step` is wrapped (on this one optimizer
object, until the block ends). Right before the real step the wrapper copies the element's
value, its state entries and the group's hyperparameters; right after, its gradient, its new
value and its new state. The lines are then worked out from the copies before the step, one
formula at a time, in the parameter's dtype, and set beside what the real step produced: the
explanation is computed independently of the optimizer's code, and checked against it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.optim import SGD, Adagrad, Adam, AdamW, RMSprop
from minitorch_edu.optim.optimizer import Optimizer
from minitorch_edu.study.format import format_number, format_shape, name_table

RELATIVE_TOLERANCE = 1e-12  # how close "agrees with the real step" must be, relative
STAGE = "  =  "  # separates the stages of a line's working in its template


@dataclass
class Hyperparameter:
    """A hyperparameter that took part in the step: its symbol, its argument name, its value."""

    symbol: str  # "β1"
    name: str  # "betas[0]"
    value: Any


@dataclass
class StateEntry:
    """One state entry of the element: before the step and after it."""

    symbol: str  # "m" (m_{t-1} before, m_t after)
    name: str  # "exp_avg", the key in optimizer.state[parameter]
    before: float | None  # None: the entry did not exist yet (made at the first step)
    computed: float | None  # what the formulas give after the step
    actual: float | None  # what the real step left in the optimizer's state
    # The largest magnitude among the numbers that computed it: "agrees" allows a rounding
    # difference relative to this (kernels may fuse a multiply-add that the formula rounds twice).
    scale: float = 0.0


@dataclass
class Line:
    """One line of the update rule, worked out with this step's numbers.

    formula    the line as the optimizer's docstring writes it: "v_t ← β2 v_{t-1} + (1 - β2) g_t²"
    symbol     what it computes: "v_t"
    template   the right-hand side with `{0}`, `{1}`, ... where the numbers go
    numbers    those numbers, in order
    value      the result
    condition  the branch of the algorithm this line belongs to ("maximize", "μ ≠ 0, t > 1")
    state      the state entry it updates ("exp_avg"), "param" for the new θ, or None
    """

    formula: str
    symbol: str
    template: str
    numbers: tuple[float, ...]
    value: float
    condition: str = ""
    state: str | None = None

    def substituted(self, digits: int = 6) -> str:
        """The right-hand side with the numbers in: `0.9 × 0.01 + (1 - 0.9) × 0.3`."""
        return self.template.format(*(_number(x, digits) for x in self.numbers))

    def text(self, digits: int = 6) -> str:
        """The formula, then `= ...` with the numbers in, then `= value`."""
        condition = f"   [{self.condition}]" if self.condition else ""
        lines = [f"{self.formula}{condition}"]
        for part in self.substituted(digits).split(STAGE):
            lines.append(f"    = {part}")
        value = format_number(self.value, digits)
        if lines[-1] != f"    = {value}":
            lines.append(f"    = {value}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "formula": self.formula,
            "symbol": self.symbol,
            "substituted": self.substituted(17),
            "numbers": list(self.numbers),
            "value": self.value,
            "condition": self.condition,
            "state": self.state,
        }


@dataclass
class StepExplanation:
    """What `explain_step` found: the rule, its lines with numbers, and the real step's result.

    `lines` follow the algorithm in order; `new_value` is θ_t from the formulas and `actual`
    the element after the real `optimizer.step()`; `matches()` says whether they (and every
    state entry) agree. `not_taken` lists the branches this step did not take.
    """

    optimizer: str  # "Adam"
    label: str  # "fc.weight"
    index: tuple[int, ...]
    group: int  # which parameter group holds the parameter
    step: int | None  # t, for optimizers that count steps (SGD does not)
    dtype: str
    gradient: float | None  # the element of .grad the step used (None: no gradient, skipped)
    before: float  # θ_{t-1}
    hyperparameters: list[Hyperparameter] = field(default_factory=list)
    state: list[StateEntry] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    not_taken: list[str] = field(default_factory=list)
    new_value: float = math.nan  # θ_t from the formulas
    actual: float = math.nan  # θ_t from the real step
    scale: float = 0.0  # the largest magnitude among the numbers that computed θ_t

    def matches(self, rtol: float = RELATIVE_TOLERANCE) -> bool:
        """Whether the formulas give the real step's new value and every state entry.

        Equal, or within `rtol` relative to the largest number that went into them.
        """
        checks = [(self.new_value, self.actual, self.scale)]
        checks += [(entry.computed, entry.actual, entry.scale) for entry in self.state]
        return all(_agree(a, b, rtol, scale) for a, b, scale in checks)

    @property
    def where(self) -> str:
        return f"{self.label}{format_shape(self.index)}"

    def text(self, digits: int = 6) -> str:
        """The step written out: hyperparameters, state before, each line, the check."""
        number = lambda x: format_number(x, digits)  # noqa: E731
        step = f", step t = {self.step}" if self.step is not None else ""
        lines = [
            f"{self.optimizer} step for {self.where} (parameter group {self.group}{step}, "
            f"{self.dtype})",
            "θ, g and the state below are this one element; every element is updated alike.",
        ]
        if self.gradient is None:
            lines.append(
                f"\n{self.label}.grad was None: step() skipped this parameter, "
                f"θ stays {number(self.before)}."
            )
            return "\n".join(lines)
        lines.append("")
        lines.append("hyperparameters that took part:")
        names = [
            h.name if h.symbol == h.name else f"{h.symbol} ({h.name})" for h in self.hyperparameters
        ]
        width = max(map(len, names), default=0)
        for name, h in zip(names, self.hyperparameters):
            lines.append(f"  {name:<{width}} = {_show(h.value, digits)}")
        lines.append("before the step:")
        before = [(f"θ_{{t-1}} ({self.where})", self.before)]
        before += [
            (f"{entry.symbol}_{{t-1}} (state['{entry.name}'])", entry.before)
            for entry in self.state
            if entry.name != "step"
        ]
        width = max(len(name) for name, _ in before)
        for name, value in before:
            shown = "not made yet (this is its first step)" if value is None else number(value)
            lines.append(f"  {name:<{width}} = {shown}")
        lines.append("")
        lines.append(f"the update, line by line as in {self.optimizer}'s docstring:")
        for line in self.lines:
            lines.extend("  " + part for part in line.text(digits).splitlines())
        if self.not_taken:
            lines.append("not taken: " + "; ".join(self.not_taken))
        lines.append("")
        lines.append("check against the real optimizer.step():")
        checks = [(f"θ ({self.where})", self.new_value, self.actual, self.scale)]
        checks += [
            (f"state['{entry.name}']", entry.computed, entry.actual, entry.scale)
            for entry in self.state
        ]
        width = max(len(check[0]) for check in checks)
        for name, computed, actual, scale in checks:
            verdict = "agrees" if _agree(computed, actual, scale=scale) else "DIFFERS"
            lines.append(
                f"  {name:<{width}}  formulas {number(computed)}, real step {number(actual)}: "
                f"{verdict}"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        from minitorch_edu.study.display import step_explanation_html

        return step_explanation_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (numbers as Python floats)."""
        return {
            "optimizer": self.optimizer,
            "parameter": self.label,
            "index": list(self.index),
            "group": self.group,
            "step": self.step,
            "dtype": self.dtype,
            "gradient": self.gradient,
            "before": self.before,
            "hyperparameters": [
                {"symbol": h.symbol, "name": h.name, "value": h.value} for h in self.hyperparameters
            ],
            "state": [entry.__dict__.copy() for entry in self.state],
            "lines": [line.to_dict() for line in self.lines],
            "not_taken": list(self.not_taken),
            "new_value": self.new_value,
            "actual": self.actual,
            "matches": self.matches(),
        }


class explain_step:  # lower case: used like a function, `with explain_step(...) as step:`
    """Explain the next `optimizer.step()` for one element of one parameter.

        with mt.study.explain_step(optimizer, W, (0, 1), names={W: "W"}) as step:
            optimizer.step()          # the real step, unchanged (a closure works too)
        print(step)                   # a StepExplanation

    optimizer  an mt.optim SGD, Adagrad, RMSprop, Adam or AdamW
    parameter  one of its parameters
    index      the element: a tuple of ints (an int for a 1-D parameter, () for a 0-d one)
    names      labels, as elsewhere in mt.study: {tensor: "name"} or a Module

    Exactly one `optimizer.step()` must run inside the block.
    """

    def __init__(
        self, optimizer: Optimizer, parameter: Tensor, index: Any, names: Any = None
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"explain_step: expected an mt.optim optimizer, got {type(optimizer).__name__}"
            )
        self.explainer = _explainer_for(optimizer)
        if not isinstance(parameter, Tensor):
            raise TypeError(f"explain_step: expected a Tensor parameter, got {type(parameter)}")
        self.group = next(
            (
                number
                for number, group in enumerate(optimizer.param_groups)
                if any(p is parameter for p in group["params"])
            ),
            None,
        )
        if self.group is None:
            raise ValueError(
                f"explain_step: the parameter (shape {tuple(parameter.shape)}) is not in any "
                f"parameter group of this {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        self.parameter = parameter
        self.index = _normalize_index(index, parameter.shape)
        self.label = name_table(names).get(id(parameter), "θ")
        self.explanation: StepExplanation | None = None
        self._saved_step: Any = None
        self._before: dict[str, Any] | None = None

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> StepExplanation:
        self._before = None
        self.explanation = StepExplanation(
            optimizer=type(self.optimizer).__name__,
            label=self.label,
            index=self.index,
            group=self.group,
            step=None,
            dtype=str(self.parameter.dtype).removeprefix("torch."),
            gradient=None,
            before=math.nan,
        )
        self._saved_step = self.optimizer.__dict__.get("step")
        real_step = self.optimizer.step

        def step(*args: Any, **kwargs: Any) -> Any:
            if self._before is not None:
                raise RuntimeError(
                    "explain_step explains one step: optimizer.step() was called a second time "
                    "inside the `with` block"
                )
            self._before = self._read_before()
            result = real_step(*args, **kwargs)
            self._explain(self._before)
            return result

        self.optimizer.step = step  # on this object only, until the block ends
        return self.explanation

    def __exit__(self, error_type: Any, *exc_info: Any) -> None:
        if self._saved_step is None:
            del self.optimizer.step
        else:
            self.optimizer.step = self._saved_step
        if error_type is None and self._before is None:
            raise RuntimeError(
                "explain_step: optimizer.step() was not called inside the `with` block, so "
                "there is no step to explain"
            )

    # ------------------------------------------------------------------ reading
    def _element(self, tensor: torch.Tensor) -> torch.Tensor:
        """The chosen element as a 0-d CPU tensor of its own dtype (a copy)."""
        return tensor.detach()[self.index].to("cpu", copy=True)

    def _read_state(self) -> dict[str, torch.Tensor]:
        state = self.optimizer.state.get(self.parameter, {})  # .get: never creates an entry
        values = {}
        for key, value in state.items():
            if not isinstance(value, torch.Tensor):
                continue
            if key == "step" or value.dim() == 0 and self.parameter.dim() != 0:
                values[key] = value.detach().to("cpu", copy=True)
            else:
                values[key] = self._element(value)
        return values

    def _read_before(self) -> dict[str, Any]:
        group = self.optimizer.param_groups[self.group]
        return {
            "param": self._element(self.parameter.data),
            "state": self._read_state(),
            "group": {key: value for key, value in group.items() if key != "params"},
        }

    def _explain(self, before: dict[str, Any]) -> None:
        explanation = self.explanation
        assert explanation is not None
        grad = self.parameter.grad
        explanation.before = before["param"].item()
        explanation.actual = self._element(self.parameter.data).item()
        if grad is None:  # skipped by step(): nothing changes
            explanation.new_value = explanation.before
            return
        g = self._element(grad.data)
        explanation.gradient = g.item()
        work = _Work(explanation, before["param"], g, before["state"], before["group"])
        self.explainer(work)
        after = self._read_state()
        for entry in explanation.state:
            value = after.get(entry.name)
            entry.actual = None if value is None else value.item()
        explanation.new_value = work.theta.item()
        explanation.scale = _scale([line for line in explanation.lines if line.symbol[0] == "θ"])


# ---------------------------------------------------------------------- the work sheet
class _Work:
    """What one explainer reads (values before the step) and writes (lines, state)."""

    def __init__(self, explanation, theta, grad, state, group) -> None:
        self.explanation = explanation
        self.theta = theta  # θ, a 0-d tensor in the parameter's dtype; updated by the lines
        self.grad = grad
        self.state = state  # state before the step: {key: 0-d tensor}
        self.group = group

    def use(self, symbol: str, name: str, value: Any) -> Any:
        """Record a hyperparameter that takes part; returns it as a float."""
        if isinstance(value, torch.Tensor):
            value = value.item()
        self.explanation.hyperparameters.append(Hyperparameter(symbol, name, value))
        return value

    def line(self, formula, symbol, template, numbers, value, condition="", state=None):
        numbers = tuple(x.item() if isinstance(x, torch.Tensor) else x for x in numbers)
        shown = value.item() if isinstance(value, torch.Tensor) else float(value)
        self.explanation.lines.append(
            Line(formula, symbol, template, numbers, shown, condition, state)
        )
        return value

    def skip(self, reason: str) -> None:
        self.explanation.not_taken.append(reason)

    def entry(self, symbol: str, name: str, computed: Any) -> None:
        """A state entry the step writes: `computed` is its new value (from the last line)."""
        before = self.state.get(name)
        line = self.explanation.lines[-1] if self.explanation.lines else None
        scale = _scale([line]) if line is not None and line.state == name else 0.0
        self.explanation.state.append(
            StateEntry(
                symbol,
                name,
                None if before is None else before.item(),
                computed.item() if isinstance(computed, torch.Tensor) else computed,
                None,
                scale,
            )
        )

    def zeros(self) -> torch.Tensor:
        return torch.zeros((), dtype=self.theta.dtype)

    # Shared first lines of every algorithm.
    def gradient(self) -> torch.Tensor:
        explanation = self.explanation
        where = f"{explanation.label}.grad{format_shape(explanation.index)}"
        where = where.replace("{", "{{").replace("}", "}}")
        return self.line("g_t ← ∇_θ f_t(θ_{t-1})", "g_t", where, [], self.grad)

    def maximize(self, g: torch.Tensor) -> torch.Tensor:
        if self.group["maximize"]:
            self.use("maximize", "maximize", True)
            return self.line("g_t ← -g_t", "g_t", "-({0})", [g], -g, "maximize")
        self.skip("maximize=False")
        return g

    def weight_decay(self, g: torch.Tensor) -> torch.Tensor:
        """g_t ← g_t + λ θ_{t-1}, when λ ≠ 0."""
        weight_decay = self.group["weight_decay"]
        if weight_decay == 0:
            self.skip("λ = 0 (no weight decay)")
            return g
        self.use("λ", "weight_decay", weight_decay)
        return self.line(
            "g_t ← g_t + λ θ_{t-1}",
            "g_t",
            "{0} + {1} × {2}",
            [g, weight_decay, self.theta],
            g + weight_decay * self.theta,
            "λ ≠ 0",
        )

    def step_count(self) -> int:
        before = self.state.get("step")
        t = 1 if before is None else int(before.item()) + 1
        self.explanation.step = t
        self.entry("t", "step", float(t))
        return t


# ---------------------------------------------------------------------- the algorithms
def _explain_sgd(work: _Work) -> None:
    """SGD's box (see SGD's docstring), one line per step taken."""
    group = work.group
    lr = work.use("γ", "lr", group["lr"])
    momentum, dampening, nesterov = group["momentum"], group["dampening"], group["nesterov"]
    g = work.gradient()
    g = work.maximize(g)
    g = work.weight_decay(g)
    if momentum != 0:
        work.use("μ", "momentum", momentum)
        buffer = work.state.get("momentum_buffer")
        if buffer is not None:
            work.use("τ", "dampening", dampening)
            b = work.line(
                "b_t ← μ b_{t-1} + (1 - τ) g_t",
                "b_t",
                "{0} × {1} + (1 - {2}) × {3}",
                [momentum, buffer, dampening, g],
                (buffer * momentum).add(g, alpha=1 - dampening),  # as the real step
                "μ ≠ 0, t > 1",
                "momentum_buffer",
            )
        else:
            b = work.line(
                "b_t ← g_t",
                "b_t",
                "{0}  (the first step: the buffer starts as g, no dampening)",
                [g],
                g.clone(),
                "μ ≠ 0, t = 1",
                "momentum_buffer",
            )
        work.entry("b", "momentum_buffer", b)
        if nesterov:
            work.use("nesterov", "nesterov", True)
            g = work.line(
                "g_t ← g_t + μ b_t",
                "g_t",
                "{0} + {1} × {2}",
                [g, momentum, b],
                g.add(b, alpha=momentum),  # as the real step
                "nesterov",
            )
        else:
            work.skip("nesterov=False")
            g = work.line("g_t ← b_t", "g_t", "{0}", [b], b, "not nesterov")
    else:
        work.skip("μ = 0 (no momentum)")
    work.theta = work.line(
        "θ_t ← θ_{t-1} - γ g_t",
        "θ_t",
        "{0} - {1} × {2}",
        [work.theta, lr, g],
        work.theta.add(g, alpha=-lr),  # the real step's op, so the rounding is the same
        state="param",
    )


def _explain_adagrad(work: _Work) -> None:
    """Adagrad's box (see Adagrad's docstring)."""
    group = work.group
    lr = work.use("γ", "lr", group["lr"])
    lr_decay = work.use("η", "lr_decay", group["lr_decay"])
    eps = work.use("ε", "eps", group["eps"])
    t = work.step_count()
    if t == 1:
        work.use("τ", "initial_accumulator_value", group["initial_accumulator_value"])
    g = work.gradient()
    g = work.maximize(g)
    g = work.weight_decay(g)
    decayed_lr = lr / (1 + (t - 1) * lr_decay)
    work.line(
        "γ̃ ← γ / (1 + (t - 1) η)",
        "γ̃",
        "{0} / (1 + ({1} - 1) × {2})",
        [lr, t, lr_decay],
        decayed_lr,
    )
    s = torch.addcmul(work.state["sum"], g, g)  # s + g², as the real step computes it
    work.line("s_t ← s_{t-1} + g_t²", "s_t", "{0} + {1}²", [work.state["sum"], g], s, state="sum")
    work.entry("s", "sum", s)
    denominator = s.sqrt() + eps
    work.theta = work.line(
        "θ_t ← θ_{t-1} - γ̃ g_t / (√s_t + ε)",
        "θ_t",
        "{0} - {1} × {2} / (√{3} + {4})" + STAGE + "{0} - {1} × {2} / {5}",
        [work.theta, decayed_lr, g, s, eps, denominator],
        torch.addcdiv(work.theta, g, denominator, value=-decayed_lr),  # as the real step
        state="param",
    )


def _explain_rmsprop(work: _Work) -> None:
    """RMSprop's box (see RMSprop's docstring)."""
    group = work.group
    lr = work.use("γ", "lr", group["lr"])
    alpha = work.use("α", "alpha", group["alpha"])
    eps = work.use("ε", "eps", group["eps"])
    momentum, centered = group["momentum"], group["centered"]
    work.step_count()
    g = work.gradient()
    g = work.maximize(g)
    g = work.weight_decay(g)
    v_before = work.state.get("square_avg", work.zeros())
    v = work.line(
        "v_t ← α v_{t-1} + (1 - α) g_t²",
        "v_t",
        "{0} × {1} + (1 - {0}) × {2}²",
        [alpha, v_before, g],
        torch.addcmul(v_before * alpha, g, g, value=1 - alpha),  # as the real step
        state="square_avg",
    )
    work.entry("v", "square_avg", v)
    if centered:
        work.use("centered", "centered", True)
        mean_before = work.state.get("grad_avg", work.zeros())
        mean = work.line(
            "ḡ_t ← ḡ_{t-1} + (1 - α)(g_t - ḡ_{t-1})",
            "ḡ_t",
            "{0} + (1 - {1}) × ({2} - {0})",
            [mean_before, alpha, g],
            torch.lerp(mean_before, g, 1 - alpha),  # as the real step
            "centered",
            "grad_avg",
        )
        work.entry("ḡ", "grad_avg", mean)
        d = work.line(
            "d_t ← √(v_t - ḡ_t²) + ε",
            "d_t",
            "√({0} - {1}²) + {2}",
            [v, mean, eps],
            torch.addcmul(v, mean, mean, value=-1).sqrt() + eps,  # as the real step
            "centered",
        )
    else:
        work.skip("centered=False")
        d = work.line("d_t ← √v_t + ε", "d_t", "√{0} + {1}", [v, eps], v.sqrt() + eps)
    if momentum > 0:
        work.use("μ", "momentum", momentum)
        b_before = work.state.get("momentum_buffer", work.zeros())
        b = work.line(
            "b_t ← μ b_{t-1} + g_t / d_t",
            "b_t",
            "{0} × {1} + {2} / {3}",
            [momentum, b_before, g, d],
            torch.addcdiv(b_before * momentum, g, d),  # as the real step
            "μ > 0",
            "momentum_buffer",
        )
        work.entry("b", "momentum_buffer", b)
        work.theta = work.line(
            "θ_t ← θ_{t-1} - γ b_t",
            "θ_t",
            "{0} - {1} × {2}",
            [work.theta, lr, b],
            work.theta.add(b, alpha=-lr),  # as the real step
            "μ > 0",
            "param",
        )
    else:
        work.skip("μ = 0 (no momentum)")
        work.theta = work.line(
            "θ_t ← θ_{t-1} - γ g_t / d_t",
            "θ_t",
            "{0} - {1} × {2} / {3}",
            [work.theta, lr, g, d],
            torch.addcdiv(work.theta, g, d, value=-lr),  # as the real step
            state="param",
        )


def _explain_adam(work: _Work, adamw: bool = False) -> None:
    """Adam's box, or AdamW's (see their docstrings)."""
    group = work.group
    lr = work.use("γ", "lr", group["lr"])
    beta1 = work.use("β1", "betas[0]", group["betas"][0])
    beta2 = work.use("β2", "betas[1]", group["betas"][1])
    eps = work.use("ε", "eps", group["eps"])
    weight_decay, amsgrad = group["weight_decay"], group["amsgrad"]
    t = work.step_count()
    g = work.gradient()
    g = work.maximize(g)
    if adamw or (group["decoupled_weight_decay"] and weight_decay != 0):
        # AdamW's line has no condition: with λ = 0 it multiplies by 1.
        work.use("λ", "weight_decay", weight_decay)
        work.theta = work.line(
            "θ_{t-1} ← θ_{t-1} (1 - γλ)",
            "θ_{t-1}",
            "{0} × (1 - {1} × {2})",
            [work.theta, lr, weight_decay],
            work.theta * (1 - lr * weight_decay),
            "" if adamw else "λ ≠ 0, decoupled_weight_decay",
        )
    else:
        g = work.weight_decay(g)
    m_before = work.state.get("exp_avg", work.zeros())
    m = work.line(
        "m_t ← m_{t-1} + (1 - β1)(g_t - m_{t-1})",
        "m_t",
        "{0} + (1 - {1}) × ({2} - {0})",
        [m_before, beta1, g],
        torch.lerp(m_before, g, 1 - beta1),  # as the real step
        state="exp_avg",
    )
    work.entry("m", "exp_avg", m)
    v_before = work.state.get("exp_avg_sq", work.zeros())
    v = work.line(
        "v_t ← β2 v_{t-1} + (1 - β2) g_t²",
        "v_t",
        "{0} × {1} + (1 - {0}) × {2}²",
        [beta2, v_before, g],
        torch.addcmul(v_before * beta2, g, g, value=1 - beta2),  # as the real step
        state="exp_avg_sq",
    )
    work.entry("v", "exp_avg_sq", v)
    c1 = work.line("c1 ← 1 - β1^t", "c1", "1 - {0}^{1}", [beta1, t], 1 - beta1**t)
    c2 = work.line("c2 ← 1 - β2^t", "c2", "1 - {0}^{1}", [beta2, t], 1 - beta2**t)
    root_c2 = c2**0.5
    if amsgrad:
        work.use("amsgrad", "amsgrad", True)
        v_max_before = work.state.get("max_exp_avg_sq", work.zeros())
        v_max = work.line(
            "v_max_t ← max(v_max_{t-1}, v_t)",
            "v_max_t",
            "max({0}, {1})",
            [v_max_before, v],
            torch.maximum(v_max_before, v),
            "amsgrad",
            "max_exp_avg_sq",
        )
        work.entry("v_max", "max_exp_avg_sq", v_max)
        d = work.line(
            "d_t ← √v_max_t / √c2 + ε",
            "d_t",
            "√{0} / √{1} + {2}",
            [v_max, c2, eps],
            v_max.sqrt() / root_c2 + eps,
            "amsgrad",
        )
    else:
        work.skip("amsgrad=False")
        d = work.line(
            "d_t ← √v_t / √c2 + ε",
            "d_t",
            "√{0} / √{1} + {2}",
            [v, c2, eps],
            v.sqrt() / root_c2 + eps,
        )
    step_size = lr / c1
    work.theta = work.line(
        "θ_t ← θ_{t-1} - (γ / c1) m_t / d_t",
        "θ_t",
        "{0} - ({1} / {2}) × {3} / {4}" + STAGE + "{0} - {5} × {3} / {4}",
        [work.theta, lr, c1, m, d, step_size],
        torch.addcdiv(work.theta, m, d, value=-step_size),  # as the real step
        state="param",
    )


_EXPLAINERS: dict[type, Callable[[_Work], None]] = {
    SGD: _explain_sgd,
    Adagrad: _explain_adagrad,
    RMSprop: _explain_rmsprop,
    AdamW: lambda work: _explain_adam(work, adamw=True),
    Adam: _explain_adam,
}


def _explainer_for(optimizer: Optimizer) -> Callable[[_Work], None]:
    for cls in type(optimizer).__mro__:  # a subclass is explained as its nearest known class
        if cls in _EXPLAINERS:
            return _EXPLAINERS[cls]
    known = ", ".join(cls.__name__ for cls in _EXPLAINERS)
    raise TypeError(f"explain_step: cannot explain {type(optimizer).__name__}; it knows {known}")


# ---------------------------------------------------------------------- helpers
def _agree(
    a: float | None, b: float | None, rtol: float = RELATIVE_TOLERANCE, scale: float = 0.0
) -> bool:
    """Equal (nan counts as equal to nan), or within rtol of the largest magnitude involved."""
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= rtol * max(abs(a), abs(b), scale)


def _scale(lines: list[Line]) -> float:
    """The largest finite magnitude among the lines' numbers and values."""
    values = [abs(x) for line in lines for x in (*line.numbers, line.value)]
    return max((x for x in values if math.isfinite(x)), default=0.0)


def _number(x: Any, digits: int) -> str:
    text = format_number(x, digits)
    return f"({text})" if text.startswith("-") else text


def _show(value: Any, digits: int) -> str:
    return format_number(value, digits) if isinstance(value, int | float) else repr(value)


def _normalize_index(index: Any, shape: torch.Size) -> tuple[int, ...]:
    if isinstance(index, int) and not isinstance(index, bool):
        index = (index,)
    if not isinstance(index, tuple | list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in index
    ):
        raise TypeError(f"explain_step: index must be a tuple of ints, got {index!r}")
    if len(index) != len(shape):
        raise IndexError(
            f"explain_step: index {tuple(index)} has {len(index)} entries, but the parameter "
            f"has shape {tuple(shape)} ({len(shape)} dims)"
        )
    for i, size in zip(index, shape):
        if not -size <= i < size:
            raise IndexError(
                f"explain_step: index {tuple(index)} is out of range for shape {tuple(shape)}"
            )
    return tuple(i % size for i, size in zip(index, shape))
