"""The chain rule for one element: how d(output)/dx[i] is put together, with the numbers.

    result = mt.study.explain_gradient(loss, W, (3, 7), names={W: "W", x: "x"})
    result.value     # equals W.grad[3, 7] after loss.backward()
    print(result)    # the chain rule written out (a notebook shows it as a table)
    result.to_dict() # the same, JSON-ready

x[i] may be used by several ops (or twice by one). Each use is an input of some node, and
its backward hands that input a gradient; the engine sums every use's gradient (summed
back to x's shape when the input was broadcast):

    dx[i] = sum over uses u of  share_u,     share_u = (gradient node u gave its input)[i]

A node's backward is linear in the gradient of its output, `grad`, so each share splits
into one term per output element j that x[i] affects:

    share_u = sum over j of  d(out)[j] * d out[j] / d x[i]
              (upstream gradient)   (local derivative)

For out = a @ b this is dB[k, m] = sum_n grad[n, m] * a[n, k]; for an elementwise op there
is one term. Each upstream d(out)[j] is itself the sum over the uses of out[j], and so on
up to the output. At a real model's scale a share has thousands of terms (a conv weight
meets every position of every sample), so they are grouped by the first indices of j (per
sample, then per channel), each group's sum shown, the largest groups and terms listed
with their factors, and the rest summed: what is shown always adds up to the share.

Nothing here knows any op. The shares are read from a recorded backward pass. The local
derivatives d out[j] / d x[i], for every j at once, come from the node's own backward by
differentiating it once more (the "double backward" trick): backward(u) = Jᵀu is linear in
u, and its entry at i is e_i · Jᵀu = (J e_i) · u, so its gradient with respect to u is the
column J e_i. Where a backward cannot be differentiated, the column is found by calling it
with one-hot gradients instead. Each op's formula data (`Formula.local`) then says where a
local derivative comes from: `1 - tanh1[0, 3]² = 1 - 0.1247²`.
"""

from __future__ import annotations

import heapq
import itertools
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from minitorch_edu.autograd import engine, function, grad_mode
from minitorch_edu.autograd.formula import Binding, FormulaError
from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor, as_torch
from minitorch_edu.study.format import Labeller, Snapshot, format_number, format_shape
from minitorch_edu.study.trace import Tape


@dataclass
class Term:
    """One term of a share: upstream gradient times local derivative, at output element j."""

    output_index: tuple[int, ...]  # j, an element of the node's output
    upstream: float  # d(output) / d(node output)[j]
    local: float  # d(node output)[j] / d(input)[i], from the node's backward
    product: float  # upstream * local
    explained: ElementGradient | None = None  # how `upstream` came about, when followed
    expression: str = ""  # where the local derivative comes from: "1 - tanh1[0, 3]²"
    numbers: str = ""  # the same with the numbers in: "1 - 0.1247²"
    expression_value: float | None = None  # what the op's formula data gives (= local)

    def to_dict(self, ids: dict[int, int] | None = None) -> dict[str, Any]:
        explained = None
        if self.explained is not None and ids is not None:
            explained = ids.get(id(self.explained))
        return {
            "output_index": list(self.output_index),
            "upstream": _json(self.upstream),
            "local": _json(self.local),
            "product": _json(self.product),
            "expression": self.expression,
            "numbers": self.numbers,
            "explained": explained,
        }


@dataclass
class Group:
    """The terms whose output element j starts with `index` (one sample, one channel...).

    `value` is the sum of all `count` of them. When `opened`, the largest subgroups (or,
    at the last level, the largest terms) are listed and the rest summed: the listed
    values plus `left_out_sum` add up to `value`.
    """

    index: tuple[int, ...]  # the prefix of j its terms share; () for a whole use
    value: float
    count: int
    opened: bool = False
    groups: list[Group] = field(default_factory=list)
    terms: list[Term] = field(default_factory=list)
    left_out: int = 0  # subgroups (or terms) not listed
    left_out_count: int = 0  # terms in them
    left_out_sum: float = 0.0
    limit: str = ""  # the setting that capped the listing ("max_terms=4")

    def to_dict(self, ids: dict[int, int] | None = None) -> dict[str, Any]:
        return {
            "index": list(self.index),
            "value": _json(self.value),
            "count": self.count,
            "opened": self.opened,
            "groups": [g.to_dict(ids) for g in self.groups],
            "terms": [t.to_dict(ids) for t in self.terms],
            "left_out": self.left_out,
            "left_out_count": self.left_out_count,
            "left_out_sum": _json(self.left_out_sum),
            "limit": self.limit,
        }


@dataclass
class Use:
    """One place the element is used: input `input_position` of a node, and its share.

    `terms` lists the terms shown (those of the opened groups), `terms_left_out` and
    `left_out_sum` the others: sum(t.product for t in terms) + left_out_sum = value.
    `parts` holds the same terms grouped (per sample, per channel, ...).
    """

    op: str  # the op, e.g. "MatMul"
    node_label: str  # the node's output, e.g. "matmul1"
    formula: str
    input_position: int
    value: float  # this use's share of the gradient, as the engine computed it
    terms: list[Term] | None  # the terms shown (None: the share was not split)
    terms_left_out: int = 0  # nonzero terms not listed
    left_out_sum: float = 0.0  # what they add up to
    note: str = ""  # why the share was not split, when it was not
    input_name: str = ""  # the input's name in the op's formula: "W"
    local_formula: str = ""  # "d linear1[..., o] / d fc1.weight[o, k] = x[..., k]"
    local_note: str = ""  # a remark from the op's formula data
    term_count: int = 0  # nonzero terms in all
    parts: Group | None = None  # the terms, grouped
    group_names: tuple[str, ...] = ()  # names of j's leading indices ("n", "o")
    _node: Any = field(default=None, repr=False, compare=False)

    def to_dict(self, ids: dict[int, int] | None = None) -> dict[str, Any]:
        return {
            "op": self.op,
            "node": self.node_label,
            "formula": self.formula,
            "input_position": self.input_position,
            "input_name": self.input_name,
            "value": _json(self.value),
            "local_formula": self.local_formula,
            "local_note": self.local_note,
            "note": self.note,
            "term_count": self.term_count,
            "terms_left_out": self.terms_left_out,
            "left_out_sum": _json(self.left_out_sum),
            "group_names": list(self.group_names),
            "parts": None if self.parts is None else self.parts.to_dict(ids),
        }


@dataclass
class ElementGradient:
    """d(output)/d(label)[index]: its value and the uses it is the sum of."""

    label: str
    index: tuple[int, ...]
    value: float
    uses: list[Use] = field(default_factory=list)
    is_output: bool = False  # the output itself: `value` is where backward started

    def to_dict(self, ids: dict[int, int] | None = None) -> dict[str, Any]:
        return {
            "label": self.label,
            "index": list(self.index),
            "value": _json(self.value),
            "is_output": self.is_output,
            "uses": [use.to_dict(ids) for use in self.uses],
        }


@dataclass
class GradientExplanation:
    """What `explain_gradient` found. `value` is d(output)/d(tensor)[index].

    `limits` says, for each limit the walk reached, what was left out and which setting
    to change; `settings` holds the settings it ran with.
    """

    output_label: str
    label: str
    index: tuple[int, ...]
    value: float
    element: ElementGradient
    path_count: int  # how many paths lead from the tensor to the output in the graph
    paths: list[list[str]]  # the first few of them, as labels from the tensor to the output
    limits: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    formulas: dict[str, str] = field(default_factory=dict)  # op -> backward formula, met on the way

    def elements(self) -> list[ElementGradient]:
        """Every element gradient worked out, the explained one first, each once."""
        found, seen, stack = [], set(), [self.element]
        while stack:
            current = stack.pop(0)
            if id(current) in seen:
                continue
            seen.add(id(current))
            found.append(current)
            for use in current.uses:
                stack.extend(t.explained for t in use.terms or () if t.explained is not None)
        return found

    def text(self, digits: int = 4, width: int | None = 100) -> str:
        """The chain rule written out with the numbers; lines longer than `width` are
        broken before an ` = ` (None: never)."""
        from minitorch_edu.study.display import explanation_text

        return explanation_text(self, digits, width)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the element gradients as a flat list; a term's `explained` is the
        position in that list of the element gradient it was followed to."""
        elements = self.elements()
        ids = {id(element): number for number, element in enumerate(elements)}
        return {
            "format": "minitorch_edu.study.gradient_explanation",
            "version": 1,
            "output": self.output_label,
            "tensor": self.label,
            "index": list(self.index),
            "value": _json(self.value),
            "path_count": self.path_count,
            "paths": self.paths,
            "formulas": dict(self.formulas),
            "limits": list(self.limits),
            "settings": dict(self.settings),
            "elements": [element.to_dict(ids) for element in elements],
        }

    def __str__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        from minitorch_edu.study.display import explanation_html

        return explanation_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text())


def explain_gradient(
    output: Tensor,
    tensor: Tensor,
    index: int | tuple[int, ...],
    *,
    gradient: Any = None,
    tape: Tape | None = None,
    names: Any = None,
    max_terms: int = 4,
    max_groups: int = 4,
    max_depth: int | None = None,
    max_expansions: int = 40,
    max_probe_elements: int = 4096,
    max_paths: int = 6,
    sample: int | None = None,
) -> GradientExplanation:
    """Follow one element of `tensor` through the backward pass of `output`.

    output       what is differentiated (a scalar loss, or pass `gradient` as for backward)
    tensor       a leaf (a parameter, an input) or any tensor in output's graph
    index        the element, e.g. (3, 7)
    gradient     the gradient backward starts from, as in `output.backward(gradient)`
                 (needed for a non-scalar output; not used with `tape`)
    tape         a Tape that recorded `output.backward()`: explain that pass (the last one
                 through output's graph). Without one, a backward pass is run here, like
                 autograd.grad with retain_graph=True: no `.grad` is touched and the graph
                 stays usable
    names        labels: a dict {tensor: "name"} or a Module (named_parameters())
    max_terms    terms listed per group (the largest, by |product|); the rest are summed
    max_groups   groups listed per level (per sample, per channel); the rest are summed
    max_depth    how many uses deep to follow upstream gradients (None: to the output)
    max_expansions  how many upstream gradients to work out in all; the terms that matter
                 most for the explained value (|product| times the local derivatives
                 between them and it) are followed first
    max_probe_elements  only where a node's backward cannot be differentiated: find its
                 local derivatives by one-hot backward calls if its output has at most
                 this many elements
    sample       also list (and open) the group of this sample (the first index of j)

    The value is the sum of the uses' shares as the engine computed them; a hook on the
    tensor (register_hook) that changes its gradient is not part of it.
    """
    if not isinstance(output, Tensor) or not isinstance(tensor, Tensor):
        raise TypeError(
            "explain_gradient: output and tensor must be minitorch_edu Tensors, got "
            f"{type(output).__name__} and {type(tensor).__name__}"
        )
    if output.grad_fn is None:
        raise ValueError(
            "explain_gradient: output has no graph (it was not computed from a tensor that "
            "requires grad, or it was computed under no_grad)"
        )
    if not tensor.requires_grad:
        raise ValueError("explain_gradient: tensor does not require grad, so it has no gradient")
    for name, value, low in (
        ("max_terms", max_terms, 1),
        ("max_groups", max_groups, 1),
        ("max_expansions", max_expansions, 0),
        ("max_probe_elements", max_probe_elements, 0),
        ("max_paths", max_paths, 0),
    ):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"explain_gradient: {name} must be an integer >= {low}, got {value!r}")
    index = _normalize_index(index, tensor.shape)

    root = output.grad_fn
    target = tensor if tensor.grad_fn is None else tensor.grad_fn
    order = engine.topological_order([root])
    labels = graph_labels(order, names, output)
    in_graph = target is root or any(parent is target for node in order for parent in node.parents)
    if not in_graph:
        raise ValueError(
            f"explain_gradient: the tensor ({labels.label(tensor)}, shape "
            f"{tuple(tensor.shape)}) is not in the graph of the output "
            f"({labels.label(output)}): no path leads from it to the output, so its gradient "
            "is 0. Pass a tensor the output was computed from"
        )

    if tape is None:
        # For a result (not a leaf) the leaves are asked for too: the engine's pruning of
        # nodes not needed for `inputs` only looks for leaves, so asking for the result
        # alone would skip the nodes between it and the output.
        leaves = {id(p): p for n in order for p in n.parents if isinstance(p, Tensor)}
        wanted = [tensor] if tensor.grad_fn is None else [tensor, *leaves.values()]
        records = _run_backward(output, wanted, gradient)
    else:
        records = _records_from_tape(tape, root, order)

    path_count, paths = _paths(order, root, target, labels, max_paths)
    settings = {
        "max_terms": max_terms,
        "max_groups": max_groups,
        "max_depth": max_depth,
        "max_expansions": max_expansions,
        "max_probe_elements": max_probe_elements,
        "sample": sample,
    }
    walk = _Walk(records, root, labels, settings)
    element = walk.run(target, index)
    return GradientExplanation(
        output_label=labels.label(output),
        label=labels.label(tensor),
        index=index,
        value=element.value,
        element=element,
        path_count=path_count,
        paths=paths,
        limits=walk.limits(),
        settings=settings,
        formulas=walk.formulas,
    )


def graph_labels(order: list[Function], names: Any, output: Tensor | None = None) -> Labeller:
    """Labels for a graph, given in forward order (matmul1 before matmul2). An unnamed
    scalar output is called `loss`."""
    labels = Labeller(names)
    if output is not None and output.grad_fn is not None and output.dim() == 0:
        if id(output.grad_fn) not in labels.names and id(output) not in labels.names:
            labels.names[id(output.grad_fn)] = "loss"
    for node in reversed(order):
        for parent in node.parents:
            if isinstance(parent, Tensor):
                labels.tensor(parent)
        labels.node(node)
    return labels


# ---------------------------------------------------------------------- the recorded pass
@dataclass
class _Record:
    """One node's backward as recorded: the gradient it received and the ones it gave."""

    node: Function
    grad: torch.Tensor
    input_grads: list[torch.Tensor | None]
    device: torch.device


def _run_backward(output: Tensor, wanted: list[Tensor], gradient: Any) -> dict[int, _Record]:
    """Run backward from `output` to the `wanted` tensors, recording every node's numbers."""
    tape = Tape(store_limit=None, max_bytes=None)
    previous = function.tracer
    function.tracer = tape  # not chained to an outer trace: this pass is ours alone
    try:
        engine.grad(
            [output],
            wanted,
            None if gradient is None else [gradient],
            retain_graph=True,
            allow_unused=True,
        )
    except RuntimeError as error:
        if str(error) == function.FREED_MESSAGE:
            raise RuntimeError(
                "explain_gradient: the graph of `output` was freed by an earlier backward. "
                "Run the forward pass again, call that backward with retain_graph=True, or "
                "record it with mt.study.trace() and pass tape=."
            ) from None
        if "implicitly created only for scalar" in str(error):
            raise RuntimeError(
                f"explain_gradient: output has shape {tuple(output.shape)}, not a scalar: "
                "grad can be implicitly created only for scalar outputs; pass gradient= (a "
                f"tensor of shape {tuple(output.shape)}), as for output.backward(gradient)"
            ) from None
        raise
    finally:
        function.tracer = previous
    return {id(record.node): record for record in _records(tape.backward_steps)}


def _records_from_tape(tape: Tape, root: Function, order: list[Function]) -> dict[int, _Record]:
    """The steps of the tape's last backward pass through `root`, one per node."""
    steps = tape.backward_steps
    starts = [i for i, step in enumerate(steps) if step.get_node() is root]
    if not starts:
        raise ValueError(
            "explain_gradient: the tape holds no backward step of this output's graph; run "
            "output.backward() inside `with mt.study.trace() as tape:`"
        )
    in_graph = {id(node) for node in order}
    chosen, seen = [], set()
    for step in steps[starts[-1] :]:
        node = step.get_node()
        key = id(node)
        if key in in_graph and key not in seen:  # the first after the root: the same pass
            seen.add(key)
            chosen.append(step)
    return {id(record.node): record for record in _records(chosen)}


def _records(steps: list) -> list[_Record]:
    records = []
    for step in steps:
        node = step.get_node()
        if node is None:
            continue
        values = [step.inputs[0], *step.outputs]
        if any(isinstance(v, Snapshot) and not v.stored for v in values):
            raise ValueError(
                f"explain_gradient: step {step.index} ({step.op}) kept only a summary of its "
                "gradients; trace with store_limit=None (and max_bytes=None), or call "
                "explain_gradient without a tape"
            )
        grad = step.inputs[0]
        records.append(
            _Record(
                node=node,
                grad=grad.values,
                input_grads=[v.values if isinstance(v, Snapshot) else None for v in step.outputs],
                device=torch.device(grad.device),
            )
        )
    return records


# ---------------------------------------------------------------------- the walk
class _Walk:
    """Works out ElementGradients from the records, following the terms that matter most."""

    def __init__(self, records, root, labels, settings) -> None:
        self.records: dict[int, _Record] = records
        self.root = root
        self.labels = labels
        self.settings = settings
        self.max_terms = settings["max_terms"]
        self.max_groups = settings["max_groups"]
        self.memo: dict[tuple[int, tuple[int, ...]], ElementGradient] = {}
        self.formulas: dict[str, str] = {}
        self.followed = 0
        self.not_followed = 0  # listed terms left unfollowed by max_expansions
        self.too_deep = 0  # ... and by max_depth
        self.notes: list[str] = []
        self.bindings: dict[tuple[int, int], Binding | str] = {}
        # Who used what: id(tensor or node) -> [(record of the user, input position)].
        self.uses: dict[int, list[tuple[_Record, int]]] = {}
        for record in records.values():
            for position, parent in enumerate(record.node.parents):
                if parent is not None:
                    self.uses.setdefault(id(parent), []).append((record, position))

    def run(self, target: Any, index: tuple[int, ...]) -> ElementGradient:
        """The element's gradient, then upstream gradients, most important first."""
        counter = itertools.count()
        queue: list = []

        def push(element: ElementGradient, weight: float, depth: int) -> None:
            for use in element.uses:
                for term in use.terms or ():
                    if term.product == 0:  # contributes nothing: not worth following
                        continue
                    node = use._node
                    priority = abs(term.product * weight)
                    heapq.heappush(
                        queue, (-priority, next(counter), term, node, weight * term.local, depth)
                    )

        first = self.element(target, index)
        push(first, 1.0, 0)
        max_depth = self.settings["max_depth"]
        while queue:
            _, _, term, node, weight, depth = heapq.heappop(queue)
            if max_depth is not None and depth >= max_depth:
                self.too_deep += 1
                continue
            key = (id(node), term.output_index)
            if key in self.memo:
                term.explained = self.memo[key]
                continue
            if self.followed >= self.settings["max_expansions"]:
                self.not_followed += 1
                continue
            self.followed += 1
            term.explained = self.element(node, term.output_index)
            push(term.explained, weight, depth + 1)
        return first

    def element(self, target: Any, index: tuple[int, ...]) -> ElementGradient:
        """d(output)/d(target)[index], target being a leaf Tensor or a node (its output)."""
        key = (id(target), index)
        if key in self.memo:
            return self.memo[key]
        shape = target.shape if isinstance(target, Tensor) else target.output_shape
        label = self.labels.label(target)
        result = ElementGradient(label, index, 0.0, is_output=target is self.root)
        self.memo[key] = result
        for record, position in self.uses.get(id(target), []):
            raw = record.input_grads[position]
            if raw is None:
                continue
            share = engine.sum_to_shape(raw, torch.Size(shape))[index].item()
            op = type(record.node)
            self.formulas.setdefault(op.__name__, op.formula)
            use = Use(
                op=op.__name__,
                node_label=self.labels.label(record.node),
                formula=op.formula,
                input_position=position,
                value=share,
                terms=None,
                _node=record.node,
            )
            self._split(use, record, shape, index)
            result.uses.append(use)
        record = self.records.get(id(target)) if isinstance(target, Function) else None
        if record is not None:  # what the node received (after any hooks on it)
            result.value = record.grad[index].item()
        else:
            result.value = math.fsum(use.value for use in result.uses)
        return result

    # ------------------------------------------------------------------ one use
    def _split(self, use: Use, record: _Record, shape: Any, index: tuple) -> None:
        """Split a share into terms over the node's output elements, grouped."""
        node = record.node
        binding = self._binding(record, use.input_position)
        if isinstance(binding, Binding):
            use.input_name = binding.input
            use.local_formula = binding.symbolic()
            use.local_note = binding.formula.notes.get(binding.input, "")
            out_spec = binding.formula.indices.get("out")
            if out_spec:
                use.group_names = tuple(n.strip() for n in out_spec.split(","))
        elif node.derivatives is not None:
            use.input_name = node.derivatives.input_name(use.input_position)
        if node._saved is None:
            use.note = (
                "not split into terms: this node's saved tensors were freed by that backward "
                "(run it with retain_graph=True, or call explain_gradient without a tape)"
            )
            return
        try:
            column = _local_derivatives(
                record, use.input_position, shape, index, self.settings["max_probe_elements"]
            )
        except _ProbeLimit as limit:
            use.note = str(limit)
            self.notes.append(str(limit))
            return
        except RuntimeError as error:
            use.note = f"not split into terms: {error}"
            return
        flat_column = column.reshape(-1)
        nonzero = flat_column.nonzero().flatten()
        upstream = record.grad.reshape(-1).to(torch.float64)
        locals_ = flat_column[nonzero].to(torch.float64).cpu()
        upstreams = upstream[nonzero.to(upstream.device)].cpu()
        products = upstreams * locals_
        use.term_count = len(nonzero)
        if not len(nonzero):
            use.terms = self._zero_term(use, record, binding, shape, index)
            use.parts = Group((), 0.0, len(use.terms), True, terms=list(use.terms))
            return
        out_shape = tuple(node.output_shape)
        indices = _unravel(nonzero.cpu(), out_shape)  # (K, ndim)

        rows_of: dict[int, int] = {}  # id(term) -> its position among the nonzero terms

        def make_term(k: int) -> Term:
            j = tuple(indices[k].tolist())
            term = Term(j, upstreams[k].item(), locals_[k].item(), products[k].item())
            self._describe(term, binding, index)
            rows_of[id(term)] = k
            return term

        levels = [level for level in range(1, max(len(out_shape) - 2, 1) + 1)]
        levels = [level for level in levels if level < len(out_shape)]
        sample = self.settings["sample"]
        rows = torch.arange(len(nonzero))
        use.parts = self._group(rows, (), 0, indices, products, levels, sample, make_term)
        listed = sorted(_listed_terms(use.parts), key=lambda term: rows_of[id(term)])
        use.terms = listed
        shown = torch.zeros(len(nonzero), dtype=torch.bool)
        shown[[rows_of[id(term)] for term in listed]] = True
        use.terms_left_out = int((~shown).sum())
        use.left_out_sum = products[~shown].sum().item()

    def _group(self, rows, prefix, depth, indices, products, levels, sample, make_term) -> Group:
        """The terms `rows` (all sharing `prefix` of j) as a Group, opened: its largest
        subgroups (split at the next level where that separates them) or terms listed."""
        part = products[rows]
        group = Group(prefix, part.sum().item(), len(rows), opened=True)
        if len(rows) <= self.max_terms:
            group.terms = [make_term(k) for k in rows.tolist()]
            return group
        for level in (level for level in levels if level > len(prefix)):
            keys, inverse = torch.unique(indices[rows, :level], dim=0, return_inverse=True)
            if 1 < len(keys) < len(rows):
                break
        else:  # no level splits these terms: list the largest (a zero product only when
            # nothing else is left: its upstream gradient is 0, it adds nothing)
            order = part.abs().argsort(descending=True, stable=True)
            nonzero = int((part != 0).sum())
            count = min(self.max_terms, nonzero) if nonzero else self.max_terms
            kept = rows[order[:count]].sort().values
            group.terms = [make_term(k) for k in kept.tolist()]
            group.left_out = len(rows) - len(kept)
            group.left_out_count = group.left_out
            group.left_out_sum = part[order[count:]].sum().item()
            group.limit = f"max_terms={self.max_terms}"
            return group
        sums = torch.zeros(len(keys), dtype=torch.float64).index_add_(0, inverse, part)
        counts = torch.bincount(inverse, minlength=len(keys))
        ranked = sums.abs().argsort(descending=True, stable=True).tolist()
        chosen = ranked[: self.max_groups]
        focus = None
        if sample is not None and len(prefix) == 0:
            matches = (keys[:, 0] == sample).nonzero().flatten().tolist()
            if matches:
                focus = matches[0]
                if focus not in chosen:
                    chosen.append(focus)
        opened = {chosen[0], focus} - {None}
        for number in chosen:
            key = tuple(keys[number].tolist())
            if number in opened:
                members = rows[inverse == number]
                group.groups.append(
                    self._group(
                        members, key, depth + 1, indices, products, levels, sample, make_term
                    )
                )
            else:
                group.groups.append(Group(key, sums[number].item(), int(counts[number])))
        rest = [number for number in ranked if number not in set(chosen)]
        group.left_out = len(rest)
        if rest:
            rest_index = torch.tensor(rest)
            group.left_out_count = int(counts[rest_index].sum())
            group.left_out_sum = sums[rest_index].sum().item()
            group.limit = f"max_groups={self.max_groups}"
        return group

    def _zero_term(self, use, record, binding, shape, index) -> list[Term]:
        """An elementwise op whose local derivative is 0 at this element: that one term."""
        node = record.node
        if not isinstance(binding, Binding) or not binding.formula.elementwise:
            return []
        if tuple(node.output_shape) != tuple(shape):
            return []
        term = Term(index, record.grad[index].item(), 0.0, 0.0)
        self._describe(term, binding, index)
        return [term]

    def _binding(self, record: _Record, position: int) -> Binding | str:
        key = (id(record.node), position)
        if key not in self.bindings:
            node = record.node
            formula = type(node).derivatives
            if formula is None:
                self.bindings[key] = f"{type(node).__name__} declares no formula data"
            else:
                try:
                    self.bindings[key] = Binding(
                        formula, node, position, _role_labels(node, formula, self.labels)
                    )
                except (FormulaError, LookupError, TypeError, ValueError) as error:
                    self.bindings[key] = str(error)
        return self.bindings[key]

    def _describe(self, term: Term, binding: Binding | str, index: tuple[int, ...]) -> None:
        """Where the term's local derivative comes from, read from the op's formula data."""
        if not isinstance(binding, Binding):
            return
        try:
            local = binding.at(term.output_index, index, digits=4)
        except (FormulaError, LookupError, TypeError, ValueError, ZeroDivisionError):
            return
        term.expression, term.numbers, term.expression_value = (
            local.expression,
            local.numbers,
            local.value,
        )

    def limits(self) -> list[str]:
        found = list(dict.fromkeys(self.notes))
        if self.not_followed:
            found.append(
                f"{self.followed} upstream gradients were worked out "
                f"(max_expansions={self.settings['max_expansions']}); {self.not_followed} "
                "listed terms were not followed: raise max_expansions to follow them"
            )
        if self.too_deep:
            found.append(
                f"{self.too_deep} listed terms lie deeper than max_depth="
                f"{self.settings['max_depth']} and were not followed: raise max_depth "
                "(None follows them to the output)"
            )
        return found


def _listed_terms(group: Group) -> list[Term]:
    """Every term listed in a group and its opened subgroups."""
    found = list(group.terms)
    for child in group.groups:
        found.extend(_listed_terms(child))
    return found


def _role_labels(node: Function, formula: Any, labels: Labeller) -> dict[str, str]:
    """What each name of the op's formula shows as: its inputs' and its output's labels."""
    shown = {"out": labels.label(node)}
    for position, parent in enumerate(node.parents):
        if parent is not None:
            shown[formula.input_name(position)] = labels.label(parent)
    saved = node._saved or ()
    for name, value in zip(formula.saved_names(), saved):
        if value is function._OUTPUT:
            shown[name] = labels.label(node)
        elif isinstance(value, Tensor):
            shown[name] = labels.label(value)
    return shown


def _unravel(flat: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Flat positions (K,) as indices (K, len(shape)) into `shape`."""
    columns = []
    for size in reversed(shape):
        columns.append(flat % size)
        flat = flat // size
    if not columns:
        return torch.zeros(len(flat), 0, dtype=torch.long)
    return torch.stack(list(reversed(columns)), dim=1)


# ---------------------------------------------------------------------- local derivatives
class _ProbeLimit(RuntimeError):
    pass


def _local_derivatives(
    record: _Record, position: int, shape: Any, index: tuple[int, ...], max_probe: int
) -> torch.Tensor:
    """d out[j] / d input[index] for every output element j: the column J e_i.

    From the node's own backward, differentiated once more (see the module docstring);
    where that backward cannot be differentiated, from one-hot backward calls.
    """
    node = record.node
    saved_needs = node.needs_input_grad
    # Ask the backward for this one input's gradient only (it may skip the others' work).
    node.needs_input_grad = tuple(i == position for i in range(len(saved_needs)))
    try:
        try:
            return _column_by_double_backward(record, position, shape, index)
        except Exception:  # a backward written with plain torch calls: probe it instead
            return _column_by_probing(record, position, shape, index, max_probe)
    finally:
        node.needs_input_grad = saved_needs


def _column_by_double_backward(record, position, shape, index) -> torch.Tensor:
    node = record.node
    with _recording_alone():
        seed = torch.zeros(node.output_shape, dtype=node.output_dtype, device=record.device)
        u = Tensor(seed, requires_grad=True)
        grads = type(node).backward(node, u)
        grad = (grads if isinstance(grads, tuple) else (grads,))[position]
        if not isinstance(grad, Tensor) or not grad.requires_grad:
            if grad is not None and as_torch(grad).abs().sum() != 0:
                raise RuntimeError("the backward did not record how it used its gradient")
            return torch.zeros_like(seed)
        picked = engine.sum_to_shape(grad, torch.Size(shape))[index]
        if not picked.requires_grad:
            return torch.zeros_like(seed)
        (column,) = engine.grad([picked], [u], retain_graph=True, allow_unused=True)
    return torch.zeros_like(seed) if column is None else column.data


def _column_by_probing(record, position, shape, index, max_probe) -> torch.Tensor:
    """backward(node, e_j) is row j of the node's Jacobian; its entry at `index` is the
    local derivative. Nonzero ones are found by halving: backward with random weights on
    a range of j is 0 exactly when every derivative in the range is (with probability 1)."""
    node = record.node
    count = math.prod(node.output_shape)
    if count > max_probe:
        raise _ProbeLimit(
            f"not split into terms: {type(node).__name__}'s backward cannot be "
            f"differentiated, and probing it one output element at a time is capped at "
            f"max_probe_elements={max_probe} (its output has {count}): raise "
            "max_probe_elements"
        )
    column = torch.zeros(count, dtype=torch.float64)

    def probe(start: int, stop: int, weights: torch.Tensor | None) -> float:
        grad = torch.zeros(count, dtype=node.output_dtype, device=record.device)
        grad[start:stop] = 1 if weights is None else weights[start:stop]
        grads = type(node).backward(node, grad.reshape(node.output_shape))
        grad = (grads if isinstance(grads, tuple) else (grads,))[position]
        if grad is None:
            return 0.0
        return engine.sum_to_shape(as_torch(grad), torch.Size(shape))[index].item()

    with _quiet():
        if count <= 32:
            for j in range(count):
                column[j] = probe(j, j + 1, None)
        else:
            generator = torch.Generator().manual_seed(0)
            weights = torch.rand(count, generator=generator, dtype=torch.float64) + 0.5
            weights = weights.to(dtype=node.output_dtype, device=record.device)
            ranges = [(0, count)]
            while ranges:
                start, stop = ranges.pop()
                if stop - start == 1:
                    column[start] = probe(start, stop, None)
                elif probe(start, stop, weights) != 0:
                    middle = (start + stop) // 2
                    ranges.extend([(middle, stop), (start, middle)])
    return column.reshape(node.output_shape)


@contextmanager
def _quiet():
    """Backward calls made to probe a node: no graph, and no active trace sees them."""
    previous = function.tracer
    function.tracer = None
    try:
        with grad_mode.no_grad():
            yield
    finally:
        function.tracer = previous


@contextmanager
def _recording_alone():
    """A backward differentiated once more: recorded, and no active trace sees it."""
    previous = function.tracer
    function.tracer = None
    try:
        with grad_mode.enable_grad():
            yield
    finally:
        function.tracer = previous


# ---------------------------------------------------------------------- paths
def _paths(order, root, target, labels, max_paths) -> tuple[int, list[list[str]]]:
    """How many paths lead from `target` to `root`, and the first `max_paths` of them."""
    if target is root:
        return 1, [[labels.label(root)]]
    count: dict[int, int] = {}  # id(node) -> number of paths from target to node
    for node in reversed(order):  # parents before the nodes that use them
        total = 0
        for parent in node.parents:
            if parent is target:
                total += 1
            elif isinstance(parent, Function):
                total += count.get(id(parent), 0)
        if total:
            count[id(node)] = total
    listed: list[list[str]] = []
    stack: list[tuple[Any, list[str]]] = [(root, [labels.label(root)])]
    while stack and len(listed) < max_paths:
        node, path = stack.pop()
        for parent in reversed(node.parents):
            if parent is target:
                listed.append([labels.label(target), *reversed(path)])
            elif isinstance(parent, Function) and id(parent) in count:
                stack.append((parent, [*path, labels.label(parent)]))
    return count.get(id(root), 0), listed[:max_paths]


# ---------------------------------------------------------------------- indices
def _normalize_index(index: Any, shape: torch.Size) -> tuple[int, ...]:
    if isinstance(index, int) and not isinstance(index, bool):
        index = (index,)
    if not isinstance(index, tuple | list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in index
    ):
        raise TypeError(f"explain_gradient: index must be a tuple of ints, got {index!r}")
    if len(index) != len(shape):
        raise IndexError(
            f"explain_gradient: index {tuple(index)} has {len(index)} entries, but the tensor "
            f"has shape {tuple(shape)} ({len(shape)} dims)"
        )
    normalized = []
    for i, size in zip(index, shape):
        if not -size <= i < size:
            raise IndexError(
                f"explain_gradient: index {tuple(index)} is out of range for shape {tuple(shape)}"
            )
        normalized.append(i % size)
    return tuple(normalized)


def _unflatten(flat: int, shape: torch.Size) -> tuple[int, ...]:
    index = []
    for size in reversed(shape):
        index.append(flat % size)
        flat //= size
    return tuple(reversed(index))


def _json(x: float) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


__all__ = [
    "ElementGradient",
    "GradientExplanation",
    "Group",
    "Term",
    "Use",
    "explain_gradient",
    "format_number",
    "format_shape",
]
