"""Where the time of one training step goes: `python -m benchmarks phases`.

A training step is five phases, timed one by one on both sides (interleaved, medians):

    zero_grad   forget last step's gradients
    forward     the model's layers
    loss        cross-entropy of the logits
    backward    the engine walks the graph back to the parameters
    step        SGD with momentum updates the parameters

Then, for minitorch_edu's side only, the torch kernels under it, by self time (torch's
profiler): which arithmetic the step is made of. docs/performance.md reads such a profile.

With --layers, each layer of the model alone, forward and backward, both sides: the layer is
fed the activation that reaches it in the step (from torch's side) and sent back a fixed
gradient, so that a phase's difference can be laid at the layers' doors.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

import minitorch_edu as mt
import minitorch_edu.nn as mnn
from benchmarks.cases import OPTIMIZERS, SIDES, _model, lenet, mlp
from benchmarks.measure import synchronize

PHASES = ("zero_grad", "forward", "loss", "backward", "step")
MODELS = {"mlp": (mlp, (784,)), "cnn": (lenet, (1, 32, 32))}


def synchronized_clock(
    device: torch.device, read_clock: Callable[[], float]
) -> Callable[[], float]:
    """`read_clock`, read once the device has finished what was queued before."""

    def clock() -> float:
        synchronize(device)
        return read_clock()

    return clock


def _phased_step(
    side: str,
    model_name: str,
    batch: int,
    device: torch.device,
    dtype,
    read_clock: Callable[[], float] = time.perf_counter,
):
    """A training step that returns the seconds each phase took (by `read_clock`)."""
    make, input_shape = MODELS[model_name]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn((batch, *input_shape), generator=generator).to(device, dtype)
    y = torch.randint(0, 10, (batch,), generator=generator).to(device)
    model = _model(make, side, device, dtype)
    optimizer = OPTIMIZERS["sgd"][SIDES.index(side)](list(model.parameters()))
    loss_fn = mnn.CrossEntropyLoss() if side == "mt" else torch.nn.CrossEntropyLoss()

    clock = synchronized_clock(device, read_clock)

    def step() -> list[float]:
        t0 = clock()
        optimizer.zero_grad()
        t1 = clock()
        logits = model(x)
        t2 = clock()
        loss = loss_fn(logits, y)
        t3 = clock()
        loss.backward()
        t4 = clock()
        optimizer.step()
        t5 = clock()
        return [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4]

    return step


def phase_times(
    model_name: str,
    batch: int,
    device: torch.device,
    dtype: torch.dtype,
    steps: int = 200,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Median milliseconds of each phase, per side: {side: [zero_grad, forward, ...]}."""
    steps_of = {side: _phased_step(side, model_name, batch, device, dtype, clock) for side in SIDES}
    for side in SIDES:  # warm-up
        for _ in range(5):
            steps_of[side]()
    samples: dict[str, list[list[float]]] = {side: [] for side in SIDES}
    for _ in range(steps):
        for side in SIDES:
            samples[side].append(steps_of[side]())
    return {
        side: [statistics.median(run[i] for run in samples[side]) * 1e3 for i in range(5)]
        for side in SIDES
    }


def kernel_profile(
    model_name: str, batch: int, device: torch.device, dtype: torch.dtype, rows: int = 12
) -> str:
    """minitorch_edu's step: the torch kernels it calls, by self time, from torch's profiler."""
    from torch.profiler import ProfilerActivity, profile

    step: Callable[[], list[float]] = _phased_step("mt", model_name, batch, device, dtype)
    for _ in range(5):
        step()
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as profiler:
        for _ in range(20):
            step()
    sort_by = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return profiler.key_averages().table(sort_by=sort_by, row_limit=rows)


def report(
    model_name: str,
    batch: int,
    device: torch.device,
    dtype: torch.dtype,
    steps: int = 200,
    clock: Callable[[], float] = time.perf_counter,
) -> str:
    times = phase_times(model_name, batch, device, dtype, steps, clock)
    lines = [
        f"{model_name} step, batch {batch} ({device}, {str(dtype).removeprefix('torch.')}, "
        f"{torch.get_num_threads()} threads): median ms per phase",
        f"{'phase':<11}{'mt':>9}{'torch':>9}{'mt - torch':>12}",
    ]
    for i, phase in enumerate(PHASES):
        ours, theirs = times["mt"][i], times["torch"][i]
        lines.append(f"{phase:<11}{ours:>9.3f}{theirs:>9.3f}{ours - theirs:>+12.3f}")
    total_mt, total_torch = sum(times["mt"]), sum(times["torch"])
    lines.append(f"{'sum':<11}{total_mt:>9.3f}{total_torch:>9.3f}{total_mt - total_torch:>+12.3f}")
    return "\n".join(lines)


def _layer_pass(side, layer, x, needs_grad, grad, clock) -> tuple[float, float]:
    """Seconds of one forward and one backward of `layer` alone, on input x."""
    leaf = mt.tensor(x, requires_grad=needs_grad) if side == "mt" else x.clone()
    if side == "torch":
        leaf.requires_grad_(needs_grad)
    t0 = clock()
    result = layer(leaf)
    t1 = clock()
    result.backward(grad)
    return t1 - t0, clock() - t1


def layer_times(
    model_name: str,
    batch: int,
    device: torch.device,
    dtype: torch.dtype,
    steps: int = 100,
    read_clock: Callable[[], float] = time.perf_counter,
) -> list[tuple[str, list[float]]]:
    """Per layer: (name, median ms [forward mt, forward torch, backward mt, backward torch]).

    Each layer runs alone on the activation that reaches it in the step. The first layer's
    input needs no gradient (as in the step); every other layer's does."""
    make, input_shape = MODELS[model_name]
    generator = torch.Generator().manual_seed(0)
    activation = torch.randn((batch, *input_shape), generator=generator).to(device, dtype)
    models = {side: _model(make, side, device, dtype) for side in SIDES}

    clock = synchronized_clock(device, read_clock)
    rows = []
    for index, layers in enumerate(zip(models["mt"], models["torch"])):
        x, needs_grad = activation, index > 0
        with torch.no_grad():
            out = layers[1](x)
        grad = torch.randn(out.shape, generator=generator).to(device, dtype)

        for side, layer in zip(SIDES, layers):
            for _ in range(5):  # warm-up
                _layer_pass(side, layer, x, needs_grad, grad, clock)
        samples: dict[str, list[tuple[float, float]]] = {side: [] for side in SIDES}
        for _ in range(steps):
            for side, layer in zip(SIDES, layers):
                samples[side].append(_layer_pass(side, layer, x, needs_grad, grad, clock))
        medians = [
            statistics.median(run[phase] for run in samples[side]) * 1e3
            for phase in (0, 1)
            for side in SIDES
        ]
        rows.append((f"{index} {type(layers[0]).__name__}", medians))
        activation = out
    return rows


def layer_report(model_name: str, batch: int, device: torch.device, dtype: torch.dtype) -> str:
    lines = [
        f"{model_name} layers, batch {batch}: median ms, each layer alone",
        f"{'layer':<14}{'fwd mt':>9}{'torch':>9}{'bwd mt':>9}{'torch':>9}{'mt - torch':>12}",
    ]
    totals = [0.0] * 4
    for name, times in layer_times(model_name, batch, device, dtype):
        totals = [t + v for t, v in zip(totals, times)]
        difference = times[0] + times[2] - times[1] - times[3]
        lines.append(f"{name:<14}" + "".join(f"{v:>9.3f}" for v in times) + f"{difference:>+12.3f}")
    difference = totals[0] + totals[2] - totals[1] - totals[3]
    lines.append(f"{'sum':<14}" + "".join(f"{v:>9.3f}" for v in totals) + f"{difference:>+12.3f}")
    return "\n".join(lines)
