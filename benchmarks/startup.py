"""How fast the command line answers: `python -m benchmarks startup`.

Each command runs in a fresh process, `repeat` times; reported are the median and the range
of the seconds until it exits, or, for a training run, until its first line of output (the
run is then stopped). `import torch` alone is timed beside them as the yardstick: what a
command costs that imports torch before it answers.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

COMMAND = [sys.executable, "-m", "minitorch_edu"]
# (what, command, seconds it should take at most, or None, whether to wait for the first line)
CASES = [
    ("import torch", [sys.executable, "-c", "import torch"], None, False),
    ("minitorch-edu --help", [*COMMAND, "--help"], 0.5, False),
    ("minitorch-edu explain --help", [*COMMAND, "explain", "--help"], 0.5, False),
    ("usage error (train --lr 0)", [*COMMAND, "train", "--lr", "0"], 0.5, False),
    ("train: first line", [*COMMAND, "train"], 2.0, True),
]


def seconds(command: list[str], first_line: bool) -> float:
    start = time.perf_counter()
    if not first_line:
        subprocess.run(command, capture_output=True, check=False)
        return time.perf_counter() - start
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    process.stdout.readline()
    elapsed = time.perf_counter() - start
    process.kill()
    process.wait()
    return elapsed


def report(repeat: int = 5) -> str:
    lines = [f"{'command':<32}{'median s':>9}  {'(min-max)':<13} target"]
    for what, command, target, first_line in CASES:
        times = [seconds(command, first_line) for _ in range(repeat)]
        median = statistics.median(times)
        verdict = (
            "" if target is None else f"<= {target:g} " + ("ok" if median <= target else "MISSED")
        )
        lines.append(
            f"{what:<32}{median:>9.3f}  {f'({min(times):.2f}-{max(times):.2f})':<13} {verdict}"
        )
    return "\n".join(lines)
