"""Data-parallel training steps at 1, 2 and 4 processes: ours against torch's DDP, in one run.

    python -m benchmarks distributed                     # 1, 2 and 4 processes, CPU, gloo
    python -m benchmarks distributed --world-sizes 2 --batch 512 --seconds 8
    python -m benchmarks distributed --device cuda       # NCCL, one GPU per process

For each world size N, N gloo processes of this machine (minitorch_edu.testing.run_ranks)
each build the digits MLP twice, ours in our DistributedDataParallel and the torch twin in
torch's, from the same weights, and take training steps (zero_grad, forward, cross-entropy,
backward, SGD with momentum) on their share of a global batch, both sides interleaved
round by round as the single-process benchmarks do, every rank in step.

Each side is also timed inside `no_sync()`: the same forward, backward and update with no
all-reduce. The fraction of a step spent communicating is then

    (t_step - t_no_sync) / t_step

the time the all-reduces add to a step, i.e. what the overlap with backward did not hide.
Reported per side: rank 0's median step, its quartiles, the ratio ours / torch's and that
fraction. Every process runs torch on one thread; with more processes than cores they
share the cores, and the table says how many the machine has. On CUDA each process uses
the GPU of its rank over NCCL and the clocks are read after synchronising the GPU.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

import torch

from benchmarks.measure import quartiles, synchronize

FEATURES, CLASSES = 64, 10


def build(side: str, dtype: torch.dtype, device: torch.device):
    """(model wrapped for data parallelism, optimizer) of one side, from the same weights."""
    import minitorch_edu as mt
    from minitorch_edu.models import mlp
    from minitorch_edu.nn.parallel import DistributedDataParallel
    from reference.nn import torch_twin

    mt.manual_seed(0)
    ours = mlp(FEATURES, CLASSES).to(device=device, dtype=dtype)
    device_ids = None if device.type == "cpu" else [device]
    if side == "mt":
        model = DistributedDataParallel(ours, device_ids=device_ids)
        return model, mt.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model = torch.nn.parallel.DistributedDataParallel(torch_twin(ours), device_ids=device_ids)
    return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def step_function(side: str, model, optimizer, images, labels, sync: bool):
    """One training step of `side`, averaging the gradients (sync) or not (no_sync)."""
    import minitorch_edu as mt

    loss_function = mt.nn.CrossEntropyLoss() if side == "mt" else torch.nn.CrossEntropyLoss()

    def step() -> float:
        optimizer.zero_grad()
        if sync:
            loss = loss_function(model(images), labels)
            loss.backward()
        else:
            with model.no_sync():
                loss = loss_function(model(images), labels)
                loss.backward()
        optimizer.step()
        return loss

    return step


def bench_rank(
    rank: int,
    world_size: int,
    batch: int,
    rounds: int,
    seconds: float,
    dtype: str,
    device: str = "cpu",
) -> dict:
    """What one rank measures (run by run_ranks): per variant, the time of each step."""
    import torch.distributed as dist

    dtype = getattr(torch, dtype)
    device = torch.device("cpu") if device == "cpu" else torch.device("cuda", rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    generator = torch.Generator().manual_seed(rank)
    per_rank = batch // world_size
    images = torch.randn(per_rank, 1, 8, 8, dtype=dtype, generator=generator).to(device)
    labels = torch.randint(0, CLASSES, (per_rank,), generator=generator).to(device)

    steps = {}
    first_losses = {}
    for side in ("mt", "torch"):
        model, optimizer = build(side, dtype, device)
        for sync in (True, False):
            step = step_function(side, model, optimizer, images, labels, sync)
            first_losses.setdefault(side, step().item())  # also a warm-up
            for _ in range(2):
                step()
            steps[(side, sync)] = step
    # Rounds: every variant runs k steps in turn (the order rotating), all ranks together.
    synchronize(device)
    probe = time.perf_counter()
    steps[("mt", True)]()
    steps[("torch", True)]()
    synchronize(device)
    per_step = max(time.perf_counter() - probe, 1e-4) / 2
    # Every rank must take the same number of steps (each one all-reduces): rank 0's count.
    count = torch.tensor([max(1, int(seconds / rounds / len(steps) / per_step))], device=device)
    dist.broadcast(count, src=0)
    k = int(count.item())
    times: dict[str, list[float]] = {
        f"{side} {'step' if sync else 'no_sync'}": [] for side, sync in steps
    }
    variants = list(steps)
    for round_number in range(rounds):
        shift = round_number % len(variants)
        for side, sync in variants[shift:] + variants[:shift]:
            dist.barrier()
            name = f"{side} {'step' if sync else 'no_sync'}"
            for _ in range(k):
                synchronize(device)
                start = time.perf_counter()
                steps[(side, sync)]()
                synchronize(device)
                times[name].append(time.perf_counter() - start)
    return {"times": times, "first_losses": first_losses, "steps_per_round": k}


def summarise(world_size: int, batch: int, measured: dict) -> dict:
    times = measured["times"]
    row = {"world_size": world_size, "batch": batch, "per_rank": batch // world_size}
    for side in ("mt", "torch"):
        step, local = times[f"{side} step"], times[f"{side} no_sync"]
        median, no_sync = statistics.median(step), statistics.median(local)
        low, high = quartiles(step)
        row[side] = {
            "ms": 1000 * median,
            "quartiles_ms": [1000 * low, 1000 * high],
            "no_sync_ms": 1000 * no_sync,
            "communication_fraction": max(0.0, (median - no_sync) / median),
        }
    row["ratio"] = row["mt"]["ms"] / row["torch"]["ms"]
    return row


def run(
    world_sizes: list[int],
    batch: int,
    rounds: int,
    seconds: float,
    dtype: str,
    json_path: Path | None,
    device: str = "cpu",
) -> list[dict]:
    from benchmarks.__main__ import _git_commit, _load
    from minitorch_edu.testing.distributed import run_ranks

    preload = ["torch._dynamo", "reference.nn", "minitorch_edu.models", "benchmarks.distributed"]
    backend = "gloo" if device == "cpu" else "nccl"
    if device != "cpu" and max(world_sizes) > torch.cuda.device_count():
        raise SystemExit(
            f"{max(world_sizes)} processes need as many GPUs; there are {torch.cuda.device_count()}"
        )
    print(
        f"torch {torch.__version__}, {device}, {backend}, {dtype}, 1 thread per process, "
        f"{os.cpu_count()} cores, global batch {batch}, load average {_load()}",
        flush=True,
    )
    rows = []
    for world_size in world_sizes:
        if batch % world_size:
            raise SystemExit(f"--batch {batch} does not split over {world_size} processes")
        measured = run_ranks(
            bench_rank,
            world_size,
            args=(batch, rounds, seconds, dtype, device),
            backend=backend,
            timeout=max(120.0, 4 * seconds),
            preload=preload,
        )
        row = summarise(world_size, batch, measured[0])
        rows.append(row)
        print(
            f"  {world_size} process{'es' if world_size > 1 else '  '}  "
            f"mt {row['mt']['ms']:8.3f} ms   torch {row['torch']['ms']:8.3f} ms   "
            f"ratio {row['ratio']:.3f}",
            flush=True,
        )
    print(
        f"\n{'processes':<10}{'per rank':>9}{'mt ms':>10} {'(p25-p75)':<16}{'torch ms':>9} "
        f"{'(p25-p75)':<16}{'mt/torch':>9}{'mt comm':>9}{'torch comm':>11}"
    )
    for row in rows:
        mt, th = row["mt"], row["torch"]
        mq, tq = mt["quartiles_ms"], th["quartiles_ms"]
        print(
            f"{row['world_size']:<10}{row['per_rank']:>9}{mt['ms']:>10.3f} "
            f"{f'({mq[0]:.2f}-{mq[1]:.2f})':<16}{th['ms']:>9.3f} {f'({tq[0]:.2f}-{tq[1]:.2f})':<16}"
            f"{row['ratio']:>9.3f}{mt['communication_fraction']:>9.0%}"
            f"{th['communication_fraction']:>11.0%}"
        )
    report = {
        "commit": _git_commit(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "device": device if device == "cpu" else torch.cuda.get_device_name(0),
        "backend": backend,
        "dtype": dtype,
        "batch": batch,
        "rounds": rounds,
        "seconds": seconds,
        "load_average_after": _load(),
        "rows": rows,
    }
    stamp = report["when"].replace(":", "")
    path = json_path or Path("benchmarks/results") / f"distributed-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nload average after: {report['load_average_after']}\nwritten: {path}")
    return rows
