"""The chain rule at a real model's scale: LeNet and the MLP of `minitorch-edu train`, on the
bundled digits, in float64. For elements of conv1, conv2, fc1 and fc3 weights and biases the
explained value is torch's gradient for that element; every grouping shown adds up (the
terms and the rest to their group, the groups and the rest to the use, the uses to the
element); every local derivative read from an op's formula data evaluates to the number
its backward gives; gradient_by_sample's parts add up to torch's gradient.
"""

import math

import pytest
import torch

import minitorch_edu as mt
import minitorch_edu.nn.functional as F
from minitorch_edu import models
from minitorch_edu.data.digits import load_digits
from minitorch_edu.study import explain_gradient, gradient_by_sample
from reference.nn import torch_twin

RELATIVE = 1e-10


def close(a, b, scale):
    return abs(a - b) <= RELATIVE * max(abs(a), abs(b), scale) + 1e-300


@pytest.fixture(scope="module")
def digits():
    images, labels = load_digits("train", normalize=True).tensors
    return images.double(), labels


def step(kind, batch, digits):
    """A float64 model, its loss on the first `batch` digits, and torch's gradients."""
    mt.manual_seed(0)
    model = models.lenet(1, 8, 10) if kind == "cnn" else models.mlp(64, 10)
    model = model.double()
    images, labels = digits[0][:batch], digits[1][:batch]
    x = mt.tensor(images)
    loss = F.cross_entropy(model(x), labels)
    twin = torch_twin(model)
    torch.nn.functional.cross_entropy(twin(images), labels).backward()
    expected = {name: p.grad for name, p in twin.named_parameters()}
    names = {tensor: name for name, tensor in model.named_parameters()}
    names[x] = "images"
    return model, loss, expected, names


def check_group(group, scale):
    shown = math.fsum([*(g.value for g in group.groups), *(t.product for t in group.terms)])
    assert close(shown + group.left_out_sum, group.value, scale)
    for child in group.groups:
        if child.opened:
            check_group(child, scale)


def check_explanation(result, expected):
    assert close(result.value, expected, abs(expected))
    for element in result.elements():
        if not element.is_output and element.uses:
            scale = max(abs(u.value) for u in element.uses)
            assert close(math.fsum(u.value for u in element.uses), element.value, scale)
        for use in element.uses:
            if use.terms is None:
                continue
            scale = max([abs(use.value), *(abs(t.product) for t in use.terms)])
            assert close(
                math.fsum(t.product for t in use.terms) + use.left_out_sum, use.value, scale
            )
            check_group(use.parts, scale)
            assert close(use.parts.value, use.value, scale)
            for term in use.terms:
                assert term.expression, f"{use.op} gave no formula for its local derivative"
                assert term.expression_value == pytest.approx(term.local, rel=1e-12, abs=1e-15)
                if term.explained is not None:
                    assert term.explained.value == term.upstream


CASES = [
    ("cnn", 16, "conv1.weight", None),
    ("cnn", 16, "conv1.bias", 2),
    ("cnn", 16, "conv2.weight", 2),
    ("cnn", 16, "conv2.bias", 2),
    ("cnn", 16, "fc1.weight", 2),
    ("cnn", 16, "fc1.bias", 2),
    ("cnn", 16, "fc3.weight", 2),
    ("cnn", 16, "fc3.bias", None),
    ("cnn", 64, "conv1.weight", None),
    ("cnn", 64, "conv2.bias", 2),
    ("cnn", 64, "fc1.weight", 2),
    ("cnn", 64, "fc3.weight", None),
    ("mlp", 16, "fc1.weight", None),
    ("mlp", 16, "fc4.bias", None),
]


@pytest.mark.parametrize("kind, batch, name, expansions", CASES)
def test_explained_value_is_torchs_gradient_and_every_grouping_adds_up(
    kind, batch, name, expansions, digits
):
    model, loss, expected, names = step(kind, batch, digits)
    parameter = dict(model.named_parameters())[name]
    # the element with the largest gradient, and one more in the middle
    grad = expected[name]
    largest = tuple(int(i) for i in torch.unravel_index(grad.abs().argmax(), grad.shape))
    middle = tuple(size // 2 for size in grad.shape)
    for index in (largest, middle):
        settings = {} if expansions is None else {"max_expansions": expansions}  # None: defaults
        result = explain_gradient(loss, parameter, index, names=names, **settings)
        check_explanation(result, grad[index].item())
    parts = gradient_by_sample(loss, parameter, names=names)
    assert parts.by_sample().shape == (batch, *grad.shape)
    torch.testing.assert_close(parts.by_sample().sum(0), grad, rtol=RELATIVE, atol=1e-15)


def test_a_conv_weight_is_grouped_by_sample_and_says_where_its_factors_come_from(digits):
    model, loss, expected, names = step("cnn", 16, digits)
    result = explain_gradient(loss, model.conv1.weight, (0, 0, 1, 1), names=names, sample=5)
    (use,) = result.element.uses
    assert use.op == "Convolution" and use.input_name == "W"
    assert use.local_formula == (
        "d convolution1[n, o, y, x] / d conv1.weight[o, c, u, v] = "
        "images[n, c, y + u - 2, x + v - 2]"
    )
    samples = {group.index[0] for group in use.parts.groups}
    assert 5 in samples and all(len(group.index) == 1 for group in use.parts.groups)
    focused = next(group for group in use.parts.groups if group.index == (5,))
    assert focused.opened and focused.terms
    for term in focused.terms:  # out[5, 0, y, x] reads the image at (y + 1 - 2, x + 1 - 2)
        _, _, y, x = term.output_index
        assert term.expression == f"images[5, 0, {y - 1}, {x - 1}]"
    text = result.text()
    assert "j = [5, ...]:" in text and "(max_groups=4: raise it to list more)" in text
    assert all(len(line) <= 100 for line in text.splitlines() if " " in line.strip())
    document = result.to_dict()
    assert document["elements"][0]["uses"][0]["parts"]["groups"]
    import json

    json.dumps(document, allow_nan=False)


def test_an_activation_split_by_the_next_layers_output_feature_is_torchs(digits):
    """gradient_by_sample(..., dim=1) on an MLP's hidden activation h (used by fc2): part o of
    d loss / d h[n, k] is d fc2[n, o] x W2[o, k], each read from torch (retain_grad), and the
    parts add up to torch's gradient of h."""
    mt.manual_seed(0)
    fc1, fc2 = mt.nn.Linear(64, 12).double(), mt.nn.Linear(12, 10).double()
    images, labels = digits[0][:6].reshape(6, 64), digits[1][:6]
    hidden = fc1(mt.tensor(images)).relu()
    loss = F.cross_entropy(fc2(hidden), labels)
    parts = gradient_by_sample(loss, hidden, names={hidden: "h"}, dim=1)
    (use,) = parts.uses
    assert parts.dim == use.dim == 1 and use.samples.shape == (10, 6, 12)

    w1 = fc1.weight.data.clone().requires_grad_()
    h = torch.nn.functional.linear(images, w1, fc1.bias.data).relu()
    h.retain_grad()
    out = torch.nn.functional.linear(h, fc2.weight.data, fc2.bias.data)
    out.retain_grad()
    torch.nn.functional.cross_entropy(out, labels).backward()
    expected = out.grad.T[:, :, None] * fc2.weight.data[:, None, :]  # (o, n, k)
    torch.testing.assert_close(use.samples, expected, rtol=RELATIVE, atol=1e-15)
    torch.testing.assert_close(parts.by_sample().sum(0), h.grad, rtol=RELATIVE, atol=1e-15)
    assert "split by j[1]" in parts.text() and "j[1] = " in parts.text()
    with pytest.raises(ValueError, match="dim must be an integer >= 0, got -1"):
        gradient_by_sample(loss, hidden, dim=-1)
    # fc2's output (n, o) has no dim 2: one part, the whole share
    (whole,) = gradient_by_sample(loss, hidden, dim=2).uses
    assert whole.samples.shape == (1, 6, 12)
    torch.testing.assert_close(whole.samples[0], h.grad, rtol=RELATIVE, atol=1e-15)
