"""How study results show themselves: HTML in a notebook, `explain step` in a terminal, and
local derivatives read from each op's formula data (checked against the op's backward)."""

import json
import re

import pytest
import torch

import minitorch_edu as mt
import minitorch_edu.nn.functional as F
from minitorch_edu.study import explain_gradient
from minitorch_edu.study.cli import main


def small_step():
    mt.manual_seed(0)
    model = mt.nn.Sequential(mt.nn.Linear(3, 4), mt.nn.Tanh(), mt.nn.Linear(4, 2)).double()
    x = mt.tensor([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]], dtype=torch.float64)
    optimizer = mt.optim.Adam(model.parameters(), lr=0.1)
    with mt.study.trace(names=model) as tape:
        loss = F.cross_entropy(model(x), torch.tensor([1, 0]))
        loss.backward(retain_graph=True)
    return model, x, loss, tape, optimizer


class Printer:
    """What IPython's pretty printer offers `_repr_pretty_`, enough to see what it prints."""

    def __init__(self):
        self.printed = []

    def text(self, text):
        self.printed.append(text)


def balanced(html):
    return all(html.count(f"<{tag}") == html.count(f"</{tag}>") for tag in ("details", "table"))


def test_every_study_result_shows_itself_as_html_in_a_notebook():
    model, x, loss, tape, optimizer = small_step()
    W = model[0].weight
    explanation = explain_gradient(loss, W, (3, 2), names=model, tape=tape)
    parts = mt.study.gradient_by_sample(loss, W, names=model, tape=tape)
    with mt.study.explain_step(optimizer, W, (3, 2), names=model) as step:
        optimizer.step()
    check = mt.study.gradcheck(lambda w: (w * w).sum(), [torch.tensor([1.0, 2.0])])
    shown = {
        "tape": (tape._repr_html_(), ["LinearBackward", "backward pass 1 begins", "<details"]),
        "step": (tape[1]._repr_html_(), ["Tanh", "da = grad * (1 - tanh(a)^2)"]),
        "explanation": (
            explanation._repr_html_(),
            ["d(loss)/d(0.weight[3, 2])", "1 - tanh1[0, 3]²", 'class="n"'],
        ),
        "by sample": (parts._repr_html_(), ["by sample", "via linear1"]),
        "optimizer step": (step._repr_html_(), ["Adam step for 0.weight[3, 2]", "agrees"]),
        "gradcheck": (check._repr_html_(), ["gradcheck passed", "2 elements"]),
    }
    for what, (html, expected) in shown.items():
        assert html.startswith("<style>") and '<div class="mte">' in html, what
        assert balanced(html), what
        for text in expected:
            assert text in html, (what, text)
    # numbers are right-aligned in tabular figures: aligned digits
    assert "font-variant-numeric:tabular-nums" in shown["tape"][0]
    for result in (tape, explanation, parts, step, check):  # IPython's pretty printer
        printer = Printer()
        result._repr_pretty_(printer, False)
        assert printer.printed and printer.printed[0].strip()
    json.dumps(explanation.to_dict(), allow_nan=False)
    json.dumps(parts.to_dict(top=1), allow_nan=False)
    json.dumps(check.to_dict())


def ops_through_their_formulas(a, b):
    """One composition through ops whose formula data declares their local derivatives."""
    mixed = (a * b) + (b / (a * a + 1.0))
    squashed = mixed.sigmoid() * mt.maximum(a, b) + mt.where(a > 0, a, b).exp()
    soft = F.softmax(squashed, dim=1) * F.log_softmax(squashed, dim=1)
    root = (a.abs() + 1).sqrt().log().sum(1)
    return (soft.sum(1) + squashed.logsumexp(1) + root).pow(2).mean()


def test_local_derivatives_from_formula_data_evaluate_to_what_backward_gives():
    generator = torch.Generator().manual_seed(3)
    a = mt.tensor(torch.randn(3, 4, generator=generator, dtype=torch.float64), requires_grad=True)
    b = mt.tensor(torch.randn(3, 4, generator=generator, dtype=torch.float64), requires_grad=True)
    out = ops_through_their_formulas(a, b)
    expected = [g.data for g in mt.autograd.grad(out, [a, b], retain_graph=True)]
    seen = set()
    for tensor, grad in zip((a, b), expected):
        result = explain_gradient(out, tensor, (1, 2), max_terms=50, max_expansions=200)
        assert result.value == pytest.approx(grad[1, 2].item(), rel=1e-10)
        for element in result.elements():
            for use in element.uses:
                seen.add(use.op)
                for term in use.terms or ():
                    if term.expression_value is not None:
                        assert term.expression_value == pytest.approx(term.local, rel=1e-12)
                    elif type(use._node).derivatives is not None:
                        pytest.fail(f"{use.op}: its formula data did not evaluate: {use.note}")
    for op in ("Mul", "Div", "Add", "Sigmoid", "Maximum", "Where", "Exp", "Softmax", "Pow"):
        assert op in seen, op


def test_explain_step_prints_a_training_step_in_100_columns(capsys):
    assert main(["explain", "step", "--model", "mlp", "--batch", "3", "--print-limit", "4"]) == 0
    out = capsys.readouterr().out
    assert "One training step of the MLP" in out and "Backward pass" in out
    value = re.search(r"d\(loss\)/d\((fc1\.weight\[\d+, \d+\])\) = (\S+)", out)
    assert value is not None and float(value[2]) != 0  # the largest gradient by default
    assert max(map(len, out.splitlines())) <= 100
    # Formulas that do not fit beside their rows go below every row, and the header says so.
    assert "inputs -> outputs   (formula below each row)" in out
    assert "backward formula" not in out
    rows = [line for line in out.splitlines() if re.match(r"\s*\d+  (forward|backward) ", line)]
    assert rows and all("formula:" not in line for line in rows)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--element", "fc9.weight[0,0]"], "no parameter 'fc9.weight'"),
        (["--element", "fc1.weight[999,0]"], "is not an element of fc1.weight, of shape [256, 64]"),
        (["--element", "fc1.weight[a]"], "expected NAME or NAME[INDEX]"),
        (["--sample", "5"], "--sample: must be in [0, 2)"),
        (["--batch", "0"], "--batch: must be 1 or more"),
    ],
)
def test_explain_step_names_what_was_wrong(arguments, message, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["explain", "step", "--model", "mlp", "--batch", "2", *arguments])
    assert exit.value.code == 2 and message in capsys.readouterr().err
