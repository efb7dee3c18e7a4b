"""The explorer: `mt.study.explore`, its page, and `minitorch-edu explore`.

One LeNet page is written per test session by the command itself (`explore --model cnn`) and
held against the torch twin (reference/) stepped on the same batches from the same weights:
first from Python, reading the JSON the page embeds, then in a real browser (headless
Chromium driven by Playwright), reading what the page shows. The browser tests skip, saying
why, where Playwright or a Chromium cannot be had.
"""

from __future__ import annotations

import json
import math
import re

import pytest
import torch

import minitorch_edu as mt
from minitorch_edu import cli, nn
from minitorch_edu.study import exploration
from minitorch_edu.study.exploration import ExploreError, decode_tensor, digits_setup, read_trace
from reference.models import torch_lenet
from reference.optim import torch_optimizer_like

STEPS = 2
BATCH = 8
SEED = 0
# LeNet's activations as the page names them (the op's result) and the twin's modules
ACTIVATIONS = {
    "convolution1": "conv1",
    "relu1": "relu1",
    "maxpool2d1": "pool1",
    "convolution2": "conv2",
    "relu2": "relu2",
    "maxpool2d2": "pool2",
    "reshape1": "flatten",
    "linear1": "fc1",
    "relu3": "relu3",
    "linear2": "fc2",
    "relu4": "relu4",
    "linear3": "fc3",
}
# an activation element explained on request (not among the largest: checked below)
NAMED = ("relu3", (2, 17))


# ---------------------------------------------------------------------- the LeNet page
class TwinStep:
    """What the torch twin computed in one training step: every module's output, and its
    gradient (retain_grad), as well as the parameters'."""

    def __init__(self, model, optimizer, images, labels):
        outputs = {}

        def keep(module, inputs, output, name):
            output.retain_grad()
            outputs[name] = output

        hooks = [
            model.get_submodule(name).register_forward_hook(
                lambda module, inputs, output, name=name: keep(module, inputs, output, name)
            )
            for name in ACTIVATIONS.values()
        ]
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        for hook in hooks:
            hook.remove()
        self.loss = loss.item()
        self.outputs = {name: value.detach().clone() for name, value in outputs.items()}
        self.output_grads = {name: value.grad.clone() for name, value in outputs.items()}
        self.grads = {name: p.grad.clone() for name, p in model.named_parameters()}
        optimizer.step()
        self.after = {name: p.detach().clone() for name, p in model.named_parameters()}
        self.state = {
            name: {key: value.clone() for key, value in optimizer.state[p].items()}
            for name, p in model.named_parameters()
        }


@pytest.fixture(scope="session")
def lenet(tmp_path_factory):
    """The page `minitorch-edu explore --model cnn` writes, its recording, and the twin's run."""
    path = tmp_path_factory.mktemp("explorer") / "lenet.html"
    arguments = ["explore", "--model", "cnn", "--optimizer", "adam", "--steps", str(STEPS)]
    arguments += ["--batch", str(BATCH), "--seed", str(SEED), "--output", str(path)]
    arguments += ["--element", "fc1.weight[3,5]", "--element", f"{NAMED[0]}{list(NAMED[1])}"]
    assert cli.main(arguments) == 0
    setup = digits_setup("cnn", "adam", batch=BATCH, steps=STEPS, seed=SEED)
    twin = torch_lenet(1, 8, 10)
    twin.load_state_dict(setup.model.state_dict())
    optimizer = torch_optimizer_like(setup.optimizer, list(twin.parameters()))
    steps = [TwinStep(twin, optimizer, x, y) for x, y in setup.batches]
    return path, read_trace(path), steps


def close(ours, theirs, scale=None):
    """float32 arithmetic in two libraries: equal to a few units in the last place of the
    largest number involved."""
    ours, theirs = torch.as_tensor(ours, dtype=torch.float64), theirs.double()
    scale = theirs.abs().max().item() if scale is None else scale
    return torch.allclose(ours, theirs, rtol=0, atol=1e-5 * max(scale, 1e-3))


def training_step(trace, number):
    return trace["training_steps"][number - 1]


def update_of(step, name):
    return next(u for u in step["updates"] if u["parameter"] == name)


def test_the_page_records_what_torch_computes(lenet):
    """Forward outputs, the loss, every gradient, every updated parameter and Adam's state,
    for every recorded step, against torch.nn and torch.optim on the same batches."""
    _, trace, twin = lenet
    outputs = {"conv1": "convolution1", "conv2": "convolution2", "fc1": "linear1", "fc3": "linear3"}
    for number, theirs in enumerate(twin, start=1):
        step = training_step(trace, number)
        assert math.isclose(step["loss"], theirs.loss, rel_tol=1e-5)
        for module, node in outputs.items():
            ours = decode_tensor(trace, step["values"][node]["value"])
            assert close(ours, theirs.outputs[module]), (number, module)
        for name, grad in theirs.grads.items():
            update = update_of(step, name)
            assert close(decode_tensor(trace, update["grad"]), grad), (number, name)
            assert close(decode_tensor(trace, step["values"][name]["grad"]), grad)
            assert close(decode_tensor(trace, update["after"]), theirs.after[name]), name
            for key in ("exp_avg", "exp_avg_sq"):
                ours = decode_tensor(trace, update["state_after"][key]["tensor"])
                assert close(ours, theirs.state[name][key]), (number, name, key)
            assert update["state_after"]["step"]["value"] == number
            assert update["matches"], (number, name)


def test_the_timeline_has_every_phase_in_order(lenet):
    _, trace, _ = lenet
    timeline = trace["timeline"]
    assert [entry["index"] for entry in timeline] == list(range(len(timeline)))
    for step in trace["training_steps"]:
        phases = [entry["phase"] for entry in timeline[step["first"] : step["end"]]]
        # forward ops, then the loss, then backward with deliveries, then the updates
        order = {"forward": 0, "loss": 1, "backward": 2, "deliver": 2, "update": 3}
        assert [order[p] for p in phases] == sorted(order[p] for p in phases)
        assert phases.count("update") == phases.count("deliver") == 10
        assert phases.count("forward") == 12 and phases.count("loss") == 2
        modules = {e["module"] for e in timeline[step["first"] : step["end"]]}
        assert {"conv1", "pool2", "fc3", "loss"} <= modules
    graph = trace["graphs"][trace["training_steps"][0]["graph"]]
    assert trace["training_steps"][1]["graph"] == trace["training_steps"][0]["graph"]
    ops = {node["id"]: node for node in graph["nodes"] if node["kind"] == "op"}
    assert ops["convolution1"]["module"] == "conv1" and ops["convolution1"]["formula"]
    parameters = {n["id"] for n in graph["nodes"] if n["kind"] == "parameter"}
    assert parameters == {p["name"] for p in trace["parameters"]}
    assert any(e["from"] == "conv1.weight" and e["shape"] == [6, 1, 5, 5] for e in graph["edges"])


def test_every_gradient_is_split_by_sample_and_chosen_elements_term_by_term(lenet):
    """Every element's gradient, split by sample, adds up to torch's gradient; the chosen
    elements (the largest gradients, and fc1.weight[3, 5] asked for with --element) are
    explained term by term, and every level of their grouping adds up to torch's gradient."""
    _, trace, twin = lenet
    for number, theirs in enumerate(twin, start=1):
        gradients = training_step(trace, number)["gradients"]
        assert [3, 5] in [e["index"] for e in gradients["fc1.weight"]["explained"]]
        for name, grad in theirs.grads.items():
            (use,) = gradients[name]["by_sample"]
            samples = decode_tensor(trace, use["samples"])
            assert samples.shape == (BATCH, *grad.shape)
            assert close(samples.double().sum(0), grad), (number, name)
            assert len(gradients[name]["explained"]) >= 3
            for explained in gradients[name]["explained"]:
                expected = grad[tuple(explained["index"])].item()
                assert math.isclose(explained["value"], expected, rel_tol=1e-4, abs_tol=1e-7)
                (detail,) = explained["elements"][0]["uses"]
                adds_up(detail["parts"], expected)


def test_activations_are_split_by_channel_and_chosen_elements_term_by_term(lenet):
    """Every activation feeding a layer: each element's gradient split by the channel or
    output feature of that layer adds up to torch's gradient of the activation (retain_grad
    on the twin); its largest-gradient elements, and relu3[2, 17] named with --element, are
    explained term by term, every level adding up to torch's gradient."""
    _, trace, twin = lenet
    for number, theirs in enumerate(twin, start=1):
        gradients = training_step(trace, number)["gradients"]
        # activations used only by an elementwise op (a ReLU) show its one term instead
        fed = {"relu1", "maxpool2d1", "relu2", "maxpool2d2", "reshape1", "relu3", "relu4"}
        assert set(gradients) == set(theirs.grads) | fed | {"linear3", "logsoftmax1"}
        assert list(NAMED[1]) in [e["index"] for e in gradients[NAMED[0]]["explained"]]
        for name in fed | {"linear3"}:
            grad = theirs.output_grads[ACTIVATIONS[name]]
            (use,) = gradients[name]["by_sample"]
            assert use["dim"] == 1
            if "samples" in use:
                parts = decode_tensor(trace, use["samples"]).double()
                assert parts.shape == (use["count"], *grad.shape)
                total = parts.sum(0)
            else:  # many channels: each element's largest parts, and the rest
                top = use["top"]
                total = decode_tensor(trace, top["values"]).double().sum(0)
                total = total + decode_tensor(trace, top["rest"])
            assert close(total, grad), (number, name)
            assert len(gradients[name]["explained"]) >= 3
            for explained in gradients[name]["explained"]:
                expected = grad[tuple(explained["index"])].item()
                assert math.isclose(explained["value"], expected, rel_tol=1e-4, abs_tol=1e-8)
                (detail,) = explained["elements"][0]["uses"]
                assert detail["node"] == use["node"] and detail["term_count"] >= 1
                adds_up(detail["parts"], expected)
    largest = [e["index"] for e in training_step(trace, 1)["gradients"][NAMED[0]]["explained"]]
    assert list(NAMED[1]) not in largest[:3]


def adds_up(group, expected):
    """A group's listed subgroups (or terms) and the rest add up to it, at every level."""
    parts = [g["value"] for g in group["groups"]] + [t["product"] for t in group["terms"]]
    total = math.fsum(parts) + group["left_out_sum"]
    assert math.isclose(total, expected, rel_tol=1e-4, abs_tol=1e-7), group["index"]
    for term in group["terms"]:
        assert math.isclose(term["product"], term["upstream"] * term["local"], rel_tol=1e-6)
    for subgroup in group["groups"]:
        if subgroup["opened"]:
            adds_up(subgroup, subgroup["value"])


def test_the_update_rule_for_every_element_is_explain_steps(lenet):
    """The page's update lines (kept for every element at once) give, at the element
    explain_step explained, explain_step's numbers, and everywhere the real step's result."""
    _, trace, _ = lenet
    for step in trace["training_steps"]:
        for update in step["updates"]:
            (explained,) = update["explained"]
            index = tuple(explained["index"])
            lines = explained["lines"]
            assert [line["formula"] for line in update["lines"]] == [
                line["formula"] for line in lines
            ]
            for ours, theirs in zip(update["lines"], lines):
                numbers = [operand(trace, x, index) for x in ours["numbers"]]
                if theirs["numbers"]:  # (explain_step's g_t line names the element instead)
                    assert numbers == pytest.approx(theirs["numbers"], rel=1e-6, abs=1e-12)
                assert operand(trace, ours["value"], index) == pytest.approx(
                    theirs["value"], rel=1e-6, abs=1e-12
                )
            assert explained["new_value"] == explained["actual"]


def operand(trace, x, index):
    if "tensor" in x:
        return decode_tensor(trace, x["tensor"])[index].item()
    return x["value"]


def test_the_page_is_one_self_contained_file_under_5_mb(lenet):
    path, trace, _ = lenet
    text = path.read_text(encoding="utf-8")
    assert path.stat().st_size < 5 * 2**20
    assert text.count('<script type="application/json" id="minitorch-edu-trace">') == 1
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", text)
    assert "Content-Security-Policy" in text and "connect-src 'none'" in text
    assert trace["format"] == "minitorch_edu.explorer" and trace["version"] == 1


# ---------------------------------------------------------------------- accumulation, hooks
class UsedTwice(nn.Module):
    """h is used by two ops (and twice by one), and has a hook; out.weight has a hook."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.out = nn.Linear(3, 1)

    def forward(self, x):
        h = self.fc(x).tanh()
        h.register_hook(lambda grad: grad * 2)
        return self.out(h * h + h)


def test_accumulation_hooks_and_deliveries_match_torch():
    mt.manual_seed(1)
    model = UsedTwice().double()
    model.out.weight.register_hook(lambda grad: grad * 0.5)
    optimizer = mt.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    y = torch.randn(4, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(3))

    twin = torch.nn.ModuleDict({"fc": torch.nn.Linear(3, 3), "out": torch.nn.Linear(3, 1)})
    twin = twin.double()
    twin.load_state_dict(model.state_dict())
    twin["out"].weight.register_hook(lambda grad: grad * 0.5)
    twin_optimizer = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9)

    found = mt.study.explore(model, mt.nn.MSELoss(), optimizer, x, y, steps=2)
    trace = found.to_dict()
    for number in (1, 2):
        twin_optimizer.zero_grad()
        h = twin["fc"](x).tanh()
        h.register_hook(lambda grad: grad * 2)
        h.retain_grad()
        loss = torch.nn.functional.mse_loss(twin["out"](h * h + h), y)
        loss.backward()
        step = training_step(trace, number)
        entries = trace["timeline"][step["first"] : step["end"]]
        (summed,) = [e for e in entries if e["phase"] == "accumulate" and e["node"] == "tanh1"]
        parts = [decode_tensor(trace, part["tensor"]) for part in summed["inputs"]]
        assert len(parts) == 3  # via add (h * h + h) and via mul, once per input
        total = decode_tensor(trace, summed["outputs"][0]["tensor"])
        assert torch.allclose(total, parts[0] + parts[1] + parts[2], rtol=0, atol=1e-15)
        hooks = {e["node"]: e for e in entries if e["phase"] == "hook"}
        assert set(hooks) == {"tanh1", "out.weight"}
        before = decode_tensor(trace, hooks["tanh1"]["inputs"][0]["tensor"])
        after = decode_tensor(trace, hooks["tanh1"]["outputs"][0]["tensor"])
        assert torch.equal(before, total) and torch.allclose(after, 2 * before)
        assert torch.allclose(after, h.grad, rtol=1e-12, atol=1e-15)
        hooked = decode_tensor(trace, hooks["out.weight"]["outputs"][0]["tensor"])
        assert torch.allclose(hooked, twin["out"].weight.grad, rtol=1e-12, atol=1e-15)
        delivered = [e["node"] for e in entries if e["phase"] == "deliver"]
        assert sorted(delivered) == ["fc.bias", "fc.weight", "out.bias", "out.weight"]
        twin_optimizer.step()
        for name, parameter in twin.named_parameters():
            after = decode_tensor(trace, update_of(step, name)["after"])
            assert torch.allclose(after, parameter.detach(), rtol=1e-12, atol=1e-15), name
        assert step["values"]["tanh1"]["hooks"] == "<lambda>"


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
        ("Adagrad", {"lr": 0.1, "lr_decay": 0.01}),
        ("RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True}),
        ("AdamW", {"lr": 0.01, "amsgrad": True}),
    ],
)
def test_every_optimizers_update_is_recorded_for_every_element(name, options):
    """Three steps of a small float64 model: the page's lines equal explain_step's at the
    explained element, the state after each step is torch's, and the lines give the real
    step's value for every element."""
    mt.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).double()
    optimizer = getattr(mt.optim, name)(model.parameters(), **options)
    twin = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    twin = twin.double()
    twin.load_state_dict(model.state_dict())
    twin_optimizer = getattr(torch.optim, name)(twin.parameters(), **options)
    x = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 1, 0, 1])
    trace = mt.study.explore(model, mt.nn.CrossEntropyLoss(), optimizer, x, y, steps=3).to_dict()
    for number in (1, 2, 3):
        twin_optimizer.zero_grad()
        torch.nn.functional.cross_entropy(twin(x), y).backward()
        twin_optimizer.step()
        step = training_step(trace, number)
        for parameter_name, parameter in twin.named_parameters():
            update = update_of(step, parameter_name)
            assert update["matches"]
            after = decode_tensor(trace, update["after"])
            assert torch.allclose(after, parameter.detach(), rtol=1e-12, atol=1e-15)
            state = twin_optimizer.state[parameter]
            for key, value in update["state_after"].items():
                ours = decode_tensor(trace, value["tensor"]) if "tensor" in value else None
                if ours is not None:
                    assert torch.allclose(ours, state[key], rtol=1e-12, atol=1e-15), key
            (explained,) = update["explained"]
            index = tuple(explained["index"])
            for ours, theirs in zip(update["lines"], explained["lines"], strict=True):
                assert ours["formula"] == theirs["formula"]
                numbers = [operand(trace, x, index) for x in ours["numbers"]]
                if theirs["numbers"]:
                    assert numbers == pytest.approx(theirs["numbers"], rel=1e-12)
                assert operand(trace, ours["value"], index) == pytest.approx(theirs["value"])
            final = update["lines"][-1]["value"]
            assert torch.allclose(decode_tensor(trace, final["tensor"]), after, rtol=1e-12)


def test_a_big_batch_keeps_each_elements_largest_samples_and_the_rest():
    """Over MAX_SAMPLES samples, each element keeps its largest parts and the rest's sum:
    they still add up to torch's gradient."""
    mt.manual_seed(0)
    model = nn.Linear(3, 2).double()
    optimizer = mt.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 2, (20,), generator=torch.Generator().manual_seed(1))
    twin = torch.nn.Linear(3, 2).double()
    twin.load_state_dict(model.state_dict())
    torch.nn.functional.cross_entropy(twin(x), y).backward()
    trace = mt.study.explore(model, mt.nn.CrossEntropyLoss(), optimizer, x, y).to_dict()
    (use,) = training_step(trace, 1)["gradients"]["weight"]["by_sample"]
    assert use["count"] == 20 and "samples" not in use
    which = decode_tensor(trace, use["top"]["samples"])
    parts = decode_tensor(trace, use["top"]["values"])
    rest = decode_tensor(trace, use["top"]["rest"])
    assert which.shape == parts.shape == (exploration.TOP_SAMPLES, 2, 3)
    assert all(len(set(which[:, o, i].tolist())) == exploration.TOP_SAMPLES for o, i in [(0, 0)])
    assert torch.allclose(parts.sum(0) + rest, twin.weight.grad, rtol=1e-12, atol=1e-15)


def test_a_big_activation_keeps_the_parts_of_the_elements_the_page_embeds():
    """An activation over max_elements keeps its first max_elements elements' parts (flat),
    and those add up to torch's gradient of it."""
    mt.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 4)).double()
    twin = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 4))
    twin = twin.double()
    twin.load_state_dict(model.state_dict())
    optimizer = mt.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    loss = mt.nn.CrossEntropyLoss()
    trace = mt.study.explore(model, loss, optimizer, x, y, max_elements=7).to_dict()
    hidden = twin[1](twin[0](x))
    hidden.retain_grad()
    torch.nn.functional.cross_entropy(twin[2](hidden), y).backward()
    (use,) = training_step(trace, 1)["gradients"]["tanh1"]["by_sample"]
    assert use["node"] == "linear2" and use["elements"] == 7 and use["count"] == 4
    parts = decode_tensor(trace, use["samples"])
    assert parts.shape == (4, 7)
    assert torch.allclose(parts.sum(0), hidden.grad.reshape(-1)[:7], rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------- bad input
def small_run():
    mt.manual_seed(0)
    model = nn.Linear(3, 2)
    return model, mt.optim.SGD(model.parameters(), lr=0.1), torch.randn(4, 3)


def test_bad_input_is_a_clear_one_line_error(tmp_path):
    model, optimizer, x = small_run()
    y = torch.tensor([0, 1, 0, 1])
    loss = mt.nn.CrossEntropyLoss()
    cases = [
        (lambda: mt.study.explore(nn.ReLU(), loss, optimizer, x, y), "has no parameters"),
        (lambda: mt.study.explore(model, loss, optimizer, x, y, steps=0), "steps must be"),
        (
            lambda: mt.study.explore(model, lambda out, t: loss(out, t).detach(), optimizer, x, y),
            "does not require grad",
        ),
        (
            lambda: mt.study.explore(model, loss, optimizer, x, y, elements={"weight": [(2, 0)]}),
            "outside the parameter's shape [2, 3]",
        ),
        (
            lambda: mt.study.explore(model, loss, optimizer, x, y, elements={"w": [(0, 0)]}),
            "'w', which is neither a parameter of the model (weight, bias) nor an activation "
            "as the page names it (linear1, logsoftmax1)",
        ),
        (
            lambda: mt.study.explore(model, loss, optimizer, x, y, elements={"linear1": [(4, 0)]}),
            "element linear1[4, 0] is outside the activation's shape [4, 2]",
        ),
        (
            lambda: mt.study.explore(model, loss, optimizer, x, y, elements={"inputs": [(0, 0)]}),
            "'inputs', which does not require grad",
        ),
        (
            lambda: mt.study.explore(model, loss, optimizer, x, y, elements={"nllloss1": [()]}),
            "'nllloss1', the loss itself: its gradient is 1",
        ),
    ]
    for call, words in cases:
        with pytest.raises(ExploreError) as caught:
            call()
        assert words in str(caught.value) and "\n" not in str(caught.value)
    with mt.no_grad():
        with pytest.raises(ExploreError, match="does not require grad"):
            mt.study.explore(model, loss, optimizer, x, y)
    found = mt.study.explore(model, loss, optimizer, x, y)
    for target, words in [
        (tmp_path / "missing" / "page.html", "does not exist"),
        (tmp_path, "is a directory"),
    ]:
        with pytest.raises(OSError) as caught:
            found.save_html(target)
        assert words in str(caught.value) and "\n" not in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing half-written is left


def test_the_command_refuses_bad_options_in_one_line(tmp_path, capsys):
    for arguments, words in [
        (["--steps", "0"], "argument --steps: must be a positive integer, got 0"),
        (["--output", str(tmp_path / "no" / "p.html")], "does not exist"),
        (["--output", str(tmp_path)], "is a directory"),
        (["--element", "conv1.weight"], "expected NAME[I,J,...]"),
        (["--optimizer", "adam", "--momentum", "0.5"], "adam has no momentum"),
    ]:
        with pytest.raises(SystemExit) as exited:
            cli.main(["explore", *arguments])
        assert exited.value.code == 2
        error_lines = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
        assert len(error_lines) == 1 and words in error_lines[0], error_lines


SCRIPT = """
import torch
import minitorch_edu as mt

mt.manual_seed(0)
model = mt.nn.Sequential(mt.nn.Linear(4, 3), mt.nn.ReLU(), mt.nn.Linear(3, 2))
optimizer = mt.optim.Adam(model.parameters(), lr=0.01)
loss_fn = mt.nn.CrossEntropyLoss()
inputs = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
targets = torch.tensor([0, 1, 1, 0, 1, 0])
elements = {"0.weight": [(1, 2)]}

if __name__ == "__main__":
    raise SystemExit("the script's main block must not run")
"""


def test_the_command_records_a_users_script(tmp_path, capsys):
    script = tmp_path / "step.py"
    script.write_text(SCRIPT)
    page = tmp_path / "mine.html"
    arguments = ["explore", "--script", str(script), "--steps", "2", "--output", str(page)]
    assert cli.main(arguments) == 0
    printed = capsys.readouterr().out
    assert str(page) in printed and page.resolve().as_uri() in printed
    trace = read_trace(page)
    assert len(trace["training_steps"]) == 2 and trace["title"] == "step.py"
    explained = trace["training_steps"][0]["gradients"]["0.weight"]["explained"]
    assert [1, 2] in [e["index"] for e in explained]

    script.write_text(SCRIPT.replace("optimizer = ", "opt = "))
    assert cli.main(arguments) == 1
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "does not define optimizer" in error

    script.write_text(SCRIPT)
    assert cli.main([*arguments, "--element", "relu9[0,1]"]) == 1
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "'relu9', which is neither a parameter" in error


def test_notebook_display_is_the_page_in_an_iframe():
    model, optimizer, x = small_run()
    found = mt.study.explore(model, mt.nn.MSELoss(), optimizer, x, torch.zeros(4, 2))
    shown = found._repr_html_()
    assert shown.startswith("<iframe") and 'sandbox="allow-scripts"' in shown
    srcdoc = re.search(r'srcdoc="([^"]*)"', shown).group(1)
    import html

    assert html.unescape(srcdoc) == found.html()
    assert read_trace(found.html()) == json.loads(found.to_json())
    assert "1 training step" in repr(found)


# ---------------------------------------------------------------------- in a browser
@pytest.fixture(scope="session")
def opened(browser, lenet):
    """The LeNet page, open, with every request and console message it made."""
    path, trace, twin = lenet
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    seen = {"requests": [], "console": [], "errors": []}
    page.on("request", lambda request: seen["requests"].append(request.url))
    page.on("console", lambda message: seen["console"].append((message.type, message.text)))
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))
    page.goto(path.as_uri())
    page.wait_for_selector("html[data-ready]", timeout=30_000)
    page.wait_for_selector("#graph svg")
    yield page, seen, trace, twin
    page.close()


def current_step(page):
    return int(page.get_attribute("[data-current-step]", "data-current-step"))


def go_to(page, trace, phase, node, number=1):
    """Click the timeline row of the step `phase` of `node` in training step `number`."""
    entry = next(
        e
        for e in trace["timeline"]
        if e["phase"] == phase and e["node"] == node and e["training_step"] == number
    )
    page.click(f'#timeline .row[data-index="{entry["index"]}"]')
    assert current_step(page) == entry["index"]


def click_element(page, tensor_name, index):
    """Click, with the mouse, the cell of `index` in the heatmap of `tensor_name`."""
    canvas = page.locator(f'#step .tensor[data-name="{tensor_name}"] canvas')
    point = canvas.evaluate("(canvas, index) => canvas.pointOf(index)", list(index))
    canvas.click(position=point)
    title = page.locator("#element h2")
    assert json.loads(title.get_attribute("data-index")) == list(index)


def shown(page, selector):
    cell = page.locator(f"#element {selector}").first
    value = float(cell.get_attribute("data-value"))
    assert math.isclose(float(cell.inner_text()), value, rel_tol=1e-6, abs_tol=1e-9)
    return value


def test_the_page_loads_offline_without_errors(opened):
    page, seen, trace, _ = opened
    assert all(re.match(r"(file|data|blob):", url) for url in seen["requests"]), seen["requests"]
    assert seen["errors"] == []
    assert [m for m in seen["console"] if m[0] in ("error", "warning")] == []
    assert page.locator("#timeline .row").count() == len(trace["timeline"])
    # how long it took to become interactive here (the benchmark reports it; not asserted)
    print("ready after", page.get_attribute("html", "data-ready-ms"), "ms")


def test_keys_and_buttons_move_the_current_step(opened):
    page, _, trace, _ = opened
    page.keyboard.press("Home")
    assert current_step(page) == 0
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    assert current_step(page) == 3
    page.keyboard.press("ArrowLeft")
    assert current_step(page) == 2
    page.keyboard.press("End")
    assert current_step(page) == len(trace["timeline"]) - 1
    page.click("#first")
    assert current_step(page) == 0
    page.click("#next")
    assert current_step(page) == 1
    page.click("#last")
    page.click("#previous")
    assert current_step(page) == len(trace["timeline"]) - 2


def test_shown_numbers_are_torchs(opened):
    """A forward output, a backward gradient and an updated parameter element, clicked in
    the page, show what the torch twin computed."""
    page, _, trace, twin = opened
    go_to(page, trace, "forward", "linear3")
    click_element(page, "linear3", (5, 7))
    assert math.isclose(shown(page, ".element-value"), twin[0].outputs["fc3"][5, 7], rel_tol=1e-5)

    go_to(page, trace, "backward", "convolution2", number=2)
    click_element(page, "dconv2.weight", (7, 2, 1, 3))
    expected = twin[1].grads["conv2.weight"][7, 2, 1, 3].item()
    assert math.isclose(shown(page, ".element-grad"), expected, rel_tol=1e-4, abs_tol=1e-8)

    go_to(page, trace, "update", "fc1.weight")
    click_element(page, "fc1.weight (after)", (17, 40))
    expected = twin[0].after["fc1.weight"][17, 40].item()
    assert math.isclose(shown(page, ".element-after"), expected, rel_tol=1e-6)
    final = page.locator('#element .rule .line[data-symbol="θ_t"]').last
    assert math.isclose(float(final.get_attribute("data-value")), expected, rel_tol=1e-6)
    history = page.locator('#element .history td[data-column="exp_avg"]')
    assert history.count() == STEPS
    for number in range(STEPS):
        expected = twin[number].state["fc1.weight"]["exp_avg"][17, 40].item()
        value = float(history.nth(number).get_attribute("data-value"))
        assert math.isclose(value, expected, rel_tol=1e-5, abs_tol=1e-10)


def test_a_clicked_elements_chain_rule_adds_up_to_torchs_gradient(opened):
    """An element the test picks (not one the page suggests): the grouped parts shown add up
    to torch's gradient for it."""
    page, _, trace, twin = opened
    index = (1, 0, 4, 0)
    gradients = trace["training_steps"][0]["gradients"]["conv1.weight"]
    suggested = [e["index"] for e in gradients["explained"]]
    assert list(index) not in suggested
    go_to(page, trace, "update", "conv1.weight")
    click_element(page, "conv1.weight.grad", index)
    expected = twin[0].grads["conv1.weight"][index].item()
    assert math.isclose(shown(page, ".element-grad"), expected, rel_tol=1e-4, abs_tol=1e-8)
    tables = page.locator("#element .chain table")
    assert tables.count() >= 1
    for number in range(tables.count()):
        parts = [
            float(v)
            for v in tables.nth(number)
            .locator("tr.part")
            .evaluate_all("rows => rows.map(row => row.dataset.value)")
        ]
        assert math.isclose(math.fsum(parts), expected, rel_tol=1e-4, abs_tol=1e-8)


def parts_of(locator):
    return [
        float(v) for v in locator.evaluate_all("parts => parts.map(part => part.dataset.value)")
    ]


@pytest.mark.parametrize(("node", "index"), [("maxpool2d1", (3, 2, 1, 2)), ("relu2", None)])
def test_a_clicked_activations_chain_rule_adds_up_to_torchs_gradient(opened, node, index):
    """An activation element the test picks, behind a convolution (maxpool2d1 feeds conv2)
    or a max pool (relu2 feeds pool2), not one the page explains term by term: its share,
    split by the next layer's channel, adds up to torch's gradient of the activation."""
    page, _, trace, twin = opened
    grad = twin[0].output_grads[ACTIVATIONS[node]]
    explained = [e["index"] for e in trace["training_steps"][0]["gradients"][node]["explained"]]
    if index is None:  # the last element with a gradient (the largest are explained)
        index = tuple(grad.nonzero()[-1].tolist())
    assert list(index) not in explained and grad[index] != 0
    go_to(page, trace, "forward", node)
    click_element(page, node, index)
    expected = grad[index].item()
    assert math.isclose(shown(page, ".element-grad"), expected, rel_tol=1e-4, abs_tol=1e-9)
    split = page.locator('#element .chain table[data-grouping="part"]')
    assert split.count() == 1
    assert split.locator("tr.part").count() >= 1
    for table in page.locator("#element .chain table").all():
        parts = parts_of(table.locator("tr.part"))
        assert math.isclose(math.fsum(parts), expected, rel_tol=1e-4, abs_tol=1e-9)
    assert page.locator("#element .chain .bad").count() == 0
    assert page.locator("#element .chain .ok").count() >= 2
    links = page.locator("#element .chain a.jump")
    assert links.count() == len(explained)


def test_a_named_activation_element_shows_its_terms(opened):
    """relu3[2, 17], named with --element, is explained term by term: upstream gradient x
    local derivative for each element of linear2 it feeds, adding up to torch's gradient."""
    page, _, trace, twin = opened
    node, index = NAMED
    expected = twin[0].output_grads[ACTIVATIONS[node]][index].item()
    go_to(page, trace, "forward", node)
    click_element(page, node, index)
    terms = page.locator("#element .terms > .group-parts")
    assert terms.count() == 1
    assert page.locator("#element .terms .term").count() >= 1
    parts = parts_of(terms.locator(":scope > .part"))
    assert math.isclose(math.fsum(parts), expected, rel_tol=1e-4, abs_tol=1e-9)
    assert page.locator("#element .chain .bad").count() == 0

    # maxpool2d1's largest gradient, through the page's link: its terms, grouped by
    # conv2's output element j = [n, o, y, x], all in one sample, so the first level fixes
    # both n and o
    go_to(page, trace, "forward", "maxpool2d1")
    click_element(page, "maxpool2d1", (0, 0, 0, 0))
    (explained, *_) = trace["training_steps"][0]["gradients"]["maxpool2d1"]["explained"]
    page.locator("#element .chain a.jump").first.click()
    title = page.locator("#element h2")
    assert json.loads(title.get_attribute("data-index")) == explained["index"]
    (detail,) = explained["elements"][0]["uses"]
    n, o = detail["parts"]["groups"][0]["index"]
    first = page.locator("#element .terms summary").first.inner_text()
    assert first.startswith(f"n = {n}, o = {o}: "), first
    expected = twin[0].output_grads["pool1"][tuple(explained["index"])].item()
    parts = parts_of(page.locator("#element .terms > .group-parts > .part"))
    assert math.isclose(math.fsum(parts), expected, rel_tol=1e-4, abs_tol=1e-9)


def test_collapsing_a_module_hides_its_ops(opened):
    page, _, trace, _ = opened
    go_to(page, trace, "forward", "convolution1")
    assert page.locator('#graph [id="node-convolution1"]').count() == 1
    page.click('#modules button[data-module="conv1"]')
    assert page.locator('#graph [id="node-convolution1"]').count() == 0
    assert page.locator('#graph [id="node-conv1.weight"]').count() == 0
    assert page.locator('#graph [id="module-conv1"].current').count() == 1
    page.click('#modules button[data-module="conv1"]')
    assert page.locator('#graph [id="node-convolution1"].current').count() == 1
    assert page.locator('#graph [id="module-conv1"]').count() == 0


def test_the_notebook_iframe_runs_offline(browser, tmp_path):
    """What Jupyter shows (`_repr_html_`: the page in a sandboxed iframe's srcdoc) runs on its
    own: the page inside becomes ready, with no request and no error."""
    model, optimizer, x = small_run()
    found = mt.study.explore(model, mt.nn.MSELoss(), optimizer, x, torch.zeros(4, 2), steps=2)
    notebook = tmp_path / "notebook.html"
    notebook.write_text(f"<!doctype html><meta charset='utf-8'><body>{found._repr_html_()}</body>")
    page = browser.new_page()
    requests, errors = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(notebook.as_uri())
    frame = page.frame_locator("iframe")
    frame.locator("html[data-ready]").wait_for(timeout=30_000)
    frame.locator("#graph svg").wait_for()
    assert frame.locator("#timeline .row").count() == len(found.timeline)
    assert all(re.match(r"(file|data|blob|about):", url) for url in requests), requests
    assert errors == []
    page.close()
