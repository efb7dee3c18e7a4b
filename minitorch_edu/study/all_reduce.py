"""One element of a gradient across the ranks of DistributedDataParallel, with its numbers.

    with mt.study.trace(names=model) as tape:           # on every rank
        loss_function(model(images), labels).backward()
    print(explain_all_reduce(tape, model.module[0].weight, (1, 2)))

    module.0.weight[1, 2] across 2 ranks (backward pass 1)
      rode in bucket 1 of 2, 48 elements: module.0.bias, module.0.weight
      at slot 15 of the bucket
      rank 0 computed  g_0 = 0.1203
      rank 1 computed  g_1 = -0.03481
      averaged         g = (1/2) (g_0 + g_1) = (1/2) (0.1203 + -0.03481) = 0.04275

The numbers come from the tape's all-reduce step, which recorded every rank's local bucket
before the all-reduce and the averaged bucket after it (DistributedDataParallel's reducer
tells the tracer; see minitorch_edu/nn/parallel/reducer.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.study.format import format_number
from minitorch_edu.study.trace import Step, Tape


@dataclass
class AllReduceExplanation:
    """Where one gradient element travelled, and what each rank contributed.

    name             the parameter's label and the element ("module.0.weight[1, 2]")
    bucket           which bucket it rode in (0 is sent first), out of `buckets`
    bucket_names     the parameters in that bucket, in their order inside it
    bucket_numel     elements in the bucket
    slot             the element's position in the bucket's flat tensor
    local            per rank: the gradient that rank computed on its own batch
    averaged         the result every rank holds: (1/N) Σ_r local[r]
    backward_pass    the tape's number of the backward pass
    """

    name: str
    bucket: int
    buckets: int
    bucket_names: list[str]
    bucket_numel: int
    slot: int
    local: list[float]
    averaged: float
    backward_pass: int | None

    @property
    def world_size(self) -> int:
        return len(self.local)

    def text(self, digits: int = 4) -> str:
        n = self.world_size
        where = f" (backward pass {self.backward_pass})" if self.backward_pass else ""
        values = [format_number(value, digits) for value in self.local]
        symbols = " + ".join(f"g_{r}" for r in range(n))
        lines = [
            f"{self.name} across {n} ranks{where}",
            f"  rode in bucket {self.bucket} of {self.buckets}, {self.bucket_numel} elements: "
            + ", ".join(self.bucket_names),
            f"  at slot {self.slot} of the bucket",
        ]
        lines += [f"  rank {r} computed  g_{r} = {values[r]}" for r in range(n)]
        lines.append(
            f"  averaged         g = (1/{n}) ({symbols}) = (1/{n}) ({' + '.join(values)}) "
            f"= {format_number(self.averaged, digits)}"
        )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()


def explain_all_reduce(
    tape: Tape, parameter: Tensor, index: Any = (), backward_pass: int | None = None
) -> AllReduceExplanation:
    """Element `index` of `parameter`'s gradient: each rank's value, its bucket, the average.

    Reads the last all-reduce step of `tape` (or of `backward_pass`) that carried
    `parameter`. The tape must have kept the bucket's numbers (its store_limit).
    """
    if not isinstance(parameter, Tensor):
        raise TypeError(f"explain_all_reduce: expected a Tensor, got {type(parameter).__name__}")
    known = tape.labels.known(parameter)
    steps = [
        step
        for step in tape.all_reduce_steps
        if known is not None
        and known[0] in step.output_ids
        and (backward_pass is None or step.backward_pass == backward_pass)
    ]
    if not steps:
        raise ValueError(
            "explain_all_reduce: this tape holds no all-reduce of that parameter; trace a "
            "backward pass through DistributedDataParallel (on every rank) first"
        )
    step: Step = steps[-1]
    position = step.output_ids.index(known[0])
    shape = tuple(parameter.shape)
    element = _flat_index(index, shape)
    slot = step.bucket["offsets"][position] + element
    if any(value.values is None for value in [*step.inputs, *step.outputs]):
        raise ValueError(
            "explain_all_reduce: the tape kept only summaries of this bucket (it holds "
            f"{step.bucket['numel']} numbers); trace with a larger store_limit"
        )
    label = known[1] + (_index_text(index, shape) if shape else "")
    return AllReduceExplanation(
        name=label,
        bucket=step.bucket["bucket"],
        buckets=step.bucket["buckets"],
        bucket_names=list(step.bucket["names"]),
        bucket_numel=step.bucket["numel"],
        slot=slot,
        local=[float(value.values.reshape(-1)[slot]) for value in step.inputs],
        averaged=float(step.outputs[0].values.reshape(-1)[slot]),
        backward_pass=step.backward_pass,
    )


def _flat_index(index: Any, shape: tuple[int, ...]) -> int:
    """Row-major position of `index` (an int or a tuple, negative allowed) in `shape`."""
    index = (index,) if isinstance(index, int) else tuple(index)
    if len(index) != len(shape):
        raise IndexError(f"index {index} does not pick one element of a tensor of shape {shape}")
    flat = 0
    for i, size in zip(index, shape):
        if not -size <= i < size:
            raise IndexError(f"index {index} is out of range for shape {shape}")
        flat = flat * size + (i % size)
    return flat


def _index_text(index: Any, shape: tuple[int, ...]) -> str:
    index = (index,) if isinstance(index, int) else tuple(index)
    return "[" + ", ".join(str(i % size) for i, size in zip(index, shape)) + "]"
