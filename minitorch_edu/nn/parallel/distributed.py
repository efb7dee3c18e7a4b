"""`DistributedDataParallel`: one model replica per process, gradients averaged across them.

Each of N processes (started by torchrun, or by `minitorch-edu train --nproc N`) builds the
model, wraps it, and trains on its own share of every batch:

    torch.distributed.init_process_group("gloo")        # or "nccl" on GPUs; torchrun's env
    model = DistributedDataParallel(build_model())      # rank 0's weights go to every rank
    loss_function(model(my_share_of_the_batch), labels).backward()
    optimizer.step()                                    # every .grad is (1/N) Σ_r g_r

What happens, and where:

    construction   check that every rank has the same parameter shapes; broadcast rank 0's
                   parameters and buffers to all ranks (so replicas start equal); put the
                   parameters in buckets and hang a post-accumulate hook on each
                   (reducer.py)
    forward        broadcast rank 0's buffers (broadcast_buffers); run the module; tell the
                   reducer a backward is coming (and, with find_unused_parameters, which
                   parameters the output does not depend on)
    backward       the hooks fill the buckets and start their all-reduces while backward
                   runs; at the end every .grad holds the average (reducer.py walks one pass)
    no_sync()      forwards inside it do not ask for averaging: gradients just accumulate
                   locally, and the first backward after it averages the accumulated sum

The processes talk only through torch.distributed's collectives (broadcast, all_reduce,
all_gather): the engine this runs on, not something taught here.

What torch's DDP does and this one does not: communication hooks, join() for uneven
inputs, mixed precision, delay_all_reduce_named_params, static_graph's optimisations
(static_graph=True is accepted and changes nothing), multi-device modules.
"""

from __future__ import annotations

import contextlib
import warnings
import weakref
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist

from minitorch_edu.autograd import grad_mode
from minitorch_edu.autograd.engine import topological_order
from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.nn.module import Module
from minitorch_edu.nn.parallel.reducer import Reducer, collective_failed, hook_for


class DistributedDataParallel(Module):
    """Data parallelism over torch.distributed, with torch's signature (see the module).

    module                  the model; it is `.module`, and state_dict keys start "module."
    device_ids              [the GPU this process uses] for a CUDA module (inputs are moved
                            there); None for a CPU module
    broadcast_buffers       broadcast rank 0's buffers at every forward
    init_sync               broadcast rank 0's parameters and buffers at construction
    process_group           default: the one init_process_group started
    bucket_cap_mb           bucket size; None: 25 MiB, the first bucket 1 MiB
    find_unused_parameters  parameters the output does not depend on count as ready (with a
                            zero gradient) when forward ends; without it every parameter
                            must get a gradient, or the next forward raises
    gradient_as_bucket_view .grad is a view into its bucket: no copies, less memory
    """

    def __init__(
        self,
        module: Module,
        device_ids: list[int | torch.device] | None = None,
        output_device: int | torch.device | None = None,
        dim: int = 0,
        broadcast_buffers: bool = True,
        init_sync: bool = True,
        process_group: Any = None,
        bucket_cap_mb: float | None = None,
        find_unused_parameters: bool = False,
        check_reduction: bool = False,
        gradient_as_bucket_view: bool = False,
        static_graph: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(
                f"DistributedDataParallel wraps a minitorch_edu Module, got {type(module).__name__}"
            )
        if process_group is None:
            if not (dist.is_available() and dist.is_initialized()):
                raise RuntimeError(
                    "DistributedDataParallel needs a process group: call "
                    "torch.distributed.init_process_group(backend) first ('gloo' on CPUs, "
                    "'nccl' on GPUs; under torchrun it reads RANK, WORLD_SIZE, MASTER_ADDR and "
                    "MASTER_PORT from the environment)"
                )
            process_group = dist.group.WORLD
        if check_reduction:
            warnings.warn(
                "The `check_reduction` argument in `DistributedDataParallel` module is "
                "deprecated. Please avoid using it.",
                FutureWarning,
                stacklevel=2,
            )
        if bucket_cap_mb is not None and not bucket_cap_mb > 0:
            raise ValueError(f"bucket_cap_mb must be a positive number, got {bucket_cap_mb}")
        named = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
        if not named:
            raise RuntimeError(
                "DistributedDataParallel is not needed when a module doesn't have any "
                "parameter that requires a gradient."
            )
        devices = {p.device for _, p in named}
        if len({device.type for device in devices}) != 1:
            raise ValueError(
                "DistributedDataParallel's input module must be on the same type of devices, "
                f"but input module parameters locate in {sorted({d.type for d in devices})}."
            )
        device = next(iter(devices))
        if device_ids and (device.type == "cpu" or len(devices) > 1):
            raise ValueError(
                "DistributedDataParallel device_ids and output_device arguments only work with "
                "single-device/multiple-device GPU modules or CPU modules, but got device_ids "
                f"{device_ids}, output_device {output_device}, and module parameters {devices}."
            )
        if device_ids is not None and len(device_ids) > 1:
            raise ValueError("device_ids can only be None or contain a single element.")

        self.module = module  # registered as a child: state_dict keys are "module.<name>"
        self.process_group = process_group
        self.device = device
        self.device_ids = [_as_device(device_ids[0], device.type)] if device_ids else None
        self.dim = dim
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.static_graph = static_graph
        self.require_backward_grad_sync = True
        parameters = [p for _, p in named]
        if init_sync:
            self._check_same_parameters(named)
            self._broadcast_from_rank_0(parameters, "parameters")
            if broadcast_buffers:
                self._broadcast_from_rank_0(list(module.buffers()), "buffers")
        self.reducer = Reducer(
            parameters,
            [name for name, _ in named],
            process_group,
            bucket_cap_mb,
            gradient_as_bucket_view,
        )
        # The hooks reach the reducer through a weak reference: a DDP wrapper that is
        # dropped stops averaging (and its hooks are taken off) instead of living on.
        reducer_of = weakref.ref(self.reducer)
        handles = [
            parameter.register_post_accumulate_grad_hook(hook_for(reducer_of, index))
            for index, parameter in enumerate(parameters)
        ]
        weakref.finalize(self, _remove_all, handles)

    # ------------------------------------------------------------------ construction
    def _check_same_parameters(self, named: list[tuple[str, Tensor]]) -> None:
        """Every rank must wrap the same parameters (names, shapes, dtypes), or the buckets
        of different ranks would not line up."""
        mine = [(name, tuple(p.shape), str(p.dtype)) for name, p in named]
        everyone: list[Any] = [None] * dist.get_world_size(self.process_group)
        try:
            dist.all_gather_object(everyone, mine, group=self.process_group)
        except RuntimeError as error:
            raise collective_failed("comparing the parameters of the ranks", error) from error
        for rank, theirs in enumerate(everyone):
            if theirs != mine:
                difference = next(
                    (
                        f"{a} on this rank, {b} on rank {rank}"
                        for a, b in zip(mine, theirs)
                        if a != b
                    ),
                    f"{len(mine)} parameters on this rank, {len(theirs)} on rank {rank}",
                )
                raise RuntimeError(
                    "DistributedDataParallel expects the same model on every rank, but the "
                    f"parameters differ: {difference}"
                )

    def _broadcast_from_rank_0(self, tensors: list[Tensor], what: str) -> None:
        source = dist.get_global_rank(self.process_group, 0)
        try:
            for tensor in tensors:
                dist.broadcast(tensor.data, src=source, group=self.process_group)
        except RuntimeError as error:
            raise collective_failed(f"broadcast of rank 0's {what}", error) from error

    # ------------------------------------------------------------------ running
    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        sync = grad_mode.is_grad_enabled() and self.require_backward_grad_sync
        if self.broadcast_buffers:
            buffers = list(self.module.buffers())
            if buffers:
                self._broadcast_from_rank_0(buffers, "buffers")
        if self.device_ids:
            inputs, kwargs = _to_device((inputs, kwargs), self.device_ids[0])
        output = self.module(*inputs, **kwargs)
        if sync:
            unused = self._unused_parameters(output) if self.find_unused_parameters else ()
            self.reducer.prepare(unused, self.find_unused_parameters)
        return output

    def _unused_parameters(self, output: Any) -> list[int]:
        """Indices of the parameters that no tensor in `output` depends on."""
        tensors = [t for t in _tensors_in(output) if t.requires_grad]
        reached = {id(t) for t in tensors if t.grad_fn is None}
        for node in topological_order([t.grad_fn for t in tensors if t.grad_fn is not None]):
            reached.update(id(parent) for parent in node.parents if isinstance(parent, Tensor))
        return [i for i, p in enumerate(self.reducer.parameters) if id(p) not in reached]

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Forwards inside the block do not average gradients: they accumulate locally, and
        the first forward-backward after the block averages the sum.

            with model.no_sync():
                for micro_batch in first_ones:
                    loss(model(micro_batch)).backward()     # local accumulation only
            loss(model(last_micro_batch)).backward()          # averages everything
        """
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def extra_repr(self) -> str:
        buckets = ", ".join(f"[{', '.join(b.names)}]" for b in self.reducer.buckets)
        return f"world_size={self.reducer.world_size}, buckets: {buckets}"


def _as_device(device_id: int | torch.device | str, kind: str) -> torch.device:
    """device_ids' entry as a torch.device: 1 -> cuda:1."""
    return torch.device(kind, device_id) if isinstance(device_id, int) else torch.device(device_id)


def _remove_all(handles: list) -> None:
    for handle in handles:
        handle.remove()


def _tensors_in(value: Any) -> Iterator[Tensor]:
    """Our Tensors inside a forward's output (nested tuples, lists, dicts)."""
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors_in(item)


def _to_device(value: Any, device: torch.device) -> Any:
    """`value` with every tensor in it moved to `device` (device_ids)."""
    if isinstance(value, Tensor):
        return value.to(device)
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, tuple):
        return tuple(_to_device(item, device) for item in value)
    if isinstance(value, list):
        return [_to_device(item, device) for item in value]
    if isinstance(value, dict):
        return {key: _to_device(item, device) for key, item in value.items()}
    return value
