"""Step-through tracing: watch every op of a forward and a backward pass, with its numbers.

    with mt.study.trace(names={W: "W", b: "b"}) as tape:
        loss = (x @ W.T + b).tanh().mean()
        loss.backward()
    print(tape)                 # one row per step: op, shapes, formula, numbers
    tape[3].outputs[0].values   # a copy of what step 3 produced
    tape.history(W)             # the steps that sent gradient into W, and how W.grad was formed
    tape.passes                 # the backward passes: where each began and ended
    tape.save_json("tape.json")

A forward step is one `Function.apply`: the op's inputs and its output. A backward step is
one node's backward: the gradient of the node's output in, one gradient per input out
(before the engine sums a broadcast input's gradient back to its shape). A deliver step is a
finished gradient reaching a leaf: `AccumulateGrad` adds it into `.grad` (W.grad ← W.grad + dW,
or W.grad ← dW the first time), `CaptureGrad` hands it back to `autograd.grad` instead.
Every step taken during a backward pass carries that pass's number (`backward_pass`); the
table marks where each pass begins and ends. Under DistributedDataParallel an all-reduce step
records one gradient bucket: every rank's local gradients in, their average out
(`explain_all_reduce` reads one element of it); trace on every rank, as every rank must run
the same collectives.

How it works: `Function.apply` and the engine call `function.tracer`, a module global that
is None unless a trace is active (one `is not None` check per op is all it costs otherwise).
While a tape records, it is that tracer; a tape started inside another records its steps and
hands them on to the outer one, so both see everything run inside them.
"""

from __future__ import annotations

import json
import math
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from minitorch_edu.autograd import function
from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.study.format import (
    Labeller,
    Snapshot,
    format_shape,
    option_text,
    snapshot,
)

Value = Snapshot | int | float | bool | str | None  # what a step records for one input or output


@dataclass
class Step:
    """One recorded step.

    direction  "forward", "backward", "deliver" or "all-reduce"
    op         the op: "MatMul" going forward, "MatMulBackward" going back; delivering,
               "AccumulateGrad" (added into .grad) or "CaptureGrad" (returned by autograd.grad)
    formula    the op's backward formula, as its Function writes it; delivering, the rule
               that formed .grad ("W.grad ← W.grad + dW")
    inputs     forward: the op's inputs; backward: [gradient of the node's output];
               deliver: [.grad before (when there was one), the gradient delivered]
    outputs    forward: [the result]; backward: one gradient per input (None where unneeded);
               deliver: [.grad after] (or [the gradient returned])
    *_names    labels of those values: "W", "matmul1", "dW" (the gradient for W), "W.grad"
    summed_to  backward: the input's shape where its gradient came out broadcast (bigger)
    options    forward: the op's keyword options (dims, shapes), as text
    recorded   forward: whether a graph node was kept (some input required grad)
    backward_pass  the number of the backward pass it was taken in (None: outside any)
    bucket     all-reduce: the bucket (index, buckets, rank, world_size, names, shapes,
               offsets: where each parameter's gradient starts in it)
    """

    index: int
    direction: str
    op: str
    formula: str
    inputs: list[Value]
    input_names: list[str]
    outputs: list[Value]
    output_names: list[str]
    options: dict[str, str] = field(default_factory=dict)
    recorded: bool = True
    # Backward: the input's own shape where its gradient has another (broadcast) shape; the
    # engine sums the gradient down to it before passing it on. None elsewhere.
    summed_to: list[tuple[int, ...] | None] = field(default_factory=list)
    backward_pass: int | None = None
    bucket: dict[str, Any] | None = None
    # Identity numbers of the tensors involved (for Tape.history) and the node, weakly held.
    input_ids: list[int | None] = field(default_factory=list, repr=False)
    output_ids: list[int | None] = field(default_factory=list, repr=False)
    node_ref: Any = field(default=None, repr=False, compare=False)

    @property
    def input_shapes(self) -> list[tuple[int, ...] | None]:
        return [v.shape if isinstance(v, Snapshot) else None for v in self.inputs]

    @property
    def output_shapes(self) -> list[tuple[int, ...] | None]:
        return [v.shape if isinstance(v, Snapshot) else None for v in self.outputs]

    def get_node(self) -> Function | None:
        """The graph node of this step while it is alive (the tape holds it weakly)."""
        return self.node_ref() if self.node_ref is not None else None

    def signature(self) -> str:
        """`x[4, 5], W[3, 5] -> matmul1[4, 3]`."""
        inputs = ", ".join(_short(n, v) for n, v in zip(self.input_names, self.inputs))
        outputs = [_short(n, v) for n, v in zip(self.output_names, self.outputs)]
        for i, shape in enumerate(self.summed_to):
            if shape is not None:
                outputs[i] += f"->{format_shape(shape)}"
        return f"{inputs} -> {', '.join(outputs)}"

    def text(self, print_limit: int = 16, digits: int = 4) -> str:
        """The step's row and one line per value it recorded."""
        lines = [f"{self.index}  {self.direction}  {self.op}  {self.signature()}"]
        lines.append(f"    formula: {self.formula}")
        lines.extend(_value_lines(self, print_limit, digits, indent="    "))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from minitorch_edu.study.display import step_html

        return step_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text())

    def to_dict(self, values: bool = True) -> dict[str, Any]:
        """JSON-ready; tensors as shape, dtype, summary and (when kept and `values`) numbers."""
        return {
            "index": self.index,
            "direction": self.direction,
            "op": self.op,
            "formula": self.formula,
            "options": self.options,
            "recorded": self.recorded,
            "backward_pass": self.backward_pass,
            "summed_to": [None if s is None else list(s) for s in self.summed_to],
            "inputs": [_value_dict(n, v, values) for n, v in zip(self.input_names, self.inputs)],
            "outputs": [_value_dict(n, v, values) for n, v in zip(self.output_names, self.outputs)],
            **({} if self.bucket is None else {"bucket": self.bucket}),
        }

    def __str__(self) -> str:
        return self.text()


@dataclass
class BackwardPass:
    """One backward pass seen by the tape (one `backward()` or `autograd.grad()` call).

    number      1 for the first pass on the tape, 2 for the next, ...
    outputs     labels of the tensors it started from ("loss")
    first_step  index of the first step taken during the pass (len(tape) when it began)
    end_step    index just after its last step (None while it runs); the steps of the pass
                are tape[first_step:end_step]
    """

    number: int
    outputs: list[str]
    first_step: int
    end_step: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "outputs": list(self.outputs),
            "first_step": self.first_step,
            "end_step": self.end_step,
        }


class Tape:
    """The steps recorded by `trace()`: a context manager, a list of Steps, a printable table.

    Reading it:
        steps, forward_steps, backward_steps, deliver_steps   Steps, in the order they ran
        passes            the backward passes (BackwardPass: number, outputs, first_step,
                          end_step); backward_pass(n) the steps of pass n (default: the last)
        history(tensor)   the steps about one tensor, .grad's formation included
        table(), to_json(), save_json()

    Settings:
        print_limit  tensors with at most this many elements print whole, others as a summary
        store_limit  tensors with at most this many elements are copied; bigger ones keep only
                     their summary (shape, min, max, mean, norm). None copies all; 0 copies none
        max_bytes    stop copying numbers once this many bytes are held (None: no limit)
        max_steps    stop recording after this many steps (None: no limit); `dropped_steps`
                     counts what was left out
    """

    def __init__(
        self,
        names: Any = None,
        *,
        print_limit: int = 16,
        store_limit: int | None = 100_000,
        max_bytes: int | None = 256 * 2**20,
        max_steps: int | None = None,
    ) -> None:
        self.steps: list[Step] = []
        self.passes: list[BackwardPass] = []
        self.print_limit = print_limit
        self.store_limit = store_limit
        self.max_bytes = max_bytes
        self.max_steps = max_steps
        self.dropped_steps = 0
        self.stored_bytes = 0
        self.labels = Labeller(names)
        self._previous: Any = None
        self._recording = False
        self._busy = False  # set while recording, so our own tensor work is never traced
        self._snapshots: dict[int, tuple] = {}  # id(torch tensor) -> (weak ref, version, Snapshot)
        self._running: list[BackwardPass] = []  # passes begun and not yet ended (innermost last)
        # A delivery whose effect on .grad is read at the next event (the engine adds the
        # gradient in right after telling the tracer): (step, tensor, .grad before, version).
        self._open_delivery: tuple | None = None
        self._results: dict[int, tuple] = {}  # autograd.grad's running results in this pass
        self._open_all_reduces: dict[int, Step] = {}  # bucket index -> its step, until done

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> Tape:
        if self._recording:
            raise RuntimeError("this tape is already recording; start another with trace()")
        self._previous = function.tracer
        function.tracer = self
        self._recording = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._close_delivery()
        if function.tracer is self:
            function.tracer = self._previous
        else:  # left out of order: unlink this tape from the chain of active ones
            outer = function.tracer
            while outer is not None and getattr(outer, "_previous", None) is not self:
                outer = getattr(outer, "_previous", None)
            if outer is not None:
                outer._previous = self._previous
        self._previous = None
        self._recording = False

    @property
    def recording(self) -> bool:
        return self._recording

    # ------------------------------------------------------------------ tracer interface
    def on_forward(
        self,
        cls: type[Function],
        node: Function | None,
        inputs: tuple,
        options: dict,
        result: Tensor,
    ) -> None:
        """Called by `Function.apply` after every op."""
        if not self._busy:
            self._close_delivery()
            if self._room():
                self._busy = True
                try:
                    self._record_forward(cls, node, inputs, options, result)
                finally:
                    self._busy = False
        if self._previous is not None:
            self._previous.on_forward(cls, node, inputs, options, result)

    def on_backward(self, node: Function, grad: Any, input_grads: tuple) -> None:
        """Called by the engine after each node's backward."""
        if not self._busy:
            self._close_delivery()
            if self._room():
                self._busy = True
                try:
                    self._record_backward(node, grad, input_grads)
                finally:
                    self._busy = False
        if self._previous is not None:
            self._previous.on_backward(node, grad, input_grads)

    def on_backward_begin(self, outputs: Any) -> None:
        """Called by the engine when a backward pass starts: a new pass on the tape."""
        if not self._busy:
            self._close_delivery()
            labels = [
                self.labels.tensor(output)[1] if isinstance(output, Tensor) else "?"
                for output in outputs
            ]
            backward_pass = BackwardPass(len(self.passes) + 1, labels, len(self.steps))
            self._results.clear()
            self.passes.append(backward_pass)
            self._running.append(backward_pass)
        if self._previous is not None:
            self._previous.on_backward_begin(outputs)

    def on_backward_end(self) -> None:
        """Called by the engine when a backward pass ends (also after an error)."""
        if not self._busy:
            self._close_delivery()
            if self._running:
                self._running.pop().end_step = len(self.steps)
        if self._previous is not None:
            self._previous.on_backward_end()

    def on_deliver(self, tensor: Tensor, grad: Any) -> None:
        """Called by the engine when a finished gradient reaches a leaf or requested input."""
        if not self._busy:
            self._close_delivery()
            if self._room():
                self._busy = True
                try:
                    self._record_delivery(tensor, grad)
                finally:
                    self._busy = False
        if self._previous is not None:
            self._previous.on_deliver(tensor, grad)

    def on_all_reduce(self, bucket: dict[str, Any], local_gradients: list[torch.Tensor]) -> None:
        """Called by DistributedDataParallel's reducer when it starts averaging a gradient
        bucket (during backward): `local_gradients[r]` is rank r's bucket."""
        if not self._busy:
            self._close_delivery()
            if self._room():
                self._busy = True
                try:
                    self._record_all_reduce(bucket, local_gradients)
                finally:
                    self._busy = False
        if self._previous is not None and hasattr(self._previous, "on_all_reduce"):
            self._previous.on_all_reduce(bucket, local_gradients)

    def on_all_reduce_done(self, bucket_index: int, averaged: torch.Tensor) -> None:
        """Called when that all-reduce has finished: `averaged` is the bucket now."""
        step = self._open_all_reduces.pop(bucket_index, None)
        if step is not None and not self._busy:
            self._busy = True
            try:
                step.outputs = [self._snapshot(averaged.clone())]
            finally:
                self._busy = False
        if self._previous is not None and hasattr(self._previous, "on_all_reduce_done"):
            self._previous.on_all_reduce_done(bucket_index, averaged)

    def _room(self) -> bool:
        if self.max_steps is not None and len(self.steps) >= self.max_steps:
            self.dropped_steps += 1
            return False
        return True

    def _record_forward(self, cls, node, inputs, options, result) -> None:
        values, names, ids = [], [], []
        for x in inputs:
            value, name, number = self._describe_input(x)
            values.append(value)
            names.append(name)
            ids.append(number)
        if node is not None:
            number, name = self.labels.node(node)
        else:
            number, name = self.labels.identify(result, cls.__name__.lower())
        self.steps.append(
            Step(
                index=len(self.steps),
                direction="forward",
                op=cls.__name__,
                formula=cls.formula,
                inputs=values,
                input_names=names,
                outputs=[self._snapshot(result)],
                output_names=[name],
                options={key: _option_text(value) for key, value in options.items()},
                recorded=node is not None,
                backward_pass=self._pass_number(),
                input_ids=ids,
                output_ids=[number],
                node_ref=_weak(node),
            )
        )

    def _describe_input(self, x: Any) -> tuple[Value, str, int | None]:
        if isinstance(x, Tensor):
            number, name = self.labels.tensor(x)
            return self._snapshot(x), name, number
        if isinstance(x, torch.Tensor):
            number, name = self.labels.identify(x, "const")
            return self._snapshot(x), name, number
        if isinstance(x, np.ndarray):
            return self._snapshot(x), "const", None
        if isinstance(x, int | float | bool) or x is None:
            return x, repr(x), None
        return repr(x), type(x).__name__, None

    def _record_backward(self, node: Function, grad: Any, input_grads: tuple) -> None:
        number, name = self.labels.node(node)
        outputs, output_names, output_ids, summed_to = [], [], [], []
        for parent, input_grad in zip(node.parents, input_grads):
            shape = None
            if parent is not None and input_grad is not None:
                own = parent.shape if isinstance(parent, Tensor) else parent.output_shape
                shape = tuple(own) if tuple(input_grad.shape) != tuple(own) else None
            summed_to.append(shape)
            if parent is None:
                output_ids.append(None)
                output_names.append("-")
            else:
                parent_number, parent_name = (
                    self.labels.tensor(parent)
                    if isinstance(parent, Tensor)
                    else self.labels.node(parent)
                )
                output_ids.append(parent_number)
                output_names.append("d" + parent_name)
            outputs.append(None if input_grad is None else self._snapshot(input_grad))
        self.steps.append(
            Step(
                index=len(self.steps),
                direction="backward",
                op=node.name(),
                formula=type(node).formula,
                inputs=[self._snapshot(grad)],
                input_names=["d" + name],
                outputs=outputs,
                output_names=output_names,
                summed_to=summed_to,
                backward_pass=self._pass_number(),
                input_ids=[number],
                output_ids=output_ids,
                node_ref=_weak(node),
            )
        )

    def _record_all_reduce(
        self, bucket: dict[str, Any], local_gradients: list[torch.Tensor]
    ) -> None:
        index, world_size = bucket["bucket"], bucket["world_size"]
        names = [self.labels.tensor(p)[1] for p in bucket["parameters"]]
        ids = [self.labels.tensor(p)[0] for p in bucket["parameters"]]
        layout = ", ".join(
            f"{name}[{offset}:{offset + math.prod(shape)}]"
            for name, shape, offset in zip(names, bucket["shapes"], bucket["offsets"])
        )
        info = {key: value for key, value in bucket.items() if key != "parameters"}
        info.update(names=names, shapes=[list(shape) for shape in bucket["shapes"]])
        self.steps.append(
            Step(
                index=len(self.steps),
                direction="all-reduce",
                op="AllReduce",
                formula=f"g ← (1/{world_size}) Σ_r g_r  (bucket {index}, {world_size} ranks)",
                inputs=[self._snapshot(g) for g in local_gradients],
                input_names=[f"bucket{index}@rank{r}" for r in range(world_size)],
                outputs=[],  # the average, once the all-reduce has finished
                output_names=[f"bucket{index}"],
                options={"holds": layout},
                backward_pass=self._pass_number(),
                bucket=info,
                input_ids=[None] * world_size,
                output_ids=ids,
            )
        )
        self._open_all_reduces[index] = self.steps[-1]

    def _record_delivery(self, tensor: Tensor, grad: Any) -> None:
        number, name = self.labels.tensor(tensor)
        previous = tensor.grad
        inputs, input_names = [self._snapshot(grad)], ["d" + name]
        if previous is not None:
            inputs.insert(0, self._snapshot(previous))
            input_names.insert(0, f"{name}.grad")
        step = Step(
            index=len(self.steps),
            direction="deliver",
            op="AccumulateGrad",
            formula="",  # known once the engine has used the gradient (_close_delivery)
            inputs=inputs,
            input_names=input_names,
            outputs=[],
            output_names=[],
            backward_pass=self._pass_number(),
            input_ids=[number] * len(inputs),
            output_ids=[number],
        )
        self.steps.append(step)
        version = None if previous is None else previous.data._version
        raw = grad.data if isinstance(grad, Tensor) else grad
        self._open_delivery = (step, tensor, raw, previous, version)

    def _close_delivery(self) -> None:
        """Finish the last delivery step: read what the engine did with the gradient."""
        if self._open_delivery is None:
            return
        step, tensor, grad, previous, version = self._open_delivery
        self._open_delivery = None
        name = step.input_names[-1][1:]
        after = tensor.grad
        untouched = after is previous and (after is None or after.data._version == version)
        self._busy = True
        try:
            if untouched:  # autograd.grad: the gradient is returned, .grad is left alone
                self._record_capture(step, tensor, grad, name)
                return
            step.outputs = [self._snapshot(after)]
        finally:
            self._busy = False
        step.output_names = [f"{name}.grad"]
        if previous is None:
            step.formula = f"{name}.grad ← d{name}  (its first gradient)"
        else:
            step.formula = f"{name}.grad ← {name}.grad + d{name}"

    def _record_capture(self, step: Step, tensor: Tensor, grad: Any, name: str) -> None:
        """A delivery to autograd.grad: it sums what reaches the tensor into its result."""
        step.op = "CaptureGrad"
        step.inputs, step.input_names = step.inputs[-1:], step.input_names[-1:]
        step.input_ids = step.input_ids[-1:]
        result = f"result for {name}"
        entry = self._results.get(id(tensor))
        if entry is None or entry[0]() is not tensor:
            total = grad
            step.formula = f"{result} ← d{name}  (autograd.grad's; {name}.grad is left alone)"
        else:
            total = entry[1] + grad
            step.formula = f"{result} ← {result} + d{name}"
        self._results[id(tensor)] = (weakref.ref(tensor), total)
        step.outputs, step.output_names = [self._snapshot(total)], [result]

    def _pass_number(self) -> int | None:
        return self._running[-1].number if self._running else None

    def _snapshot(self, x: Any) -> Snapshot:
        raw = x.data if isinstance(x, Tensor) else x
        if isinstance(raw, np.ndarray):
            raw = torch.as_tensor(raw)
        # A tensor recorded before (an op's output, now the next op's input) and not changed
        # in place since then shares its snapshot: kept numbers are never copied twice.
        cached = self._snapshots.get(id(raw))
        if cached is not None and cached[0]() is raw and cached[1] == raw._version:
            return cached[2]
        size = raw.numel() * raw.element_size()
        store = (self.store_limit is None or raw.numel() <= self.store_limit) and (
            self.max_bytes is None or self.stored_bytes + size <= self.max_bytes
        )
        if store:
            self.stored_bytes += size
        result = snapshot(raw, store=store)
        self._snapshots[id(raw)] = (
            weakref.ref(raw, _forget(self._snapshots, id(raw))),
            raw._version,
            result,
        )
        return result

    # ------------------------------------------------------------------ reading the tape
    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def __getitem__(self, index: int | slice) -> Any:
        """`tape[3]` is a Step; `tape[-5:]` a Tape of those steps (printable as a table)."""
        if isinstance(index, slice):
            view = self._view()
            view.steps = self.steps[index]
            return view
        return self.steps[index]

    @property
    def forward_steps(self) -> list[Step]:
        return [s for s in self.steps if s.direction == "forward"]

    @property
    def backward_steps(self) -> list[Step]:
        return [s for s in self.steps if s.direction == "backward"]

    @property
    def deliver_steps(self) -> list[Step]:
        return [s for s in self.steps if s.direction == "deliver"]

    @property
    def all_reduce_steps(self) -> list[Step]:
        return [s for s in self.steps if s.direction == "all-reduce"]

    def backward_pass(self, number: int = -1) -> Tape:
        """The steps of one backward pass (the last one by default; 1 is the first), as a Tape."""
        if not self.passes:
            raise ValueError("this tape holds no backward pass; call backward() while tracing")
        chosen = self.passes[number - 1 if number > 0 else number]
        end = len(self.steps) if chosen.end_step is None else chosen.end_step
        view = self._view()
        view.steps = [s for s in self.steps if chosen.first_step <= s.index < end]
        view.passes = [chosen]
        return view

    def clear(self) -> None:
        """Forget every recorded step and pass (settings and labels stay)."""
        self._close_delivery()
        self.steps.clear()
        self.passes.clear()
        self._running.clear()
        self._snapshots.clear()
        self.dropped_steps = 0
        self.stored_bytes = 0

    def history(self, tensor: Any, ancestors: bool = False) -> Tape:
        """The steps about one tensor: the forward step that produced it, the backward steps
        that sent gradient into it, and the deliveries that formed its `.grad` (each one the
        gradient added in, and `.grad` before and after). `ancestors=True` adds every forward
        step that led to it. Returned as a Tape (printable, iterable) holding those same Steps.
        """
        if not isinstance(tensor, Tensor | torch.Tensor):
            raise TypeError(f"history: expected a Tensor, got {type(tensor).__name__}")
        node = getattr(tensor, "grad_fn", None)
        known = self.labels.known(node if node is not None else tensor)
        chosen: list[Step] = []
        if known is not None:
            number = known[0]
            wanted = {number}
            for step in reversed(self.steps):  # newest first, so ancestors come after
                if step.direction != "forward":
                    if number in step.output_ids:
                        chosen.append(step)
                elif wanted.intersection(step.output_ids):
                    chosen.append(step)
                    if ancestors:
                        wanted.update(i for i in step.input_ids if i is not None)
        view = self._view()
        view.steps = sorted(chosen, key=lambda s: s.index)
        return view

    def _view(self) -> Tape:
        view = Tape(print_limit=self.print_limit, store_limit=self.store_limit)
        view.labels = self.labels
        view.passes = self.passes
        return view

    # ------------------------------------------------------------------ showing it
    def table(
        self,
        values: bool = True,
        print_limit: int | None = None,
        digits: int = 4,
        width: int | None = None,
    ) -> str:
        """One row per step (index, pass, op, inputs -> outputs with shapes, formula), and
        under each row, with `values`, the numbers: whole up to `print_limit` elements,
        summarised (shape, min, max, mean, norm) above it. Lines mark where each backward
        pass begins and ends. With `width`, when a row would be wider, every row puts its
        formula on a line of its own below it.
        """
        limit = self.print_limit if print_limit is None else print_limit
        lines = [self._heading()]
        if not self.steps:
            return lines[0]
        self._close_delivery()
        op_width = max(len("op"), *(len(s.op) for s in self.steps))
        signatures = [s.signature() for s in self.steps]
        signature_width = min(max(len("inputs -> outputs"), *map(len, signatures)), 60)
        index_width = len(str(self.steps[-1].index))
        columns = f"{'#':>{index_width}}  {'pass':<8}  {'op':<{op_width}}  "
        formula_width = max(len(s.formula) for s in self.steps)
        # Formulas on lines of their own when one of them would not fit beside its row.
        formula_below = width is not None and (
            len(columns) + signature_width + 2 + formula_width > width
        )
        if formula_below:
            lines.append(f"{columns}inputs -> outputs   (formula below each row)")
        else:
            lines.append(f"{columns}{'inputs -> outputs':<{signature_width}}  backward formula")
        before, after = self._pass_marks()
        for step, signature in zip(self.steps, signatures):
            lines.extend(before.get(step.index, []))
            row = f"{step.index:>{index_width}}  {step.direction:<8}  {step.op:<{op_width}}  "
            if formula_below:
                lines.append(row + signature)
                if step.formula:
                    lines.append(" " * (index_width + 2) + f"formula: {step.formula}")
            else:
                lines.append(f"{row}{signature:<{signature_width}}  {step.formula}")
            if values:
                indent = " " * (index_width + 2)
                lines.extend(_value_lines(step, limit, digits, indent))
            lines.extend(after.get(step.index, []))
        return "\n".join(lines)

    def _pass_marks(self) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
        """Lines to print before and after steps: where each backward pass begins and ends."""
        before: dict[int, list[str]] = {}
        after: dict[int, list[str]] = {}
        for backward_pass in self.passes:
            end = math.inf if backward_pass.end_step is None else backward_pass.end_step
            inside = [s.index for s in self.steps if backward_pass.first_step <= s.index < end]
            if not inside:
                continue
            outputs = ", ".join(backward_pass.outputs)
            number = backward_pass.number
            before.setdefault(inside[0], []).append(
                f"---- backward pass {number} begins (from {outputs}) ----"
            )
            if backward_pass.end_step is not None:
                after.setdefault(inside[-1], []).insert(0, f"---- backward pass {number} ends ----")
        return before, after

    def _heading(self) -> str:
        count = len(self.steps)
        kinds = {"forward": 0, "backward": 0, "deliver": 0, "all-reduce": 0}
        for step in self.steps:
            kinds[step.direction] += 1
        parts = f"{kinds['forward']} forward, {kinds['backward']} backward"
        if kinds["deliver"]:
            parts += f", {kinds['deliver']} delivered"
        if kinds["all-reduce"]:
            parts += f", {kinds['all-reduce']} all-reduced"
        text = f"Tape: {count} step{'s' * (count != 1)} ({parts})"
        passes = {s.backward_pass for s in self.steps} - {None}
        if passes:
            text += f" in {len(passes)} backward pass{'es' * (len(passes) != 1)}"
        if self.dropped_steps:
            text += f"; {self.dropped_steps} more not recorded (max_steps={self.max_steps})"
        return text

    def __str__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        from minitorch_edu.study.display import tape_html

        return tape_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.table())

    def __repr__(self) -> str:
        return f"<{self._heading()}>"

    # ------------------------------------------------------------------ JSON
    def to_dict(self, values: bool = True) -> dict[str, Any]:
        self._close_delivery()
        return {
            "format": "minitorch_edu.study.tape",
            "version": 2,
            "settings": {
                "print_limit": self.print_limit,
                "store_limit": self.store_limit,
                "max_bytes": self.max_bytes,
                "max_steps": self.max_steps,
            },
            "dropped_steps": self.dropped_steps,
            "passes": [backward_pass.to_dict() for backward_pass in self.passes],
            "steps": [step.to_dict(values) for step in self.steps],
        }

    def to_json(self, values: bool = True, indent: int | None = None) -> str:
        """The tape as strict JSON (nan and infinities written as strings)."""
        return json.dumps(self.to_dict(values), indent=indent, allow_nan=False)

    def save_json(self, path: str | Path, values: bool = True, indent: int | None = 1) -> Path:
        """Write `to_json()` to `path`; returns the path."""
        path = Path(path)
        path.write_text(self.to_json(values, indent))
        return path


def trace(
    names: Any = None,
    *,
    print_limit: int = 16,
    store_limit: int | None = 100_000,
    max_bytes: int | None = 256 * 2**20,
    max_steps: int | None = None,
) -> Tape:
    """Record the forward ops and backward steps run inside `with trace() as tape:`.

    `names` labels tensors in the printout: a dict {tensor: "name"} or a Module (anything
    with `named_parameters()`). See `Tape` for the other settings.
    """
    return Tape(
        names,
        print_limit=print_limit,
        store_limit=store_limit,
        max_bytes=max_bytes,
        max_steps=max_steps,
    )


# ---------------------------------------------------------------------- helpers
def _weak(node: Function | None) -> Any:
    return None if node is None else weakref.ref(node)


def _forget(cache: dict, key: int) -> Any:
    """A weak-reference callback that drops a dead tensor's entry from `cache`."""

    def callback(ref: Any) -> None:
        entry = cache.get(key)
        if entry is not None and entry[0] is ref:
            del cache[key]

    return callback


def _short(name: str, value: Value) -> str:
    if isinstance(value, Snapshot):
        return f"{name}{format_shape(value.shape)}"
    return name


def _value_lines(step: Step, print_limit: int, digits: int, indent: str) -> list[str]:
    output_names = list(step.output_names)
    for i, shape in enumerate(step.summed_to):
        if shape is not None:
            output_names[i] += f" (summed to {format_shape(shape)} by the engine)"
    pairs = list(zip(step.input_names, step.inputs)) + list(zip(output_names, step.outputs))
    shown = [(n, v) for n, v in pairs if isinstance(v, Snapshot)]
    width = max((len(n) for n, _ in shown), default=0)
    lines = []
    for name, value in shown:
        text = value.text(print_limit, digits)
        head = f"{indent}{name:<{width}} = "
        lines.append(head + text.replace("\n", "\n" + " " * len(head)))
    if step.options:
        options = ", ".join(f"{k}={v}" for k, v in step.options.items())
        lines.append(f"{indent}options: {options}")
    return lines


def _value_dict(name: str, value: Value, values: bool) -> dict[str, Any] | None:
    if isinstance(value, Snapshot):
        return {"name": name, **value.to_dict(values)}
    if isinstance(value, float) and not math.isfinite(value):
        value = str(value)
    return {"name": name, "value": value}


def _option_text(value: Any) -> str:
    return option_text(value)
