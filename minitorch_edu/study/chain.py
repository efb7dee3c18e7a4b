"""The chain rule for one element: how d(output)/dx[i] is put together, with the numbers.

    result = mt.study.explain_gradient(loss, W, (3, 7), names={W: "W", x: "x"})
    result.value     # equals W.grad[3, 7] after loss.backward()
    print(result)    # the chain rule written out

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
up to the output, where backward started (with 1 for a scalar). Followed all the way, this
sums the products of local derivatives over every path from x[i] to the output.

Nothing here knows any op. The shares are read from a recorded backward pass (each node's
input gradients, as the engine computed them), and the local derivatives come from calling
the node's own backward with a one-hot `grad` (1 at output element j, 0 elsewhere): its
gradient for the input at i is d out[j] / d x[i]. So it works for every op, including ops
added later, as long as its backward is a correct vector-Jacobian product.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from minitorch_edu.autograd import engine, function, grad_mode
from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor, as_torch
from minitorch_edu.study.format import Labeller, Snapshot, format_number, format_shape
from minitorch_edu.study.trace import Tape


@dataclass
class Term:
    """One term of a share: upstream gradient times local derivative, at output element j."""

    output_index: tuple[int, ...]  # j, an element of the node's output
    upstream: float  # d(output) / d(node output)[j]
    local: float  # d(node output)[j] / d(input)[i]
    product: float  # upstream * local
    explained: ElementGradient | None = None  # how `upstream` came about, when followed


@dataclass
class Use:
    """One place the element is used: input `input_position` of a node, and its share."""

    op: str  # the op, e.g. "MatMul"
    node_label: str  # the node's output, e.g. "matmul1"
    formula: str
    input_position: int
    value: float  # this use's share of the gradient, as the engine computed it
    terms: list[Term] | None  # the share split over the node's output elements (None: not split)
    terms_left_out: int = 0  # nonzero terms not listed (beyond max_terms)
    left_out_sum: float = 0.0  # what they add up to
    note: str = ""  # why the share was not split, when it was not


@dataclass
class ElementGradient:
    """d(output)/d(label)[index]: its value and the uses it is the sum of."""

    label: str
    index: tuple[int, ...]
    value: float
    uses: list[Use] = field(default_factory=list)
    is_output: bool = False  # the output itself: `value` is where backward started


@dataclass
class GradientExplanation:
    """What `explain_gradient` found. `value` is d(output)/d(tensor)[index]."""

    output_label: str
    label: str
    index: tuple[int, ...]
    value: float
    element: ElementGradient
    path_count: int  # how many paths lead from the tensor to the output in the graph
    paths: list[list[str]]  # the first few of them, as labels from the tensor to the output

    def text(self, digits: int = 4) -> str:
        """The chain rule written out with the numbers."""
        where = f"{self.label}{format_shape(self.index)}"
        lines = [
            f"d({self.output_label})/d({where}) = {format_number(self.value, 8)}",
            f"(dX below means d({self.output_label})/dX, the gradient of "
            f"{self.output_label} with respect to X)",
            "",
        ]
        if self.path_count == 0:
            lines.append(f"{self.label} does not lead to {self.output_label}: the gradient is 0.")
            return "\n".join(lines)
        plural = "s" if self.path_count != 1 else ""
        lines.append(f"{self.path_count} path{plural} from {self.label} to {self.output_label}:")
        lines.extend("  " + " -> ".join(path) for path in self.paths)
        if self.path_count > len(self.paths):
            lines.append(f"  ... and {self.path_count - len(self.paths)} more")
        formulas = _formulas(self.element)
        if formulas:
            lines.append("")
            lines.append("Backward formulas of the ops on the way:")
            width = max(map(len, formulas))
            lines.extend(f"  {op:<{width}}  {formula}" for op, formula in formulas.items())
        lines.append("")
        lines.append(
            "Each gradient is the sum over the uses of its element; a use gives "
            "(upstream gradient) * (local derivative):"
        )
        _render(self.element, "", set(), lines, digits)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()


def explain_gradient(
    output: Tensor,
    tensor: Tensor,
    index: int | tuple[int, ...],
    *,
    gradient: Any = None,
    tape: Tape | None = None,
    names: Any = None,
    max_terms: int = 4,
    max_depth: int | None = None,
    max_expansions: int = 40,
    max_probe_elements: int = 4096,
    max_paths: int = 6,
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
    max_terms    terms listed (and followed) per use: the largest, by |product|
    max_depth    how many uses deep to follow upstream gradients (None: to the output)
    max_expansions  how many element gradients to work out in all
    max_probe_elements  split a share into terms only for nodes with at most this many
                 output elements (each split costs a few backward calls of that node)

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
    index = _normalize_index(index, tensor.shape)

    root = output.grad_fn
    target = tensor if tensor.grad_fn is None else tensor.grad_fn
    order = engine.topological_order([root])
    labels = Labeller(names)
    for node in reversed(order):  # label in forward order: matmul1 before matmul2
        for parent in node.parents:
            if isinstance(parent, Tensor):
                labels.tensor(parent)
        labels.node(node)

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
    walk = _Walk(records, root, labels, max_terms, max_depth, max_expansions, max_probe_elements)
    element = walk.element(target, index, 0)
    return GradientExplanation(
        output_label=labels.label(output),
        label=labels.label(tensor),
        index=index,
        value=element.value,
        element=element,
        path_count=path_count,
        paths=paths,
    )


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
    """Works out ElementGradients from the records, following upstream gradients."""

    def __init__(self, records, root, labels, max_terms, max_depth, max_expansions, max_probe):
        self.records: dict[int, _Record] = records
        self.root = root
        self.labels = labels
        self.max_terms = max_terms
        self.max_depth = max_depth
        self.max_expansions = max_expansions
        self.max_probe = max_probe
        self.expansions = 0
        self.memo: dict[tuple[int, tuple[int, ...]], ElementGradient] = {}
        # Who used what: id(tensor or node) -> [(record of the user, input position)].
        self.uses: dict[int, list[tuple[_Record, int]]] = {}
        for record in records.values():
            for position, parent in enumerate(record.node.parents):
                if parent is not None:
                    self.uses.setdefault(id(parent), []).append((record, position))

    def element(self, target: Any, index: tuple[int, ...], depth: int) -> ElementGradient:
        """d(output)/d(target)[index], target being a leaf Tensor or a node (its output)."""
        key = (id(target), index)
        if key in self.memo:
            return self.memo[key]
        self.expansions += 1
        shape = target.shape if isinstance(target, Tensor) else target.output_shape
        label = self.labels.label(target)
        result = ElementGradient(label, index, 0.0, is_output=target is self.root)
        self.memo[key] = result
        for record, position in self.uses.get(id(target), []):
            raw = record.input_grads[position]
            if raw is None:
                continue
            share = engine.sum_to_shape(raw, torch.Size(shape))[index].item()
            use = Use(
                op=type(record.node).__name__,
                node_label=self.labels.label(record.node),
                formula=type(record.node).formula,
                input_position=position,
                value=share,
                terms=None,
            )
            self._split(use, record, shape, index, depth)
            result.uses.append(use)
        record = self.records.get(id(target)) if isinstance(target, Function) else None
        if record is not None:  # what the node received (after any hooks on it)
            result.value = record.grad[index].item()
        else:
            result.value = math.fsum(use.value for use in result.uses)
        return result

    def _split(self, use: Use, record: _Record, shape: Any, index: tuple, depth: int) -> None:
        """Split a share into terms over the node's output elements, and follow them."""
        node = record.node
        if node._saved is None:
            use.note = (
                "not split into terms: this node's saved tensors were freed by that backward "
                "(run it with retain_graph=True, or call explain_gradient without a tape)"
            )
            return
        count = math.prod(node.output_shape)
        if count > self.max_probe:
            use.note = (
                f"not split into terms: the node's output has {count} elements "
                f"(more than max_probe_elements={self.max_probe})"
            )
            return
        try:
            column = _local_derivatives(record, use.input_position, shape, index)
        except RuntimeError as error:
            use.note = f"not split into terms: {error}"
            return
        terms = []
        for flat in column.flatten().nonzero().flatten().tolist():
            j = _unflatten(flat, node.output_shape)
            local = column[j].item()
            upstream = record.grad[j].item()
            terms.append(Term(j, upstream, local, upstream * local))
        if len(terms) > self.max_terms:
            ranked = sorted(terms, key=lambda t: -abs(t.product))
            kept = ranked[: self.max_terms]
            use.terms_left_out = len(terms) - len(kept)
            use.left_out_sum = math.fsum(t.product for t in ranked[self.max_terms :])
            terms = [t for t in terms if any(t is k for k in kept)]
        use.terms = terms
        if self.max_depth is not None and depth >= self.max_depth:
            return
        for term in terms:
            if self.expansions >= self.max_expansions:
                break
            term.explained = self.element(node, term.output_index, depth + 1)


def _local_derivatives(
    record: _Record, position: int, shape: Any, index: tuple[int, ...]
) -> torch.Tensor:
    """d out[j] / d input[index] for every output element j, from backward calls.

    backward(node, e_j) is row j of the node's Jacobian (a vector-Jacobian product with a
    one-hot vector); its entry at the input's `index`, after summing a broadcast input's
    gradient back to its shape as the engine does, is the local derivative.

    Most of these are 0 (an elementwise op has one nonzero, a matmul one per row), so for
    big outputs the nonzero ones are found by halving: backward with random weights on a
    range of j gives sum_j weight_j * d out[j] / d input[index], which is 0 exactly when
    every derivative in the range is (with probability 1), and only ranges where it is not
    are split. Each nonzero derivative is then read from its own one-hot call.
    """
    node = record.node
    count = math.prod(node.output_shape)
    column = torch.zeros(count, dtype=torch.float64)
    saved_needs = node.needs_input_grad
    # Ask the backward for this one input's gradient only (it may skip the others' work).
    node.needs_input_grad = tuple(i == position for i in range(len(saved_needs)))

    def probe(start: int, stop: int, weights: torch.Tensor | None) -> float:
        grad = torch.zeros(count, dtype=node.output_dtype, device=record.device)
        grad[start:stop] = 1 if weights is None else weights[start:stop]
        grads = type(node).backward(node, grad.reshape(node.output_shape))
        grad = (grads if isinstance(grads, tuple) else (grads,))[position]
        if grad is None:
            return 0.0
        return engine.sum_to_shape(as_torch(grad), torch.Size(shape))[index].item()

    try:
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
    finally:
        node.needs_input_grad = saved_needs
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


# ---------------------------------------------------------------------- text
def _formulas(element: ElementGradient) -> dict[str, str]:
    """Each op met on the way, with its formula, in the order first met."""
    found: dict[str, str] = {}
    stack, seen = [element], set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for use in current.uses:
            found.setdefault(use.op, use.formula)
            stack.extend(t.explained for t in use.terms or () if t.explained is not None)
    return found


def _render(element: ElementGradient, indent: str, seen: set, lines: list, digits: int) -> None:
    """One line per element gradient; a chain of single terms stays at one indent."""
    number = lambda x: format_number(x, digits)  # noqa: E731
    where = f"{element.label}{format_shape(element.index)}"
    head = f"{indent}d{where} = {number(element.value)}"
    if id(element) in seen:
        lines.append(head + "  (as above)")
        return
    seen.add(id(element))
    if element.is_output:
        lines.append(head + "  (where backward started)")
        return
    if not element.uses:
        lines.append(head + "  (no gradient reaches it)")
        return
    if len(element.uses) == 1 and _single_term(element.uses[0]):
        use = element.uses[0]
        term = use.terms[0]
        lines.append(f"{head} = {_term_text(use, term, number)}   {_via(use)}")
        if term.explained is not None:
            _render(term.explained, indent, seen, lines, digits)
        return
    count = len(element.uses)
    lines.append(head + (f", the sum over its {count} uses:" if count > 1 else ":"))
    inner = indent + "  "
    for use in element.uses:
        if use.terms is None:
            lines.append(f"{inner}{_via(use)}: {number(use.value)}  ({use.note})")
        elif not use.terms:
            lines.append(f"{inner}{_via(use)}: 0  (the local derivative is 0 here)")
        elif _single_term(use):
            term = use.terms[0]
            lines.append(f"{inner}{_via(use)}: {_term_text(use, term, number)}")
            if term.explained is not None:
                _render(term.explained, inner + "  ", seen, lines, digits)
        else:
            lines.append(
                f"{inner}{_via(use)}: {number(use.value)} = sum over j of "
                f"d{use.node_label}[j] * (d {use.node_label}[j] / d {where}):"
            )
            for term in use.terms:
                lines.append(
                    f"{inner}  j = {format_shape(term.output_index)}: "
                    f"{number(term.upstream)} * {number(term.local)} = {number(term.product)}"
                )
                if term.explained is not None:
                    _render(term.explained, inner + "    ", seen, lines, digits)
            if use.terms_left_out:
                lines.append(
                    f"{inner}  ... and {use.terms_left_out} smaller terms, adding "
                    f"{number(use.left_out_sum)}"
                )


def _single_term(use: Use) -> bool:
    return use.terms is not None and len(use.terms) == 1 and not use.terms_left_out


def _via(use: Use) -> str:
    return f"via {use.node_label} ({use.op}, input {use.input_position})"


def _term_text(use: Use, term: Term, number: Any) -> str:
    upstream = f"d{use.node_label}{format_shape(term.output_index)}"
    return (
        f"{upstream} * {number(term.local)} = {number(term.upstream)} * {number(term.local)} "
        f"= {number(term.product)}"
    )


# ---------------------------------------------------------------------- indices
def _normalize_index(index: Any, shape: torch.Size) -> tuple[int, ...]:
    if isinstance(index, int):
        index = (index,)
    if not isinstance(index, tuple | list) or not all(isinstance(i, int) for i in index):
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
