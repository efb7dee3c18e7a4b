"""Step-through tracing: the tape records what really happened, and recording changes nothing.

The oracle is torch: the same composition is run in torch with every intermediate kept
(retain_grad), and each recorded forward output and each recorded backward gradient is
compared with the corresponding torch tensor.
"""

import dataclasses
import json
import re

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minitorch_edu as mt
from minitorch_edu.autograd import function
from minitorch_edu.autograd.engine import sum_to_shape
from minitorch_edu.study import Step, Tape, trace
from minitorch_edu.testing import strategies as mts


def classifier(x, W, b, target, keep):
    """Cross-entropy of a linear layer with tanh, written once for torch and for mt.

    `keep` sees every intermediate in the order the ops run (one op each).
    """
    weight_t = keep(W.T)
    product = keep(x @ weight_t)
    logits = keep(product + b)
    hidden = keep(logits.tanh())
    normaliser = keep(hidden.logsumexp(1))
    picked = keep(hidden.gather(1, target[:, None]))
    picked = keep(picked.squeeze(1))
    losses = keep(normaliser - picked)
    return keep(losses.mean())


@st.composite
def classifier_inputs(draw, device="cpu"):
    batch, features, classes = (draw(st.integers(1, 4)) for _ in range(3))
    x = draw(mts.tensors(shape=(batch, features)))
    W = draw(mts.tensors(shape=(classes, features)))
    b = draw(mts.tensors(shape=(classes,)))
    target = torch.tensor(
        draw(st.lists(st.integers(0, classes - 1), min_size=batch, max_size=batch))
    )
    return [t.to(device) for t in (x, W, b, target)]


def run_torch(x, W, b, target):
    leaves = [W.clone().requires_grad_(), b.clone().requires_grad_()]
    kept = []

    def keep(t):
        t.retain_grad()
        kept.append(t)
        return t

    loss = classifier(x, *leaves, target, keep)
    loss.backward()
    return kept, leaves


def run_mt(x, W, b, target, **trace_options):
    leaves = [mt.tensor(W.clone(), requires_grad=True), mt.tensor(b.clone(), requires_grad=True)]
    kept = []

    def keep(t):
        kept.append(t)
        return t

    with trace(names={leaves[0]: "W", leaves[1]: "b"}, **trace_options) as tape:
        loss = classifier(mt.tensor(x), *leaves, target, keep)
        loss.backward()
    return tape, kept, leaves


@given(data=st.data())
def test_recorded_numbers_are_the_real_intermediates(data, device):
    x, W, b, target = data.draw(classifier_inputs(device=device))
    torch_kept, torch_leaves = run_torch(x, W, b, target)
    tape, kept, _ = run_mt(x, W, b, target)

    forward = tape.forward_steps
    assert len(forward) == len(torch_kept)
    gradient_of = {}  # label of a forward output -> torch's gradient of it
    for step, expected in zip(forward, torch_kept):
        assert step.outputs[0].values.device.type == "cpu"  # copies live on the CPU
        torch.testing.assert_close(step.outputs[0].values, expected.detach().cpu())
        assert step.outputs[0].device == str(expected.device)
        gradient_of[step.output_names[0]] = expected.grad.cpu()

    # Every backward step received the gradient torch computed for that intermediate.
    backward = tape.backward_steps
    assert len(backward) == len(forward)
    for step in backward:
        label = step.input_names[0].removeprefix("d")
        torch.testing.assert_close(step.inputs[0].values, gradient_of[label])

    # The gradients sent into the leaves, summed back to their shapes, are torch's .grad;
    # so are the gradients delivered to them, and .grad after the last delivery.
    for leaf, name in zip(torch_leaves, ["W", "b"]):
        total = torch.zeros(leaf.shape, dtype=leaf.dtype)
        for step in backward:
            for output_name, value in zip(step.output_names, step.outputs):
                if output_name == "d" + name:
                    total += sum_to_shape(value.values, leaf.shape)
        torch.testing.assert_close(total, leaf.grad.cpu())
        deliveries = [s for s in tape.deliver_steps if s.output_names == [f"{name}.grad"]]
        delivered = sum(s.inputs[-1].values for s in deliveries)
        torch.testing.assert_close(delivered, leaf.grad.cpu())
        torch.testing.assert_close(deliveries[-1].outputs[0].values, leaf.grad.cpu())


@given(data=st.data())
def test_tracing_changes_no_result_and_no_gradient(data):
    x, W, b, target = data.draw(classifier_inputs())
    plain = [mt.tensor(W.clone(), requires_grad=True), mt.tensor(b.clone(), requires_grad=True)]
    loss = classifier(mt.tensor(x), *plain, target, lambda t: t)
    loss.backward()
    tape, kept, traced = run_mt(x, W, b, target)
    assert torch.equal(kept[-1].data, loss.data)
    for ours, reference in zip(traced, plain):
        assert torch.equal(ours.grad.data, reference.grad.data)
    assert function.tracer is None


def test_steps_carry_op_formula_direction_and_shapes():
    x = mt.randn(4, 5, dtype=mt.float64)
    W = mt.randn(3, 5, dtype=mt.float64, requires_grad=True)
    with trace(names={x: "x", W: "W"}) as tape:
        y = (x @ W.T).relu().sum()
        y.backward()
    assert len(tape) == 9
    assert [s.direction for s in tape] == ["forward"] * 4 + ["backward"] * 4 + ["deliver"]
    assert [s.op for s in tape] == [
        *("Permute", "MatMul", "Relu", "Sum"),
        *("SumBackward", "ReluBackward", "MatMulBackward", "PermuteBackward"),
        "AccumulateGrad",
    ]
    matmul = tape[1]
    assert dataclasses.is_dataclass(matmul) and isinstance(matmul, Step)
    assert matmul.formula == mt.ops.matmul.MatMul.formula
    assert matmul.input_names == ["x", "permute1"] and matmul.output_names == ["matmul1"]
    assert matmul.input_shapes == [(4, 5), (5, 3)] and matmul.output_shapes == [(4, 3)]
    assert tape[0].options == {"dims": "(1, 0)"}
    matmul_back = tape[6]
    assert matmul_back.input_names == ["dmatmul1"] and matmul_back.output_names == [
        "-",
        "dpermute1",
    ]
    assert matmul_back.outputs[0] is None  # x needs no gradient
    assert tape[-2].output_names == ["dW"] and tape[-2].output_shapes == [(3, 5)]
    assert tape[-1].input_names == ["dW"] and tape[-1].output_names == ["W.grad"]
    assert [s.index for s in tape] == list(range(9))
    last_two = tape[-2:]
    assert isinstance(last_two, Tape) and last_two.steps == tape.steps[-2:]
    heading = "Tape: 2 steps (0 forward, 1 backward, 1 delivered) in 1 backward pass"
    assert str(last_two).startswith(heading)
    assert str(matmul).startswith("1  forward  MatMul  x[4, 5], permute1[5, 3] -> matmul1[4, 3]")


def test_a_broadcast_gradient_says_what_the_engine_sums_it_to():
    a = mt.randn(4, 3, requires_grad=True)
    b = mt.randn(3, requires_grad=True)
    with trace(names={a: "a", b: "b"}) as tape:
        (a + b).sum().backward()
    add_back = tape.backward_steps[-1]
    assert add_back.output_shapes == [(4, 3), (4, 3)] and add_back.summed_to == [None, (3,)]
    assert "db[4, 3]->[3]" in add_back.signature()
    assert "summed to [3] by the engine" in tape.table()


def test_values_are_copies_untouched_by_later_in_place_changes():
    W = mt.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    with trace() as tape:
        (W * W).sum().backward()
        (W * W).sum().backward()  # accumulates into W.grad in place
    first_input = tape[0].inputs[0].values.clone()
    first_grads = [o.values.clone() for o in tape.backward_steps[1].outputs]
    with mt.no_grad():
        W.add_(100.0)
    W.grad.data.mul_(-7)
    assert torch.equal(tape[0].inputs[0].values, first_input)
    assert torch.equal(first_input, torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert all(
        torch.equal(o.values, g) for o, g in zip(tape.backward_steps[1].outputs, first_grads)
    )


def test_table_prints_small_tensors_whole_and_big_ones_summarised():
    small = mt.tensor([1.5, -2.25], requires_grad=True)
    big = mt.tensor(torch.arange(40.0).reshape(8, 5), requires_grad=True)
    with trace(names={small: "small", big: "big"}, print_limit=4) as tape:
        (small * 2).sum()
        big.exp().sum()
    text = tape.table()
    assert "small = [1.5, -2.25]" in text
    data = big.data.double()
    summary = (
        f"big *= float32\\[8, 5\\] min {data.min().item():.4g} max {data.max().item():.4g} "
        f"mean {data.mean().item():.4g} norm {data.norm().item():.4g}\n"
    )
    assert re.search(summary, text)
    assert str(tape) == text and "formula" in text.splitlines()[1]
    assert "Mul" in text and mt.ops.arithmetic.Mul.formula in text
    assert tape.table(values=False).count("\n") == len(tape) + 1  # heading, header, rows
    assert repr(tape) == "<Tape: 4 steps (4 forward, 0 backward)>"


def test_store_limit_keeps_summaries_of_big_tensors_only():
    big = torch.randn(50, 20, dtype=torch.float64)
    x = mt.tensor(big, requires_grad=True)
    with trace(store_limit=100) as tape:
        y = x.tanh().sum()
    kept = tape[0].inputs[0]
    assert not kept.stored and kept.values is None
    assert kept.shape == (50, 20) and kept.dtype == "float64"
    assert kept.min == big.min().item() and kept.max == big.max().item()
    assert kept.mean == pytest.approx(big.mean().item(), rel=1e-12, abs=1e-15)
    assert kept.norm == pytest.approx(big.norm().item(), rel=1e-12)
    assert tape[-1].outputs[0].stored  # the scalar sum is small enough to keep
    assert y.data.item() == pytest.approx(tape[-1].outputs[0].values.item())


def test_max_bytes_and_max_steps_bound_what_is_kept():
    x = mt.randn(100, dtype=mt.float64, requires_grad=True)  # 800 bytes
    with trace(max_bytes=2000) as tape:
        x.exp().exp().exp()
    stored = [v.stored for s in tape for v in (*s.inputs, *s.outputs)]
    # an op's output, used next as an input, is kept once: the same Snapshot serves both
    assert stored == [True, True, True, False, False, False]
    assert tape[1].inputs[0] is tape[0].outputs[0]
    assert tape.stored_bytes <= 2000

    with trace(max_steps=3) as tape:
        for _ in range(5):
            x = x * 2
    assert len(tape) == 3 and tape.dropped_steps == 2
    assert "2 more not recorded (max_steps=3)" in tape.table()


def test_history_of_a_tensor():
    x = mt.randn(3, 4, dtype=mt.float64)
    W = mt.randn(2, 4, dtype=mt.float64, requires_grad=True)
    b = mt.randn(2, dtype=mt.float64, requires_grad=True)
    with trace(names={W: "W", b: "b"}) as tape:
        hidden = x @ W.T + b
        loss = (hidden * hidden).mean()
        loss.backward()
    into_b = tape.history(b)
    assert isinstance(into_b, Tape)
    assert [s.op for s in into_b] == ["AddBackward", "AccumulateGrad"]
    assert into_b[0].output_names[1] == "db" and into_b[1].output_names == ["b.grad"]
    of_hidden = tape.history(hidden)
    assert [s.op for s in of_hidden] == ["Add", "MulBackward"]  # made by Add, used twice by Mul
    lineage = tape.history(loss, ancestors=True)
    assert [s.op for s in lineage] == ["Permute", "MatMul", "Add", "Mul", "Mean"]
    assert "W" in str(lineage)
    assert len(tape.history(mt.randn(2))) == 0
    with pytest.raises(TypeError, match="expected a Tensor"):
        tape.history("W")


def test_json_export_round_trips_numbers_and_is_strict():
    x = mt.tensor([1.0, float("inf"), -1.0], requires_grad=True)
    with trace(names={x: "x"}) as tape:
        y = (x * 0.0).sum()  # inf * 0 = nan
        y.backward()
    data = json.loads(tape.to_json())  # strict JSON: nan and inf as strings
    assert data["format"] == "minitorch_edu.study.tape" and len(data["steps"]) == len(tape)
    assert data["version"] == 2
    assert data["passes"] == [{"number": 1, "outputs": ["sum1"], "first_step": 2, "end_step": 5}]
    assert data["steps"][4]["direction"] == "deliver" and data["steps"][4]["backward_pass"] == 1
    mul = data["steps"][0]
    assert mul["op"] == "Mul" and mul["direction"] == "forward"
    assert mul["inputs"][0] == {
        "name": "x",
        "shape": [3],
        "dtype": "float32",
        "device": "cpu",
        "summary": {"min": -1.0, "max": "inf", "mean": "inf", "norm": "inf"},
        "values": [1.0, "inf", -1.0],
    }
    assert mul["inputs"][1] == {"name": "0.0", "value": 0.0}
    assert mul["outputs"][0]["values"][1] == "nan"
    summaries = json.loads(tape.to_json(values=False))
    assert "values" not in summaries["steps"][0]["inputs"][0]


def test_save_json_writes_a_file(tmp_path):
    x = mt.randn(2, 2, requires_grad=True)
    with trace() as tape:
        x.sum().backward()
    path = tape.save_json(tmp_path / "tape.json")
    assert json.loads(path.read_text())["steps"][1]["op"] == "SumBackward"


def test_nested_traces_both_record_and_restore_the_tracer():
    x = mt.randn(3, requires_grad=True)
    assert function.tracer is None
    with trace() as outer:
        a = x.exp()
        with trace() as inner:
            assert function.tracer is inner
            b = a.tanh()
        assert function.tracer is outer
        b.sum().backward()
    assert function.tracer is None
    assert [s.op for s in inner] == ["Tanh"]
    assert [s.op for s in outer] == [
        "Exp",
        "Tanh",
        "Sum",
        "SumBackward",
        "TanhBackward",
        "ExpBackward",
        "AccumulateGrad",
    ]


def test_an_exception_inside_restores_the_tracer():
    x = mt.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="MatMul"):
        with trace() as tape:
            x @ mt.randn(4, 2)
    assert function.tracer is None and not tape.recording
    with pytest.raises(RuntimeError, match="already recording"):
        with tape:
            with tape:
                pass
    assert function.tracer is None


def test_leaving_nested_traces_out_of_order_unlinks_correctly():
    outer, inner = trace(), trace()
    outer.__enter__()
    inner.__enter__()
    outer.__exit__(None, None, None)  # the outer one stops first
    x = mt.randn(2, requires_grad=True)
    x.exp()
    assert [s.op for s in inner] == ["Exp"] and len(outer) == 0
    inner.__exit__(None, None, None)
    assert function.tracer is None


def test_create_graph_backward_is_traced_too():
    x = mt.tensor([0.5, -1.0], dtype=mt.float64, requires_grad=True)
    with trace() as tape:
        y = (x * x * x).sum()
        (grad,) = mt.autograd.grad(y, x, create_graph=True)
        grad.sum().backward()
    torch.testing.assert_close(x.grad.data, 6 * x.data)
    # With create_graph the backward formulas run as recorded ops: they are on the tape as
    # forward steps, between the first backward step and the second pass.
    first_backward = next(s.index for s in tape if s.direction == "backward")
    during = [s for s in tape[first_backward:] if s.direction == "forward" and s.op == "Mul"]
    assert during and all(s.recorded for s in during)
    sum_back = tape[first_backward]
    assert sum_back.op == "SumBackward" and sum_back.outputs[0].values.tolist() == [1.0, 1.0]


def test_names_from_a_module_like_object_and_bad_names():
    class Model:
        def __init__(self):
            self.weight = mt.randn(2, 2, requires_grad=True)

        def named_parameters(self):
            yield "layer.weight", self.weight

    model = Model()
    with trace(names=model) as tape:
        model.weight.sum()
    assert tape[0].input_names == ["layer.weight"]
    with pytest.raises(TypeError, match="named_parameters"):
        trace(names=[model.weight])
    with pytest.raises(TypeError, match="Tensors named by strings"):
        trace(names={model.weight: 3})
    assert trace(names={"w": model.weight}).labels.label(model.weight) == "w"


def test_no_tracer_outside_a_trace():
    assert function.tracer is None
    x = mt.randn(2, requires_grad=True)
    x.exp().sum().backward()
    assert function.tracer is None


# ---------------------------------------------------------------------- passes and deliveries
def test_backward_passes_are_marked_and_grad_formation_is_recorded():
    W = mt.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=mt.float64, requires_grad=True)
    x = mt.tensor([[0.2, 0.4]], dtype=mt.float64)
    with trace(names={W: "W"}) as tape:
        loss = (x @ W).tanh().sum()
        loss.backward(retain_graph=True)
        loss.backward()
    torch_W = W.data.clone().requires_grad_()
    (torch_grad,) = torch.autograd.grad((x.data @ torch_W).tanh().sum(), torch_W)

    assert [(p.number, p.outputs) for p in tape.passes] == [(1, ["sum1"]), (2, ["sum1"])]
    first, second = tape.passes
    assert first.end_step == second.first_step and second.end_step == len(tape)
    assert [s.backward_pass for s in tape] == [None] * first.first_step + [1] * (
        first.end_step - first.first_step
    ) + [2] * (second.end_step - second.first_step)
    text = tape.table()
    assert "---- backward pass 1 begins (from sum1) ----" in text
    assert text.count("---- backward pass 2 ends ----") == 1
    assert text.index("pass 1 ends") < text.index("pass 2 begins")

    # How W.grad was formed: dW, then W.grad + dW; each number torch's.
    formed = [s for s in tape.history(W) if s.direction == "deliver"]
    assert [s.formula for s in formed] == [
        "W.grad ← dW  (its first gradient)",
        "W.grad ← W.grad + dW",
    ]
    assert formed[0].input_names == ["dW"] and formed[1].input_names == ["W.grad", "dW"]
    torch.testing.assert_close(formed[0].inputs[0].values, torch_grad)
    torch.testing.assert_close(formed[0].outputs[0].values, torch_grad)
    torch.testing.assert_close(formed[1].inputs[0].values, torch_grad)  # .grad before
    torch.testing.assert_close(formed[1].outputs[0].values, 2 * torch_grad)
    assert torch.equal(formed[1].outputs[0].values, W.grad.data)
    assert tape.backward_pass(1).steps == tape.steps[first.first_step : first.end_step]
    assert tape.backward_pass().passes == [second]


def test_autograd_grad_deliveries_are_captured_and_leave_grad_alone():
    W = mt.tensor([0.5, -1.5], dtype=mt.float64, requires_grad=True)
    with trace(names={W: "W"}) as tape:
        (result,) = mt.autograd.grad((W * W).sum(), W)  # W reaches Mul twice
    assert W.grad is None
    captures = tape.deliver_steps
    assert [s.op for s in captures] == ["CaptureGrad", "CaptureGrad"]
    assert captures[0].formula.startswith("result for W ← dW")
    assert captures[1].formula == "result for W ← result for W + dW"
    for step in captures:
        torch.testing.assert_close(step.inputs[0].values, W.data)  # d(W·W)/dW from one use
    assert torch.equal(captures[-1].outputs[0].values, result.data)
    torch.testing.assert_close(result.data, 2 * W.data)


def test_a_leaf_hook_changes_what_is_delivered():
    W = mt.tensor([1.0, 2.0], dtype=mt.float64, requires_grad=True)
    W.register_hook(lambda grad: grad * 10)
    with trace(names={W: "W"}) as tape:
        (W * 3).sum().backward()
    (delivery,) = tape.deliver_steps
    assert delivery.inputs[0].values.tolist() == [30.0, 30.0]
    assert W.grad.data.tolist() == [30.0, 30.0]


def test_create_graph_deliveries_and_the_second_pass():
    x = mt.tensor([0.5, -1.0], dtype=mt.float64, requires_grad=True)
    with trace(names={x: "x"}) as tape:
        (x**3).sum().backward(create_graph=True)
        first_grad = x.grad.data.clone()
        x.grad.sum().backward()
    torch.testing.assert_close(first_grad, 3 * x.data**2)
    deliveries = tape.deliver_steps
    assert [s.backward_pass for s in deliveries] == [1, 2]
    assert deliveries[1].formula == "x.grad ← x.grad + dx"
    torch.testing.assert_close(deliveries[1].inputs[-1].values, 6 * x.data)
    torch.testing.assert_close(deliveries[1].outputs[0].values, 3 * x.data**2 + 6 * x.data)
    # the backward formulas of pass 1 ran as recorded ops: forward steps inside the pass
    inside = [s for s in tape if s.backward_pass == 1 and s.direction == "forward"]
    assert any(s.recorded for s in inside)


def test_a_failing_backward_still_ends_its_pass():
    W = mt.tensor([1.0], requires_grad=True)

    def broken(grad):
        raise ValueError("hook failed")

    W.register_hook(broken)
    with trace() as tape:
        with pytest.raises(ValueError, match="hook failed"):
            (W * 2).sum().backward()
    assert len(tape.passes) == 1 and tape.passes[0].end_step == len(tape)
    assert function.tracer is None
    with pytest.raises(ValueError, match="no backward pass"):
        trace().backward_pass()
