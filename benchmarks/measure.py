"""Timing (both sides interleaved, in one process) and peak memory (one fresh process per side).

Timing. Both sides are built, then warmed up. The time budget is split into R rounds; a
round runs k steps of one side, then k of the other, the order alternating between rounds,
and times every step alone (on a GPU, synchronising before each clock read). Whatever
else the machine is doing then falls on both sides alike. Reported: the median step time
per side, its quartiles, and the ratio of the medians; the quartiles of the per-round
ratios show how steady that ratio was.

Clocks. By default each step is timed by the wall clock (time.perf_counter). On a machine
shared with other work, a step that waits for a core counts the wait; with one thread
(--threads 1) `--clock cpu` times each step by the CPU time of the thread that runs it
(time.thread_time), which leaves the waiting out. Both sides are timed by the same clock.

Memory. Each side runs alone in a fresh process: a throwaway copy of the case takes one
step first (libraries set up their kernels and buffers on first use, and that should not
count), then the real copy is built, the process's resident-set high-water mark is reset
(Linux: /proc/self/clear_refs) and the steps run. Peak step memory = the high-water mark
during the steps - the resident set before them: gradients, optimizer state, activations
and temporaries. On a GPU: torch.cuda.max_memory_allocated over the steps, minus the
memory allocated before them.

The resident set also counts how the C library's malloc keeps freed memory: a side that
makes many short-lived megabyte buffers (im2col columns) leaves more freed-but-kept heap
behind than one that makes few. So on the CPU a second number is taken in the same
process, after the first: peak tensor bytes, the high-water mark of the bytes held by live
tensors, from the allocation records of torch's profiler (its "Total Allocated"), minus
what was held before the steps. It is what the step needs; the resident set is what the
process costs the machine.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import torch

from benchmarks.cases import CASES, SIDES, Case


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on a GPU (its kernels run asynchronously); nothing on a CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}


def timed_steps(
    step: Callable[[], object],
    device: torch.device,
    count: int,
    clock: Callable[[], float] = time.perf_counter,
) -> list[float]:
    """Seconds taken by each of `count` calls of `step`."""
    times = []
    for _ in range(count):
        synchronize(device)
        start = clock()
        step()
        synchronize(device)
        times.append(clock() - start)
    return times


def quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q1, _, q3 = statistics.quantiles(values, n=4)
    return q1, q3


def time_case(
    case: Case,
    device: torch.device,
    dtype: torch.dtype,
    rounds: int,
    seconds: float,
    clock: Callable[[], float] = time.perf_counter,
) -> dict:
    """Median step times of both sides, interleaved within `seconds` (after a warm-up)."""
    steps = {side: case.build(side, device, dtype) for side in SIDES}
    warm = {side: timed_steps(steps[side], device, 3, clock) for side in SIDES}
    per_pair = sum(statistics.median(warm[side]) for side in SIDES)
    # warm up for about a tenth of the budget as well (caches, allocator, branch predictors)
    extra = max(0, min(50, int(0.1 * seconds / max(per_pair, 1e-6))))
    for side in SIDES:
        timed_steps(steps[side], device, extra, clock)
    k = max(1, min(500, int(seconds / (rounds * max(per_pair, 1e-6)))))
    times: dict[str, list[float]] = {side: [] for side in SIDES}
    round_ratios = []
    for r in range(rounds):
        order = SIDES if r % 2 == 0 else SIDES[::-1]
        this_round = {side: timed_steps(steps[side], device, k, clock) for side in order}
        for side in SIDES:
            times[side] += this_round[side]
        round_ratios.append(
            statistics.median(this_round["mt"]) / statistics.median(this_round["torch"])
        )
    mt_ms = statistics.median(times["mt"]) * 1e3
    torch_ms = statistics.median(times["torch"]) * 1e3
    return {
        "case": case.name,
        "mt_ms": mt_ms,
        "torch_ms": torch_ms,
        "ratio": mt_ms / torch_ms,
        "target": case.target,
        "steps_per_side": len(times["mt"]),
        "rounds": rounds,
        "mt_quartiles_ms": [t * 1e3 for t in quartiles(times["mt"])],
        "torch_quartiles_ms": [t * 1e3 for t in quartiles(times["torch"])],
        "ratio_quartiles": list(quartiles(round_ratios)),
    }


# ---------------------------------------------------------------------------- memory
def _resident_bytes(field: str) -> int:
    """VmRSS (now) or VmHWM (high-water mark) of this process, from /proc/self/status."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not found in /proc/self/status")


def _release_free_memory() -> None:
    """Hand freed heap memory back to the OS, so that the baseline is what is really in use."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the baseline just includes free heap
        pass


def measure_memory(name: str, side: str, device: torch.device, dtype: torch.dtype, steps: int):
    """Peak memory of `steps` steps of one side; meant to run alone in a fresh process."""
    case = next(c for c in CASES if c.name == name)
    throwaway = case.build(side, device, dtype)
    throwaway()
    del throwaway
    step = case.build(side, device, dtype)
    _release_free_memory()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    else:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")  # reset the high-water mark to the current resident set
        before = _resident_bytes("VmRSS")
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
        return {"before_bytes": before, "peak_bytes": peak, "step_bytes": peak - before}
    peak = _resident_bytes("VmHWM")
    return {
        "before_bytes": before,
        "peak_bytes": peak,
        "step_bytes": peak - before,
        "tensor_step_bytes": peak_tensor_bytes(step, steps),
    }


def peak_tensor_bytes(step: Callable[[], object], steps: int) -> int:
    """Most bytes held by live CPU tensors during `steps` steps, above what was held before."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        for _ in range(steps):
            step()
    handle, path = tempfile.mkstemp(suffix=".json")
    os.close(handle)
    try:
        profiler.export_chrome_trace(path)
        with open(path) as trace:
            events = json.load(trace)["traceEvents"]
    finally:
        os.remove(path)
    # Each allocation and free is a "[memory]" event carrying the allocator's running total.
    records = sorted(
        (event["ts"], event["args"]["Bytes"], event["args"]["Total Allocated"])
        for event in events
        if event.get("name") == "[memory]" and event.get("args", {}).get("Device Type") == 0
    )
    if not records:
        return 0
    _, first_bytes, first_total = records[0]
    before = first_total - first_bytes  # held just before the first recorded event
    return max(total for _, _, total in records) - before


def memory_row(name: str, device: str, dtype: str, threads: int, steps: int) -> dict:
    """Peak step memory of both sides of a case, each measured in a fresh process."""
    row: dict = {"case": name}
    for side in SIDES:
        command = [
            sys.executable, "-m", "benchmarks", "--_memory", name, side,
            "--device", device, "--dtype", dtype, "--threads", str(threads),
            "--memory-steps", str(steps),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"memory run of {name} ({side}) failed:\n{done.stderr}")
        row[side] = json.loads(done.stdout.strip().splitlines()[-1])
    row["ratio"] = row["mt"]["step_bytes"] / max(row["torch"]["step_bytes"], 1)
    if "tensor_step_bytes" in row["mt"]:
        row["tensor_ratio"] = row["mt"]["tensor_step_bytes"] / max(
            row["torch"]["tensor_step_bytes"], 1
        )
    return row
