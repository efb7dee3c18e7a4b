"""explain_step: the update rule with one step's numbers reproduces the real optimizer step.

The oracle is the optimizer itself, read independently by the test: the element before the
step, its gradient, the optimizer's state before and after, and the element after the real
`optimizer.step()`. The explanation works each line out from the values before the step, so
its θ_t and state must equal what the step produced (exactly, or within 1e-12 of the largest
number in the line: a kernel may fuse a multiply-add that the formula rounds twice). Which
lines appear is checked against the algorithm for every combination of flags, and each line
must be one the optimizer's docstring writes.
"""

import itertools
import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minitorch_edu as mt
from minitorch_edu.study import StepExplanation, explain_step
from minitorch_edu.testing import strategies as mts

RTOL = 1e-12


def close(computed, expected, *magnitudes, rtol=RTOL):
    if computed == expected or (math.isnan(computed) and math.isnan(expected)):
        return True
    scale = max(abs(computed), abs(expected), *(abs(m) for m in magnitudes))
    return abs(computed - expected) <= rtol * scale


def line_magnitudes(step, state):
    """The numbers of the line that wrote `state` ("param" for θ_t)."""
    lines = [line for line in step.lines if line.state == state]
    return [abs(x) for line in lines for x in (*line.numbers, line.value) if math.isfinite(x)]


def element(value, index):
    return value.item() if value.dim() == 0 else value[index].item()


def run_explained(optimizer, param, index, grad):
    """One explained step, with the optimizer read before and after by the test itself."""
    param.grad = mt.tensor(grad)
    state_before = {k: v.clone() for k, v in optimizer.state.get(param, {}).items()}
    value_before = param.data[index].item()
    with explain_step(optimizer, param, index, names={param: "W"}) as step:
        optimizer.step()
    assert isinstance(step, StepExplanation)
    assert step.before == value_before and step.gradient == grad[index].item()
    assert step.actual == param.data[index].item()
    assert close(step.new_value, step.actual, *line_magnitudes(step, "param")), step
    state_after = optimizer.state.get(param, {})
    assert {entry.name for entry in step.state} == set(state_after)
    for entry in step.state:
        before = state_before.get(entry.name)
        assert entry.before == (None if before is None else element(before, index)), entry
        actual = element(state_after[entry.name], index)
        assert entry.actual == actual
        assert close(entry.computed, actual, *line_magnitudes(step, entry.name)), (entry, step)
    assert step.matches()
    for line in step.lines:
        assert line.formula in type(optimizer).__doc__, line.formula
    return step


@pytest.mark.parametrize("name", mts.OPTIMIZERS)
@settings(max_examples=15)
@given(data=st.data())
def test_explained_step_is_the_real_step(name, data, device):
    kwargs = data.draw(mts.optimizer_hyperparameters(name), label="hyperparameters")
    shape = data.draw(mts.shapes(max_dims=2, max_side=3), label="shape")
    param = mt.tensor(data.draw(mts.tensors(shape=shape)).to(device), requires_grad=True)
    optimizer = getattr(mt.optim, name)([param], **kwargs)
    index = tuple(data.draw(st.integers(0, size - 1)) for size in shape)
    for _ in range(data.draw(st.integers(1, 4), label="steps")):
        grad = data.draw(mts.tensors(shape=shape)).to(device)
        run_explained(optimizer, param, index, grad)


# ---------------------------------------------------------------------- every flag
def sgd_settings():
    for momentum, dampening, nesterov, weight_decay, maximize in itertools.product(
        [0.0, 0.9], [0.0, 0.3], [False, True], [0.0, 0.1], [False, True]
    ):
        if nesterov and (momentum == 0 or dampening != 0):
            continue  # SGD refuses these
        if momentum == 0 and dampening != 0:
            continue  # dampening only acts on momentum
        yield dict(
            lr=0.1,
            momentum=momentum,
            dampening=dampening,
            nesterov=nesterov,
            weight_decay=weight_decay,
            maximize=maximize,
        )


def sgd_lines(options, t):
    lines = ["g_t ← ∇_θ f_t(θ_{t-1})"]
    if options["maximize"]:
        lines.append("g_t ← -g_t")
    if options["weight_decay"]:
        lines.append("g_t ← g_t + λ θ_{t-1}")
    if options["momentum"]:
        lines.append("b_t ← g_t" if t == 1 else "b_t ← μ b_{t-1} + (1 - τ) g_t")
        lines.append("g_t ← g_t + μ b_t" if options["nesterov"] else "g_t ← b_t")
    return [*lines, "θ_t ← θ_{t-1} - γ g_t"]


def adagrad_settings():
    for lr_decay, weight_decay, initial, maximize in itertools.product(
        [0.0, 0.5], [0.0, 0.1], [0.0, 0.2], [False, True]
    ):
        yield dict(
            lr=0.1,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial,
            maximize=maximize,
        )


def adagrad_lines(options, t):
    lines = ["g_t ← ∇_θ f_t(θ_{t-1})"]
    if options["maximize"]:
        lines.append("g_t ← -g_t")
    if options["weight_decay"]:
        lines.append("g_t ← g_t + λ θ_{t-1}")
    return [
        *lines,
        "γ̃ ← γ / (1 + (t - 1) η)",
        "s_t ← s_{t-1} + g_t²",
        "θ_t ← θ_{t-1} - γ̃ g_t / (√s_t + ε)",
    ]


def rmsprop_settings():
    for centered, momentum, weight_decay, maximize in itertools.product(
        [False, True], [0.0, 0.8], [0.0, 0.1], [False, True]
    ):
        yield dict(
            lr=0.05,
            alpha=0.9,
            centered=centered,
            momentum=momentum,
            weight_decay=weight_decay,
            maximize=maximize,
        )


def rmsprop_lines(options, t):
    lines = ["g_t ← ∇_θ f_t(θ_{t-1})"]
    if options["maximize"]:
        lines.append("g_t ← -g_t")
    if options["weight_decay"]:
        lines.append("g_t ← g_t + λ θ_{t-1}")
    lines.append("v_t ← α v_{t-1} + (1 - α) g_t²")
    if options["centered"]:
        lines += ["ḡ_t ← ḡ_{t-1} + (1 - α)(g_t - ḡ_{t-1})", "d_t ← √(v_t - ḡ_t²) + ε"]
    else:
        lines.append("d_t ← √v_t + ε")
    if options["momentum"]:
        return [*lines, "b_t ← μ b_{t-1} + g_t / d_t", "θ_t ← θ_{t-1} - γ b_t"]
    return [*lines, "θ_t ← θ_{t-1} - γ g_t / d_t"]


def adam_settings(adamw):
    decoupled = [None] if adamw else [False, True]
    for amsgrad, weight_decay, maximize, decoupled_weight_decay in itertools.product(
        [False, True], [0.0, 0.1], [False, True], decoupled
    ):
        options = dict(lr=0.01, amsgrad=amsgrad, weight_decay=weight_decay, maximize=maximize)
        if not adamw:
            options["decoupled_weight_decay"] = decoupled_weight_decay
        yield options


def adam_lines(options, t, adamw=False):
    lines = ["g_t ← ∇_θ f_t(θ_{t-1})"]
    if options["maximize"]:
        lines.append("g_t ← -g_t")
    if adamw or (options["decoupled_weight_decay"] and options["weight_decay"]):
        lines.append("θ_{t-1} ← θ_{t-1} (1 - γλ)")
    elif options["weight_decay"]:
        lines.append("g_t ← g_t + λ θ_{t-1}")
    lines += [
        "m_t ← m_{t-1} + (1 - β1)(g_t - m_{t-1})",
        "v_t ← β2 v_{t-1} + (1 - β2) g_t²",
        "c1 ← 1 - β1^t",
        "c2 ← 1 - β2^t",
    ]
    if options["amsgrad"]:
        lines += ["v_max_t ← max(v_max_{t-1}, v_t)", "d_t ← √v_max_t / √c2 + ε"]
    else:
        lines.append("d_t ← √v_t / √c2 + ε")
    return [*lines, "θ_t ← θ_{t-1} - (γ / c1) m_t / d_t"]


FLAG_CASES = [
    *(("SGD", options, sgd_lines) for options in sgd_settings()),
    *(("Adagrad", options, adagrad_lines) for options in adagrad_settings()),
    *(("RMSprop", options, rmsprop_lines) for options in rmsprop_settings()),
    *(("Adam", options, adam_lines) for options in adam_settings(adamw=False)),
    *(
        ("AdamW", options, lambda o, t: adam_lines(o, t, adamw=True))
        for options in adam_settings(adamw=True)
    ),
]


def expected_hyperparameters(name, options, t):
    """The argument names that take part in step t."""
    if name == "SGD":
        names = {"lr"}
        if options["momentum"]:
            names |= {"momentum"} | ({"dampening"} if t > 1 else set())
        names |= {"nesterov"} if options["nesterov"] else set()
    elif name == "Adagrad":
        names = {"lr", "lr_decay", "eps"} | ({"initial_accumulator_value"} if t == 1 else set())
    elif name == "RMSprop":
        names = {"lr", "alpha", "eps"} | ({"centered"} if options["centered"] else set())
        names |= {"momentum"} if options["momentum"] else set()
    else:
        names = {"lr", "betas[0]", "betas[1]", "eps"}
        names |= {"amsgrad"} if options["amsgrad"] else set()
        if name == "AdamW" or options["decoupled_weight_decay"]:
            names |= {"weight_decay"} if name == "AdamW" or options["weight_decay"] else set()
    if options.get("weight_decay"):
        names.add("weight_decay")
    if options["maximize"]:
        names.add("maximize")
    return names


@pytest.mark.parametrize(
    "name, options, lines",
    FLAG_CASES,
    ids=[f"{name}-{'-'.join(f'{k}={v}' for k, v in o.items())}" for name, o, _ in FLAG_CASES],
)
def test_every_flag_combination_takes_its_branch_and_reproduces_the_step(name, options, lines):
    generator = torch.Generator().manual_seed(len(FLAG_CASES))
    start = torch.randn(2, 3, generator=generator, dtype=torch.float64)
    param = mt.tensor(start, requires_grad=True)
    optimizer = getattr(mt.optim, name)([param], **options)
    for t in (1, 2, 3):
        grad = torch.randn(2, 3, generator=generator, dtype=torch.float64)
        step = run_explained(optimizer, param, (1, 2), grad)
        assert [line.formula for line in step.lines] == lines(options, t)
        taken = {h.name for h in step.hyperparameters}
        assert taken == expected_hyperparameters(name, options, t)
        group = optimizer.param_groups[0]
        for h in step.hyperparameters:
            key, _, position = h.name.partition("[")
            expected = group[key][int(position[0])] if position else group[key]
            assert h.value == expected, h
        if name != "SGD":
            assert step.step == t


# ---------------------------------------------------------------------- other cases
def test_text_shows_rule_numbers_state_and_check():
    W = mt.tensor([[0.5, -1.0], [2.0, 0.25]], dtype=mt.float64, requires_grad=True)
    optimizer = mt.optim.Adam([W], lr=0.1, amsgrad=True)
    for grad in ([[0.1, 0.2], [0.3, 0.4]], [[-0.2, 0.5], [0.1, 0.0]]):
        W.grad = mt.tensor(grad, dtype=mt.float64)
        with explain_step(optimizer, W, (0, 1), names={W: "W"}) as step:
            optimizer.step()
    text = str(step)
    assert text.startswith("Adam step for W[0, 1] (parameter group 0, step t = 2, float64)")
    assert "β2 (betas[1])" in text and "= 0.999" in text
    assert "m_{t-1} (state['exp_avg'])" in text
    assert "v_max_t ← max(v_max_{t-1}, v_t)   [amsgrad]" in text
    assert "= W.grad[0, 1]\n      = 0.5" in text
    assert "not taken: maximize=False; λ = 0 (no weight decay)" in text
    assert "DIFFERS" not in text and text.count("agrees") == 5  # θ and four state entries
    m_line = step.lines[1]  # m_{t-1} is 0.1 × 0.2 from the first step
    assert m_line.symbol == "m_t" and m_line.state == "exp_avg"
    assert m_line.substituted(4) == "0.02 + (1 - 0.9) × (0.5 - 0.02)"
    assert m_line.value == pytest.approx(0.02 + 0.1 * (0.5 - 0.02), rel=1e-15)
    json.dumps(step.to_dict())  # JSON-ready


def test_a_discrepancy_is_reported():
    """An SGD whose step adds a little more than its formula: the check must catch it."""

    class Drifting(mt.optim.SGD):
        def _update_single_tensor(self, group, parameters):
            super()._update_single_tensor(group, parameters)
            for parameter in parameters:
                parameter.data.add_(1e-9)

    W = mt.tensor([1.0, 2.0], dtype=mt.float64, requires_grad=True)
    optimizer = Drifting([W], lr=0.1, foreach=False)
    W.grad = mt.tensor([0.5, 0.5], dtype=mt.float64)
    with explain_step(optimizer, W, 1) as step:
        optimizer.step()
    assert not step.matches()
    assert step.new_value == 2.0 - 0.1 * 0.5 and step.actual == step.new_value + 1e-9
    assert "DIFFERS" in str(step)


def test_float32_parameters_are_worked_in_float32():
    W = mt.tensor([0.3, -0.7, 1.1], requires_grad=True)
    optimizer = mt.optim.RMSprop([W], lr=0.01, centered=True, momentum=0.5)
    for _ in range(3):
        W.grad = mt.tensor([0.2, 0.1, -0.4])
        with explain_step(optimizer, W, 2) as step:
            optimizer.step()
        assert step.dtype == "float32"
        assert step.matches(rtol=1e-6)
        assert step.new_value == pytest.approx(step.actual, rel=1e-6)


def test_a_closure_and_several_groups():
    first = mt.tensor([1.0, 2.0], dtype=mt.float64, requires_grad=True)
    second = mt.tensor([[3.0, -1.0]], dtype=mt.float64, requires_grad=True)
    optimizer = mt.optim.SGD([{"params": [first]}, {"params": [second], "lr": 0.5}], lr=0.1)

    def closure():
        optimizer.zero_grad()
        loss = (first * first).sum() + (second**3).sum()
        loss.backward()
        return loss

    with explain_step(optimizer, second, (0, 1)) as step:
        loss = optimizer.step(closure)
    assert loss.item() == pytest.approx(5 + 27 - 1)
    assert step.group == 1 and step.gradient == 3.0  # d(x³)/dx at -1
    assert step.hyperparameters[0].value == 0.5
    assert step.new_value == step.actual == -1.0 - 0.5 * 3.0
    assert "step" not in vars(optimizer)  # the wrapper is gone


def test_a_parameter_without_gradient_is_skipped():
    a = mt.tensor([1.0], requires_grad=True)
    b = mt.tensor([2.0], requires_grad=True)
    optimizer = mt.optim.Adam([a, b])
    a.grad = mt.tensor([1.0])
    with explain_step(optimizer, b, 0, names={b: "b"}) as step:
        optimizer.step()
    assert step.gradient is None and step.new_value == step.actual == 2.0 and step.lines == []
    assert "b.grad was None: step() skipped this parameter" in str(step)


def test_bad_uses_get_clear_errors():
    W = mt.tensor([[1.0, 2.0]], requires_grad=True)
    other = mt.tensor([1.0], requires_grad=True)
    optimizer = mt.optim.SGD([W], lr=0.1)
    W.grad = mt.tensor([[1.0, 1.0]])
    with pytest.raises(TypeError, match="mt.optim optimizer"):
        explain_step(torch.optim.SGD([torch.zeros(1, requires_grad=True)]), W, (0, 0))
    with pytest.raises(ValueError, match=r"shape \(1,\)\) is not in any parameter group"):
        explain_step(optimizer, other, 0)
    with pytest.raises(IndexError, match=r"index \(0,\) has 1 entries.*shape \(1, 2\)"):
        explain_step(optimizer, W, 0)
    with pytest.raises(IndexError, match="out of range"):
        explain_step(optimizer, W, (0, 2))
    with pytest.raises(TypeError, match="tuple of ints"):
        explain_step(optimizer, W, (0, 1.0))

    class Custom(mt.optim.Optimizer):
        pass

    with pytest.raises(TypeError, match="cannot explain Custom; it knows SGD"):
        explain_step(Custom([W], {"lr": 0.1}), W, (0, 0))
    with pytest.raises(RuntimeError, match="was not called"):
        with explain_step(optimizer, W, (0, 0)):
            pass
    with pytest.raises(RuntimeError, match="called a second time"):
        with explain_step(optimizer, W, (0, 0)):
            optimizer.step()
            optimizer.step()
    assert "step" not in vars(optimizer)
    optimizer.step()  # the class's own step again


@pytest.mark.parametrize(
    "make",
    [
        lambda p: mt.optim.SGD(p, lr=0.01),
        lambda p: mt.optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.01),
        lambda p: mt.optim.Adagrad(p, lr=0.01),
        lambda p: mt.optim.RMSprop(p, lr=0.01),
        lambda p: mt.optim.RMSprop(p, lr=0.01, momentum=0.9, centered=True),
        lambda p: mt.optim.Adam(p, lr=0.001),
        lambda p: mt.optim.AdamW(p, lr=0.001, amsgrad=True),
    ],
    ids=["sgd", "sgd-nesterov", "adagrad", "rmsprop", "rmsprop-momentum", "adam", "adamw"],
)
def test_float32_steps_agree_to_the_bit_where_the_update_cancels_the_parameter(make):
    """Parameters about as large as their update: the last bits of θ_t depend on how the
    update is rounded (the real step's addcdiv/addcmul/lerp round once, not per operation),
    and the formulas reproduce them exactly."""
    generator = torch.Generator().manual_seed(0)
    weight = mt.tensor(torch.randn(16, 16, generator=generator) * 1e-3, requires_grad=True)
    optimizer = make([weight])
    for step in range(4):
        weight.grad = mt.tensor(torch.randn(16, 16, generator=generator) * 0.01)
        for index in [(step, 0), (5, 2 * step + 1), (15, 15 - step)]:
            with mt.study.explain_step(optimizer, weight, index) as explanation:
                optimizer.step()
            assert explanation.new_value == explanation.actual, (step, index)
            assert explanation.matches()
