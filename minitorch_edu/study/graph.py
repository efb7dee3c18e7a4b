"""Pictures of the computation graph, as Graphviz DOT text, or SVG/PNG/PDF files.

    text = mt.study.to_dot(loss, names={W: "W", b: "b"})   # always works: plain text
    mt.study.render(loss, "graph.png", names=model)        # needs Graphviz's `dot` program
    mt.study.draw(loss)                                    # shows itself in a notebook

What is drawn, read from the graph the forward pass recorded (nothing is re-run); a
legend in the picture says the same:

    blue boxes    leaves that require grad (parameters, inputs), with their names and shapes
    yellow boxes  constants: inputs that need no gradient (the data, the targets)
    white boxes   ops: the op, its options (stride, padding, ...), its backward formula and
                  the tensors it saved for backward; grey and dashed once backward has
                  freed those saved tensors
    green box     the tensor the graph was drawn from, by its name (an unnamed scalar: loss)
    arrows        the data flow of the forward pass, labelled with the shape carried;
                  "0:", "1:" say which input of the op an arrow is, when it has several

With `show_values=True` each box also shows its numbers, micrograd style: `value` and
`grad` (small tensors whole, larger ones as shape, min, max, mean and norm). Leaves show
`.data` and `.grad`; ops show what a tape recorded (`tape=`: the forward output and the
gradient its backward received), or without one the output where the op saved it.

Big graphs: `max_nodes` keeps the ops nearest the output and says how many were left out;
`hide_ops` (e.g. {"Reshape", "Permute"}) draws arrows straight through those ops.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import deque
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import torch

from minitorch_edu.autograd import engine, function
from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.study.chain import graph_labels
from minitorch_edu.study.format import Snapshot, format_shape, option_text, snapshot

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf"}

INSTALL_HELP = (
    "Install Graphviz, which provides `dot`: `apt-get install graphviz` (Debian, Ubuntu), "
    "`brew install graphviz` (macOS), `conda install graphviz` (conda), or the installer "
    "from https://graphviz.org/download/ (Windows; tick 'add to PATH'). Without it, "
    "mt.study.to_dot(...) still returns the DOT text, which any Graphviz viewer can show."
)


class GraphvizNotFoundError(RuntimeError):
    """The Graphviz `dot` program is needed to render a picture and is not on PATH."""


def to_dot(
    tensors: Tensor | Sequence[Tensor],
    names: Any = None,
    *,
    show_saved: bool = True,
    show_formula: bool = True,
    max_nodes: int = 150,
    hide_ops: Collection[str] = (),
    show_values: bool = False,
    tape: Any = None,
    print_limit: int = 6,
    show_options: bool = True,
    legend: bool = True,
) -> str:
    """The graph that produced `tensors` (one Tensor or several), as Graphviz DOT text.

    names        labels for leaves and results: a dict {tensor: "name"} or a Module
    show_saved   list each op's saved tensors (and mark those freed by backward)
    show_formula put each op's backward formula in its box
    max_nodes    draw at most this many ops, those nearest the outputs; a note says how
                 many more there are
    hide_ops     op names (e.g. "Reshape") to draw through rather than as boxes
    show_values  put each tensor's numbers (value, grad) in its box
    tape         a Tape that recorded the forward and backward pass: the op values and
                 gradients shown (see the module docstring)
    print_limit  tensors with at most this many elements are shown whole
    show_options put each op's options (stride, padding, dim, ...) in its box
    legend       add a legend for the colours
    """
    outputs = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    for output in outputs:
        if not isinstance(output, Tensor):
            raise TypeError(f"to_dot: expected minitorch_edu Tensors, got {type(output).__name__}")
    if max_nodes < 1:
        raise ValueError(f"to_dot: max_nodes must be at least 1, got {max_nodes}")
    drawing = _Drawing(outputs, names, show_saved, show_formula, max_nodes, set(hide_ops))
    drawing.show_values, drawing.print_limit = show_values, print_limit
    drawing.show_options, drawing.legend = show_options, legend
    drawing.read_tape(tape)
    return drawing.dot()


def render(
    tensors: Tensor | Sequence[Tensor],
    path: str | Path,
    names: Any = None,
    *,
    timeout: float = 60.0,
    **options: Any,
) -> Path:
    """Draw the graph into `path`: SVG, PNG or PDF, chosen by the file extension.

    Runs Graphviz's `dot` program (no Python package needed); raises GraphvizNotFoundError,
    saying how to install it, when `dot` is missing. `options` are those of `to_dot`.
    """
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(
            f"render: cannot tell the picture format from {path.name!r}; use a file name "
            f"ending in {', '.join(FORMATS)}"
        )
    data = run_dot(to_dot(tensors, names, **options), kind, timeout)
    path.write_bytes(data)
    return path


def run_dot(source: str, kind: str = "svg", timeout: float = 60.0) -> bytes:
    """Run `dot -T<kind>` on DOT text and return the picture's bytes."""
    program = shutil.which("dot")
    if program is None:
        raise GraphvizNotFoundError(
            "the Graphviz program `dot` was not found on PATH, so the graph cannot be "
            f"rendered. {INSTALL_HELP}"
        )
    try:
        finished = subprocess.run(
            [program, f"-T{kind}"], input=source.encode(), capture_output=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(
            f"dot took longer than {timeout:g} s; draw fewer ops (max_nodes=..., hide_ops=...)"
        ) from None
    if finished.returncode != 0:
        message = finished.stderr.decode(errors="replace").strip()
        raise RuntimeError(f"dot failed (exit status {finished.returncode}): {message}")
    return finished.stdout


class GraphPicture:
    """A drawn graph: `.source` is the DOT text; shows itself as SVG in a notebook."""

    def __init__(self, source: str) -> None:
        self.source = source

    def save(self, path: str | Path, timeout: float = 60.0) -> Path:
        """Write the picture (.svg, .png, .pdf) or, for a .dot/.gv file, the DOT text."""
        path = Path(path)
        if path.suffix.lower() in (".dot", ".gv"):
            path.write_text(self.source)
            return path
        kind = FORMATS.get(path.suffix.lower())
        if kind is None:
            raise ValueError(
                f"save: unknown picture format {path.suffix!r}; use {', '.join([*FORMATS, '.dot'])}"
            )
        path.write_bytes(run_dot(self.source, kind, timeout))
        return path

    def _repr_svg_(self) -> str | None:
        try:
            return run_dot(self.source, "svg").decode()
        except GraphvizNotFoundError:
            return None  # the notebook falls back to the text form

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the DOT text."""
        return {"format": "graphviz-dot", "source": self.source}

    def __str__(self) -> str:
        return self.source

    def __repr__(self) -> str:
        boxes = sum(  # op and tensor boxes (the legend's are indented further)
            line.startswith("  ")
            and not line.startswith("   ")
            and "[label=" in line
            and "->" not in line
            for line in self.source.splitlines()
        )
        return f"<GraphPicture: {boxes} boxes; .source holds the DOT text>"


def draw(tensors: Tensor | Sequence[Tensor], names: Any = None, **options: Any) -> GraphPicture:
    """`to_dot` wrapped in an object that a notebook shows as a picture (SVG)."""
    return GraphPicture(to_dot(tensors, names, **options))


# ---------------------------------------------------------------------- drawing
class _Drawing:
    def __init__(self, outputs, names, show_saved, show_formula, max_nodes, hide_ops):
        self.outputs = outputs
        self.show_values, self.print_limit, self.show_options, self.legend = False, 6, True, True
        self.values: dict[int, Any] = {}  # id(node) -> the output snapshot a tape recorded
        self.grads: dict[int, Any] = {}  # id(node) -> the gradient its backward received
        self.constants: dict[tuple[int, int], tuple[str, Any]] = {}  # (node, input) -> value
        self.show_saved = show_saved
        self.show_formula = show_formula
        self.hide_ops = hide_ops
        roots = []
        for output in outputs:
            if output.grad_fn is not None and all(output.grad_fn is not r for r in roots):
                roots.append(output.grad_fn)
        self.root_ids = {id(root) for root in roots}
        self.order = engine.topological_order(roots) if roots else []
        scalar = outputs[0] if len(outputs) == 1 else None
        self.labels = graph_labels(self.order, names, scalar)
        self.kept = self._nearest(roots, max_nodes)
        self.left_out = sum(1 for n in self.order if not self._hidden(n)) - len(self.kept)
        self.max_nodes = max_nodes
        self.ids: dict[int, str] = {}
        self.lines: list[str] = []

    def read_tape(self, tape: Any) -> None:
        """The values, gradients and constant inputs a tape recorded for these nodes."""
        if tape is None:
            return
        wanted = {id(node) for node in self.order}
        for step in tape.steps:
            node = step.get_node()
            if node is None or id(node) not in wanted:
                continue
            if step.direction == "forward":
                self.values[id(node)] = step.outputs[0]
                for position, (name, value) in enumerate(zip(step.input_names, step.inputs)):
                    if position < len(node.parents) and node.parents[position] is None:
                        self.constants[(id(node), position)] = (name, value)
            elif step.direction == "backward":
                self.grads[id(node)] = step.inputs[0]  # the last pass's, when there are several

    def _hidden(self, node: Function) -> bool:
        if id(node) in self.root_ids:  # an output's own op is always drawn
            return False
        return type(node).__name__ in self.hide_ops or node.name() in self.hide_ops

    def _nearest(self, roots: list[Function], limit: int) -> set[int]:
        """Ids of the (visible) ops nearest the outputs, breadth first, at most `limit`."""
        kept: set[int] = set()
        seen = {id(root) for root in roots}
        queue = deque(roots)
        while queue and len(kept) < limit:
            node = queue.popleft()
            if not self._hidden(node):
                kept.add(id(node))
            for parent in node.parents:
                if isinstance(parent, Function) and id(parent) not in seen:
                    seen.add(id(parent))
                    queue.append(parent)
        return kept

    def _id(self, obj: Any, prefix: str) -> str:
        key = id(obj)
        if key not in self.ids:
            self.ids[key] = f"{prefix}{len(self.ids)}"
        return self.ids[key]

    def dot(self) -> str:
        self.lines = [
            "digraph minitorch_edu {",
            '  graph [rankdir=TB, fontname="Helvetica", fontsize=11];',
            '  node [shape=box, style="rounded,filled", fillcolor=white, fontname="Helvetica", '
            "fontsize=10];",
            '  edge [fontname="Helvetica", fontsize=9];',
        ]
        more = None
        for node in self.order:
            if id(node) not in self.kept:
                continue
            self._op_box(node)
            for position, parent in enumerate(node.parents):
                if parent is None:
                    self._constant(node, position)
                    continue
                for source, shape in self._sources(parent):
                    if source is None:
                        more = more or self._more_box()
                        self._edge(more, node, shape, position)
                    else:
                        self._edge(source, node, shape, position)
        for output in self.outputs:
            self._output_box(output)
        if self.legend:
            self._legend()
        if self.left_out > 0:
            note = (
                f"{self.left_out} more ops not drawn (max_nodes={self.max_nodes}); "
                "raise max_nodes or hide ops with hide_ops="
            )
            self.lines.append(f"  label={_quote(note)};")
        self.lines.append("}")
        return "\n".join(self.lines) + "\n"

    def _sources(self, parent: Any) -> list[tuple[Any, torch.Size]]:
        """What an arrow into an op starts from: a leaf, a kept op, or the 'more' note.

        Hidden ops are looked through, to their own inputs.
        """
        if parent is None:
            return []
        if isinstance(parent, Tensor):
            self._leaf_box(parent)
            return [(parent, parent.shape)]
        if id(parent) in self.kept:
            return [(parent, parent.output_shape)]
        if not self._hidden(parent):
            return [(None, parent.output_shape)]
        found = []
        for grandparent in parent.parents:
            found.extend((source, parent.output_shape) for source, _ in self._sources(grandparent))
        return found

    def _op_box(self, node: Function) -> None:
        label = self.labels.label(node)
        lines = [f"{type(node).__name__}  ({label})"]
        if self.show_options and node.options:
            options = ", ".join(f"{k}={option_text(v)}" for k, v in node.options.items())
            lines.extend(_wrap_options(options))
        if self.show_formula and type(node).formula:
            lines.extend(_wrap(type(node).formula))
        if self.show_values:
            value = self.values.get(id(node))
            if value is None and node._output is not None:
                value = snapshot(node._output)
            lines.extend(self._numbers("value", value))
            lines.extend(self._numbers("grad", self.grads.get(id(node))))
        style = ""
        if self.show_saved:
            if node._saved is None:
                lines.append("saved tensors freed by backward")
                style = ', style="rounded,filled,dashed", fillcolor=gray90, fontcolor=gray30'
            elif node._saved:
                lines.append("saved: " + ", ".join(self._saved(node, v) for v in node._saved))
        box = self._id(node, "n")
        self.lines.append(f"  {box} [label={_quote(chr(10).join(lines))}{style}];")

    def _saved(self, node: Function, value: Any) -> str:
        if value is function._OUTPUT:
            return f"output {format_shape(node.output_shape)}"
        if isinstance(value, Tensor):
            return f"{self.labels.label(value)} {format_shape(value.shape)}"
        if isinstance(value, torch.Tensor):
            return f"{str(value.dtype).removeprefix('torch.')}{format_shape(value.shape)}"
        return repr(value)

    def _leaf_box(self, leaf: Tensor) -> None:
        if id(leaf) in self.ids:
            return
        box = self._id(leaf, "n")
        lines = [self.labels.label(leaf), format_shape(leaf.shape)]
        if self.show_values:
            lines += self._numbers("value", snapshot(leaf.data))
            grad = leaf.grad
            lines += self._numbers("grad", None if grad is None else snapshot(grad.data))
        label = "\n".join(lines)
        self.lines.append(f"  {box} [label={_quote(label)}, fillcolor=lightblue];")

    def _constant(self, node: Function, position: int) -> None:
        """A box for an input that needs no gradient (data, targets, a mask)."""
        name, value = self._saved_constant(node, position)
        found = self.constants.get((id(node), position))
        if found is not None:  # the tape's numbers; its label unless ours names the tensor
            name = found[0] if name.startswith("constant (") else name
            value = found[1]
        lines = [name]
        if isinstance(value, Snapshot):
            lines.append(format_shape(value.shape))
            if self.show_values:
                lines += self._numbers("value", value)
        elif value is not None:
            lines.append(option_text(value))
        box = f"c{len(self.ids)}"
        self.ids[id((node, position))] = box
        self.lines.append(f"  {box} [label={_quote(chr(10).join(lines))}, fillcolor=lightyellow];")
        shape = value.shape if isinstance(value, Snapshot) else ()
        self._edge(box, node, torch.Size(shape), position)

    def _saved_constant(self, node: Function, position: int) -> tuple[str, Any]:
        """Without a tape: the constant when the op saved it (its formula data names it)."""
        formula = type(node).derivatives
        name = formula.input_name(position) if formula is not None else f"input {position}"
        if formula is None or node._saved is None or name not in formula.saved_names():
            return f"constant ({name})", None
        value = node._saved[formula.saved_names().index(name)]
        if isinstance(value, Tensor):
            return self.labels.label(value), snapshot(value.data)
        if isinstance(value, torch.Tensor):
            return f"constant ({name})", snapshot(value)
        return f"constant ({name})", value

    def _numbers(self, what: str, value: Any) -> list[str]:
        if value is None:
            return []
        text = value.text(self.print_limit, digits=4)
        return [f"{what} = {line}" if i == 0 else line for i, line in enumerate(text.split("\n"))]

    def _legend(self) -> None:
        """Sample boxes for the colours, in a frame of their own."""
        self.lines.append("  subgraph cluster_legend {")
        self.lines.append('    label="legend"; style="rounded"; color=gray60; fontsize=10;')
        samples = [
            ("parameter or input\n(requires grad)", "fillcolor=lightblue"),
            ("constant\n(no gradient)", "fillcolor=lightyellow"),
            ("op: options, backward\nformula, saved tensors", "fillcolor=white"),
            (
                "op whose saved tensors\nbackward has freed",
                'style="rounded,filled,dashed", fillcolor=gray90, fontcolor=gray30',
            ),
            ("output", "fillcolor=palegreen"),
        ]
        for number, (text, style) in enumerate(samples):
            self.lines.append(f"    legend{number} [label={_quote(text)}, {style}];")
        members = "; ".join(f"legend{number}" for number in range(len(samples)))
        self.lines.append(f"    {{rank=same; {members};}}")
        chain = " -> ".join(f"legend{number}" for number in range(len(samples)))
        self.lines.append(f"    {chain} [style=invis];")
        self.lines.append("  }")

    def _output_box(self, output: Tensor) -> None:
        if output.grad_fn is None:  # a leaf drawn on its own
            self._leaf_box(output)
            return
        box = self._id(output, "out")
        name = self.labels.names.get(id(output)) or self.labels.names.get(id(output.grad_fn))
        lines = [name or "output", format_shape(output.shape)]
        if self.show_values:
            lines += self._numbers("value", snapshot(output.data))
            lines += self._numbers("grad", self.grads.get(id(output.grad_fn)) and _seed(output))
        label = "\n".join(lines)
        self.lines.append(f"  {box} [label={_quote(label)}, fillcolor=palegreen];")
        if id(output.grad_fn) in self.kept:
            self.lines.append(f"  {self._id(output.grad_fn, 'n')} -> {box};")

    def _more_box(self) -> str:
        box = "more"
        note = f"{self.left_out} more ops\n(max_nodes={self.max_nodes})"
        self.lines.append(f'  {box} [label={_quote(note)}, style="dashed", shape=box];')
        return box

    def _edge(self, source: Any, node: Function, shape: torch.Size, position: int) -> None:
        start = source if isinstance(source, str) else self._id(source, "n")
        label = format_shape(shape)
        if len(node.parents) > 1:
            label = f"{position}: {label}"
        self.lines.append(f"  {start} -> {self._id(node, 'n')} [label={_quote(label)}];")


def _seed(output: Tensor) -> Snapshot:
    """The gradient backward starts from at a scalar output: 1."""
    return snapshot(torch.ones_like(output.data))


def _wrap_options(text: str, width: int = 48) -> list[str]:
    """`name=value, name=value` on lines of about `width`, broken between options only
    (never inside a tuple such as stride=(2, 2))."""
    lines: list[str] = []
    for part in re.split(r", (?=\w+=)", text):
        if lines and len(lines[-1]) + len(part) + 2 <= width:
            lines[-1] += ", " + part
        else:
            lines.append(part if not lines else "  " + part)
    return lines


def _wrap(text: str, width: int = 48) -> list[str]:
    """A formula on lines of about `width` characters: one line per ';' part, a
    parenthetical remark on its own line, long parts broken at spaces."""
    lines = []
    for part in text.replace("  (", ";  (").split(";  "):
        part = part.strip()
        while len(part) > width and " " in part[:width]:
            cut = part[:width].rfind(" ")
            lines.append(part[:cut])
            part = "  " + part[cut + 1 :]
        lines.append(part)
    return lines


def _quote(text: str) -> str:
    """A DOT string: quotes and backslashes escaped, newlines as centred line breaks."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
