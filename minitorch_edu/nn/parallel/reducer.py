"""The gradient reducer of DistributedDataParallel: buckets, hooks and the all-reduce.

N processes (ranks) hold the same model and each computes the gradient g_r of the loss on
its own batch. After backward every rank must hold the average

    g  ←  (1/N) Σ_r g_r

which is the gradient of the mean loss over all N batches together, so every rank takes
the same optimizer step and the replicas stay equal. `torch.distributed.all_reduce` sums a
tensor across the ranks (each ends with the sum); dividing by N first (as torch's DDP does,
which keeps half-precision sums in range) gives Σ_r (g_r / N) = g.

Sending every parameter's gradient on its own costs one message start-up (latency) per
parameter; sending them all at the end of backward wastes the time backward still runs.
So gradients travel in buckets: flat tensors of about `bucket_cap_mb` holding several
parameters' gradients side by side, each sent as soon as all of its gradients are final,
while backward goes on computing the gradients of earlier layers (the overlap).

One backward pass on rank r, for Linear(4, 8) -> ReLU -> Linear(8, 2) with small buckets:

    construction  parameters in reverse order (gradients come back from the last layer
                  first): bucket 0 = [1.bias, 1.weight], bucket 1 = [0.bias, 0.weight];
                  each bucket is one flat tensor with a slot per parameter
    forward       every bucket expects all of its parameters (pending = its size)
    backward      the engine finishes 1.bias and 1.weight: each one's post-accumulate hook
                  copies .grad into its slot; bucket 0 is complete, so it is divided by N
                  and all_reduce(bucket 0, async_op=True) starts: gloo or NCCL sums it
                  across the ranks on their own threads or streams ...
                  ... while the engine computes 0.bias and 0.weight; bucket 1 completes and
                  its all-reduce starts too
    finish        the last bucket has started: wait for every all-reduce and copy each
                  averaged slot back into its parameter's .grad (or, with
                  gradient_as_bucket_view=True, .grad *is* the slot, and nothing is copied)

Buckets start strictly in order (bucket 1 waits for bucket 0 even if it completes first),
because every rank must issue the same collectives in the same order. Bucket layout, as in
torch: parameters are taken in reverse registration order; a bucket is closed once it holds
at least its cap (one bucket per dtype and device at a time); the first cap is 1 MiB when
bucket_cap_mb is left at None (so the first all-reduce starts early), later ones
bucket_cap_mb (25 MiB by default). torch starts with one bucket for everything and, after
the first iteration, rebuilds its buckets in the order it saw gradients arrive; here the
buckets are built once, in reverse registration order, which is that order whenever layers
are registered in the order forward uses them (tests/test_distributed.py compares our
buckets with torch's).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from minitorch_edu.autograd import function
from minitorch_edu.autograd.tensor import Tensor

MIB = 1024 * 1024
DEFAULT_BUCKET_CAP_MB = 25
FIRST_BUCKET_BYTES = 1 * MIB  # torch's dist._DEFAULT_FIRST_BUCKET_BYTES


class ProcessGroupError(RuntimeError):
    """A collective failed: another rank stopped (crashed, was killed) or did not answer in
    time (the process group's timeout)."""


def collective_failed(what: str, error: BaseException) -> ProcessGroupError:
    """The error to raise when `what` (a collective) failed with `error`."""
    rank, world_size = dist.get_rank(), dist.get_world_size()
    lines = str(error).strip().splitlines()
    return ProcessGroupError(
        f"rank {rank} of {world_size}: {what} failed; another process of the group probably "
        f"stopped (crashed or was killed) or did not answer within the process group's "
        f"timeout. Check the other ranks' output. ({lines[0] if lines else type(error).__name__})"
    )


@dataclass
class Bucket:
    """Gradients of a few parameters, side by side in one flat tensor, sent as one message."""

    index: int
    parameters: list[Tensor]
    names: list[str]
    offsets: list[int]  # where each parameter's gradient starts in `buffer`
    buffer: torch.Tensor
    pending: int = 0  # parameters whose gradient is not in yet, this pass
    work: Any = None  # the all-reduce in flight
    traced: bool = False  # a study trace saw it start

    def slot(self, position: int) -> torch.Tensor:
        """The part of `buffer` that holds parameter `position`'s gradient, in its shape."""
        parameter = self.parameters[position]
        start = self.offsets[position]
        return self.buffer[start : start + parameter.numel()].view(parameter.shape)


def assign_buckets(
    parameters: Sequence[Tensor], first_cap_bytes: int, cap_bytes: int
) -> list[list[int]]:
    """Indices of `parameters` per bucket, in the order the buckets will be sent.

    Parameters are taken in reverse order; each (dtype, device) has one open bucket, closed
    when it holds at least its cap: `first_cap_bytes` for its first bucket, `cap_bytes` after.
    """
    buckets: list[list[int]] = []
    open_buckets: dict[tuple, list[int]] = {}  # (dtype, device) -> indices
    sizes: dict[tuple, int] = {}
    closed_count: dict[tuple, int] = {}
    for index in reversed(range(len(parameters))):
        data = parameters[index].data
        key = (data.dtype, data.device)
        open_buckets.setdefault(key, []).append(index)
        sizes[key] = sizes.get(key, 0) + data.numel() * data.element_size()
        cap = first_cap_bytes if closed_count.get(key, 0) == 0 else cap_bytes
        if sizes[key] >= cap:
            buckets.append(open_buckets.pop(key))
            sizes[key] = 0
            closed_count[key] = closed_count.get(key, 0) + 1
    buckets.extend(indices for indices in open_buckets.values() if indices)
    return buckets


class Reducer:
    """Averages the gradients of `parameters` across the ranks of `process_group`, in buckets,
    from post-accumulate hooks (see the module docstring for one pass)."""

    def __init__(
        self,
        parameters: list[Tensor],
        names: list[str],
        process_group: Any,
        bucket_cap_mb: float | None,
        gradient_as_bucket_view: bool,
    ) -> None:
        self.parameters = parameters
        self.process_group = process_group
        self.world_size = dist.get_world_size(process_group)
        self.gradient_as_bucket_view = gradient_as_bucket_view
        cap = int((DEFAULT_BUCKET_CAP_MB if bucket_cap_mb is None else bucket_cap_mb) * MIB)
        first_cap = FIRST_BUCKET_BYTES if bucket_cap_mb is None else cap
        self.buckets: list[Bucket] = []
        self.place: list[tuple[Bucket, int]] = [None] * len(parameters)  # type: ignore[list-item]
        for bucket_index, indices in enumerate(assign_buckets(parameters, first_cap, cap)):
            members = [parameters[i] for i in indices]
            offsets, total = [], 0
            for parameter in members:
                offsets.append(total)
                total += parameter.numel()
            first = members[0].data
            buffer = torch.zeros(total, dtype=first.dtype, device=first.device)
            bucket = Bucket(bucket_index, members, [names[i] for i in indices], offsets, buffer)
            self.buckets.append(bucket)
            for position, index in enumerate(indices):
                self.place[index] = (bucket, position)
        # State of the current pass.
        self.expecting = False  # a forward has run that wants its gradients averaged
        self.started = False  # some gradient of this pass has arrived
        self.ready = [False] * len(parameters)  # gradient is in its slot
        self.used = [True] * len(parameters)  # got a gradient from backward (find_unused)
        self.next_bucket = 0
        self.find_unused = False

    # ------------------------------------------------------------------ one pass
    def prepare(self, unused: Sequence[int] = (), find_unused: bool = False) -> None:
        """A forward has run: expect every parameter's gradient, except those in `unused`
        (find_unused_parameters), which are ready right away: their slot holds the .grad they
        have (accumulated earlier), or zero."""
        if self.expecting and self.started:
            raise RuntimeError(self._unfinished_message())
        self.expecting, self.started, self.next_bucket = True, False, 0
        self.find_unused = find_unused
        self.ready = [False] * len(self.parameters)
        self.used = [True] * len(self.parameters)
        for bucket in self.buckets:
            bucket.pending = len(bucket.parameters)
        for index in unused:
            self.used[index] = False
            self._fill_slot(index)
            self._mark_ready(index)

    def gradient_ready(self, index: int) -> None:
        """Parameter `index`'s .grad is final (its post-accumulate hook): put it in its slot."""
        if not self.expecting:
            return  # inside no_sync(), or a backward without a forward that asked for it
        self.used[index] = True
        self._fill_slot(index)
        self._mark_ready(index)

    def _fill_slot(self, index: int) -> None:
        parameter = self.parameters[index]
        bucket, position = self.place[index]
        slot = bucket.slot(position)
        grad = parameter.grad
        if grad is None:
            slot.zero_()
        elif not self.gradient_as_bucket_view:
            slot.copy_(grad.data)
        elif grad.data.data_ptr() != slot.data_ptr():
            slot.copy_(grad.data)
            parameter.grad = Tensor._wrap(slot)  # from now on backward accumulates in the slot

    def _mark_ready(self, index: int) -> None:
        if self.ready[index]:
            raise RuntimeError(
                f"Expected to mark a variable ready only once: parameter "
                f"{self._name(index)} received its gradient twice in one backward pass "
                "(several backward passes after one forward need no_sync(), or a forward each)"
            )
        self.ready[index] = True
        self.started = True
        bucket, _ = self.place[index]
        bucket.pending -= 1
        # Start every bucket that is complete and whose turn it is.
        while self.next_bucket < len(self.buckets) and self.buckets[self.next_bucket].pending == 0:
            self._start(self.buckets[self.next_bucket])
            self.next_bucket += 1
        if self.next_bucket == len(self.buckets):
            self._finish()

    def _start(self, bucket: Bucket) -> None:
        """All-reduce one bucket in the background: buffer ← Σ_r buffer_r / N."""
        try:
            tracer = function.tracer
            if tracer is not None and hasattr(tracer, "on_all_reduce"):
                # A study trace (on every rank): show it every rank's local gradients.
                local = [torch.empty_like(bucket.buffer) for _ in range(self.world_size)]
                dist.all_gather(local, bucket.buffer, group=self.process_group)
                tracer.on_all_reduce(self.describe(bucket), local)
                bucket.traced = True
            bucket.buffer.div_(self.world_size)
            bucket.work = dist.all_reduce(bucket.buffer, group=self.process_group, async_op=True)
        except RuntimeError as error:
            raise collective_failed(
                f"all-reduce of gradient bucket {bucket.index}", error
            ) from error

    def _finish(self) -> None:
        """Every bucket is on its way: wait for them, then hand the averages to .grad."""
        self.expecting = False
        for bucket in self.buckets:
            try:
                bucket.work.wait()
            except RuntimeError as error:
                raise collective_failed(
                    f"all-reduce of gradient bucket {bucket.index} ({', '.join(bucket.names)})",
                    error,
                ) from error
            bucket.work = None
        used_anywhere = self._used_anywhere() if self.find_unused else None
        for index, parameter in enumerate(self.parameters):
            if used_anywhere is not None and not used_anywhere[index]:
                continue  # no rank computed a gradient for it: leave .grad as it was
            bucket, position = self.place[index]
            slot = bucket.slot(position)
            if parameter.grad is None:  # unused here, used elsewhere
                parameter.grad = Tensor._wrap(
                    slot if self.gradient_as_bucket_view else slot.clone()
                )
            elif not self.gradient_as_bucket_view:
                parameter.grad.data.copy_(slot)
        tracer = function.tracer
        for bucket in self.buckets:
            if bucket.traced and tracer is not None and hasattr(tracer, "on_all_reduce_done"):
                tracer.on_all_reduce_done(bucket.index, bucket.buffer)
            bucket.traced = False

    def _used_anywhere(self) -> list[bool]:
        counts = torch.tensor(self.used, dtype=torch.int32, device=self.buckets[0].buffer.device)
        try:
            dist.all_reduce(counts, group=self.process_group)
        except RuntimeError as error:
            raise collective_failed("all-reduce of the used-parameter counts", error) from error
        return [bool(count) for count in counts.tolist()]

    # ------------------------------------------------------------------ reading it
    def describe(self, bucket: Bucket) -> dict[str, Any]:
        """What a study trace records about one bucket."""
        return {
            "bucket": bucket.index,
            "buckets": len(self.buckets),
            "rank": dist.get_rank(self.process_group),
            "world_size": self.world_size,
            "names": list(bucket.names),
            "parameters": list(bucket.parameters),
            "offsets": list(bucket.offsets),
            "shapes": [tuple(p.shape) for p in bucket.parameters],
            "numel": bucket.buffer.numel(),
        }

    def _name(self, index: int) -> str:
        bucket, position = self.place[index]
        return bucket.names[position]

    def _unfinished_message(self) -> str:
        missing = [self._name(i) for i, ready in enumerate(self.ready) if not ready]
        return (
            "Expected to have finished reduction in the prior iteration before starting a new "
            "one. This error indicates that your module has parameters that were not used in "
            "producing loss. You can enable unused parameter detection by passing the keyword "
            "argument `find_unused_parameters=True` to DistributedDataParallel, and by making "
            "sure all `forward` function outputs participate in calculating loss. Parameters "
            f"which did not receive grad for rank {dist.get_rank(self.process_group)}: "
            + ", ".join(missing)
        )


def hook_for(reducer_of: Callable[[], Reducer | None], index: int) -> Callable[[Tensor], None]:
    """The post-accumulate hook of parameter `index`: it tells the reducer (if it still exists)."""

    def gradient_ready(parameter: Tensor) -> None:
        reducer = reducer_of()
        if reducer is not None:
            reducer.gradient_ready(index)

    return gradient_ready
