"""What each rank runs for tests/test_distributed.py (through minitorch_edu.testing.run_ranks).

Kept apart from the test file so that the processes import only this (torch, minitorch_edu and
the reference twins), not pytest. Every check runs in float64 on the ranks of one process
group and returns plain tensors and values; the assertions are made by the test file, in
the parent process. The single-process references are computed inside the ranks, from the
same seeds.

Data: the global batch of step s is N * B samples drawn from a generator seeded with s;
rank r's share is samples r*B .. (r+1)*B - 1 of it. A single process with the whole batch
is what every rank must match.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import time

import torch
import torch.distributed as dist
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

import minitorch_edu as mt
from minitorch_edu.nn.parallel import DistributedDataParallel, ProcessGroupError
from reference.nn import torch_twin

FEATURES, CLASSES, PER_RANK = 5, 3, 3
# Slow first imports of the ranks (torch's ZeRO, and torch._dynamo, which every torch
# optimizer imports when it is first built): the fork server imports them once. Every test
# passes this same list, as the first run in a test process starts the fork server.
PRELOAD = [
    "torch.distributed.optim",
    "torch._dynamo",
    "reference.nn",
    "reference.optim",
    "reference.training",
    "minitorch_edu.cli",
    "sklearn.datasets",
    "benchmarks.distributed",
]


def model(seed: int) -> mt.nn.Module:
    """A small MLP; `seed` picks its initial weights."""
    mt.manual_seed(seed)
    return mt.nn.Sequential(
        mt.nn.Linear(FEATURES, 8),
        mt.nn.Tanh(),
        mt.nn.Linear(8, 6),
        mt.nn.ReLU(),
        mt.nn.Linear(6, CLASSES),
    ).double()


def global_batch(step: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1000 + step)
    images = torch.randn(size, FEATURES, dtype=torch.float64, generator=generator)
    labels = torch.randint(0, CLASSES, (size,), generator=generator)
    return images, labels


def share(batch: tuple[torch.Tensor, torch.Tensor], rank: int, size: int) -> tuple:
    return tuple(t[rank * size : (rank + 1) * size] for t in batch)


def parameters_of(module: mt.nn.Module) -> list[torch.Tensor]:
    return [p.data.clone() for p in module.parameters()]


def train(network, optimizer, batches, loss_function=None) -> None:
    loss_function = loss_function or mt.nn.CrossEntropyLoss()
    for images, labels in batches:
        optimizer.zero_grad()
        loss_function(network(images), labels).backward()
        optimizer.step()


# ---------------------------------------------------------------------- the main checks
def data_parallel_checks(rank: int, world_size: int) -> dict:
    """Everything one process group can show; returns what the test file asserts."""
    results: dict = {"rank": rank}
    steps = 4
    batches = [global_batch(step, world_size * PER_RANK) for step in range(steps)]
    mine = [share(batch, rank, PER_RANK) for batch in batches]

    # 1. N ranks x batch B end where one process with batch N*B ends; every rank starts from
    #    other weights (seed + rank), and the broadcast makes them rank 0's.
    for name, make_optimizer in (
        ("sgd", lambda p: mt.optim.SGD(p, lr=0.1, momentum=0.9)),
        ("adam", lambda p: mt.optim.Adam(p, lr=0.01)),
    ):
        for as_view in (False, True):
            network = model(seed=rank)
            results[f"{name} start differs"] = rank == 0 or not torch.equal(
                parameters_of(network)[0], parameters_of(model(seed=0))[0]
            )
            ddp = DistributedDataParallel(network, gradient_as_bucket_view=as_view)
            train(ddp, make_optimizer(ddp.parameters()), mine)
            single = model(seed=0)
            train(single, make_optimizer(single.parameters()), batches)
            key = f"{name}{' as bucket view' if as_view else ''}"
            results[key] = (parameters_of(network), parameters_of(single))
            if as_view:
                bucket, position = ddp.reducer.place[0]
                results["grad is a bucket view"] = (
                    network[0].weight.grad.data.data_ptr() == bucket.slot(position).data_ptr()
                )

    # 2. no_sync: two micro-batches accumulated, then averaged, equal the larger batch.
    network = DistributedDataParallel(model(seed=0))
    optimizer = mt.optim.SGD(network.parameters(), lr=0.1)
    first, second = mine[0], mine[1]
    loss_function = mt.nn.CrossEntropyLoss()
    with network.no_sync():
        (loss_function(network(first[0]), first[1]) / 2).backward()
    local_after_no_sync = network.module[0].weight.grad.data.clone()
    (loss_function(network(second[0]), second[1]) / 2).backward()
    accumulated = [p.grad.data.clone() for p in network.parameters()]
    optimizer.step()
    single = model(seed=0)
    both = tuple(torch.cat([a, b]) for a, b in zip(batches[0], batches[1]))
    loss_function(single(both[0]), both[1]).backward()  # mean over 2 * N * B samples
    mt.optim.SGD(single.parameters(), lr=0.1).step()
    local_only = model(seed=0)
    loss_function(local_only(first[0]), first[1]).backward()
    results["no_sync"] = {
        "grads": (accumulated, [p.grad.data.clone() for p in single.parameters()]),
        "parameters": (parameters_of(network), parameters_of(single)),
        "local inside no_sync": (local_after_no_sync, local_only[0].weight.grad.data / 2),
    }

    # 3. ZeRO-1 with Adam equals plain Adam; its consolidated state dict is plain Adam's.
    network = DistributedDataParallel(model(seed=0))
    zero = mt.optim.ZeroRedundancyOptimizer(network.parameters(), mt.optim.Adam, lr=0.01)
    train(network, zero, mine)
    single = model(seed=0)
    adam = mt.optim.Adam(single.parameters(), lr=0.01)
    train(single, adam, batches)
    zero.consolidate_state_dict(to=0)
    results["zero"] = {
        "parameters": (parameters_of(network), parameters_of(single)),
        "state": copy.deepcopy((zero.state_dict(), adam.state_dict())) if rank == 0 else None,
        "owned": [zero.owner(p) for p in network.parameters()],
        "elements here": sum(p.numel() for p in zero.optim.param_groups[0]["params"]),
        "state tensors here": sum(len(s) for s in zero.optim.state.values()),
    }
    from torch.distributed.optim import ZeroRedundancyOptimizer as TorchZero  # slow import

    torch_zero = TorchZero(list(torch_twin(network.module).parameters()), torch.optim.Adam, lr=0.01)
    results["zero"]["torch owned"] = [torch_zero._param_to_rank[p] for p in torch_zero._all_params]
    # A plain (one-process) Adam state dict loads into ZeRO over N ranks and steps on equally.
    resumed = DistributedDataParallel(model(seed=0))
    resumed.module.load_state_dict(single.state_dict())
    resumed_zero = mt.optim.ZeroRedundancyOptimizer(resumed.parameters(), mt.optim.Adam, lr=0.5)
    resumed_zero.load_state_dict(adam.state_dict())
    train(resumed, resumed_zero, mine[:1])
    train(single, adam, batches[:1])
    results["zero resumed"] = (parameters_of(resumed), parameters_of(single))

    # 4. Our DDP against torch's DDP on the torch twin, step for step, with small buckets.
    results["torch ddp"] = against_torch_ddp(rank, mine)

    # 5. find_unused_parameters: a head that only even ranks use.
    results["unused"] = unused_parameters(rank, mine[0])

    # 6. Buffers: rank 0's at construction and, with broadcast_buffers, at every forward.
    results["buffers"] = buffers(rank)

    # 7. Clear refusals that leave the group usable.
    results["refusals"] = refusals(rank)

    # 8. The study view: one element across the ranks, from a trace taken on every rank.
    results["study"] = study_all_reduce(rank, mine[0])
    return results


def study_all_reduce(rank: int, batch: tuple) -> dict:
    network = DistributedDataParallel(model(seed=0), bucket_cap_mb=30 * 8 / 2**20)
    local = model(seed=0)
    mt.nn.CrossEntropyLoss()(local(batch[0]), batch[1]).backward()
    with mt.study.trace(names=network) as tape:
        mt.nn.CrossEntropyLoss()(network(batch[0]), batch[1]).backward()
    first_layer = network.module[0].weight
    explanation = mt.study.explain_all_reduce(tape, first_layer, (1, 2))
    return {
        "explanation": explanation,
        "text": str(explanation),
        "local": local[0].weight.grad.data[1, 2].item(),
        "averaged": first_layer.grad.data[1, 2].item(),
        "heading": repr(tape),
        "rows": [line for line in tape.table(values=False).splitlines() if "AllReduce" in line],
        "json bucket": tape.to_dict()["steps"][tape.all_reduce_steps[0].index]["bucket"],
    }


class TwoHeads(mt.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = mt.nn.Linear(FEATURES, 4)
        self.even = mt.nn.Linear(4, CLASSES)
        self.odd = mt.nn.Linear(4, CLASSES)
        self.never = mt.nn.Linear(4, CLASSES)

    def forward(self, x, rank):
        hidden = self.body(x).tanh()
        return self.even(hidden) if rank % 2 == 0 else self.odd(hidden)


class TorchTwoHeads(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Linear(FEATURES, 4)
        self.even = torch.nn.Linear(4, CLASSES)
        self.odd = torch.nn.Linear(4, CLASSES)
        self.never = torch.nn.Linear(4, CLASSES)

    def forward(self, x, rank):
        hidden = self.body(x).tanh()
        return self.even(hidden) if rank % 2 == 0 else self.odd(hidden)


def unused_parameters(rank: int, batch: tuple) -> dict:
    mt.manual_seed(3)
    ours = TwoHeads().double()
    theirs = TorchTwoHeads().double()
    theirs.load_state_dict(ours.state_dict())
    ddp = DistributedDataParallel(ours, find_unused_parameters=True, bucket_cap_mb=1e-4)
    torch_ddp = torch.nn.parallel.DistributedDataParallel(
        theirs, find_unused_parameters=True, bucket_cap_mb=1e-4
    )
    for _ in range(2):
        mt.nn.CrossEntropyLoss()(ddp(batch[0], rank), batch[1]).backward()
        torch.nn.CrossEntropyLoss()(torch_ddp(batch[0], rank), batch[1]).backward()
    grads = {
        name: None if p.grad is None else p.grad.data.clone() for name, p in ours.named_parameters()
    }
    torch_grads = {
        name: None if p.grad is None else p.grad.clone() for name, p in theirs.named_parameters()
    }
    # Without find_unused_parameters, the next forward names what got no gradient.
    strict = DistributedDataParallel(TwoHeads().double())
    mt.nn.CrossEntropyLoss()(strict(batch[0], rank), batch[1]).backward()
    try:
        strict(batch[0], rank)
        message = None
    except RuntimeError as error:
        message = str(error)
    dist.barrier()
    return {"grads": grads, "torch grads": torch_grads, "strict message": message}


def against_torch_ddp(rank: int, batches: list) -> dict:
    network = model(seed=0)
    twin = torch_twin(network)
    cap = 30 * 8 / 2**20  # about 30 float64 numbers a bucket: several buckets
    ours = DistributedDataParallel(network, bucket_cap_mb=cap)
    theirs = torch.nn.parallel.DistributedDataParallel(twin, bucket_cap_mb=cap)
    torch_buckets: dict[int, list[str]] = {}
    names = {id(p): name for name, p in twin.named_parameters()}

    def record_buckets(state, bucket):
        torch_buckets[bucket.index()] = [names[id(p)] for p in bucket.parameters()]
        return allreduce_hook(state, bucket)

    theirs.register_comm_hook(None, record_buckets)
    optimizer = mt.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    torch_optimizer = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    steps = []
    for images, labels in batches:
        optimizer.zero_grad()
        torch_optimizer.zero_grad()
        mt.nn.CrossEntropyLoss()(ours(images), labels).backward()
        torch.nn.CrossEntropyLoss()(theirs(images), labels).backward()
        grads = (
            [p.grad.data.clone() for p in ours.parameters()],
            [p.grad.clone() for p in theirs.parameters()],
        )
        optimizer.step()
        torch_optimizer.step()
        steps.append(
            {
                "grads": grads,
                "parameters": (
                    parameters_of(ours),
                    [p.detach().clone() for p in theirs.parameters()],
                ),
            }
        )
    return {
        "steps": steps,
        "our buckets": [list(bucket.names) for bucket in ours.reducer.buckets],
        "torch buckets": [torch_buckets[i] for i in sorted(torch_buckets)],
        "state_dict keys": (list(ours.state_dict()), list(theirs.state_dict())),
    }


def buffers(rank: int) -> dict:
    seen = {}
    for broadcast in (True, False):
        network = mt.nn.Linear(FEATURES, 2).double()
        network.register_buffer("count", torch.full((2,), float(rank)))
        ddp = DistributedDataParallel(network, broadcast_buffers=broadcast)
        at_construction = network.count.data.clone()
        network.count.data.fill_(10.0 + rank)  # each rank changes its own copy
        ddp(torch.zeros(1, FEATURES, dtype=torch.float64))
        seen[broadcast] = (at_construction, network.count.data.clone())
    return seen


def refusals(rank: int) -> dict:
    messages = {}
    mismatched = mt.nn.Linear(FEATURES, 4 if rank == 0 else 5)
    try:
        DistributedDataParallel(mismatched)
    except RuntimeError as error:
        messages["mismatched"] = str(error)
    frozen = mt.nn.Linear(2, 2).requires_grad_(False)
    try:
        DistributedDataParallel(frozen)
    except RuntimeError as error:
        messages["frozen"] = str(error)
    try:
        DistributedDataParallel(mt.nn.Linear(2, 2), device_ids=[0])
    except ValueError as error:
        messages["device_ids"] = str(error)
    return messages


# ---------------------------------------------------------------------- faults
def one_rank_stops(rank: int, world_size: int, how: str, after: int) -> dict:
    """Rank 1 exits abruptly ("dies") or stops answering ("hangs") after `after` steps; the
    others train on and must stop with a clear error: at once when the connection drops, at
    the process group's timeout when it hangs."""
    network = DistributedDataParallel(model(seed=0))
    optimizer = mt.optim.SGD(network.parameters(), lr=0.1)
    for step in range(100):
        if rank == 1 and step == after:
            if how == "dies":
                os._exit(7)
            time.sleep(3600)  # killed by run_ranks when its time is up
        images, labels = share(global_batch(step, world_size * PER_RANK), rank, PER_RANK)
        optimizer.zero_grad()
        started = time.monotonic()
        try:
            mt.nn.CrossEntropyLoss()(network(images), labels).backward()
        except ProcessGroupError as error:
            return {"step": step, "error": str(error), "seconds": time.monotonic() - started}
        optimizer.step()
    return {"step": None}


# ---------------------------------------------------------------------- the command
def command_rank(rank: int, world_size: int, argv: list[str]) -> tuple[int, str, str]:
    """`minitorch-edu train ARGV` as one rank, in the environment torchrun gives its workers:
    (exit code, what it printed, what it wrote to stderr)."""
    from minitorch_edu.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit:
            code = exit.code
    return code, out.getvalue(), err.getvalue()


def run_script(rank: int, world_size: int, path: str) -> str:
    """Run the script at `path` as a torchrun worker would; what it printed."""
    import runpy

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        runpy.run_path(path, run_name="__main__")
    return out.getvalue()


# ---------------------------------------------------------------------- the explorer
def explore_ranks(rank: int, world_size: int, path: str) -> dict:
    """mt.study.explore on every rank of a DistributedDataParallel model; rank 0 writes the
    page. Returns this rank's local gradients (one process, its own share) and the
    averaged ones."""
    images, labels = share(global_batch(0, world_size * PER_RANK), rank, PER_RANK)
    local = model(seed=0)
    mt.nn.CrossEntropyLoss()(local(images), labels).backward()
    network = DistributedDataParallel(model(seed=0), bucket_cap_mb=30 * 8 / 2**20)
    optimizer = mt.optim.SGD(network.parameters(), lr=0.1)
    loss_function = mt.nn.CrossEntropyLoss()
    exploration = mt.study.explore(network, loss_function, optimizer, images, labels)
    if rank == 0:
        exploration.save_html(path)
    return {
        "local": {f"module.{name}": p.grad.data.clone() for name, p in local.named_parameters()},
    }
