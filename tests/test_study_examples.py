"""The built-in examples and the `explain` command: what they print is what torch computes.

Each example is rebuilt in torch (the same weights, through state_dict, and the same data)
and the numbers the example explains are compared with torch's: the gradient of the
explained element, every parameter's .grad as delivered on the tape, and the parameter after
the explained optimizer step (torch.optim run for the same steps).
"""

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import minitorch_edu as mt
from minitorch_edu.study import examples
from minitorch_edu.study.cli import add_explain_command, main
from reference.nn import torch_twin


def torch_mlp(seed):
    model, x, target = examples.mlp_model(seed)
    twin = torch_twin(model)
    loss = torch.nn.functional.cross_entropy(twin(x.data), target.data)
    loss.backward()
    return twin, loss


@pytest.mark.parametrize(
    "seed, parameter, element",
    [(0, "0.weight", None), (1, "0.weight", (2, 3)), (2, "2.weight", (1, 0)), (3, "0.bias", (1,))],
)
def test_mlp_step_explains_torchs_gradient(seed, parameter, element):
    run = examples.mlp_step(seed, parameter, element)
    twin, loss = torch_mlp(seed)
    torch_grads = {name: p.grad for name, p in twin.named_parameters()}
    index = element or (0, 0)
    assert run.explanation.value == pytest.approx(torch_grads[parameter][index].item(), rel=1e-12)
    assert run.loss.item() == pytest.approx(loss.item(), rel=1e-14)
    delivered = {s.output_names[0]: s.outputs[0].values for s in run.tape.deliver_steps}
    assert set(delivered) == {f"{name}.grad" for name in torch_grads}
    for name, grad in torch_grads.items():
        torch.testing.assert_close(delivered[f"{name}.grad"], grad, rtol=1e-12, atol=1e-14)
    text = run.text()
    for heading in ("One MLP training step", "Forward pass", "Backward pass", "The chain rule"):
        assert heading in text
    assert f"d(loss)/d({parameter}{list(index)}) = {run.explanation.value:.8g}" in text
    assert "---- backward pass 1 begins" in text and "AccumulateGrad" in text


@pytest.mark.parametrize("pixel, windows", [((1, 1), 4), ((0, 0), 1), ((3, 2), 2)])
def test_conv_step_sums_the_windows_that_read_the_pixel(pixel, windows):
    run = examples.conv_step(seed=4, pixel=pixel)
    conv = run.names
    weight = next(t for t, n in conv.items() if n == "weight")
    bias = next(t for t, n in conv.items() if n == "bias")
    image = next(t for t, n in conv.items() if n == "image")
    torch_image = image.data.clone().requires_grad_()
    out = torch.nn.functional.conv2d(torch_image, weight.data, bias.data).tanh().mean()
    (grad,) = torch.autograd.grad(out, torch_image)
    expected = grad[(0, 0, *pixel)].item()
    assert run.explanation.value == pytest.approx(expected, rel=1e-12)
    (use,) = run.explanation.element.uses
    assert use.op == "Convolution" and len(use.terms) == 2 * windows  # two filters
    assert sum(t.product for t in use.terms) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("name", examples.OPTIMIZERS)
def test_optimizer_step_is_torchs_step(name):
    run = examples.optimizer_step(name, seed=5, step=3, parameter="weight", element=(1, 2))
    assert run.explanation.matches()
    # torch.optim on a torch twin, the same three steps
    mt.manual_seed(5)
    layer = torch_twin(mt.nn.Linear(3, 2).double())
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(4, 3, generator=generator, dtype=torch.float64)
    y = torch.randn(4, 2, generator=generator, dtype=torch.float64)
    torch_class = getattr(torch.optim, run.explanation.optimizer)
    optimizer = torch_class(layer.parameters(), **examples.OPTIMIZER_DEFAULTS[name])
    for _ in range(3):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(layer(x), y).backward()
        optimizer.step()
    expected = layer.weight[1, 2].item()
    assert run.explanation.new_value == pytest.approx(expected, rel=1e-12)
    assert run.explanation.step in (None, 3)
    assert "check against the real optimizer.step()" in run.text()


def test_examples_refuse_bad_choices():
    with pytest.raises(ValueError, match="no parameter '1.weight'; the MLP has 0.weight"):
        examples.mlp_step(parameter="1.weight")
    with pytest.raises(IndexError, match=r"element \[3, 0\] is not in parameter 0.weight"):
        examples.mlp_step(element=(3, 0))
    with pytest.raises(IndexError, match="not in the 4x4 image"):
        examples.conv_step(pixel=(1,))
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        examples.optimizer_step("lbfgs")
    with pytest.raises(ValueError, match="step must be 1 or more"):
        examples.optimizer_step("sgd", step=0)


def test_mlp_graph_draws_every_parameter_and_the_loss():
    dot = examples.mlp_graph().source
    for label in ("0.weight\\n[3, 4]", "2.bias\\n[2]", "Linear  (linear1)", "loss\\n[]"):
        assert label in dot


# ---------------------------------------------------------------------- the command
def explain_parser():
    parser = argparse.ArgumentParser(prog="minitorch-edu")
    add_explain_command(parser.add_subparsers(dest="command", required=True))
    return parser


def run_command(argv, capsys):
    arguments = explain_parser().parse_args(argv)
    status = arguments.handler(arguments)
    return status, capsys.readouterr()


def test_explain_mlp_prints_the_traced_step(capsys):
    status, out = run_command(
        ["explain", "mlp", "--seed", "1", "--element", "2,3", "--no-values"], capsys
    )
    assert status == 0
    twin, _ = torch_mlp(1)
    expected = twin.get_parameter("0.weight").grad[2, 3].item()
    assert f"d(loss)/d(0.weight[2, 3]) = {expected:.8g}" in out.out
    assert "Forward pass" in out.out and "LinearBackward" in out.out
    assert "x        = [[" not in out.out  # --no-values: tables without numbers


def test_explain_conv_and_optimizer(capsys):
    status, out = run_command(["explain", "conv", "--pixel", "2,1"], capsys)
    assert status == 0 and "d(loss)/d(image[0, 0, 2, 1])" in out.out
    status, out = run_command(
        ["explain", "optimizer", "--name", "sgd", "--momentum", "0.5", "--weight-decay", "0.1"],
        capsys,
    )
    assert status == 0
    assert "SGD(lr=0.1, momentum=0.5, weight_decay=0.1)" in out.out
    assert "b_t ← μ b_{t-1} + (1 - τ) g_t" in out.out and "DIFFERS" not in out.out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["mlp", "--element", "3,0"], r"element \[3, 0\] is not in parameter 0.weight"),
        (["mlp", "--element", "1,x"], "whole numbers separated by commas"),
        (["conv", "--pixel=-1,0"], "indices must be 0 or more"),
        (["optimizer", "--name", "adam", "--momentum", "0.5"], "adam has no momentum"),
        (["optimizer", "--lr", "-1"], "--lr: must be a positive number"),
        (["optimizer", "--step", "0"], "--step: must be 1 or more"),
        (["graph", "--output", "/no/such/dir/g"], "directory /no/such/dir does not exist"),
        (["mlp", "--seed", "-2"], "--seed: must be a non-negative integer"),
    ],
)
def test_bad_options_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        run_command(["explain", *argv], capsys)
    assert stop.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_explain_graph_writes_dot_and_a_picture_or_says_why_not(tmp_path, capsys, monkeypatch):
    status, out = run_command(["explain", "graph", "--output", str(tmp_path / "g.png")], capsys)
    assert status == 0
    assert (tmp_path / "g.dot").read_text().startswith("digraph minitorch_edu {")
    if "wrote" in out.out and (tmp_path / "g.png").exists():
        assert (tmp_path / "g.png").read_bytes().startswith(b"\x89PNG")
    monkeypatch.setattr("minitorch_edu.study.graph.shutil.which", lambda name: None)
    status, out = run_command(
        ["explain", "graph", "--output", str(tmp_path / "h"), "--format", "svg"], capsys
    )
    assert status == 0 and (tmp_path / "h.dot").exists() and not (tmp_path / "h.svg").exists()
    assert "no SVG drawn: Graphviz's `dot` is not installed" in out.out


def test_the_module_runs_as_a_command():
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "minitorch_edu.study.cli",
            "explain",
            "optimizer",
            "--name",
            "adagrad",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert finished.returncode == 0, finished.stderr
    assert "Adagrad step for weight[0, 0]" in finished.stdout
    assert main(["explain", "optimizer", "--name", "adam", "--step", "1"]) == 0
