"""How the study results show themselves: as text (print) and as HTML (a notebook).

Jupyter asks an object for `_repr_html_()` (and IPython's pretty printer for
`_repr_pretty_`); the study results answer with what is built here. The HTML is plain:
`<details>` elements fold and unfold without any script, numbers sit right-aligned in
tabular figures so that their digits line up, formulas are set in a monospace font.
"""

from __future__ import annotations

import html
import re
import textwrap
from typing import Any

from minitorch_edu.study.format import format_number, format_shape

STYLE = """<style>
.mte{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;font-size:13px;line-height:1.4}
.mte code,.mte .f{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
.mte table{border-collapse:collapse;margin:2px 0 6px 0}
.mte th,.mte td{padding:1px 8px;border-bottom:1px solid #e4e4e4;text-align:left;
vertical-align:top}
.mte th{background:#f3f3f3;font-weight:600}
.mte td.n{text-align:right;font-variant-numeric:tabular-nums;font-family:ui-monospace,Menlo,
Consolas,monospace;white-space:nowrap}
.mte details{margin:2px 0 2px 14px}
.mte summary{cursor:pointer}
.mte .h{font-weight:600;font-size:14px}
.mte .note{color:#666}
.mte .warn{color:#a35200}
.mte .sep td{background:#eef3fb;font-style:italic}
</style>"""


def escape(text: Any) -> str:
    return html.escape(str(text), quote=True)


def number_cell(value: Any, digits: int = 6) -> str:
    text = format_number(value, digits) if isinstance(value, int | float) else str(value)
    return f'<td class="n">{escape(text)}</td>'


def wrap(body: str) -> str:
    return f'{STYLE}<div class="mte">{body}</div>'


# ---------------------------------------------------------------------- explain_gradient
def _where(label: str, index: tuple[int, ...]) -> str:
    return f"{label}{format_shape(index)}"


def _factor(text: str) -> str:
    """A factor in a product: parenthesised when it is a sum or starts with a minus."""
    if text.startswith("-") or any(f" {op} " in text for op in "+-"):
        return f"({text})"
    return text


def term_text(use: Any, term: Any, where_label: str, number: Any) -> str:
    """`dconv1[12, 0, 3, 4] * x[12, 0, 2, 3] = -0.0123 * 1.2 = -0.01476`."""
    upstream = f"d{use.node_label}{format_shape(term.output_index)}"
    local = number(term.local)
    if term.expression:
        parts = [f"{upstream} * {_factor(term.expression)}"]
        stages = [f"{number(term.upstream)} * {_factor(term.numbers)}"]
        if term.numbers != local:
            stages.append(f"{number(term.upstream)} * {_factor(local)}")
    else:
        parts = [f"{upstream} * {_factor(local)}"]
        stages = [f"{number(term.upstream)} * {_factor(local)}"]
    shown = parts + [s for s in stages if s not in parts]
    return " = ".join([*shown, number(term.product)])


def _via(use: Any) -> str:
    name = use.input_name or f"input {use.input_position}"
    return f"via {use.node_label} ({use.op}, {name})"


def _simple(element: Any) -> bool:
    """One use with one listed term and nothing left out: shown on one line, inline."""
    if len(element.uses) != 1:
        return False
    use = element.uses[0]
    return use.terms is not None and len(use.terms) == 1 and not use.terms_left_out


class _Blocks:
    """Numbers [1], [2], ... for the element gradients that get a block of their own."""

    def __init__(self) -> None:
        self.numbers: dict[int, int] = {}
        self.queue: list[Any] = []

    def ref(self, element: Any) -> int:
        if id(element) not in self.numbers:
            self.numbers[id(element)] = len(self.numbers) + 1
            self.queue.append(element)
        return self.numbers[id(element)]


BREAK = re.compile(r" = |   via |  -> ")


def fit(line: str, width: int | None) -> list[str]:
    """A long line broken before its ` = ` (and before `via`, `->`), continued indented."""
    if width is None or len(line) <= width:
        return [line]
    indent = " " * (len(line) - len(line.lstrip()) + 4)
    tokens, depth, start = [], 0, 0
    for position, character in enumerate(line):  # split at top level only, not in (...)
        depth += {"(": 1, ")": -1}.get(character, 0)
        if depth == 0 and position > start and BREAK.match(line, position):
            tokens.append(line[start:position])
            start = position
    tokens.append(line[start:])
    lines, current = [], tokens[0]
    for token in tokens[1:]:
        if len(current) + len(token) > width and current.strip():
            lines.append(current.rstrip())
            current = indent + token.lstrip()
        else:
            current += token
    lines.append(current)
    fitted = []
    for line in lines:  # still too long (no ` = ` to break at): break at spaces
        if len(line) > width:
            fitted.extend(
                textwrap.wrap(
                    line,
                    width,
                    subsequent_indent=indent,
                    break_long_words=False,
                    break_on_hyphens=False,
                    drop_whitespace=True,
                )
            )
        else:
            fitted.append(line)
    return fitted


def explanation_text(explanation: Any, digits: int = 4, width: int | None = 100) -> str:
    number = lambda x: format_number(x, digits)  # noqa: E731
    where = _where(explanation.label, explanation.index)
    out = explanation.output_label
    lines = [
        f"d({out})/d({where}) = {format_number(explanation.value, 8)}",
        f"(dX below means d({out})/dX, the gradient of {out} with respect to X)",
        "",
    ]
    if explanation.path_count == 0:
        lines.append(f"{explanation.label} does not lead to {out}: the gradient is 0.")
        return "\n".join(lines)
    plural = "s" if explanation.path_count != 1 else ""
    lines.append(f"{explanation.path_count} path{plural} from {explanation.label} to {out}:")
    lines.extend("  " + " -> ".join(path) for path in explanation.paths)
    if explanation.path_count > len(explanation.paths):
        lines.append(f"  ... and {explanation.path_count - len(explanation.paths)} more")
    if explanation.formulas:
        lines.append("")
        lines.append("Backward formulas of the ops on the way:")
        op_width = max(map(len, explanation.formulas))
        for op, formula in explanation.formulas.items():
            first, *rest = formula.split(";  ")
            lines.append(f"  {op:<{op_width}}  {first}" + (";" if rest else ""))
            for position, part in enumerate(rest):
                last = position == len(rest) - 1
                lines.append(" " * (op_width + 4) + part + ("" if last else ";"))
    lines.append("")
    lines.append("Each gradient is the sum over the uses of its element; a use is the sum over")
    lines.append("the output elements j it reaches of (upstream gradient) * (local derivative):")
    blocks = _Blocks()
    blocks.ref(explanation.element)
    shown: set[int] = set()
    while blocks.queue:
        element = blocks.queue.pop(0)
        _element_block(element, blocks, shown, lines, number)
    if explanation.limits:
        lines.append("")
        lines.append("Limits reached (what is shown still adds up; change a setting to see more):")
        lines.extend(f"  - {limit}" for limit in explanation.limits)
    return "\n".join(part for line in lines for part in fit(line, width))


def _element_block(element: Any, blocks: _Blocks, shown: set, lines: list, number: Any) -> None:
    tag = f"[{blocks.numbers[id(element)]}] "
    shown.add(id(element))
    if _simple(element) or element.is_output or not element.uses:
        _chain(element, tag, "", blocks, shown, lines, number)
        return
    head = f"{tag}d{_where(element.label, element.index)} = {number(element.value)}"
    count = len(element.uses)
    lines.append(head + (f", the sum over its {count} uses:" if count > 1 else ":"))
    for use in element.uses:
        _use_lines(element, use, "    ", blocks, shown, lines, number)


def _chain(element, prefix, indent, blocks, shown, lines, number) -> None:
    """Single-term elements one line each, followed until one needs a block of its own."""
    while True:
        head = f"{indent}{prefix}d{_where(element.label, element.index)} = {number(element.value)}"
        prefix = ""
        if element.is_output:
            lines.append(head + "  (where backward started)")
            return
        if not element.uses:
            lines.append(head + "  (no gradient reaches it)")
            return
        use = element.uses[0]
        term = use.terms[0]
        line = f"{head} = {term_text(use, term, element.label, number)}   {_via(use)}"
        nxt = term.explained
        if nxt is None:
            lines.append(line)
            return
        if id(nxt) in blocks.numbers:
            lines.append(f"{line}  -> [{blocks.numbers[id(nxt)]}]")
            return
        if not (_simple(nxt) or nxt.is_output):
            lines.append(f"{line}  -> [{blocks.ref(nxt)}]")
            return
        lines.append(line)
        if id(nxt) in shown:
            where = _where(nxt.label, nxt.index)
            lines.append(f"{indent}d{where} = {number(nxt.value)}  (as above)")
            return
        shown.add(id(nxt))
        element = nxt


def _use_lines(element, use, indent, blocks, shown, lines, number) -> None:
    where = _where(element.label, element.index)
    if use.terms is None:
        lines.append(f"{indent}{_via(use)}: {number(use.value)}  ({use.note})")
        return
    lines.append(f"{indent}{_via(use)}: {number(use.value)}")
    inner = indent + "  "
    if use.local_formula:
        lines.append(f"{inner}{use.local_formula}")
    if use.local_note:
        lines.append(f"{inner}({use.local_note})")
    if use.term_count == 0:
        if use.terms:
            term = use.terms[0]
            lines.append(
                f"{inner}the local derivative is 0 here: {term.expression or '0'} = "
                f"{term.numbers or '0'}"
            )
        else:
            lines.append(f"{inner}the local derivative is 0 at every output element here")
        return
    plural = "s" if use.term_count != 1 else ""
    lines.append(
        f"{inner}{use.term_count} term{plural} d{use.node_label}[j] * "
        f"(d {use.node_label}[j] / d {where}), one per j where that derivative is not 0:"
    )
    _group_lines(use, use.parts, inner + "  ", element.label, blocks, shown, lines, number)


def _group_lines(use, group, indent, where_label, blocks, shown, lines, number) -> None:
    for child in group.groups:
        prefix = format_shape(child.index)[:-1] + ", ...]"
        plural = "s" if child.count != 1 else ""
        text = f"{indent}j = {prefix}: {number(child.value)}  ({child.count} term{plural})"
        if child.opened:
            lines.append(text + ":")
            _group_lines(use, child, indent + "  ", where_label, blocks, shown, lines, number)
        else:
            lines.append(text)
    for term in group.terms:
        line = f"{indent}j = {format_shape(term.output_index)}: "
        line += term_text(use, term, where_label, number)
        nxt = term.explained
        if nxt is None:
            lines.append(line)
        elif id(nxt) in blocks.numbers:
            lines.append(f"{line}  -> [{blocks.numbers[id(nxt)]}]")
        elif _simple(nxt) or nxt.is_output:
            lines.append(line)
            if id(nxt) not in shown:
                shown.add(id(nxt))
                _chain(nxt, "", indent + "    ", blocks, shown, lines, number)
            else:
                where = _where(nxt.label, nxt.index)
                lines.append(f"{indent}    d{where} = {number(nxt.value)}  (as above)")
        else:
            lines.append(f"{line}  -> [{blocks.ref(nxt)}]")
    if group.left_out:
        kind = "groups" if group.groups else "terms"
        extra = f" ({group.left_out_count} terms)" if group.groups else ""
        lines.append(
            f"{indent}and {group.left_out} more {kind}{extra}: {number(group.left_out_sum)}"
            f"  ({group.limit}: raise it to list more)"
        )


def explanation_html(explanation: Any, digits: int = 6) -> str:
    number = lambda x: format_number(x, digits)  # noqa: E731
    where = _where(explanation.label, explanation.index)
    out = explanation.output_label
    parts = [
        f'<div class="h">d({escape(out)})/d({escape(where)}) = '
        f"{escape(format_number(explanation.value, 10))}</div>"
    ]
    if explanation.path_count:
        paths = "".join(f"<li><code>{escape(' → '.join(p))}</code></li>" for p in explanation.paths)
        more = explanation.path_count - len(explanation.paths)
        if more > 0:
            paths += f"<li>… and {more} more</li>"
        parts.append(
            f"<details><summary>{explanation.path_count} path"
            f"{'s' * (explanation.path_count != 1)} from {escape(explanation.label)} to "
            f"{escape(out)}</summary><ul>{paths}</ul></details>"
        )
    if explanation.formulas:
        rows = "".join(
            f"<tr><td>{escape(op)}</td><td class='f'>{escape(f)}</td></tr>"
            for op, f in explanation.formulas.items()
        )
        parts.append(
            "<details><summary>Backward formulas of the ops on the way</summary>"
            f"<table><tr><th>op</th><th>backward</th></tr>{rows}</table></details>"
        )
    blocks = _Blocks()
    blocks.ref(explanation.element)
    while blocks.queue:
        element = blocks.queue.pop(0)
        parts.append(_element_html(element, blocks, number))
    if explanation.limits:
        items = "".join(f"<li>{escape(limit)}</li>" for limit in explanation.limits)
        parts.append(f'<div class="warn">Limits reached:<ul>{items}</ul></div>')
    return wrap("".join(parts))


def _element_html(element: Any, blocks: _Blocks, number: Any) -> str:
    tag = blocks.numbers[id(element)]
    head = f"[{tag}] d{_where(element.label, element.index)} = {number(element.value)}"
    if element.is_output:
        return (
            f"<details open><summary><code>{escape(head)}</code> (where backward started)"
            "</summary></details>"
        )
    body = []
    for use in element.uses:
        body.append(_use_html(element, use, blocks, number))
    return (
        f"<details open id='mte-e{tag}'><summary><code>{escape(head)}</code>"
        f"{f' = the sum over its {len(element.uses)} uses' if len(element.uses) > 1 else ''}"
        f"</summary>{''.join(body)}</details>"
    )


def _use_html(element: Any, use: Any, blocks: _Blocks, number: Any) -> str:
    title = f"{_via(use)}: {number(use.value)}"
    if use.terms is None:
        return (
            f"<details open><summary>{escape(title)}</summary>"
            f"<div class='note'>{escape(use.note)}</div></details>"
        )
    rows = []

    def add_group(group: Any, depth: int) -> None:
        pad = "&nbsp;" * (4 * depth)
        for child in group.groups:
            prefix = format_shape(child.index)[:-1] + ", …]"
            rows.append(
                f"<tr class='sep'><td>{pad}j = {escape(prefix)}</td><td></td><td></td>"
                f"<td class='n'>{child.count} terms</td>{number_cell(child.value)}<td></td></tr>"
            )
            if child.opened:
                add_group(child, depth + 1)
        for term in group.terms:
            nxt = term.explained
            link = ""
            if nxt is not None:
                link = f"→ [{blocks.ref(nxt)}]" if not nxt.is_output else "(output)"
            local = term.expression or number(term.local)
            rows.append(
                f"<tr><td>{pad}j = {escape(format_shape(term.output_index))}</td>"
                f"{number_cell(term.upstream)}<td class='f'>{escape(local)}</td>"
                f"{number_cell(term.local)}{number_cell(term.product)}<td>{escape(link)}</td></tr>"
            )
        if group.left_out:
            rows.append(
                f"<tr><td>{pad}and {group.left_out} more</td><td></td><td class='note'>"
                f"{escape(group.limit)}</td><td class='n'>{group.left_out_count} terms</td>"
                f"{number_cell(group.left_out_sum)}<td></td></tr>"
            )

    if use.parts is not None:
        add_group(use.parts, 0)
    header = (
        f"<tr><th>output element j</th><th>d{escape(use.node_label)}[j]</th>"
        "<th>local derivative</th><th>value</th><th>product</th><th></th></tr>"
    )
    formula = f"<div class='f'>{escape(use.local_formula)}</div>" if use.local_formula else ""
    note = f"<div class='note'>{escape(use.local_note)}</div>" if use.local_note else ""
    count = f"<div class='note'>{use.term_count} nonzero terms</div>"
    return (
        f"<details open><summary>{escape(title)}</summary>{formula}{note}{count}"
        f"<table>{header}{''.join(rows)}</table></details>"
    )


# ---------------------------------------------------------------------- gradient_by_sample
def sample_gradients_html(result: Any, limit: int = 8) -> str:
    index = result.value.abs().flatten().argmax().item()
    found = result.element(_unflatten(index, result.shape))
    where = _where(result.label, tuple(found["index"]))
    split = "sample" if result.dim == 0 else f"j[{result.dim}]"
    parts = [
        f'<div class="h">d({escape(result.output_label)})/d({escape(result.label)}) by '
        f"{split}: shape {escape(format_shape(result.shape))}</div>",
        f"<div class='note'>the element with the largest gradient, {escape(where)} = "
        f"{escape(format_number(found['value'], 8))}:</div>",
    ]
    for use in found["uses"]:
        samples = use["samples"]
        ranked = sorted(range(len(samples)), key=lambda n: -abs(samples[n]))
        rows = "".join(
            f"<tr><td class='n'>{n}</td>{number_cell(samples[n])}</tr>" for n in ranked[:limit]
        )
        if len(samples) > limit:
            rest = sum(samples[n] for n in ranked[limit:])
            rows += f"<tr><td>the other {len(samples) - limit}</td>{number_cell(rest)}</tr>"
        parts.append(
            f"<details open><summary>via {escape(use['node'])} ({escape(use['op'])}, "
            f"{escape(use['input_name'])}): {escape(format_number(use['share'], 6))}</summary>"
            f"<table><tr><th>{split}</th><th>part</th></tr>{rows}</table></details>"
        )
    return wrap("".join(parts))


def _unflatten(flat: int, shape: Any) -> tuple[int, ...]:
    index = []
    for size in reversed(tuple(shape)):
        index.append(flat % size)
        flat //= size
    return tuple(reversed(index))


# ---------------------------------------------------------------------- the tape
def _value_html(value: Any, print_limit: int, digits: int = 4) -> str:
    from minitorch_edu.study.format import Snapshot

    if isinstance(value, Snapshot):
        text = value.text(print_limit, digits)
        return f"<pre style='margin:0'>{escape(text)}</pre>"
    return escape(repr(value))


def step_rows(step: Any, print_limit: int, values: bool) -> str:
    """One table row for a step, and (folded) its numbers."""
    inner = ""
    if values:
        pairs = list(zip(step.input_names, step.inputs)) + list(
            zip(step.output_names, step.outputs)
        )
        cells = "".join(
            f"<tr><td><code>{escape(name)}</code></td><td>{_value_html(value, print_limit)}"
            "</td></tr>"
            for name, value in pairs
            if value is not None
        )
        if step.options:
            options = ", ".join(f"{k}={v}" for k, v in step.options.items())
            cells += f"<tr><td>options</td><td><code>{escape(options)}</code></td></tr>"
        inner = f"<details><summary>numbers</summary><table>{cells}</table></details>"
    return (
        f"<tr><td class='n'>{step.index}</td><td>{escape(step.direction)}</td>"
        f"<td><code>{escape(step.op)}</code></td><td><code>{escape(step.signature())}</code>"
        f"{inner}</td><td class='f'>{escape(step.formula)}</td></tr>"
    )


def tape_html(tape: Any, values: bool = True) -> str:
    tape._close_delivery()
    header = (
        "<tr><th>#</th><th>pass</th><th>op</th><th>inputs → outputs</th>"
        "<th>backward formula</th></tr>"
    )
    before, after = tape._pass_marks()
    rows = []
    for step in tape.steps:
        for mark in before.get(step.index, []):
            rows.append(f"<tr class='sep'><td colspan='5'>{escape(mark.strip('- '))}</td></tr>")
        rows.append(step_rows(step, tape.print_limit, values))
        for mark in after.get(step.index, []):
            rows.append(f"<tr class='sep'><td colspan='5'>{escape(mark.strip('- '))}</td></tr>")
    return wrap(
        f"<details open><summary class='h'>{escape(tape._heading())}</summary>"
        f"<table>{header}{''.join(rows)}</table></details>"
    )


def step_html(step: Any, print_limit: int = 16) -> str:
    header = (
        "<tr><th>#</th><th>pass</th><th>op</th><th>inputs → outputs</th>"
        "<th>backward formula</th></tr>"
    )
    return wrap(f"<table>{header}{step_rows(step, print_limit, True)}</table>")


# ---------------------------------------------------------------------- explain_step
def step_explanation_html(explanation: Any, digits: int = 6) -> str:
    number = lambda x: format_number(x, digits)  # noqa: E731
    step = f", step t = {explanation.step}" if explanation.step is not None else ""
    parts = [
        f"<div class='h'>{escape(explanation.optimizer)} step for "
        f"{escape(explanation.where)} (parameter group {explanation.group}{escape(step)}, "
        f"{escape(explanation.dtype)})</div>"
    ]
    if explanation.gradient is None:
        parts.append(f"<div class='note'>{escape(explanation.label)}.grad was None: skipped</div>")
        return wrap("".join(parts))
    rows = "".join(
        f"<tr><td>{escape(h.symbol)}</td><td><code>{escape(h.name)}</code></td>"
        f"{_cell(h.value)}</tr>"
        for h in explanation.hyperparameters
    )
    parts.append(
        "<details><summary>hyperparameters that took part</summary><table><tr><th>symbol</th>"
        f"<th>argument</th><th>value</th></tr>{rows}</table></details>"
    )
    lines = "".join(
        f"<tr><td class='f'>{escape(line.formula)}</td><td class='f'>"
        f"{escape(line.substituted(digits))}</td>{number_cell(line.value, digits)}"
        f"<td class='note'>{escape(line.condition)}</td></tr>"
        for line in explanation.lines
    )
    parts.append(
        "<details open><summary>the update, line by line</summary><table><tr><th>formula</th>"
        f"<th>with the numbers</th><th>value</th><th>branch</th></tr>{lines}</table></details>"
    )
    checks = [(f"θ ({explanation.where})", explanation.new_value, explanation.actual)]
    checks += [(f"state['{e.name}']", e.computed, e.actual) for e in explanation.state]
    rows = "".join(
        f"<tr><td><code>{escape(name)}</code></td>{number_cell(computed, digits)}"
        f"{number_cell(actual, digits)}</tr>"
        for name, computed, actual in checks
    )
    verdict = "agrees" if explanation.matches() else "DIFFERS"
    parts.append(
        f"<details><summary>check against the real optimizer.step(): {verdict}</summary>"
        "<table><tr><th></th><th>formulas</th><th>real step</th></tr>"
        f"{rows}</table></details>"
    )
    if explanation.not_taken:
        parts.append(
            f"<div class='note'>not taken: {escape('; '.join(explanation.not_taken))}</div>"
        )
    del number
    return wrap("".join(parts))


def _cell(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return number_cell(value)
    return f"<td>{escape(value)}</td>"


# ---------------------------------------------------------------------- gradcheck
def gradcheck_html(result: Any) -> str:
    verdict = "passed" if result.ok else "FAILED"
    color = "" if result.ok else " class='warn'"
    return wrap(
        f"<div class='h'{color}>gradcheck {verdict}: {result.checked} elements checked</div>"
        "<table><tr><th>worst element</th><th>analytic</th><th>numeric</th>"
        "<th>relative error</th></tr>"
        f"<tr><td><code>input {result.input_index}{escape(list(result.element))}</code></td>"
        f"{number_cell(result.analytic, 10)}{number_cell(result.numeric, 10)}"
        f"{number_cell(result.relative_error, 3)}</tr></table>"
    )
