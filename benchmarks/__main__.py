"""Run every case on both sides, interleaved, and print medians with the ratio mt / torch.

    python -m benchmarks                    # all cases, CPU, float32, 2 threads
    python -m benchmarks --cases mlp        # names containing "mlp"
    python -m benchmarks --device cuda      # on a GPU (synchronised before every clock read)

Timing: after a warm-up, R rounds; each round runs k steps of one side then k of the other
(the order alternating between rounds), timing every step. Medians over all steps.
Memory: each (case, side) runs alone in a fresh process; its peak resident set (ru_maxrss)
after the steps minus the one before them is the step's working memory (on CUDA, torch's
max_memory_allocated).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks.cases import CASES, MEMORY_CASES


def timed_steps(step, device: torch.device, count: int) -> list[float]:
    times = []
    for _ in range(count):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def time_case(case, device, dtype, rounds: int, budget_s: float) -> dict:
    steps = {side: case.build(side, device, dtype) for side in ("mt", "torch")}
    warm = {side: timed_steps(steps[side], device, 5) for side in steps}
    per_step = max(statistics.median(warm["mt"]), statistics.median(warm["torch"]))
    k = max(1, min(200, int(budget_s / (2 * rounds * max(per_step, 1e-6)))))
    times: dict[str, list[float]] = {"mt": [], "torch": []}
    for r in range(rounds):
        order = ("mt", "torch") if r % 2 == 0 else ("torch", "mt")
        for side in order:
            times[side] += timed_steps(steps[side], device, k)
    mt_ms = statistics.median(times["mt"]) * 1e3
    torch_ms = statistics.median(times["torch"]) * 1e3
    return {
        "case": case.name,
        "mt_ms": mt_ms,
        "torch_ms": torch_ms,
        "ratio": mt_ms / torch_ms,
        "steps_per_side": len(times["mt"]),
        "mt_p25_p75_ms": _quartiles(times["mt"]),
        "torch_p25_p75_ms": _quartiles(times["torch"]),
    }


def _quartiles(values: list[float]) -> list[float]:
    q = statistics.quantiles(values, n=4)
    return [q[0] * 1e3, q[2] * 1e3]


def measure_memory(name: str, side: str, device: str, dtype: str, steps: int) -> dict:
    """Runs in a fresh process (see main): peak memory of `steps` steps of one side."""
    import resource

    case = next(c for c in CASES if c.name == name)
    torch_device, torch_dtype = torch.device(device), getattr(torch, dtype)
    step = case.build(side, torch_device, torch_dtype)
    if torch_device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    for _ in range(steps):
        step()
    if torch_device.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"before_bytes": before, "peak_bytes": peak, "step_bytes": peak - before}


def memory_row(name: str, device: str, dtype: str, threads: int, steps: int = 5) -> dict:
    row = {"case": name}
    for side in ("mt", "torch"):
        command = [
            sys.executable, "-m", "benchmarks", "--_memory", name, side,
            "--device", device, "--dtype", dtype, "--threads", str(threads),
            "--steps", str(steps),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        row[side] = json.loads(done.stdout.strip().splitlines()[-1])
    row["ratio"] = row["mt"]["step_bytes"] / max(row["torch"]["step_bytes"], 1)
    return row


def print_table(results: list[dict], memory: list[dict]) -> None:
    print(f"\n{'case':<28}{'mt ms':>10}{'torch ms':>10}{'mt/torch':>10}")
    for r in results:
        print(f"{r['case']:<28}{r['mt_ms']:>10.3f}{r['torch_ms']:>10.3f}{r['ratio']:>10.3f}")
    if memory:
        print(f"\n{'peak step memory':<28}{'mt MiB':>10}{'torch MiB':>10}{'mt/torch':>10}")
        for m in memory:
            ours, theirs = m["mt"]["step_bytes"] / 2**20, m["torch"]["step_bytes"] / 2**20
            print(f"{m['case']:<28}{ours:>10.1f}{theirs:>10.1f}{m['ratio']:>10.3f}")


def git_commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        return done.stdout.strip()
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--cases", default="", help="run only cases whose name contains this")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (CPU)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=3.0, help="time budget per case")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--json", type=Path, default=None, help="where to write results")
    parser.add_argument("--steps", type=int, default=5, help=argparse.SUPPRESS)
    parser.add_argument("--_memory", nargs=2, metavar=("CASE", "SIDE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"

    if args._memory:
        print(json.dumps(measure_memory(*args._memory, device, args.dtype, args.steps)))
        return 0

    dtype = getattr(torch, args.dtype)
    chosen = [c for c in CASES if args.cases in c.name]
    results = []
    for case in chosen:
        results.append(time_case(case, torch.device(device), dtype, args.rounds, args.seconds))
        r = results[-1]
        print(f"{r['case']:<28} mt {r['mt_ms']:.3f} ms  torch {r['torch_ms']:.3f} ms  "
              f"ratio {r['ratio']:.3f}", flush=True)  # fmt: skip
    memory = []
    if not args.no_memory:
        for name in MEMORY_CASES:
            if any(c.name == name for c in chosen):
                memory.append(memory_row(name, device, args.dtype, args.threads))
    print_table(results, memory)

    report = {
        "commit": git_commit(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "device": device if device == "cpu" else torch.cuda.get_device_name(),
        "dtype": args.dtype,
        "threads": args.threads,
        "results": results,
        "memory": memory,
    }
    path = args.json or Path("benchmarks/results") / f"{report['when'].replace(':', '')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
