"""The backward engine against torch.autograd: graph shapes, hooks, grad modes, retain_graph,
gradient=, inputs=, autograd.grad, higher-order gradients, accumulation, memory sharing and
the in-place version check.

Every expected gradient comes from running the same computation through torch.autograd.
"""

import gc
import sys

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minitorch_edu as mt
from minitorch_edu.study import gradcheck
from minitorch_edu.testing import assert_matches_torch
from minitorch_edu.testing import strategies as mts


def leaf_pair(values, dtype=torch.float64):
    """The same leaf on both sides: (ours, torch's)."""
    data = torch.as_tensor(values, dtype=dtype)
    return mt.tensor(data, requires_grad=True), data.clone().requires_grad_(True)


def close(ours, theirs):
    torch.testing.assert_close(ours.data if isinstance(ours, mt.Tensor) else ours, theirs)


# ------------------------------------------------------------------ deep graphs


def test_ten_thousand_op_chain_backpropagates_like_torch():
    x, tx = leaf_pair([0.5, -0.25])
    y, ty = x, tx
    for i in range(10_000):
        y = y * 1.0001 if i % 2 else y + 0.001
        ty = ty * 1.0001 if i % 2 else ty + 0.001
    y.sum().backward()
    ty.sum().backward()
    close(y, ty)
    close(x.grad, tx.grad)


def test_a_far_deeper_chain_needs_no_recursion_and_is_freed():
    limit = sys.getrecursionlimit()
    x = mt.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(max(10 * limit, 50_000)):
        y = y + 1.0
    y.backward(torch.ones(1))
    assert x.grad.tolist() == [1.0]
    del y  # freeing the graph must not recurse either
    gc.collect()


# ------------------------------------------------------------------ many paths


def test_diamond_fan_out_fan_in_and_reused_leaf_accumulate_like_torch():
    def compute(lib, x, w):
        a = x * w  # x and w each used by several nodes below
        b = lib.exp(a)
        c = lib.tanh(a)
        d = b * c + a  # a reached by three paths
        e = (d * x).sum() + (w * w).sum() + (x * x).sum()  # leaves used again
        return e

    x, tx = leaf_pair([0.3, -0.7, 1.1])
    w, tw = leaf_pair([0.9, 0.2, -0.4])
    close(compute(mt, x, w), compute(torch, tx, tw))
    compute(mt, x, w).backward()
    compute(torch, tx, tw).backward()
    close(x.grad, tx.grad)
    close(w.grad, tw.grad)


def test_one_node_feeding_itself_twice():
    x, tx = leaf_pair([1.5, -2.0])
    (x * x * x).sum().backward()
    (tx * tx * tx).sum().backward()
    close(x.grad, tx.grad)
    h, th = leaf_pair([0.5, 0.25])
    y, ty = h.exp(), th.exp()
    (y + y + y * y).sum().backward()
    (ty + ty + ty * ty).sum().backward()
    close(h.grad, th.grad)


@st.composite
def random_graphs(draw):
    """A random DAG of ops over two leaves: every node may use any earlier node."""
    ops = st.sampled_from(["add", "mul", "tanh", "exp_neg_square", "sum_broadcast"])
    steps = draw(st.lists(st.tuples(ops, st.integers(0, 100), st.integers(0, 100)), max_size=12))
    shape = draw(mts.shapes(min_dims=1, max_dims=2, max_side=3))
    return steps, draw(mts.tensors(shape=shape)), draw(mts.tensors(shape=shape))


def build(lib, steps, a, b):
    nodes = [a, b]
    for op, i, j in steps:
        left, right = nodes[i % len(nodes)], nodes[j % len(nodes)]
        if op == "add":
            nodes.append(left + right)
        elif op == "mul":
            nodes.append(left * right * 0.5)
        elif op == "tanh":
            nodes.append(lib.tanh(left))
        elif op == "exp_neg_square":
            nodes.append(lib.exp(-(left * left)))
        else:
            nodes.append(left.sum(0, keepdim=True) * right)
    return sum(node.sum() for node in nodes[2:]) + nodes[-1].sum()


@given(graph=random_graphs())
def test_random_graphs_match_torch(graph, device):
    steps, a, b = graph
    a, b = a.to(device), b.to(device)
    assert_matches_torch(
        lambda x, y: build(mt, steps, x, y),
        lambda x, y: build(torch, steps, x, y),
        a,
        b,
        double_backward=True,
    )


# ------------------------------------------------------------------ hooks


@pytest.mark.parametrize("leaf", [True, False])
def test_hooks_observe_and_replace_gradients_like_torch(leaf):
    results = []
    ours, theirs = leaf_pair([1.0, 2.0])
    for x in (ours, theirs):
        seen = []
        target = x if leaf else x * 3
        target.register_hook(lambda g, seen=seen: seen.append(g.clone()))
        target.register_hook(lambda g: g * g)  # non-linear: must see the summed gradient
        target.register_hook(lambda g, seen=seen: seen.append(g.clone()))
        (target * 2 + target * 5).sum().backward()
        results.append((seen, x.grad))
    (seen, grad), (torch_seen, torch_grad) = results
    assert len(seen) == len(torch_seen) == 2
    for ours, theirs in zip(seen, torch_seen):
        close(ours, theirs)
    close(grad, torch_grad)


def test_removed_hook_is_not_called():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    calls = []
    handle = x.register_hook(lambda g: calls.append(1))
    kept = x.register_hook(lambda g: g * 10)
    (x * 2).sum().backward()
    handle.remove()
    handle.remove()  # a second remove is harmless
    (x * 2).sum().backward()
    assert calls == [1]
    assert x.grad.tolist() == [40.0, 40.0]
    kept.remove()
    x.grad = None
    (x * 2).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_hook_changing_the_shape_is_an_error():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: mt.ones(3))
    with pytest.raises(RuntimeError, match=r"changed the size.*\(3,\).*\(2,\)"):
        (x * 2).sum().backward()


def test_hook_changing_the_dtype_is_an_error_like_torch():
    """Else a float32 gradient would land on a float64 leaf."""
    theirs = torch.ones(2, dtype=torch.float64, requires_grad=True)
    theirs.register_hook(lambda grad: grad.float())
    with pytest.raises(RuntimeError):
        (theirs * 2).sum().backward()
    ours = mt.ones(2, dtype=torch.float64, requires_grad=True)
    ours.register_hook(lambda grad: grad.float())
    with pytest.raises(RuntimeError, match="changed the dtype.*float64.*float32"):
        (ours * 2).sum().backward()
    assert ours.grad is None


def test_hook_on_a_tensor_without_grad_is_an_error():
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        mt.ones(2).register_hook(lambda g: g)


def post_accumulate_events(lib, w1, w2, w3, x):
    """Run a chain x -> w1 -> w2 -> (w3 used twice) and log, in order, each post-accumulate
    hook (with the .grad it saw) and each gradient reaching the hidden layers."""
    events = []
    for name, weight in (("w1", w1), ("w2", w2), ("w3", w3)):
        weight.register_post_accumulate_grad_hook(
            lambda tensor, name=name: events.append((name, tensor.grad.clone()))
        )
    h1 = (x * w1).tanh()
    h1.register_hook(lambda g: events.append(("dh1", g.clone())))
    h2 = (h1 * w2).tanh()
    h2.register_hook(lambda g: events.append(("dh2", g.clone())))
    (h2 * w3 + w3 * w3).sum().backward()
    return events


def test_post_accumulate_hooks_fire_when_each_gradient_is_final_like_torch():
    values = [[0.5, -1.0], [1.5, 0.25], [-0.5, 2.0], [1.0, 3.0]]
    ours, theirs = zip(*(leaf_pair(v) for v in values[:3]))
    x = torch.tensor(values[3], dtype=torch.float64)
    events = post_accumulate_events(mt, *ours, mt.tensor(x))
    torch_events = post_accumulate_events(torch, *theirs, x)
    # w3 (used twice) fires once, after both uses; w2 fires before the gradient reaches h1
    assert [name for name, _ in events] == [name for name, _ in torch_events]
    assert [name for name, _ in events] == ["w3", "dh2", "w2", "dh1", "w1"]
    for (_, ours_seen), (_, torch_seen) in zip(events, torch_events):
        close(ours_seen, torch_seen)


def test_post_accumulate_hook_runs_after_gradient_hooks_and_for_a_leaf_output_like_torch():
    results = []
    for x in leaf_pair([1.0, 2.0]):
        seen = []
        x.register_post_accumulate_grad_hook(lambda t, seen=seen: seen.append(t.grad.clone()))
        x.register_hook(lambda g: g * 10)
        (x * x).sum().backward()
        x.backward(torch.ones(2, dtype=torch.float64))  # the leaf itself is the output
        lib = mt if isinstance(x, mt.Tensor) else torch
        lib.autograd.grad((x * 3).sum(), x)  # leaves .grad alone: no call
        (x * x + x).sum().backward(inputs=[x])
        results.append(seen)
    ours, theirs = results
    assert len(ours) == len(theirs) == 3
    for a, b in zip(ours, theirs):
        close(a, b)


def test_post_accumulate_hook_errors_and_removal():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="non-leaf"):
        (x * 2).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        mt.ones(2).register_post_accumulate_grad_hook(lambda t: None)
    before = mt.Tensor.post_accumulate_hook_count
    calls = []
    handle = x.register_post_accumulate_grad_hook(lambda t: calls.append(1))
    assert mt.Tensor.post_accumulate_hook_count == before + 1
    (x * 2).sum().backward()
    handle.remove()
    handle.remove()
    assert mt.Tensor.post_accumulate_hook_count == before
    (x * 2).sum().backward()
    assert calls == [1]


def test_retain_grad_keeps_non_leaf_gradients_like_torch():
    x, tx = leaf_pair([1.0, -2.0, 0.5])
    y, ty = x * x, tx * tx
    z, tz = y.exp(), ty.exp()
    for tensor in (y, z, ty, tz):
        tensor.retain_grad()
        tensor.retain_grad()  # a second call changes nothing
    y.register_hook(lambda g: g * 2)  # registered after retain_grad: .grad still sees it
    ty.register_hook(lambda g: g * 2)
    for _ in range(2):  # retained gradients accumulate across calls, as .grad does
        (z.sum() + y.sum()).backward(retain_graph=True)
        (tz.sum() + ty.sum()).backward(retain_graph=True)
    assert y.retains_grad and not x.retains_grad
    close(y.grad, ty.grad)
    close(z.grad, tz.grad)
    close(x.grad, tx.grad)
    unretained = x * 2
    unretained.sum().backward()
    assert unretained.grad is None


def test_retain_grad_on_a_tensor_without_grad_is_an_error():
    with pytest.raises(RuntimeError, match="requires_grad=False"):
        mt.ones(2).retain_grad()


# ------------------------------------------------------------------ grad modes


def test_no_grad_and_enable_grad_as_context_managers_nest():
    x = mt.ones(2, requires_grad=True)
    assert mt.is_grad_enabled()
    with mt.no_grad():
        assert not mt.is_grad_enabled()
        assert not (x * 2).requires_grad
        with mt.enable_grad():
            assert mt.is_grad_enabled()
            y = x * 2
            assert y.requires_grad and y.grad_fn is not None
            with mt.no_grad():
                assert (x * 2).grad_fn is None
            assert mt.is_grad_enabled()
        assert not mt.is_grad_enabled()
    assert mt.is_grad_enabled()


def test_grad_modes_as_decorators():
    @mt.no_grad()
    def without():
        return mt.is_grad_enabled()

    @mt.no_grad
    def without_bare():
        return mt.is_grad_enabled()

    @mt.enable_grad()
    def inside():
        return mt.is_grad_enabled()

    @mt.set_grad_enabled(False)
    def off():
        return mt.is_grad_enabled()

    assert mt.is_grad_enabled()  # defining them changed nothing
    assert (without(), without_bare(), off()) == (False, False, False)
    assert without.__name__ == "without"
    with mt.no_grad():
        assert inside() is True
        assert not mt.is_grad_enabled()
    assert mt.is_grad_enabled()


def test_set_grad_enabled_as_a_call_and_as_a_context_manager():
    try:
        mt.set_grad_enabled(False)
        assert not mt.is_grad_enabled()
        with mt.set_grad_enabled(True):
            assert mt.is_grad_enabled()
        assert not mt.is_grad_enabled()
    finally:
        mt.set_grad_enabled(True)
    with mt.set_grad_enabled(False):
        assert not mt.is_grad_enabled()
    assert mt.is_grad_enabled()


def test_grad_mode_is_restored_after_an_exception():
    @mt.no_grad()
    def failing():
        raise ValueError("inside")

    with pytest.raises(ValueError):
        failing()
    assert mt.is_grad_enabled()
    with pytest.raises(ValueError):
        with mt.no_grad():
            with mt.enable_grad():
                raise ValueError("nested")
    assert mt.is_grad_enabled()
    with pytest.raises(ValueError):
        with mt.set_grad_enabled(False):
            raise ValueError("set")
    assert mt.is_grad_enabled()


def test_backward_raising_midway_leaves_grad_mode_on():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.register_hook(lambda g: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        y.sum().backward(create_graph=False)
    assert mt.is_grad_enabled()


# ------------------------------------------------------------------ retain_graph


def test_second_backward_through_freed_buffers_raises_torchs_error():
    x, tx = leaf_pair([1.0, 2.0])
    y, ty = (x * x).sum(), (tx * tx).sum()
    y.backward()
    ty.backward()
    with pytest.raises(RuntimeError) as ours:
        y.backward()
    with pytest.raises(RuntimeError) as theirs:
        ty.backward()
    assert str(ours.value) == str(theirs.value)
    assert "retain_graph=True" in str(ours.value)


def test_retain_graph_allows_a_second_backward_that_accumulates_like_torch():
    x, tx = leaf_pair([1.0, 2.0])
    y, ty = (x.exp() * x).sum(), (tx.exp() * tx).sum()
    y.backward(retain_graph=True)
    ty.backward(retain_graph=True)
    y.backward()
    ty.backward()
    close(x.grad, tx.grad)
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_graph_without_saved_tensors_can_be_walked_again_like_torch():
    x, tx = leaf_pair([1.0, 2.0])
    y, ty = (x + 2).sum(), (tx + 2).sum()
    for _ in range(2):
        y.backward()
        ty.backward()
    close(x.grad, tx.grad)


# ------------------------------------------------------------------ gradient= and inputs=


def test_gradient_for_non_scalar_outputs():
    x, tx = leaf_pair([[1.0, 2.0], [3.0, 4.0]])
    v = torch.tensor([[0.5, -1.0], [2.0, 0.25]], dtype=torch.float64)
    (x * x).backward(v)
    (tx * tx).backward(v)
    close(x.grad, tx.grad)
    (x * x).backward(mt.tensor(v))  # our Tensor, a NumPy array or a list work too
    (x * x).backward(v.numpy())
    (tx * tx).backward(v)
    (tx * tx).backward(v)
    close(x.grad, tx.grad)


def test_missing_gradient_for_a_non_scalar_output_is_an_error():
    x = mt.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"only for scalar outputs.*\(2, 3\)"):
        (x * 2).backward()


def test_wrongly_shaped_gradient_is_an_error():
    x = mt.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Mismatch in shape.*\(3, 2\).*\(2, 3\)"):
        (x * 2).backward(torch.ones(3, 2))


def test_backward_of_a_tensor_without_grad_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mt.ones(2).sum().backward()


def test_backward_with_empty_inputs_is_an_error_like_torch():
    x = mt.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="'inputs' argument to backward\\(\\) cannot be empty"):
        (x * 2).sum().backward(inputs=[])


def test_autograd_backward_takes_torchs_arguments():
    x, tx = leaf_pair([1.0, 2.0])
    y, ty = x.exp(), tx.exp()
    v = torch.tensor([0.5, 2.0], dtype=torch.float64)
    mt.autograd.backward(y, v, retain_graph=True)
    torch.autograd.backward(ty, v, retain_graph=True)
    mt.autograd.backward([y.sum(), (y * y).sum()])
    torch.autograd.backward([ty.sum(), (ty * ty).sum()])
    close(x.grad, tx.grad)


def test_backward_with_inputs_fills_only_those_like_torch():
    x, tx = leaf_pair([1.0, 2.0])
    w, tw = leaf_pair([3.0, -1.0])
    h, th = x * w, tx * tw
    h.retain_grad()
    th.retain_grad()
    (h * h).sum().backward(inputs=[w], retain_graph=True)
    (th * th).sum().backward(inputs=[tw], retain_graph=True)
    assert x.grad is None and tx.grad is None
    close(w.grad, tw.grad)
    (h * h).sum().backward(inputs=x)  # a single tensor works too
    (th * th).sum().backward(inputs=tx)
    close(x.grad, tx.grad)
    close(w.grad, tw.grad)
    h2, th2 = x * w, tx * tw
    (h2.exp()).sum().backward(inputs=[h2])  # a non-leaf input accumulates into its .grad
    (th2.exp()).sum().backward(inputs=[th2])
    close(h2.grad, th2.grad)
    close(x.grad, tx.grad)


# ------------------------------------------------------------------ autograd.grad


def test_autograd_grad_returns_gradients_and_touches_no_grad_attribute():
    x, tx = leaf_pair([0.5, 1.5])
    w, tw = leaf_pair([2.0, -1.0])
    out, tout = (x * w).exp(), (tx * tw).exp()
    v = torch.tensor([1.0, -2.0], dtype=torch.float64)
    ours = mt.autograd.grad(out, [x, w], grad_outputs=v, retain_graph=True)
    theirs = torch.autograd.grad(tout, [tx, tw], grad_outputs=v)
    for a, b in zip(ours, theirs):
        close(a, b)
    assert x.grad is None and w.grad is None
    assert isinstance(ours, tuple) and isinstance(ours[0], mt.Tensor)
    from_numpy = mt.autograd.grad(out, [x, w], grad_outputs=v.numpy())  # NumPy works too
    for a, b in zip(from_numpy, theirs):
        close(a, b)


def test_autograd_grad_with_several_outputs_one_built_on_another():
    x, tx = leaf_pair([1.0, 2.0])
    y, ty = x * 2, tx * 2
    z, tz = y * y, ty * ty
    ones = torch.ones(2, dtype=torch.float64)
    ours = mt.autograd.grad([z, y], [x], [ones, ones])
    theirs = torch.autograd.grad([tz, ty], [tx], [ones, ones])
    close(ours[0], theirs[0])


def test_autograd_grad_with_respect_to_a_non_leaf():
    x, tx = leaf_pair([1.0, 2.0])
    h, th = x.exp(), tx.exp()
    out, tout = (h * h).sum(), (th * th).sum()
    (ours_h, ours_x) = mt.autograd.grad(out, [h, x])
    (theirs_h, theirs_x) = torch.autograd.grad(tout, [th, tx])
    close(ours_h, theirs_h)
    close(ours_x, theirs_x)
    (only_h,) = mt.autograd.grad((h * h).sum(), [h])  # no leaf among the inputs
    (torch_only_h,) = torch.autograd.grad((th * th).sum(), [th])
    close(only_h, torch_only_h)


def test_autograd_grad_frees_the_graph_unless_retained():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    mt.autograd.grad(y, [x], retain_graph=True)
    mt.autograd.grad(y, [x])
    with pytest.raises(RuntimeError, match="second time"):
        mt.autograd.grad(y, [x])


def test_autograd_grad_allow_unused():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    unused = mt.tensor([3.0], requires_grad=True)
    y = (x * x).sum()
    with pytest.raises(RuntimeError, match="index 1 appears to not have been used"):
        mt.autograd.grad(y, [x, unused], retain_graph=True)
    grads = mt.autograd.grad(y, [x, unused], allow_unused=True)
    assert grads[1] is None
    assert grads[0].tolist() == [2.0, 4.0]


def test_autograd_grad_of_an_input_without_grad_is_an_error():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    constant = mt.tensor([1.0, 1.0])
    with pytest.raises(RuntimeError, match=r"index 1\) does not require grad"):
        mt.autograd.grad((x * constant).sum(), [x, constant])


def test_autograd_grad_needs_one_grad_output_per_output():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="one grad_output per output: got 1 .* 2 outputs"):
        mt.autograd.grad([x * 2, x * 3], [x], [torch.ones(2)])


# ------------------------------------------------------------------ higher order


def test_hessian_vector_product_like_torch():
    def loss(lib, x, w):
        return (lib.tanh(x @ w) ** 2).sum() + (w.exp() * w).sum()

    x = torch.randn(4, 3, dtype=torch.float64)
    w, tw = leaf_pair(torch.randn(3, 2, dtype=torch.float64))
    v = torch.randn(3, 2, dtype=torch.float64)
    (g,) = mt.autograd.grad(loss(mt, mt.tensor(x), w), [w], create_graph=True)
    (tg,) = torch.autograd.grad(loss(torch, x, tw), [tw], create_graph=True)
    close(g, tg)
    assert g.requires_grad and g.grad_fn is not None
    (hv,) = mt.autograd.grad((g * v).sum(), [w])
    (thv,) = torch.autograd.grad((tg * v).sum(), [tw])
    close(hv, thv)


def test_gradient_penalty_differentiated_with_respect_to_parameters_like_torch():
    """||d loss / d x||^2 as a loss of its own (WGAN-GP style), then backward into w."""
    x_data = torch.randn(5, 3, dtype=torch.float64)
    results = []
    w_data = torch.linspace(-1, 1, 6, dtype=torch.float64).reshape(3, 2)
    b_data = torch.tensor([0.1, -0.2], dtype=torch.float64)
    for lib in (mt, torch):
        x, w, b = (
            mt.tensor(t, requires_grad=True) if lib is mt else t.clone().requires_grad_(True)
            for t in (x_data, w_data, b_data)
        )
        out = lib.sigmoid(x @ w + b).sum()
        (grad_x,) = lib.autograd.grad(out, [x], create_graph=True)
        penalty = ((grad_x * grad_x).sum(1).sqrt() - 1) ** 2
        penalty.mean().backward()
        results.append((w.grad, b.grad, x.grad))
    for ours, theirs in zip(*results):
        close(ours, theirs)


def test_third_derivative_of_a_scalar_function_like_torch():
    x, tx = leaf_pair([0.3, -1.2, 2.0])
    y, ty = x.tanh() * x.exp(), tx.tanh() * tx.exp()
    ours, theirs = [y.sum()], [ty.sum()]
    for _ in range(3):
        (g,) = mt.autograd.grad(ours[-1], [x], create_graph=True)
        (tg,) = torch.autograd.grad(theirs[-1], [tx], create_graph=True)
        close(g, tg)
        ours.append(g.sum())
        theirs.append(tg.sum())


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
def test_backward_with_create_graph_builds_a_differentiable_grad():
    x, tx = leaf_pair([0.5, 1.5])
    (x**3).sum().backward(create_graph=True)
    (tx**3).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    close(x.grad, tx.grad)
    (second,) = mt.autograd.grad(x.grad.sum(), [x])
    (torch_second,) = torch.autograd.grad(tx.grad.sum(), [tx])
    close(second, torch_second)


# ------------------------------------------------------------------ accumulation and memory


def test_grad_accumulates_across_backward_calls_like_torch():
    x, tx = leaf_pair([1.0, -1.0, 2.0])
    for k in range(3):
        (x * x * (k + 1)).sum().backward()
        (tx * tx * (k + 1)).sum().backward()
        close(x.grad, tx.grad)
    x.grad = None
    (x * 4).sum().backward()
    assert x.grad.tolist() == [4.0, 4.0, 4.0]


@pytest.mark.parametrize("create_graph", [False, True])
def test_two_leaves_never_share_grad_memory(create_graph):
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    y = mt.tensor([3.0, 4.0], requires_grad=True)
    m = mt.tensor([[1.0, 2.0]], requires_grad=True)
    z = x + y + m.reshape(-1) + m.t().reshape(-1)  # every leaf gets the incoming gradient
    z.backward(torch.ones(2), create_graph=create_graph)
    assert x.grad.data.data_ptr() != y.grad.data.data_ptr()
    assert x.grad is not y.grad
    (x + y).sum().backward()  # accumulation into one .grad must not show in the other
    with mt.no_grad():
        x.grad.mul_(10)
    assert y.grad.tolist() == [2.0, 2.0]
    assert x.grad.tolist() == [20.0, 20.0]
    assert m.grad.tolist() == [[2.0, 2.0]]


def test_a_leaf_used_as_the_output_gets_a_copy_of_the_seed_gradient():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    seed = torch.tensor([5.0, 6.0])
    x.backward(seed)
    x.backward(seed)
    assert x.grad.tolist() == [10.0, 12.0]
    assert seed.tolist() == [5.0, 6.0]


# ------------------------------------------------------------------ in-place and versions


def test_modifying_a_saved_tensor_in_place_raises_the_version_error():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    constant = mt.tensor([3.0, 4.0])
    y = (x * constant).sum()
    constant += 1  # allowed: the constant needs no gradient
    with pytest.raises(RuntimeError, match=r"MulBackward.*modified in place.*version 0 became 1"):
        y.backward()


def test_modifying_a_saved_torch_constant_in_place_raises_the_version_error():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    constant = torch.tensor([3.0, 4.0])
    y = (x * constant).sum()
    constant.mul_(2)
    with pytest.raises(RuntimeError, match=r"MulBackward.*modified in place"):
        y.backward()


def test_modifying_a_saved_leaf_under_no_grad_raises_the_version_error():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp().sum()
    z = (x * x).sum()
    with mt.no_grad():
        x.add_(1.0)
    y.backward()  # exp saved its output, not x: unaffected
    with pytest.raises(RuntimeError, match="modified in place"):
        z.backward()


def test_modifying_a_saved_output_in_place_raises_the_version_error():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    total = y.sum()
    with mt.no_grad():
        y.mul_(2)
    with pytest.raises(RuntimeError, match="ExpBackward.*modified in place"):
        total.backward()


def test_modifying_an_index_tensor_in_place_raises_the_version_error_like_torch():
    x = mt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    index = torch.tensor([0])
    y = x[index]
    index[0] = 2
    with pytest.raises(RuntimeError, match="GetItemBackward.*modified in place"):
        y.sum().backward()


# ------------------------------------------------------------------ a user's own Function


class Cube(mt.Function):
    formula = "da = grad * 3 a^2"

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a * a * a

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * 3 * a * a


def test_a_user_defined_function_gets_gradients_of_every_order():
    x = torch.tensor([0.5, -1.5, 2.0], dtype=torch.float64)
    assert_matches_torch(Cube.apply, lambda a: a**3, x, double_backward=True)
    gradcheck(Cube.apply, [x])
    assert "CubeBackward" in repr(Cube.apply(mt.tensor(x, requires_grad=True)))


def test_a_backward_returning_the_wrong_number_of_gradients_is_an_error():
    class Broken(mt.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, grad):
            return grad

    x = mt.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="BrokenBackward returned 1 gradients for 2 inputs"):
        Broken.apply(x, x).sum().backward()


def test_complex_gradients_are_refused_in_one_line_and_complex_numbers_still_compute():
    # torch's complex gradients conjugate (g @ b^H for a @ b); ours are written for real
    # numbers, so a complex graph would give wrong gradients without a word: it is refused.
    torch_a = torch.randn(3, 4, dtype=torch.complex128)
    torch_b = torch.randn(4, 2, dtype=torch.complex128)
    refusals = [
        lambda: mt.tensor(torch_a, requires_grad=True),
        lambda: mt.tensor(torch_a).requires_grad_(),
        lambda: mt.randn(3, requires_grad=True) * 1j,  # a real leaf, a complex result
        lambda: mt.nn.Linear(2, 2).to(torch.complex64),
    ]
    for refused in refusals:
        with pytest.raises(RuntimeError) as caught:
            refused()
        message = str(caught.value)
        assert "gradients of real floating tensors only" in message and "complex" in message
        assert "\n" not in message
    assert torch.equal((mt.tensor(torch_a) @ mt.tensor(torch_b)).data, torch_a @ torch_b)
    leaf = mt.randn(3, requires_grad=True)
    with mt.no_grad():
        assert torch.equal((leaf * 1j).data, leaf.data * 1j)
