"""`minitorch-edu train --nproc N`: the training run of train.py on N processes, data parallel.

    minitorch-edu train --nproc 2                 2 processes on this machine
    minitorch-edu train --nproc 4 --zero          ... the optimizer state sharded (ZeRO-1)

`--nproc N` starts N copies of the same command through torch's launcher
(`torch.distributed.run`, the code behind `torchrun`; minitorch_edu/launch.py), with a
rendezvous on 127.0.0.1. Each copy sees torchrun's environment (RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and becomes one rank: it joins the process group
(gloo on CPUs, NCCL with one GPU per rank on CUDA) and trains. Started by torchrun
directly, `minitorch-edu train` is a rank the same way, which is how a run spans several
machines (docs/data-parallel.md).

What each rank r of N does, step by step:

    sampler   DistributedSampler(train set, N, r, seed): its share of every epoch
              (set_epoch(e) each epoch, so every epoch has another order)
    batches   --batch-size B is the global batch: each rank takes B / N samples a step
    model     DistributedDataParallel(model): rank 0's initial weights everywhere, and after
              each backward every gradient is the average over the N shares, i.e. the
              gradient of the mean loss over the global batch
    optimizer the plain optimizer (every rank takes the same step), or, with --zero,
              ZeroRedundancyOptimizer (each rank steps its shard and broadcasts it)
    losses    a step's loss is the mean of the N ranks' losses (the global batch's mean)
    rank 0    prints the progress and the epoch lines, draws the plot, writes checkpoints
              (the sharded optimizer state is first collected on it)
    twin      with --compare-torch, torch's DistributedDataParallel (and torch's ZeRO) on
              the same shares, on the same process group

A checkpoint holds the model and the whole optimizer state, not any rank's part of it, so
a run saved by N ranks resumes in 1 (leave out --nproc) or in M ranks (--nproc M): what the
resumed run computes is what an M-rank run computes from that state (how the epoch is split,
and padded to a multiple of M, depends on M).
"""

from __future__ import annotations

import datetime
import sys
import time
from typing import TYPE_CHECKING, Any

import torch

from minitorch_edu import nn
from minitorch_edu.checkpoint import (
    save_checkpoint,
)
from minitorch_edu.creation import manual_seed
from minitorch_edu.data import DataLoader, DistributedSampler, TensorDataset
from minitorch_edu.launch import torchrun_world
from minitorch_edu.train import (
    CPU_THREADS,
    History,
    TrainingResult,
    build_model,
    cpu_threads,
    epoch_line,
    load_torch_twin_class,
    optimizer_options,
    prepare_data,
    print_header,
    record_epoch,
    report_finished,
    resume,
    train_one_epoch,
    training_payload,
)

if TYPE_CHECKING:
    from minitorch_edu.cli import TrainConfig

# How long a rank waits for the others in one collective before giving up with an error
# (torch's default is 30 minutes; evaluation and saving on rank 0 take seconds here).
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=5)


# ---------------------------------------------------------------------- one rank
def run_rank(config: TrainConfig, train_set: TensorDataset, test_set: TensorDataset) -> Any:
    """Join the process group torchrun prepared (when there is more than one rank), train,
    and leave it."""
    world = torchrun_world()
    rank, world_size, local_rank, _ = world if world is not None else (0, 1, 0, 1)
    if world_size == 1:
        return run_data_parallel(config, train_set, test_set, 0, 1)
    import torch.distributed as dist

    if config.device == "cuda":
        torch.cuda.set_device(local_rank)  # one GPU per rank
    dist.init_process_group(
        "nccl" if config.device == "cuda" else "gloo", timeout=COLLECTIVE_TIMEOUT
    )
    try:
        return run_data_parallel(config, train_set, test_set, rank, world_size)
    finally:
        dist.destroy_process_group()


def run_data_parallel(
    config: TrainConfig,
    train_set: TensorDataset,
    test_set: TensorDataset,
    rank: int,
    world_size: int,
) -> TrainingResult:
    """train.run_training on rank `rank` of `world_size` (see the module docstring)."""
    with cpu_threads(CPU_THREADS):
        return _run_data_parallel(config, train_set, test_set, rank, world_size)


def _run_data_parallel(
    config: TrainConfig,
    train_set: TensorDataset,
    test_set: TensorDataset,
    rank: int,
    world_size: int,
) -> TrainingResult:
    from minitorch_edu.nn.parallel import DistributedDataParallel
    from minitorch_edu.optim import ZeroRedundancyOptimizer

    main = rank == 0
    data = prepare_data(config, train_set, test_set)
    train_set, test_set = data.train_set, data.test_set
    image_shape, classes = data.image_shape, data.classes
    device, dtype = torch.device(config.device), getattr(torch, config.dtype)

    manual_seed(config.seed)  # the initial weights (DDP broadcasts rank 0's anyway)
    model = build_model(config.model, image_shape, classes).to(device=device, dtype=dtype)
    network = DistributedDataParallel(model) if world_size > 1 else model
    optimizer_class, options = optimizer_options(config.optimizer, config.lr, config.momentum)
    if config.zero and world_size > 1:
        optimizer = ZeroRedundancyOptimizer(model.parameters(), optimizer_class, **options)
    else:
        optimizer = optimizer_class(model.parameters(), **options)
    loss_function = nn.CrossEntropyLoss()
    sampler = DistributedSampler(train_set, world_size, rank, shuffle=True, seed=config.seed)
    loader = DataLoader(train_set, batch_size=config.batch_size // world_size, sampler=sampler)
    twin = None
    if config.compare_torch:
        twin = load_torch_twin_class()(
            config.model, image_shape, classes, model, optimizer, distributed=world_size > 1
        )

    history, epoch, step = History(), 0, 0
    if config.resume is not None:
        history, epoch, step = resume(config, data.digest, model, optimizer, loader, twin)

    if main:
        print_header(config, model, optimizer, image_shape, epoch)
        backend = "nccl" if config.device == "cuda" else "gloo"
        print(
            f"data parallel: {world_size} process{'es' * (world_size > 1)}"
            + (f" ({backend})" if world_size > 1 else "")
            + f", global batch {config.batch_size} = {world_size} x "
            f"{config.batch_size // world_size}"
            + (", optimizer state sharded (ZeRO-1)" if config.zero and world_size > 1 else "")
            + (", torch's DistributedDataParallel alongside" if twin and world_size > 1 else ""),
            flush=True,
        )
    seconds, twin_seconds = [], []
    started = time.perf_counter()
    while epoch < config.epochs:
        sampler.set_epoch(epoch)
        epoch += 1
        description = f"epoch {epoch}/{config.epochs}"
        losses, twin_losses, epoch_seconds, epoch_twin_seconds = train_one_epoch(
            network, loss_function, optimizer, loader, twin, description, show_progress=main
        )
        losses, twin_losses = (
            mean_over_ranks(losses, world_size),
            mean_over_ranks(twin_losses, world_size),
        )
        step += len(losses)
        seconds += epoch_seconds
        twin_seconds += epoch_twin_seconds
        record_epoch(history, losses, twin_losses, model, twin, test_set)
        if main:
            print(epoch_line(history, epoch, config.epochs, len(losses)), flush=True)
        if config.save is not None:
            if isinstance(optimizer, ZeroRedundancyOptimizer):
                optimizer.consolidate_state_dict(to=0)  # every rank sends its shard to rank 0
            if twin is not None:
                twin.consolidate()
            if main:
                payload = training_payload(
                    config, model, optimizer, loader, twin, history, epoch, step, data.digest
                )
                save_checkpoint(config.save, payload)

    result = TrainingResult(
        model=model,
        optimizer=optimizer,
        twin=twin,
        history=history,
        epoch=epoch,
        step=step,
        seconds_per_step=seconds,
        torch_seconds_per_step=twin_seconds,
        wall_seconds=time.perf_counter() - started,
    )
    if main:
        title = f"{config.model} on {config.data}, {config.optimizer}, {world_size} processes"
        report_finished(config, result, title)
        sys.stdout.flush()
    return result


def mean_over_ranks(values: list[float], world_size: int) -> list[float]:
    """Each entry averaged over the ranks (every rank passes a list of the same length)."""
    if world_size == 1 or not values:
        return values
    import torch.distributed as dist

    from minitorch_edu.nn.parallel.reducer import collective_failed

    total = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        total = total.cuda()
    try:
        dist.all_reduce(total)
    except RuntimeError as error:
        raise collective_failed("averaging the step losses over the ranks", error) from error
    return (total / world_size).tolist()
