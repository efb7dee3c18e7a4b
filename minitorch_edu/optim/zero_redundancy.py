"""`ZeroRedundancyOptimizer`: ZeRO stage 1, each rank keeps the optimizer state of a shard.

With data parallelism every rank holds the whole model and, after the all-reduce, the same
averaged gradients, so every rank would compute the same optimizer step on the same state.
Adam's state is two tensors per parameter (exp_avg, exp_avg_sq): twice the model again, on
every rank. ZeRO stage 1 (Rajbhandari et al., 2020) keeps that state once across the group:

    partition   the parameters are dealt out to the N ranks, largest first, each to the
                rank holding the fewest elements so far (torch's sorted greedy), group by
                group: rank r owns the shard P_r
    step        rank r runs the wrapped optimizer on P_r only (so only it has P_r's state),
                then every rank broadcasts the parameters it updated:
                for r in 0..N-1: for p in P_r: broadcast(p, src=r)
    memory      optimizer state per rank ≈ (state per parameter) × (parameters) / N:
                Adam on M parameters in float32 keeps 8M bytes of state on one process,
                about 8M/N bytes on each of N ranks

Every parameter ends where the plain optimizer would have put it (its owner computed exactly
the plain update, and the others copied the result), which tests/test_distributed.py checks
against Adam on one process.

State dicts: `consolidate_state_dict(to=0)` (on every rank) collects the shards on rank
`to`, whose `state_dict()` is then the plain optimizer's state dict, parameters numbered in
the order of `param_groups` as always; `load_state_dict` takes such a dict on any number of
ranks and keeps each rank's shard, so a checkpoint moves between world sizes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from itertools import chain
from typing import Any

import torch
import torch.distributed as dist

from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.nn.parallel.reducer import collective_failed
from minitorch_edu.optim.optimizer import Optimizer, ParamsT


def partition(param_groups: list[dict[str, Any]], world_size: int) -> list[list[dict[str, Any]]]:
    """Per rank, its parameter groups: torch's sorted greedy, group by group.

    In each group the parameters are taken largest first, each going to the rank with the
    fewest elements so far (the first such rank on a tie). The counts carry over from group
    to group, so the shards stay even over all groups.
    """
    shards: list[list[dict[str, Any]]] = [[] for _ in range(world_size)]
    sizes = [0] * world_size
    for group in param_groups:
        owned: list[list[Tensor]] = [[] for _ in range(world_size)]
        for param in sorted(group["params"], key=lambda p: p.numel(), reverse=True):
            rank = sizes.index(min(sizes))
            owned[rank].append(param)
            sizes[rank] += param.numel()
        for rank in range(world_size):
            shards[rank].append({**group, "params": owned[rank]})
    return shards


class ZeroRedundancyOptimizer(Optimizer):
    """Shard the state of `optimizer_class(params, **defaults)` over the process group's ranks.

    process_group             default: the one init_process_group started
    parameters_as_bucket_view not supported (torch's option to broadcast flat buckets)
    overlap_with_ddp          not supported (torch's option to step inside DDP's hooks)
    """

    def __init__(
        self,
        params: ParamsT,
        optimizer_class: type[Optimizer],
        process_group: Any = None,
        parameters_as_bucket_view: bool = False,
        overlap_with_ddp: bool = False,
        **defaults: Any,
    ) -> None:
        if parameters_as_bucket_view or overlap_with_ddp:
            option = (
                "parameters_as_bucket_view" if parameters_as_bucket_view else "overlap_with_ddp"
            )
            raise NotImplementedError(
                f"ZeroRedundancyOptimizer: {option}=True is not supported here; parameters are "
                "broadcast one by one after the step"
            )
        if not (isinstance(optimizer_class, type) and issubclass(optimizer_class, Optimizer)):
            raise TypeError(
                "optimizer_class must be a minitorch_edu optimizer class (mt.optim.Adam, ...), "
                f"got {optimizer_class!r}"
            )
        if process_group is None and not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError(
                "ZeroRedundancyOptimizer needs a process group: call "
                "torch.distributed.init_process_group(backend) first (torchrun sets the "
                "environment it reads)"
            )
        super().__init__(params, defaults)
        self.process_group = dist.group.WORLD if process_group is None else process_group
        self.world_size = dist.get_world_size(self.process_group)
        self.rank = dist.get_rank(self.process_group)
        self.optimizer_class = optimizer_class
        self.partition = partition(self.param_groups, self.world_size)
        self.optim = optimizer_class(self.partition[self.rank], **defaults)
        _copy_hyperparameters(self.optim.param_groups, self.param_groups)
        self._all_state_dicts: list[dict[str, Any]] = []

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (on every rank): its parameters are dealt out like the others'."""
        super().add_param_group(param_group)
        if "optim" in self.__dict__:  # after construction: shard the new group too
            self.partition = partition(self.param_groups, self.world_size)
            self.optim.add_param_group(self.partition[self.rank][-1])

    def owner(self, param: Tensor) -> int:
        """The rank that keeps `param`'s optimizer state and updates it."""
        for rank, groups in enumerate(self.partition):
            if any(param is p for group in groups for p in group["params"]):
                return rank
        raise ValueError("this parameter is not one of the optimizer's")

    # ------------------------------------------------------------------ stepping
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update this rank's shard, then broadcast every shard from its owner."""
        _copy_hyperparameters(self.param_groups, self.optim.param_groups)  # schedulers set lr
        loss = self.optim.step(closure)
        _copy_hyperparameters(self.optim.param_groups, self.param_groups)
        try:
            handles = [
                dist.broadcast(
                    param.data,
                    src=dist.get_global_rank(self.process_group, rank),
                    group=self.process_group,
                    async_op=True,
                )
                for rank, groups in enumerate(self.partition)
                for group in groups
                for param in group["params"]
            ]
            for handle in handles:
                handle.wait()
        except RuntimeError as error:
            raise collective_failed("broadcast of the updated parameter shards", error) from error
        self._opt_called = True
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        super().zero_grad(set_to_none)  # every parameter's gradient, not only this shard's

    # ------------------------------------------------------------------ state dicts
    def consolidate_state_dict(self, to: int = 0) -> None:
        """Collect every rank's shard of the state on rank `to` (call it on every rank)."""
        _copy_hyperparameters(self.param_groups, self.optim.param_groups)
        mine = _to_cpu(self.optim.state_dict())
        everyone: list[Any] = [None] * self.world_size
        try:
            dist.gather_object(
                mine,
                everyone if self.rank == to else None,
                dst=dist.get_global_rank(self.process_group, to),
                group=self.process_group,
            )
        except RuntimeError as error:
            raise collective_failed("gathering the optimizer state shards", error) from error
        self._all_state_dicts = everyone if self.rank == to else []

    def state_dict(self) -> dict[str, Any]:
        """The whole optimizer's state dict, as the plain optimizer's (after consolidating)."""
        if not self._all_state_dicts:
            raise RuntimeError(
                "Optimizer state has not been consolidated on this rank. Please call "
                f"`consolidate_state_dict(to={self.rank})` on all ranks beforehand if you meant "
                "to save the global state."
            )
        global_dict = super().state_dict()  # groups with global indices; state filled below
        index_of = {id(p): i for i, p in enumerate(self._all_params())}
        state: dict[int, Any] = {}
        for rank, local in enumerate(self._all_state_dicts):
            for local_group, shard in zip(local["param_groups"], self.partition[rank]):
                for local_index, param in zip(local_group["params"], shard["params"]):
                    if local_index in local["state"]:
                        state[index_of[id(param)]] = local["state"][local_index]
        global_dict["state"] = dict(sorted(state.items()))
        return global_dict

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a whole optimizer's state dict (ours, consolidated, or a plain optimizer's):
        the hyperparameters everywhere, the state of this rank's shard into its optimizer."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
            len(saved["params"]) != len(group["params"])
            for saved, group in zip(groups, self.param_groups)
        ):
            raise ValueError(
                "loaded state dict has a different number of parameter groups, or a group "
                "of another size, than this optimizer"
            )
        saved_index = dict(
            zip(
                (id(p) for p in self._all_params()),
                chain.from_iterable(group["params"] for group in groups),
            )
        )
        local_groups, local_state = [], {}
        local_index = 0  # the local optimizer numbers its own parameters, group after group
        for saved, shard in zip(groups, self.partition[self.rank]):
            indices = []
            for param in shard["params"]:
                index = saved_index[id(param)]
                if index in state_dict["state"]:
                    local_state[local_index] = state_dict["state"][index]
                indices.append(local_index)
                local_index += 1
            local_groups.append({**copy.deepcopy(_without_params(saved)), "params": indices})
        self.optim.load_state_dict({"state": local_state, "param_groups": local_groups})
        for saved, group in zip(groups, self.param_groups):
            group.update(_without_params(saved))

    def _all_params(self) -> list[Tensor]:
        return list(chain.from_iterable(group["params"] for group in self.param_groups))

    def __repr__(self) -> str:
        sizes = [sum(p.numel() for g in groups for p in g["params"]) for groups in self.partition]
        return (
            f"ZeroRedundancyOptimizer(rank {self.rank} of {self.world_size}, "
            f"{self.optimizer_class.__name__}, elements per rank {sizes})"
        )


def _without_params(group: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in group.items() if key not in ("params", "param_names")}


def _copy_hyperparameters(source: list[dict], target: list[dict]) -> None:
    """Every group setting but the parameters, group for group (lr from a scheduler...)."""
    for from_group, to_group in zip(source, target):
        to_group.update(_without_params(from_group))


def _to_cpu(value: Any) -> Any:
    """A copy of a state dict with its tensors on the CPU (to send and keep)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: _to_cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(item) for item in value)
    return value
