"""How long `explain_gradient` takes at a real model's scale.

    python -m benchmarks explain                      # LeNet, batch 64, conv1.weight, defaults
    python -m benchmarks explain --model mlp --batch 16 --parameter fc1.weight

The step is the one `minitorch-edu explain step` explains: the model of `minitorch-edu
train` in float64 on the first digits of the training split. The element explained is the
parameter's element with the largest gradient (the most terms worth following). Times are
wall-clock medians over `--repeats` runs with the default settings, next to one torch
training step (forward and backward of the same model) in the same run, for scale. The
target: under 5 s for a LeNet conv1 weight element at batch 64 on 2 cores.
"""

from __future__ import annotations

import statistics
import time

import torch

TARGET_SECONDS = 5.0


def explain_times(model_name: str, batch: int, parameter: str, repeats: int) -> dict:
    import minitorch_edu as mt
    import minitorch_edu.nn.functional as F
    from minitorch_edu import models
    from minitorch_edu.data.digits import load_digits
    from reference.nn import torch_twin

    images, labels = load_digits("train", normalize=True).tensors
    images, labels = images[:batch].double(), labels[:batch]
    mt.manual_seed(0)
    model = (models.lenet(1, 8, 10) if model_name == "cnn" else models.mlp(64, 10)).double()
    x = mt.tensor(images)
    loss = F.cross_entropy(model(x), labels)
    names = {tensor: name for name, tensor in model.named_parameters()}
    names[x] = "images"
    chosen = dict(model.named_parameters())[parameter]
    (grad,) = mt.autograd.grad(loss, [chosen], retain_graph=True)
    index = tuple(int(i) for i in torch.unravel_index(grad.data.abs().argmax(), grad.shape))
    seconds, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = mt.study.explain_gradient(loss, chosen, index, names=names)
        seconds.append(time.perf_counter() - start)
    twin = torch_twin(model)
    torch_seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.nn.functional.cross_entropy(twin(images), labels).backward()
        torch_seconds.append(time.perf_counter() - start)
    return {
        "model": model_name,
        "batch": batch,
        "element": f"{parameter}{list(index)}",
        "threads": torch.get_num_threads(),
        "explain_s": statistics.median(seconds),
        "explain_all_s": seconds,
        "torch_step_s": statistics.median(torch_seconds),
        "elements_worked_out": len(result.elements()),
        "limits": result.limits,
    }


def report(model_name: str, batch: int, parameter: str, repeats: int) -> str:
    r = explain_times(model_name, batch, parameter, repeats)
    ratio = r["explain_s"] / r["torch_step_s"]
    verdict = "ok" if r["explain_s"] < TARGET_SECONDS else "MISSED"
    return (
        f"explain_gradient({r['element']}), {r['model']} batch {r['batch']}, defaults, "
        f"{r['threads']} threads:\n"
        f"  median {r['explain_s']:.3f} s over {len(r['explain_all_s'])} runs "
        f"({', '.join(f'{s:.3f}' for s in r['explain_all_s'])}); target < {TARGET_SECONDS:g} s: "
        f"{verdict}\n"
        f"  one torch training step (forward + backward): {r['torch_step_s'] * 1000:.2f} ms; "
        f"explaining one element costs {ratio:.0f} of them\n"
        f"  {r['elements_worked_out']} element gradients worked out"
    )
