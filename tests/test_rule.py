"""THE RULE, enforced: inside minitorch_edu/ nothing from torch.nn, torch.nn.functional,
torch.optim, torch.autograd (or torch.func / functorch) is used, no torch tensor ever has
requires_grad=True, and no fused torch kernel stands in for a function the project teaches.

Two checks:

- static: every .py file under minitorch_edu/ (whoever added it, whenever) is parsed with
  `ast` and scanned for forbidden imports, attribute chains, fused-kernel calls and
  requires_grad on torch tensors. The scanner is itself tested on planted violations.
- dynamic: a computation over every core op runs forward and backward under a
  TorchFunctionMode that sees each torch call: no fused kernel may be called and no torch
  tensor may come out requiring grad; and with torch's own grad mode switched off globally
  the results are identical (nothing leans on torch.autograd).

The one allowance: minitorch_edu/testing/compare.py is the comparison harness users reuse,
and torch.autograd is its oracle (the torch side of `assert_matches_torch`).
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch.overrides import TorchFunctionMode

import minitorch_edu as mt

PACKAGE = Path(mt.__file__).resolve().parent

FORBIDDEN_MODULES = ("torch.nn", "torch.optim", "torch.autograd", "torch.func", "torch._C")
FORBIDDEN_TOP_LEVEL = ("functorch",)

# Fused kernels (torch functions and Tensor methods) that stand in for what the project teaches.
FUSED = frozenset(
    """
    softmax log_softmax _softmax _log_softmax softmin relu relu_ relu6 sigmoid sigmoid_
    logsigmoid silu gelu elu selu celu leaky_relu hardtanh softplus mish hardswish hardsigmoid
    prelu rrelu glu threshold
    conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d convolution
    _convolution conv_tbc im2col col2im fold
    max_pool1d max_pool2d max_pool3d max_pool1d_with_indices max_pool2d_with_indices
    max_pool3d_with_indices avg_pool1d avg_pool2d avg_pool3d adaptive_avg_pool1d
    adaptive_avg_pool2d adaptive_avg_pool3d adaptive_max_pool1d adaptive_max_pool2d
    adaptive_max_pool3d max_unpool1d max_unpool2d max_unpool3d lp_pool1d lp_pool2d
    addmm addmm_ addmv addmv_ addbmm addbmm_ baddbmm baddbmm_ addr linear bilinear
    _addmm_activation
    cross_entropy nll_loss nll_loss2d nll_loss_nd binary_cross_entropy
    binary_cross_entropy_with_logits mse_loss l1_loss smooth_l1_loss huber_loss kl_div
    ctc_loss poisson_nll_loss
    dropout dropout_ feature_dropout alpha_dropout feature_alpha_dropout dropout1d dropout2d
    dropout3d native_dropout
    batch_norm native_batch_norm instance_norm layer_norm native_layer_norm group_norm
    native_group_norm rms_norm local_response_norm
    embedding embedding_bag lstm gru rnn_tanh rnn_relu lstm_cell gru_cell rnn_tanh_cell
    rnn_relu_cell scaled_dot_product_attention
    cosine_similarity pairwise_distance
    """.split()
)

# The one file that may use torch.autograd: the oracle side of the comparison harness.
ALLOWED = {"testing/compare.py": {"forbidden attribute"}}


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}: {self.detail}"


def dotted(node: ast.AST) -> str | None:
    """`torch.nn.functional.relu` for the expression torch.nn.functional.relu, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def is_forbidden_module(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in FORBIDDEN_MODULES) or (
        name.split(".")[0] in FORBIDDEN_TOP_LEVEL
    )


class Scanner(ast.NodeVisitor):
    """Collects violations in one module. Tracks the names bound to torch (`import torch as
    T`) and, per scope, names known to hold torch tensors: made here (`x = torch.zeros(3)`),
    a Function's forward/backward arguments, and what `ctx.saved_tensors` unpacks to. Where
    a name's kind cannot be known statically, the dynamic check below takes over."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.torch_aliases = {"torch"}
        self.torch_values: list[set[str]] = [set()]
        self.violations: list[Violation] = []

    def flag(self, node: ast.AST, kind: str, detail: str) -> None:
        self.violations.append(Violation(self.path, getattr(node, "lineno", 0), kind, detail))

    def canonical(self, node: ast.AST) -> str | None:
        """The dotted name with any alias of torch written as `torch`."""
        name = dotted(node)
        if name is None:
            return None
        root, _, rest = name.partition(".")
        if root in self.torch_aliases:
            return "torch" + ("." + rest if rest else "")
        return name

    # -------------------------------------------------------------- imports
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if is_forbidden_module(alias.name):
                self.flag(node, "forbidden import", alias.name)
            elif alias.name == "torch":
                self.torch_aliases.add(alias.asname or "torch")
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if is_forbidden_module(module):
            self.flag(node, "forbidden import", f"from {module} import ...")
        elif module == "torch":
            for alias in node.names:
                if is_forbidden_module(f"torch.{alias.name}"):
                    self.flag(node, "forbidden import", f"from torch import {alias.name}")
                elif alias.name in FUSED:
                    self.flag(node, "fused kernel", f"from torch import {alias.name}")
        self.generic_visit(node)

    # -------------------------------------------------------------- scopes
    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        scope = set()
        arguments = [a.arg for a in node.args.args]
        if node.name in ("forward", "backward") and arguments[:1] == ["ctx"]:
            # A Function's forward gets plain torch tensors, and so does its backward
            # (outside create_graph): a fused method called on them is a fused kernel.
            scope.update(arguments[1:])
            scope.update(a.arg for a in (node.args.vararg,) if a is not None)
        self.torch_values.append(scope)
        self.generic_visit(node)
        self.torch_values.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def makes_torch_tensor(self, node: ast.AST) -> bool:
        """A torch.* call (torch.zeros(...)), `.data` of anything, or a name bound to either."""
        if isinstance(node, ast.Call):
            name = self.canonical(node.func)
            if name is not None and name.startswith("torch."):
                return True
            if isinstance(node.func, ast.Attribute):  # torch.zeros(3).double() and the like
                return self.makes_torch_tensor(node.func.value)
        if isinstance(node, ast.Attribute) and node.attr == "data":
            return True
        if isinstance(node, ast.Name):
            return node.id in self.torch_values[-1]
        return False

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            if isinstance(target, ast.Tuple) and dotted(node.value) == "ctx.saved_tensors":
                self.torch_values[-1].update(e.id for e in target.elts if isinstance(e, ast.Name))
            if isinstance(target, ast.Name):
                if self.makes_torch_tensor(node.value):
                    self.torch_values[-1].add(target.id)
                else:
                    self.torch_values[-1].discard(target.id)
            if (
                isinstance(target, ast.Attribute)
                and target.attr == "requires_grad"
                and self.makes_torch_tensor(target.value)
                and not is_false(node.value)
            ):
                self.flag(node, "requires_grad", "a torch tensor's requires_grad set")
        self.generic_visit(node)

    # -------------------------------------------------------------- expressions
    def visit_Attribute(self, node: ast.Attribute) -> None:
        name = self.canonical(node)
        if name is not None and name.startswith("torch.") and is_forbidden_module(name):
            self.flag(node, "forbidden attribute", name)
            return  # one report per chain
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = self.canonical(node.func)
        on_torch = isinstance(node.func, ast.Attribute) and self.makes_torch_tensor(
            node.func.value
        )  # a method of a torch tensor: torch.ones(2).new_zeros(...)
        if name is not None and name.startswith("torch."):
            if FUSED & set(name.split(".")[1:]):
                self.flag(node, "fused kernel", name)
        if (name is not None and name.startswith("torch.")) or on_torch:
            for keyword in node.keywords:
                if keyword.arg == "requires_grad" and not is_false(keyword.value):
                    self.flag(node, "requires_grad", f"{name or 'method'}(requires_grad=...)")
        if name in ("getattr", "importlib.import_module", "__import__") and node.args:
            self.check_dynamic_lookup(node, name)
        if isinstance(node.func, ast.Attribute):
            method = node.func.attr
            receiver = node.func.value
            if method == "requires_grad_" and self.makes_torch_tensor(receiver):
                if not (node.args and is_false(node.args[0])):
                    self.flag(node, "requires_grad_", "requires_grad_() on a torch tensor")
            elif method in FUSED and self.makes_torch_tensor(receiver):
                self.flag(node, "fused kernel", f".{method}() on a torch tensor")
        self.generic_visit(node)

    def check_dynamic_lookup(self, node: ast.Call, name: str) -> None:
        """getattr(torch, "nn"), importlib.import_module("torch.nn"), __import__("torch.nn")."""
        literal = next((a.value for a in node.args if isinstance(a, ast.Constant)), None)
        if not isinstance(literal, str):
            return
        if name == "getattr":
            if self.canonical(node.args[0]) == "torch" and (
                is_forbidden_module(f"torch.{literal}") or literal in FUSED
            ):
                self.flag(node, "forbidden attribute", f"getattr(torch, {literal!r})")
        elif is_forbidden_module(literal):
            self.flag(node, "forbidden import", f"{name}({literal!r})")


def is_false(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def scan_source(source: str, path: str = "<string>") -> list[Violation]:
    scanner = Scanner(path)
    scanner.visit(ast.parse(textwrap.dedent(source), filename=path))
    return scanner.violations


def scan_package() -> list[Violation]:
    found = []
    for file in sorted(PACKAGE.rglob("*.py")):
        relative = file.relative_to(PACKAGE).as_posix()
        for violation in scan_source(file.read_text(encoding="utf-8"), relative):
            if violation.kind not in ALLOWED.get(relative, set()):
                found.append(violation)
    return found


# ------------------------------------------------------------------ the package obeys


def test_the_package_source_obeys_the_rule():
    files = list(PACKAGE.rglob("*.py"))
    assert len(files) >= 20, f"expected the whole package, found {len(files)} files"
    violations = scan_package()
    assert not violations, "THE RULE is broken:\n" + "\n".join(map(str, violations))


def test_the_allowance_is_still_needed():
    """An allowance that no longer matches anything must go, so it cannot hide new code."""
    for relative, kinds in ALLOWED.items():
        source = (PACKAGE / relative).read_text(encoding="utf-8")
        found = {v.kind for v in scan_source(source, relative)}
        assert kinds <= found, f"{relative}: allowance for {kinds - found} no longer needed"


# ------------------------------------------------------------------ the scanner catches

PLANTED = {
    "import torch.nn": "import torch.nn",
    "import as": "import torch.nn.functional as F",
    "import optim": "import torch.optim",
    "import autograd": "import torch.autograd.grad_mode",
    "import func": "import torch.func",
    "import functorch": "import functorch",
    "from torch.nn": "from torch.nn import functional",
    "from torch.nn.functional": "from torch.nn.functional import relu",
    "from torch import nn": "from torch import nn",
    "from torch import optim": "from torch import optim as o",
    "from torch import autograd": "from torch import autograd",
    "from torch import softmax": "from torch import softmax",
    "from torch.autograd": "from torch.autograd import grad",
    "chain nn": "import torch\ny = torch.nn.functional.relu(x)",
    "chain optim": "import torch\nopt = torch.optim.SGD(params, lr=0.1)",
    "chain autograd": "import torch\ng = torch.autograd.grad(y, x)",
    "chain under alias": "import torch as T\ny = T.nn.Linear(2, 3)",
    "chain in a function": "import torch\ndef f(x):\n    return torch.autograd.grad(x, x)",
    "private C": "import torch\ny = torch._C._nn.linear(x, w)",
    "torch.softmax": "import torch\ny = torch.softmax(x, dim=1)",
    "torch.log_softmax": "import torch\ny = torch.log_softmax(x, 1)",
    "torch.relu": "import torch\ny = torch.relu(x)",
    "torch.sigmoid": "import torch\ny = torch.sigmoid(x)",
    "torch.conv2d": "import torch\ny = torch.conv2d(x, w)",
    "torch.max_pool2d": "import torch\ny = torch.max_pool2d(x, 2)",
    "torch.avg_pool1d": "import torch\ny = torch.avg_pool1d(x, 2)",
    "torch.addmm": "import torch\ny = torch.addmm(b, x, w)",
    "torch.baddbmm": "import torch\ny = torch.baddbmm(b, x, w)",
    "torch.nll_loss": "import torch\ny = torch.nll_loss(x, t)",
    "torch.dropout": "import torch\ny = torch.dropout(x, 0.5, True)",
    "torch.batch_norm": "import torch\ny = torch.batch_norm(x, w, b, m, v, True, 0.1, 1e-5, False)",
    "torch.layer_norm": "import torch\ny = torch.layer_norm(x, (3,))",
    "torch.embedding": "import torch\ny = torch.embedding(w, i)",
    "torch.lstm": "import torch\ny = torch.lstm(x, h, p, True, 1, 0.0, True, False, False)",
    "Tensor.softmax via torch": "import torch\ny = torch.Tensor.softmax(x, 1)",
    "method on torch call": "import torch\ny = torch.randn(3).softmax(0)",
    "method on .data": "y = x.data.log_softmax(1)",
    "method on torch-bound name": (
        "import torch\ndef f():\n    t = torch.ones(2)\n    return t.exp().relu()"
    ),
    "method in a Function's forward": "def forward(ctx, a):\n    return a.log_softmax(-1)",
    "method in a Function's backward": (
        "def backward(ctx, grad):\n    (out,) = ctx.saved_tensors\n    return grad * out.sigmoid()"
    ),
    "method on saved tensors": (
        "def backward(ctx, grad):\n    a, b = ctx.saved_tensors\n    return a.softmax(0), None"
    ),
    "getattr torch nn": "import torch\nF = getattr(torch, 'nn')",
    "getattr fused": "import torch\nf = getattr(torch, 'softmax')",
    "import_module": "import importlib\nm = importlib.import_module('torch.autograd')",
    "__import__": "m = __import__('torch.optim')",
    "requires_grad=True": "import torch\nw = torch.zeros(3, requires_grad=True)",
    "requires_grad variable": "import torch\nw = torch.tensor(d, requires_grad=flag)",
    "requires_grad_ on torch call": "import torch\nw = torch.zeros(3).requires_grad_()",
    "requires_grad_ on name": "import torch\nw = torch.zeros(3)\nw.requires_grad_(True)",
    "requires_grad_ on .data": "p.data.requires_grad_()",
    "requires_grad attribute": "import torch\nw = torch.ones(2)\nw.requires_grad = True",
    "requires_grad in new_zeros": (
        "import torch\nw = torch.ones(2).new_zeros(3, requires_grad=True)"
    ),
}


@pytest.mark.parametrize("source", PLANTED.values(), ids=PLANTED.keys())
def test_the_scanner_flags_a_planted_violation(source):
    assert scan_source(source), f"not flagged:\n{source}"


CLEAN = {
    "elementary torch": "import torch\ny = torch.exp(x) + torch.where(m, a, b) @ w",
    "alias of torch": "import torch as _torch\nf = _torch.float32",
    "our Tensor methods": "def f(x):\n    return x.relu() + x.sigmoid() + x.tanh()",
    "our factories": "import minitorch_edu as mt\nw = mt.zeros(3, requires_grad=True)",
    "our requires_grad_": "def f(p):\n    return p.requires_grad_()",
    "requires_grad False": "import torch\nw = torch.zeros(3, requires_grad=False)",
    "rebound name": "import torch\nt = torch.ones(2)\nt = make()\nt.requires_grad_()",
    "unfold and as_strided": "def f(a):\n    return a.unfold(0, 2, 1).as_strided((2,), (1,))",
    "words in strings": "doc = 'torch.nn.functional.pad, torch.softmax'",
    "other nn": "import minitorch_edu.nn as nn\nlayer = nn.Linear(2, 3)",
    "our functional": (
        "import minitorch_edu.nn.functional as F\ny = F.dropout(F.relu(F.linear(x, w, b)), 0.5)"
    ),
    "a module's own methods": "def forward(self, x):\n    return self.dropout(self.linear(x))",
    "our ops in a module": "def forward(self, x):\n    return x.relu().sigmoid()",
}


@pytest.mark.parametrize("source", CLEAN.values(), ids=CLEAN.keys())
def test_the_scanner_passes_clean_code(source):
    assert scan_source(source) == []


# ------------------------------------------------------------------ dynamic check


class RuleWatcher(TorchFunctionMode):
    """Sees every torch function and Tensor method called while active."""

    def __init__(self) -> None:
        super().__init__()
        self.broken: list[str] = []
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.calls += 1
        name = getattr(func, "__name__", repr(func))
        module = getattr(func, "__module__", "") or ""
        if name in FUSED:
            self.broken.append(f"fused kernel {module}.{name}")
        if module.startswith(("torch.nn", "torch.autograd", "torch.optim")) or name == "backward":
            self.broken.append(f"torch autograd/nn/optim call {module}.{name}")
        if kwargs.get("requires_grad"):
            self.broken.append(f"{name}(requires_grad=True)")
        if name == "requires_grad_" and (len(args) < 2 or args[1]):
            self.broken.append("requires_grad_() on a torch tensor")
        result = func(*args, **kwargs)
        for value in result if isinstance(result, tuple | list) else (result,):
            if isinstance(value, torch.Tensor) and value.requires_grad:
                self.broken.append(f"{name} returned a torch tensor that requires grad")
        return result


def every_core_op(x: mt.Tensor, w: mt.Tensor) -> mt.Tensor:
    """One scalar built from every op of the core, differentiable in x and w."""
    h = (x @ w).tanh() + x.sum(1, keepdim=True).sigmoid() * 0.5
    h = mt.maximum(h, h.relu() * 0.9) - mt.minimum(h, -h) / 3 + (h.abs() + 1).sqrt().log()
    h = mt.where(h > 0, h, h.exp() - 1) ** 2 + (2.0**h).clamp(0.5, 3.0)
    parts = [
        h.amax(1),
        h.max(0).values,
        h.min(),
        h.logsumexp(1),
        h.var(0),
        h.std(),
        h.mean((0, 1), keepdim=True).reshape(1),
        h.T.flatten()[::2],
        h.unsqueeze(0).permute(2, 0, 1).squeeze(1).transpose(0, 1).contiguous().view(-1),
        h[:, None].expand(-1, 2, -1).reshape(-1),
        h[mt.tensor([0, 0, 1])].reshape(-1),
        h[h > 0.5],
        h.gather(1, torch.tensor([[0], [1], [1]])).reshape(-1),
        h.new_zeros(6).scatter_add(0, torch.tensor([0, 5, 5]), h[0]),
        h.index_select(0, torch.tensor([2, 2])).reshape(-1),
        h.new_zeros(2, 3).index_add(0, torch.tensor([1, 1, 0]), h).reshape(-1),
        h.narrow(1, 1, 2).select(0, 1),
        mt.stack(h.split(1, 0)).reshape(-1),
        mt.cat([piece.reshape(-1) for piece in h.chunk(3, 1) + h.unbind(0)]),
        mt.pad(h, (1, -1, 0, 1), value=0.5).reshape(-1),
        h.unfold(1, 2, 1).reshape(-1),
        h.as_strided((2, 2), (1, 1), 1).reshape(-1),
        h.to(torch.float32).double().clone().reshape(-1),
    ]
    return sum(part.sum() for part in parts)


def run_every_core_op() -> list[torch.Tensor]:
    x = mt.tensor(torch.linspace(-1, 1, 9, dtype=torch.float64).reshape(3, 3), requires_grad=True)
    w = mt.tensor(
        torch.linspace(0.5, -0.5, 9, dtype=torch.float64).reshape(3, 3), requires_grad=True
    )
    out = every_core_op(x, w)
    (grad_x,) = mt.autograd.grad(out, [x], create_graph=True)
    (grad_x * grad_x).sum().backward()
    out2 = every_core_op(x, w)
    out2.backward()
    return [out.data, grad_x.data, x.grad.data, w.grad.data]


def test_every_core_op_runs_without_fused_kernels_or_torch_autograd():
    watcher = RuleWatcher()
    with watcher:
        run_every_core_op()
    assert watcher.calls > 100, "the watcher saw too few torch calls to mean anything"
    assert not watcher.broken, "THE RULE is broken at run time:\n" + "\n".join(
        sorted(set(watcher.broken))
    )


def test_the_watcher_catches_what_it_should():
    with RuleWatcher() as watcher:
        torch.softmax(torch.ones(3), 0)
        torch.ones(2, requires_grad=True)
    assert len(watcher.broken) >= 2


class TorchGradModeOff(TorchFunctionMode):
    """Runs every torch function and Tensor method with torch's grad mode switched off.

    (Switching it off globally would switch ours off too: minitorch_edu honours torch's
    `no_grad` so that ported code keeps working. Inside each torch call it is invisible to us.)
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        with torch.no_grad():
            return func(*args, **(kwargs or {}))


def test_results_are_identical_with_torchs_grad_mode_switched_off():
    """If anything leaned on torch.autograd, switching it off in every torch call would change
    results."""
    expected = run_every_core_op()
    with TorchGradModeOff():
        found = run_every_core_op()
    for ours, theirs in zip(found, expected):
        assert torch.equal(ours, theirs)
