"""Formula data: what an op computes and how its output depends on each input, declared once.

derivatives.yaml in PyTorch says each op's derivative in one line, and everything else is
made from it. Here each op class carries one `Formula`, next to its forward and backward:

    class Tanh(Function):
        derivatives = Formula(
            "a",                                  # the op's inputs, in order
            forward="out = tanh(a)",
            backward={"a": "grad * (1 - out^2)"}, # the backward pass, in tensor terms
            local={"a": "1 - out^2"},             # d out[j] / d a[i], one element pair
            saved="out",                          # names of what forward saves, in order
            elementwise=True,
        )

`Function` makes the op's `formula` (the line the trace table, the graph and the docs print)
from `backward`, and `mt.study.explain_gradient` reads `local` to say where each local
derivative comes from: `1 - tanh1[0, 3]² = 1 - 0.1247² = 0.9844`.

A local derivative is an expression in Python syntax, with `^` for powers and `[cond]` for
1 where cond holds, else 0 (Iverson's bracket). Its names are

    i, j         the input element and the output element, as index tuples
    index names  from `indices`, e.g. {"out": "n, o", "x": "n, k", "W": "o, k"}: j is
                 unpacked into (n, o), i into (n, k) ("..." stands for leading batch dims)
    saved names  what forward saved; in an elementwise op a bare name is its value at j
                 (broadcast), elsewhere it is indexed: `x[n, k]`
    options      the op's settings, each an expression over the node's attributes
                 (e.g. {"sh": "geometry[0][0]"}), shown by their values
    exp, log, sqrt, tanh, sigmoid, sign, abs

It need only hold where the derivative is not 0 (relu's is `mask`, 1 where it passes).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FUNCTIONS = {
    "exp": math.exp,
    "log": lambda x: math.log(x) if x > 0 else (-math.inf if x == 0 else math.nan),
    "sqrt": math.sqrt,
    "tanh": math.tanh,
    "sigmoid": lambda x: 1 / (1 + math.exp(-x)),
    "sign": lambda x: float((x > 0) - (x < 0)),
    "abs": abs,
    "len": len,
}
SUPERSCRIPTS = {2: "²", 3: "³"}


class FormulaError(ValueError):
    """A local derivative that does not apply here (a shape its index names do not fit)."""


@dataclass(frozen=True)
class Formula:
    """An op's derivatives, declared once (see the module docstring)."""

    inputs: str  # the inputs' names, in order: "a, b"; "*tensors" names every input
    forward: str = ""  # what the op computes: "out = a * b"
    backward: str | Mapping[str, str] = ""  # the backward pass: text, or {input: its formula}
    local: Mapping[str, str] = field(default_factory=dict)  # input -> d out[j] / d input[i]
    saved: str = ""  # names of the values forward saves, in order: "a, b"
    indices: Mapping[str, str] = field(default_factory=dict)  # tensor -> its index names
    options: Mapping[str, str] = field(default_factory=dict)  # name -> expression over ctx
    define: Mapping[str, str] = field(default_factory=dict)  # how a saved name is shown
    elementwise: bool = False  # out[j] depends on each input at j only (broadcast)
    when: str = ""  # the local derivatives hold where this is true (an expression of options)
    notes: Mapping[str, str] = field(default_factory=dict)  # input -> a remark on its local

    def __post_init__(self) -> None:
        for name, text in {**self.local, **self.define}.items():
            try:
                parse(text)
            except SyntaxError as error:
                raise ValueError(f"Formula: cannot read {name}: {text!r} ({error.msg})") from None

    @property
    def text(self) -> str:
        """The backward formula, one `dx = ...` per input: what `Function.formula` holds."""
        if isinstance(self.backward, str):
            return self.backward
        return ";  ".join(f"d{name} = {formula}" for name, formula in self.backward.items())

    def input_name(self, position: int) -> str:
        names = _names(self.inputs)
        if len(names) == 1 and names[0].startswith("*"):
            return names[0][1:]
        return names[position] if position < len(names) else f"input {position}"

    def saved_names(self) -> list[str]:
        return _names(self.saved)


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse(text: str) -> ast.expr:
    """An expression of the formula language as a Python AST (`^` read as a power)."""
    return ast.parse(text.replace("^", "**"), mode="eval").body


# ---------------------------------------------------------------------- one element pair
@dataclass
class Local:
    """A local derivative at one element pair, worked out from the op's formula data.

    formula      the declared expression, options by their values: `1 - out²`
    symbolic     the same, tensors by their labels: `d tanh1 / d linear1 = 1 - tanh1²`
    expression   at this element pair: `1 - tanh1[0, 3]²`
    numbers      with the numbers in: `1 - 0.1247²`
    value        what it evaluates to
    """

    formula: str
    symbolic: str
    expression: str
    numbers: str
    value: float


class Binding:
    """What a node's names stand for: its saved values, options and the labels to show."""

    def __init__(self, formula: Formula, node: Any, position: int, labels: dict[str, str]):
        self.formula = formula
        self.node = node
        self.position = position
        self.input = formula.input_name(position)
        self.labels = labels  # role name -> label ("out": "tanh1", "W": "fc1.weight")
        local = formula.local.get(self.input)
        if local is None:
            raise FormulaError(f"no local derivative declared for {self.input}")
        self.options = {
            name: evaluate(parse(text), _AttributeNames(node))
            for name, text in formula.options.items()
        }
        if formula.when and not evaluate(parse(formula.when), self.options):
            raise FormulaError(f"the declared local derivatives hold where {formula.when}")
        self.saved = dict(zip(formula.saved_names(), node_saved_values(node)))
        self.tree = simplify(substitute(parse(local), self.options))
        self.defines = {name: parse(text) for name, text in formula.define.items()}

    def formula_text(self) -> str:
        return show(self.tree, lambda name, index: name)

    def symbolic(self) -> str:
        """`d linear1[n, o] / d fc1.weight[o, k] = x[n, k]`, options by their values."""
        out = self.labels.get("out", "out")
        wrt = self.labels.get(self.input, self.input)
        if self.formula.elementwise:
            head = f"d {out} / d {wrt}"
        else:
            out_index = self.formula.indices.get("out", "j")
            in_index = self.formula.indices.get(self.input, "i")
            scalar = len(getattr(self.node, "output_shape", (0,))) == 0
            head = f"d {out}{'' if scalar else f'[{out_index}]'} / d {wrt}[{in_index}]"

        def name_text(name: str, index: Any) -> str:
            if name in self.defines and name not in self.labels:
                return show(self.defines[name], lambda n, _: self.labels.get(n, n))
            label = self.labels.get(name, name)
            return label

        return f"{head} = {show(self.tree, name_text)}"

    def at(self, output_index: tuple[int, ...], input_index: tuple[int, ...], digits: int) -> Local:
        """The local derivative d out[j] / d input[i] at j = output_index, i = input_index."""
        names = self._indices(output_index, input_index)
        table: list[tuple[str, float]] = []  # tensor references: (label text, value)
        bound = simplify(self._bind(self.tree, names, output_index, table))

        def leaf(numbers: bool):
            def text(name: str, index: Any) -> str:
                label, value = table[int(name[1:])]
                return _number(value, digits) if numbers else label

            return text

        value = evaluate(bound, {f"@{k}": v for k, (_, v) in enumerate(table)})
        return Local(
            formula=self.formula_text(),
            symbolic=self.symbolic(),
            expression=show(bound, leaf(False)),
            numbers=show(bound, leaf(True), digits),
            value=float(value),
        )

    def _indices(self, j: tuple[int, ...], i: tuple[int, ...]) -> dict[str, Any]:
        names: dict[str, Any] = {"j": tuple(j), "i": tuple(i)}
        for tensor, index in (("out", j), (self.input, i)):
            spec = self.formula.indices.get(tensor)
            if spec is not None:
                _unpack(_names(spec), index, names, tensor)
        return names

    def _bind(self, tree: ast.expr, names: dict, j: tuple, table: list) -> ast.expr:
        """The expression at one element pair: index names as numbers, each tensor
        reference as a leaf `@k` whose label and value are table[k]."""

        def reference(name: str, index: tuple[int, ...] | None) -> ast.expr:
            value = self.saved[name]
            if not _is_tensor(value):
                return ast.Constant(_plain(value))
            if index is None:
                index = _broadcast(j, tuple(value.shape))
            else:
                index = _fit(index, tuple(value.shape))
            if index is None:  # outside the tensor: the zero padding
                table.append(("0", 0.0))
            else:
                table.append((self._label(name, index), float(value[index].item())))
            return ast.Name(id=f"@{len(table) - 1}", ctx=ast.Load())

        def walk(node: ast.expr) -> ast.expr:
            if isinstance(node, ast.Subscript) and _name_of(node.value) in self.saved:
                index = _index_values(node.slice, names, self.options)
                return reference(node.value.id, index)
            if isinstance(node, ast.Name):
                if node.id in self.saved:
                    if not self.formula.elementwise and _is_tensor(self.saved[node.id]):
                        if self.saved[node.id].dim() != 0:
                            raise FormulaError(f"{node.id} needs an index here")
                    return reference(node.id, None)
                if node.id in names or node.id in self.options:
                    return ast.Constant(_plain(names.get(node.id, self.options.get(node.id))))
                if node.id in FUNCTIONS:
                    return node
                raise FormulaError(f"unknown name {node.id}")
            if isinstance(node, ast.List) and not _mentions(node, self.saved):
                return ast.Constant(int(bool(evaluate(node.elts[0], {**names, **self.options}))))
            if isinstance(node, ast.Compare) and not _mentions(node, self.saved):
                return ast.Constant(int(bool(evaluate(node, {**names, **self.options}))))
            return _map_children(node, walk)

        return walk(tree)

    def _label(self, name: str, index: tuple[int, ...]) -> str:
        where = "[" + ", ".join(map(str, index)) + "]"
        if name in self.defines and name not in self.labels:  # e.g. mask -> [a > 0]
            return show(self.defines[name], lambda role, _: self.labels.get(role, role) + where)
        return self.labels.get(name, name) + where


class _AttributeNames(Mapping):
    """A node's attributes (and its recorded options) as names for option expressions."""

    def __init__(self, node: Any) -> None:
        self.node = node

    def __getitem__(self, key: str) -> Any:
        options = getattr(self.node, "options", None) or {}
        if key in options:
            return options[key]
        try:
            return getattr(self.node, key)
        except AttributeError:
            raise KeyError(key) from None

    def __iter__(self):
        return iter(vars(self.node))

    def __len__(self) -> int:
        return len(vars(self.node))


def node_saved_values(node: Any) -> list[Any]:
    """The values a node saved, as plain torch tensors or numbers (its output included)."""
    from minitorch_edu.autograd import function
    from minitorch_edu.autograd.tensor import Tensor

    if node._saved is None:
        raise FormulaError("the node's saved tensors were freed by backward")
    values = []
    for value in node._saved:
        if value is function._OUTPUT:
            value = node._output
        elif isinstance(value, Tensor):
            value = value.data
        values.append(value)
    return values


# ---------------------------------------------------------------------- the language
def evaluate(node: ast.expr, names: Mapping[str, Any]) -> Any:
    """The value of an expression; names from `names` (tensors indexed with [...])."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in names:
            return names[node.id]
        raise FormulaError(f"unknown name {node.id}")
    if isinstance(node, ast.Tuple):
        return tuple(evaluate(e, names) for e in node.elts)
    if isinstance(node, ast.Subscript):
        base = evaluate(node.value, names)
        key = evaluate(node.slice, names)
        return base[key]
    if isinstance(node, ast.UnaryOp):
        value = evaluate(node.operand, names)
        if isinstance(node.op, ast.USub):
            return -value
        if isinstance(node.op, ast.UAdd):
            return value
        if isinstance(node.op, ast.Not):
            return not value
    if isinstance(node, ast.BinOp):
        left, right = evaluate(node.left, names), evaluate(node.right, names)
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.Compare):
        left = evaluate(node.left, names)
        for op, comparator in zip(node.ops, node.comparators):
            right = evaluate(comparator, names)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.BoolOp):
        values = [evaluate(v, names) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.List) and len(node.elts) == 1:  # Iverson's bracket
        return int(bool(evaluate(node.elts[0], names)))
    if isinstance(node, ast.Call) and _name_of(node.func) in FUNCTIONS:
        return FUNCTIONS[node.func.id](*(evaluate(a, names) for a in node.args))
    raise FormulaError(f"cannot evaluate {ast.unparse(node)}")


_BINARY = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b,
}
_COMPARE = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
}
_SYMBOLS = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
}
# How tightly each kind of expression binds, for parentheses.
_PRECEDENCE = {ast.Add: 2, ast.Sub: 2, ast.Mult: 3, ast.Div: 3, ast.FloorDiv: 3, ast.Mod: 3}


def _precedence(node: ast.expr) -> int:
    if isinstance(node, ast.BoolOp):
        return 0
    if isinstance(node, ast.Compare):
        return 1
    if isinstance(node, ast.BinOp):
        return 5 if isinstance(node.op, ast.Pow) else _PRECEDENCE[type(node.op)]
    if isinstance(node, ast.UnaryOp):
        return 4
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and node.value < 0:
        return 4
    return 6


def show(node: ast.expr, name_text: Any, digits: int = 4) -> str:
    """The expression as a person reads it: `1 - out²`, `x[n, c, y + u - 2, x + v - 2]`.

    name_text(name, index_node_or_None) gives the text of a name (and of a subscripted one,
    whose index is printed after it).
    """

    def wrap(child: ast.expr, level: int, right: bool = False) -> str:
        text = go(child)
        inner = _precedence(child)
        return f"({text})" if inner < level or (right and inner == level) else text

    def go(node: ast.expr) -> str:
        if isinstance(node, ast.Constant):
            return _number(node.value, digits)
        if isinstance(node, ast.Name):
            return name_text(node.id, None)
        if isinstance(node, ast.Subscript):
            items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            index = ", ".join("..." if _is_ellipsis(e) else go(e) for e in items)
            return f"{name_text(_name_of(node.value), node.slice)}[{index}]"
        if isinstance(node, ast.Tuple):
            return "[" + ", ".join(go(e) for e in node.elts) + "]"
        if isinstance(node, ast.UnaryOp):
            symbol = {ast.USub: "-", ast.UAdd: "+", ast.Not: "not "}[type(node.op)]
            return symbol + wrap(node.operand, 4)
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Pow):
                base = wrap(node.left, 6)
                power = node.right
                if isinstance(power, ast.Constant) and power.value in SUPERSCRIPTS:
                    return base + SUPERSCRIPTS[power.value]
                return f"{base}^{wrap(power, 6)}"
            level = _PRECEDENCE[type(node.op)]
            symbol = _SYMBOLS[type(node.op)]
            return f"{wrap(node.left, level)} {symbol} {wrap(node.right, level, True)}"
        if isinstance(node, ast.Compare):
            parts = [wrap(node.left, 2)]
            for op, comparator in zip(node.ops, node.comparators):
                parts += [_SYMBOLS[type(op)], wrap(comparator, 2)]
            return " ".join(parts)
        if isinstance(node, ast.BoolOp):
            word = " and " if isinstance(node.op, ast.And) else " or "
            return word.join(wrap(v, 1) for v in node.values)
        if isinstance(node, ast.List):
            return "[" + ", ".join(go(e) for e in node.elts) + "]"
        if isinstance(node, ast.Call):
            return f"{_name_of(node.func)}({', '.join(go(a) for a in node.args)})"
        return ast.unparse(node)

    return go(node)


def substitute(node: ast.expr, values: Mapping[str, Any]) -> ast.expr:
    """Names with a number in `values` replaced by that number."""

    def walk(child: ast.expr) -> ast.expr:
        if isinstance(child, ast.Name) and isinstance(values.get(child.id), int | float):
            return ast.Constant(values[child.id])
        return _map_children(child, walk)

    return walk(node)


def simplify(node: ast.expr) -> ast.expr:
    """Fold constants and drop what changes nothing: `y*1 + u*1 - 2` -> `y + u - 2`."""

    def walk(child: ast.expr) -> ast.expr:
        child = _map_children(child, walk)
        if isinstance(child, ast.BinOp):
            left, right, op = child.left, child.right, type(child.op)
            if _is_number(left) and _is_number(right) and op is not ast.Pow:
                if op in (ast.Add, ast.Sub, ast.Mult) or (op is ast.FloorDiv and right.value != 0):
                    return _constant(_BINARY[op](left.value, right.value))
            if op in (ast.Mult,) and _is_value(left, 1):
                return right
            if op in (ast.Mult, ast.Div, ast.FloorDiv) and _is_value(right, 1):
                return left
            if op is ast.Add and _is_value(left, 0):
                return right
            if op in (ast.Add, ast.Sub) and _is_value(right, 0):
                return left
            if op is ast.Sub and _is_value(left, 0):
                return ast.UnaryOp(ast.USub(), right)
            if op in (ast.Add, ast.Sub) and _is_number(right) and right.value < 0:
                flipped = ast.Sub() if op is ast.Add else ast.Add()
                return ast.BinOp(left, flipped, _constant(-right.value))
        if isinstance(child, ast.UnaryOp) and isinstance(child.op, ast.USub):
            if _is_number(child.operand):
                return _constant(-child.operand.value)
        return child

    return walk(node)


def _constant(value: Any) -> ast.Constant:
    return ast.Constant(value)


def _is_number(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, int | float)


def _is_value(node: ast.expr, value: float) -> bool:
    return _is_number(node) and node.value == value


def _is_ellipsis(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is Ellipsis


def _name_of(node: ast.expr) -> str | None:
    return node.id if isinstance(node, ast.Name) else None


def _mentions(node: ast.expr, names: Mapping[str, Any]) -> bool:
    return any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(node))


def _map_children(node: ast.expr, function: Any) -> ast.expr:
    """A copy of `node` with `function` applied to each child expression."""
    if isinstance(node, ast.BinOp):
        return ast.BinOp(function(node.left), node.op, function(node.right))
    if isinstance(node, ast.UnaryOp):
        return ast.UnaryOp(node.op, function(node.operand))
    if isinstance(node, ast.Compare):
        return ast.Compare(function(node.left), node.ops, [function(c) for c in node.comparators])
    if isinstance(node, ast.BoolOp):
        return ast.BoolOp(node.op, [function(v) for v in node.values])
    if isinstance(node, ast.List):
        return ast.List([function(e) for e in node.elts], ast.Load())
    if isinstance(node, ast.Tuple):
        return ast.Tuple([function(e) for e in node.elts], ast.Load())
    if isinstance(node, ast.Call):
        return ast.Call(node.func, [function(a) for a in node.args], [])
    if isinstance(node, ast.Subscript):
        return ast.Subscript(node.value, function(node.slice), ast.Load())
    return node


def _unpack(spec: list[str], index: tuple[int, ...], names: dict[str, Any], tensor: str) -> None:
    """Bind index names to the entries of `index` ('...' takes the leading ones)."""
    if "..." in spec:
        rest = len(spec) - 1
        if len(index) < rest:
            raise FormulaError(f"{tensor}'s index {list(index)} does not fit [{', '.join(spec)}]")
        names.setdefault("...", tuple(index[: len(index) - rest]))
        pairs = zip(spec[1:], index[len(index) - rest :])
    else:
        if len(index) != len(spec):
            raise FormulaError(f"{tensor}'s index {list(index)} does not fit [{', '.join(spec)}]")
        pairs = zip(spec, index)
    for name, value in pairs:
        names.setdefault(name, value)


def _index_values(node: ast.expr, names: dict, options: dict) -> tuple[int, ...]:
    items = node.elts if isinstance(node, ast.Tuple) else [node]
    values: list[int] = []
    for item in items:
        if _is_ellipsis(item):
            values.extend(names.get("...", ()))
            continue
        value = evaluate(item, {**options, **names})
        values.extend(value if isinstance(value, tuple) else (int(value),))
    return tuple(values)


def _broadcast(index: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """Where element `index` of a broadcast result reads a tensor of `shape`."""
    index = index[len(index) - len(shape) :] if shape else ()
    return tuple(0 if size == 1 else i for i, size in zip(index, shape))


def _fit(index: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """A (possibly longer, broadcast) index into `shape`; None when it falls outside (in
    the zero padding a convolution reads)."""
    if len(index) > len(shape):
        index = index[len(index) - len(shape) :]
    if len(index) != len(shape):
        raise FormulaError(f"index {list(index)} does not fit shape {list(shape)}")
    fitted = []
    for i, size in zip(index, shape):
        if size == 1 and i > 0:  # a broadcast dim
            i = 0
        if not 0 <= i < size:
            return None
        fitted.append(i)
    return tuple(fitted)


def _is_tensor(value: Any) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dim")


def _plain(value: Any) -> Any:
    if _is_tensor(value) and value.dim() == 0:
        return value.item()
    return value


def _number(value: Any, digits: int = 4) -> str:
    """A number as the study tools print it: no `-0`, integers without a point."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value == 0:
            return "0"
        return f"{value:.{digits}g}"
    return str(value)
