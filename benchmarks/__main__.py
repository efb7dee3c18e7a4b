"""Speed and memory of minitorch_edu against torch: run every case, print a table, write JSON.

    python -m benchmarks                       # every case, CPU, float32, 2 threads
    python -m benchmarks --cases mlp           # only cases whose name contains "mlp"
    python -m benchmarks --device cuda         # on a GPU (auto: a GPU when there is one)
    python -m benchmarks --list                # the case names
    python -m benchmarks compare OLD.json NEW.json
    python -m benchmarks phases --model cnn --batch 64 --kernels   # one step, by phase
    python -m benchmarks phases --model cnn --layers               # and each layer alone
    python -m benchmarks explore               # the explorer: record, write, page size, ready
    python -m benchmarks explain --model cnn --batch 64            # explain_gradient's time
    python -m benchmarks startup               # how fast the command line answers
    python -m benchmarks distributed           # data parallel at 1, 2, 4 processes (gloo)

How the numbers are taken is described in benchmarks/measure.py; how to read them, in
docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks import explain, phases, startup
from benchmarks.cases import CASES, MEMORY_TARGET, TENSOR_BYTES_TARGET
from benchmarks.compare import compare
from benchmarks.measure import CLOCKS, measure_memory, memory_row, time_case


def _verdict(value: float, target: float | None) -> str:
    if target is None:
        return ""
    return f"<= {target:g} " + ("ok" if value <= target else "MISSED")


def print_table(results: list[dict], memory: list[dict]) -> None:
    if results:
        print(
            f"\n{'case':<27}{'mt ms':>9} {'(p25-p75)':<15}{'torch ms':>9} {'(p25-p75)':<15}"
            f"{'mt/torch':>9} {'(p25-p75)':<13} target"
        )
        for r in results:
            mq, tq, rq = r["mt_quartiles_ms"], r["torch_quartiles_ms"], r["ratio_quartiles"]
            print(
                f"{r['case']:<27}{r['mt_ms']:>9.3f} {f'({mq[0]:.3f}-{mq[1]:.3f})':<15}"
                f"{r['torch_ms']:>9.3f} {f'({tq[0]:.3f}-{tq[1]:.3f})':<15}"
                f"{r['ratio']:>9.3f} {f'({rq[0]:.2f}-{rq[1]:.2f})':<13} "
                + _verdict(r["ratio"], r["target"])
            )
    if memory:
        print(
            f"\n{'peak step memory':<27}{'mt MiB':>9}{'torch MiB':>11}{'mt/torch':>10}  target"
            "      (resident set; tensor bytes below)"
        )
        for m in memory:
            ours, theirs = m["mt"]["step_bytes"] / 2**20, m["torch"]["step_bytes"] / 2**20
            print(
                f"{m['case']:<27}{ours:>9.1f}{theirs:>11.1f}{m['ratio']:>10.3f}  "
                + _verdict(m["ratio"], MEMORY_TARGET)
            )
        tensor_rows = [m for m in memory if "tensor_ratio" in m]
        if tensor_rows:
            print(
                f"\n{'peak tensor bytes':<27}{'mt MiB':>9}{'torch MiB':>11}{'mt/torch':>10}  target"
            )
        for m in tensor_rows:
            ours = m["mt"]["tensor_step_bytes"] / 2**20
            theirs = m["torch"]["tensor_step_bytes"] / 2**20
            print(
                f"{m['case']:<27}{ours:>9.1f}{theirs:>11.1f}{m['tensor_ratio']:>10.3f}  "
                + _verdict(m["tensor_ratio"], TENSOR_BYTES_TARGET)
            )


def _git_commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def run(args: argparse.Namespace) -> int:
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    chosen = [case for case in CASES if any(part in case.name for part in args.cases.split(","))]
    if not chosen:
        print(f"no case matches {args.cases!r}; --list shows them", file=sys.stderr)
        return 2
    load_before = _load()
    print(
        f"torch {torch.__version__}, {device}, {args.dtype}, {torch.get_num_threads()} threads, "
        f"{args.clock} clock, load average {load_before}",
        flush=True,
    )
    results = []
    for case in chosen:
        result = time_case(case, device, dtype, args.rounds, args.seconds, CLOCKS[args.clock])
        results.append(result)
        print(
            f"  {result['case']:<27} mt {result['mt_ms']:8.3f} ms   torch "
            f"{result['torch_ms']:8.3f} ms   ratio {result['ratio']:.3f}",
            flush=True,
        )
    memory = []
    if not args.no_memory:
        for case in chosen:
            if case.memory:
                memory.append(
                    memory_row(case.name, str(device), args.dtype, args.threads, args.memory_steps)
                )
    print_table(results, memory)

    report = {
        "commit": _git_commit(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "dtype": args.dtype,
        "threads": torch.get_num_threads(),
        "clock": args.clock,
        "rounds": args.rounds,
        "seconds_per_case": args.seconds,
        "load_average_before": load_before,
        "load_average_after": _load(),
        "results": results,
        "memory": memory,
    }
    path = args.json or Path("benchmarks/results") / f"{report['when'].replace(':', '')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nload average after: {report['load_average_after']}\nwritten: {path}")
    return 0


def _pick_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["compare"]:
        parser = argparse.ArgumentParser(
            prog="python -m benchmarks compare",
            description="Per case: the old and new times and ratios of two result files.",
        )
        parser.add_argument("old", type=Path)
        parser.add_argument("new", type=Path)
        options = parser.parse_args(argv[1:])
        print(compare(json.loads(options.old.read_text()), json.loads(options.new.read_text())))
        return 0

    if argv[:1] == ["explain"]:
        parser = argparse.ArgumentParser(
            prog="python -m benchmarks explain",
            description="How long explain_gradient takes on a LeNet or MLP training step.",
        )
        parser.add_argument("--model", default="cnn", choices=("cnn", "mlp"))
        parser.add_argument("--batch", type=int, default=64)
        parser.add_argument("--parameter", default=None, help="default: the first weight")
        parser.add_argument("--repeats", type=int, default=3)
        parser.add_argument("--threads", type=int, default=2)
        options = parser.parse_args(argv[1:])
        torch.set_num_threads(options.threads)
        first = "conv1.weight" if options.model == "cnn" else "fc1.weight"
        print(
            explain.report(
                options.model, options.batch, options.parameter or first, options.repeats
            )
        )
        return 0
    if argv[:1] == ["startup"]:
        parser = argparse.ArgumentParser(
            prog="python -m benchmarks startup",
            description="Seconds until the command line answers, each command a fresh process.",
        )
        parser.add_argument("--repeat", type=int, default=5, help="runs per command")
        print(startup.report(parser.parse_args(argv[1:]).repeat))
        return 0

    if argv[:1] == ["explore"]:
        from benchmarks import explore

        parser = argparse.ArgumentParser(
            prog="python -m benchmarks explore",
            description="The explorer's cost: recording, writing, page size, time to ready.",
        )
        parser.add_argument("--repeat", type=int, default=3, help="runs (and page loads) each")
        parser.add_argument("--steps", default="1,3", help="training steps to record, e.g. 1,3")
        parser.add_argument("--no-browser", action="store_true", help="skip the page loads")
        options = parser.parse_args(argv[1:])
        steps = tuple(int(part) for part in options.steps.split(","))
        print(explore.report(options.repeat, steps, browser=not options.no_browser))
        return 0

    if argv[:1] == ["phases"]:
        parser = argparse.ArgumentParser(
            prog="python -m benchmarks phases",
            description="Where one training step's time goes, phase by phase, both sides.",
        )
        parser.add_argument("--model", default="mlp", choices=sorted(phases.MODELS))
        parser.add_argument("--batch", type=int, default=64)
        parser.add_argument("--device", default="auto")
        parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
        parser.add_argument("--threads", type=int, default=2)
        parser.add_argument("--kernels", action="store_true", help="also the torch kernels (mt)")
        parser.add_argument("--layers", action="store_true", help="also each layer alone")
        parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall", help="as below")
        options = parser.parse_args(argv[1:])
        if options.clock == "cpu" and options.threads != 1:
            parser.error("--clock cpu times one thread's CPU time: use it with --threads 1")
        torch.set_num_threads(options.threads)
        device = torch.device(_pick_device(options.device))
        dtype = getattr(torch, options.dtype)
        print(
            phases.report(options.model, options.batch, device, dtype, clock=CLOCKS[options.clock])
        )
        if options.layers:
            print(phases.layer_report(options.model, options.batch, device, dtype))
        if options.kernels:
            print(phases.kernel_profile(options.model, options.batch, device, dtype))
        return 0

    if argv[:1] == ["distributed"]:
        from benchmarks import distributed

        parser = argparse.ArgumentParser(
            prog="python -m benchmarks distributed",
            description="Data-parallel steps at several process counts, ours against torch's "
            "DistributedDataParallel, and the fraction of a step spent communicating.",
        )
        parser.add_argument("--world-sizes", default="1,2,4", help="comma-separated")
        parser.add_argument("--batch", type=int, default=256, help="global batch")
        parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
        parser.add_argument("--rounds", type=int, default=8)
        parser.add_argument("--seconds", type=float, default=6.0, help="time budget per size")
        parser.add_argument("--json", type=Path, default=None, help="where to write the results")
        parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
        options = parser.parse_args(argv[1:])
        sizes = [int(size) for size in options.world_sizes.split(",")]
        distributed.run(
            sizes,
            options.batch,
            options.rounds,
            options.seconds,
            options.dtype,
            options.json,
            options.device,
        )
        return 0

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--cases", default="", help="comma-separated parts of case names (default: all)"
    )
    parser.add_argument("--list", action="store_true", help="print the case names and exit")
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:1 or auto (a GPU when there is one)"
    )
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads, both sides")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="time steps by the wall clock, or (with --threads 1 on the CPU) by the CPU time of "
        "the thread, which leaves out waiting for a core on a busy machine",
    )
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds per case")
    parser.add_argument("--seconds", type=float, default=4.0, help="time budget per case")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory processes")
    parser.add_argument("--memory-steps", type=int, default=5, help="steps per memory run")
    parser.add_argument("--json", type=Path, default=None, help="where to write the results")
    parser.add_argument("--_memory", nargs=2, metavar=("CASE", "SIDE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.list:
        for case in CASES:
            print(case.name)
        return 0
    torch.set_num_threads(args.threads)
    args.device = _pick_device(args.device)
    if args.clock == "cpu" and (args.threads != 1 or args.device != "cpu"):
        parser.error("--clock cpu times one thread's CPU time: use it with --threads 1 on the cpu")
    if args._memory:
        name, side = args._memory
        result = measure_memory(
            name, side, torch.device(args.device), getattr(torch, args.dtype), args.memory_steps
        )
        print(json.dumps(result))
        return 0
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
