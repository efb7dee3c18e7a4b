"""The chain rule for one element: explain_gradient's value is torch's gradient at that element.

Each composition is written once with methods torch.Tensor and our Tensor share, run in
torch (the oracle: torch.autograd.grad) and in minitorch_edu (explain_gradient). Besides the
final value, every step of the explanation must add up: a use's share is the sum of its
terms, an element's gradient is the sum of its uses' shares, and a term's upstream
gradient is the value of the element gradient it was followed to.
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minitorch_edu as mt
from minitorch_edu.autograd import function
from minitorch_edu.study import ElementGradient, explain_gradient, trace
from minitorch_edu.testing import strategies as mts


def linear_tanh_mean(x, W, b):
    """Matmul, broadcasting add, tanh, mean."""
    return (x @ W.T + b).tanh().mean()


def relu_exp_sum(x, W, b):
    """Matmul, relu, exp, sum (b scales the result: a broadcast multiply)."""
    return ((x @ W.T).relu() * b * 0.5).exp().sum()


def two_paths(x, W, b):
    """W reaches the output along several paths, once as both inputs of one op."""
    return (x @ W.T).sum() + (W * W).exp().mean() + (W.sum(1) * b).sum()


def cross_entropy(x, W, b, target):
    """log-sum-exp of the logits minus the logit of the target class, averaged."""
    logits = x @ W.T + b
    picked = logits.gather(1, target[:, None]).squeeze(1)
    return (logits.logsumexp(1) - picked).mean()


def centred_norms(x, W, b):
    """Broadcasting sub against a keepdim mean, pow, sum over a dim, sqrt."""
    h = x @ W.T + b
    centred = h - h.mean(0, keepdim=True)
    return ((centred**2).sum(1) + 1.0).sqrt().sum()


COMPOSITIONS = {
    "linear_tanh_mean": linear_tanh_mean,
    "relu_exp_sum": relu_exp_sum,
    "two_paths": two_paths,
    "cross_entropy": cross_entropy,
    "centred_norms": centred_norms,
}


@st.composite
def problems(draw, name, low=1, high=4):
    batch, features, classes = (draw(st.integers(low, high)) for _ in range(3))
    x = draw(mts.tensors(shape=(batch, features), min_value=-1, max_value=1))
    W = draw(mts.tensors(shape=(classes, features), min_value=-1, max_value=1))
    b = draw(mts.tensors(shape=(classes,), min_value=-1, max_value=1))
    extra = []
    if name == "cross_entropy":
        targets = st.lists(st.integers(0, classes - 1), min_size=batch, max_size=batch)
        extra.append(torch.tensor(draw(targets)))
    wrt = draw(st.sampled_from(["W", "b"]))
    shape = W.shape if wrt == "W" else b.shape
    index = tuple(draw(st.integers(0, size - 1)) for size in shape)
    return (x, W, b), extra, wrt, index


def torch_gradient(fn, inputs, extra, wrt):
    x, W, b = (t.clone().requires_grad_(i > 0) for i, t in enumerate(inputs))
    out = fn(x, W, b, *extra)
    (grad,) = torch.autograd.grad(out, [W if wrt == "W" else b])
    return grad


def check_adds_up(element: ElementGradient, seen=None) -> bool:
    """Every use is the sum of its terms, every element the sum of its uses.

    Returns whether the walk was followed all the way to the output.
    """
    seen = set() if seen is None else seen
    if id(element) in seen:
        return False
    seen.add(id(element))
    reached = element.is_output
    if not element.is_output:
        shares = math.fsum(use.value for use in element.uses)
        assert element.value == pytest.approx(shares, rel=1e-9, abs=1e-12)
    for use in element.uses:
        if use.terms is None:
            continue
        total = math.fsum(t.product for t in use.terms) + use.left_out_sum
        assert use.value == pytest.approx(total, rel=1e-9, abs=1e-12)
        for term in use.terms:
            assert term.product == pytest.approx(term.upstream * term.local, rel=1e-12)
            if term.explained is not None:
                assert term.explained.value == pytest.approx(term.upstream, rel=1e-12, abs=1e-15)
                reached = check_adds_up(term.explained, seen) or reached
    return reached


@pytest.mark.parametrize("name", COMPOSITIONS)
@given(data=st.data())
def test_value_is_torchs_gradient_at_the_element(name, data, device):
    fn = COMPOSITIONS[name]
    inputs, extra, wrt, index = data.draw(problems(name))
    inputs = [t.to(device) for t in inputs]
    extra = [t.to(device) for t in extra]
    expected = torch_gradient(fn, inputs, extra, wrt)[index].item()

    x = mt.tensor(inputs[0])
    W = mt.tensor(inputs[1], requires_grad=True)
    b = mt.tensor(inputs[2], requires_grad=True)
    out = fn(x, W, b, *extra)
    result = explain_gradient(out, W if wrt == "W" else b, index, max_terms=50)
    assert result.value == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert result.index == index and result.label in ("leaf1", "leaf2")
    # Followed up to where backward started, unless no gradient flows at all (dead relus).
    assert check_adds_up(result.element) or expected == 0.0
    assert result.path_count >= 1 and all(p[0] == result.label for p in result.paths)


@pytest.mark.parametrize("name", ["cross_entropy", "two_paths", "relu_exp_sum"])
@settings(max_examples=8)
@given(data=st.data())
def test_bigger_outputs_lose_no_term(name, data):
    """Outputs of more than 32 elements are searched by halving for nonzero derivatives;
    the terms found must still add up to each share the engine computed."""
    fn = COMPOSITIONS[name]
    inputs, extra, wrt, index = data.draw(problems(name, low=6, high=9))
    expected = torch_gradient(fn, inputs, extra, wrt)[index].item()
    x = mt.tensor(inputs[0])
    W = mt.tensor(inputs[1], requires_grad=True)
    b = mt.tensor(inputs[2], requires_grad=True)
    result = explain_gradient(fn(x, W, b, *extra), W if wrt == "W" else b, index, max_terms=4)
    assert result.value == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert check_adds_up(result.element) or expected == 0.0


def test_local_derivatives_of_a_wide_elementwise_op():
    values = torch.linspace(-3, 3, 100, dtype=torch.float64).reshape(10, 10)
    x = mt.tensor(values, requires_grad=True)
    scale = torch.arange(100, dtype=torch.float64).reshape(10, 10)
    out = (x.relu() * scale).sum()
    for index in [(9, 9), (2, 3), (5, 0)]:
        result = explain_gradient(out, x, index)
        relu = result.element.uses[0]
        expected_local = 1.0 if values[index] > 0 else 0.0
        assert [t.output_index for t in relu.terms] == [index]
        assert relu.terms[0].local == expected_local
        # where the derivative comes from, read from Relu's formula data
        assert relu.terms[0].expression == f"[leaf1{list(index)} > 0]"
        assert relu.terms[0].expression_value == expected_local
        assert relu.term_count == (1 if expected_local else 0)
        assert result.value == scale[index].item() * expected_local


@given(data=st.data())
def test_a_leaf_used_on_several_paths_sums_every_path(data):
    inputs, _, _, _ = data.draw(problems("two_paths"))
    index = (0, 0)
    expected = torch_gradient(two_paths, inputs, [], "W")[index].item()
    W = mt.tensor(inputs[1], requires_grad=True)
    out = two_paths(mt.tensor(inputs[0]), W, mt.tensor(inputs[2], requires_grad=True))
    result = explain_gradient(out, W, index, names={W: "W"})
    # W feeds Permute (x @ W.T), both inputs of Mul (W * W), and Sum (W.sum(1))
    assert sorted((u.op, u.input_position) for u in result.element.uses) == [
        ("Mul", 0),
        ("Mul", 1),
        ("Permute", 0),
        ("Sum", 0),
    ]
    assert result.path_count == 4
    assert result.value == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert "the sum over its 4 uses" in result.text()


def test_text_writes_the_matmul_terms_out():
    x = mt.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=mt.float64)
    W = mt.tensor([[0.5, -1.0], [2.0, 0.25]], dtype=mt.float64, requires_grad=True)
    out = (x @ W.T).sum()
    result = explain_gradient(out, W, (1, 0), names={x: "x", W: "W", out: "loss"})
    # dW[1, 0] = sum_n grad[n, 1] * x[n, 0] = 1 + 3 + 5
    assert result.value == 9.0
    text = result.text()
    assert text.startswith("d(loss)/d(W[1, 0]) = 9\n")
    assert "W -> permute1 -> matmul1 -> loss" in text
    assert "MatMul   dA = grad @ B^T;" in text and "dB = A^T @ grad" in text
    assert "dW[1, 0] = 9 = dpermute1[0, 1] * 1 = 9 * 1 = 9" in text
    # the local derivative d matmul1[n, m] / d permute1[k, m] = x[n, k], from MatMul's data
    assert "d matmul1[..., n, m] / d permute1[..., k, m] = x[..., n, k]" in text
    for n, x_n0 in enumerate([1, 3, 5]):
        assert f"j = [{n}, 1]: dmatmul1[{n}, 1] * x[{n}, 0] = 1 * {x_n0} = {x_n0}" in text
    assert str(result) == text


def test_many_terms_are_cut_to_the_largest():
    x = mt.tensor(torch.arange(1.0, 11.0, dtype=torch.float64)[:, None])
    W = mt.tensor([[0.5]], dtype=mt.float64, requires_grad=True)
    result = explain_gradient((x @ W.T).sum(), W, (0, 0), max_terms=3)
    matmul_use = result.element.uses[0].terms[0].explained.uses[0]
    assert [t.local for t in matmul_use.terms] == [8.0, 9.0, 10.0]  # largest, in index order
    assert matmul_use.terms_left_out == 7 and matmul_use.left_out_sum == sum(range(1, 8))
    assert "and 7 more terms: 28  (max_terms=3: raise it to list more)" in result.text()
    assert result.value == 55.0


def test_a_recorded_tape_can_be_explained():
    x = mt.randn(3, 4, dtype=mt.float64)
    W = mt.randn(2, 4, dtype=mt.float64, requires_grad=True)
    with trace() as tape:
        out = (x @ W.T).tanh().sum()
        out.backward(retain_graph=True)
    result = explain_gradient(out, W, (1, 2), tape=tape)
    assert result.value == pytest.approx(W.grad.data[1, 2].item(), rel=1e-12)
    assert check_adds_up(result.element)

    # After a backward that freed the graph, shares are still read from the tape, but the
    # freed nodes cannot be asked for local derivatives.
    with trace() as tape:
        out = (x @ W.T).tanh().sum()
        out.backward()
    result = explain_gradient(out, W, (1, 2), tape=tape)
    assert result.value == pytest.approx(W.grad.data[1, 2].item() / 2, rel=1e-12)
    permute = result.element.uses[0]
    assert permute.terms is not None  # Permute saved nothing, so it can still be asked
    matmul = permute.terms[0].explained.uses[0]
    assert matmul.terms is None and "saved tensors were freed" in matmul.note
    assert "saved tensors were freed" in result.text()


def test_the_last_pass_on_the_tape_is_explained():
    W = mt.tensor([1.0, 2.0], dtype=mt.float64, requires_grad=True)
    with trace() as tape:
        out = (W * W).sum()
        out.backward(retain_graph=True)
        out.backward(gradient=mt.tensor(3.0, dtype=mt.float64), retain_graph=True)
    result = explain_gradient(out, W, (1,), tape=tape)
    assert result.value == 3 * 2 * 2.0  # the second pass, seeded with 3


def test_a_summarised_tape_cannot_be_explained():
    W = mt.randn(30, 30, dtype=mt.float64, requires_grad=True)
    with trace(store_limit=10) as tape:
        out = W.exp().sum()
        out.backward(retain_graph=True)
    with pytest.raises(ValueError, match="store_limit=None"):
        explain_gradient(out, W, (0, 0), tape=tape)
    with pytest.raises(ValueError, match="no backward step"):
        explain_gradient(out, W, (0, 0), tape=trace())


def test_non_scalar_output_takes_a_gradient_like_backward():
    a = torch.randn(3, 2, dtype=torch.float64)
    seed = torch.randn(3, 2, dtype=torch.float64)
    reference = a.clone().requires_grad_()
    (expected,) = torch.autograd.grad(reference.exp() * reference, [reference], seed)
    x = mt.tensor(a, requires_grad=True)
    out = x.exp() * x
    result = explain_gradient(out, x, (2, 1), gradient=seed)
    assert result.value == pytest.approx(expected[2, 1].item(), rel=1e-12)
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar"):
        explain_gradient(out, x, (0, 0))


def test_an_intermediate_tensor_can_be_explained():
    a = torch.randn(4, 3, dtype=torch.float64)
    reference = a.clone().requires_grad_()
    hidden_ref = reference.tanh()
    hidden_ref.retain_grad()
    (hidden_ref * hidden_ref).sum().backward()
    x = mt.tensor(a, requires_grad=True)
    hidden = x.tanh()
    out = (hidden * hidden).sum()
    result = explain_gradient(out, hidden, (3, 2), names={hidden: "h"})
    assert result.label == "h"
    assert result.value == pytest.approx(hidden_ref.grad[3, 2].item(), rel=1e-12)


def test_explaining_touches_no_grad_keeps_the_graph_and_no_trace_sees_it():
    x = mt.randn(3, 2, dtype=mt.float64)
    W = mt.randn(2, 2, dtype=mt.float64, requires_grad=True)
    out = (x @ W).relu().sum()
    with trace() as tape:
        result = explain_gradient(out, W, (0, 1))
    assert len(tape) == 0 and function.tracer is None
    assert W.grad is None
    out.backward()  # the graph is still usable
    assert result.value == W.grad.data[0, 1].item()
    with pytest.raises(RuntimeError, match="was freed by an earlier backward"):
        explain_gradient(out, W, (0, 1))


def test_a_tensor_not_in_the_graph_is_named_in_the_error():
    W = mt.randn(2, dtype=mt.float64, requires_grad=True)
    v = mt.randn(2, dtype=mt.float64, requires_grad=True)
    out = (v * 2).sum()
    with pytest.raises(ValueError, match=r"the tensor \(W, shape \(2,\)\) is not in the graph"):
        explain_gradient(out, W, (1,), names={W: "W", out: "out"})
    hidden = (W * 3).exp()
    with pytest.raises(ValueError, match="is not in the graph of the output"):
        explain_gradient(out, hidden, (0,))


def test_a_dead_relu_says_the_local_derivative_is_zero():
    x = mt.tensor([-1.0, 2.0], dtype=mt.float64, requires_grad=True)
    result = explain_gradient(x.relu().sum(), x, (0,))
    assert result.value == 0.0
    (term,) = result.element.uses[0].terms
    assert term.product == 0.0 and term.expression == "[leaf1[0] > 0]"
    assert "dleaf1[0] = 0 = drelu1[0] * [leaf1[0] > 0] = 1 * 0 = 0" in result.text()


def test_depth_and_expansion_limits_stop_following():
    x = mt.randn(2, 3, dtype=mt.float64, requires_grad=True)
    out = x.exp().tanh().sigmoid().sum()
    shallow = explain_gradient(out, x, (1, 1), max_depth=1)
    first = shallow.element.uses[0].terms[0].explained
    assert first is not None and first.uses[0].terms[0].explained is None
    assert shallow.value == explain_gradient(out, x, (1, 1)).value
    assert any("max_depth=1" in limit for limit in shallow.limits)
    tiny = explain_gradient(out, x, (1, 1), max_expansions=0)
    assert tiny.element.uses[0].terms[0].explained is None
    assert any("max_expansions=0" in limit for limit in tiny.limits)
    assert "raise max_expansions" in tiny.text(width=None)
    assert tiny.value == shallow.value


class PlainTorchSquare(mt.Function):
    """An op whose backward uses a torch function ours do not record: it cannot be
    differentiated again, so its local derivatives are found by one-hot backward calls."""

    formula = "da = grad * 2a"

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a * a

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return torch.mul(torch.as_tensor(grad), torch.as_tensor(a) * 2)


def test_a_backward_that_cannot_be_differentiated_is_probed_up_to_a_limit():
    values = torch.tensor([[1.0, -2.0], [3.0, 0.5]], dtype=torch.float64)
    x = mt.tensor(values, requires_grad=True)
    out = PlainTorchSquare.apply(x).sum()
    result = explain_gradient(out, x, (1, 0))
    (term,) = result.element.uses[0].terms
    assert term.local == 6.0 and result.value == 6.0 and term.expression == ""
    capped = explain_gradient(out, x, (1, 0), max_probe_elements=3)
    use = capped.element.uses[0]
    assert use.terms is None and "max_probe_elements=3" in use.note
    assert any("raise max_probe_elements" in limit for limit in capped.limits)


def test_bad_arguments_get_clear_errors():
    W = mt.randn(2, 3, requires_grad=True)
    out = (W * 2).sum()
    with pytest.raises(IndexError, match=r"has 1 entries, but the tensor has shape \(2, 3\)"):
        explain_gradient(out, W, (1,))
    with pytest.raises(IndexError, match=r"out of range for shape \(2, 3\)"):
        explain_gradient(out, W, (2, 0))
    with pytest.raises(TypeError, match="tuple of ints"):
        explain_gradient(out, W, (0.5, 1))
    with pytest.raises(ValueError, match="does not require grad"):
        explain_gradient(out, mt.randn(2), (0,))
    with pytest.raises(ValueError, match="output has no graph"):
        explain_gradient(W, W, (0, 0))
    with pytest.raises(TypeError, match="minitorch_edu Tensors"):
        explain_gradient(out, torch.zeros(2), (0,))
    assert explain_gradient(out, W, (-1, -1)).index == (1, 2)
