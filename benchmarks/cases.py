"""The benchmark cases: each builds a minitorch_edu side and its torch twin on the same data.

A case's `build(side, device, dtype)` returns a zero-argument `step` that runs one unit of
work (a training step, a convolution forward and backward, an optimizer step) and returns
the step's loss where there is one. Both sides start from the same weights (the torch model
is `reference.nn.torch_twin` of ours) and see the same batch, so a step of one side does
exactly the arithmetic of a step of the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

import minitorch_edu as mt
import minitorch_edu.nn as mnn
from reference.nn import torch_twin

SIDES = ("mt", "torch")
Step = Callable[[], object]


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[str, torch.device, torch.dtype], Step]
    # The goal for the ratio of medians minitorch_edu / torch (None: reported only).
    target: float | None = None
    # Peak memory is measured (in fresh processes) for the model training steps.
    memory: bool = False


def mlp(classes: int = 10) -> mnn.Module:
    """784-256-128-64-10 with ReLUs."""
    return mnn.Sequential(
        mnn.Linear(784, 256),
        mnn.ReLU(),
        mnn.Linear(256, 128),
        mnn.ReLU(),
        mnn.Linear(128, 64),
        mnn.ReLU(),
        mnn.Linear(64, classes),
    )


def lenet(classes: int = 10) -> mnn.Module:
    """LeNet-style CNN for 1x32x32 inputs: two conv-relu-pool blocks, three linear layers."""
    return mnn.Sequential(
        mnn.Conv2d(1, 6, 5),
        mnn.ReLU(),
        mnn.MaxPool2d(2),
        mnn.Conv2d(6, 16, 5),
        mnn.ReLU(),
        mnn.MaxPool2d(2),
        mnn.Flatten(),
        mnn.Linear(16 * 5 * 5, 120),
        mnn.ReLU(),
        mnn.Linear(120, 84),
        mnn.ReLU(),
        mnn.Linear(84, classes),
    )


# name -> (minitorch_edu optimizer, torch optimizer), the same settings on both sides.
OPTIMIZERS = {
    "sgd": (
        lambda p: mt.optim.SGD(p, lr=0.01, momentum=0.9),
        lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9),
    ),
    "adagrad": (
        lambda p: mt.optim.Adagrad(p, lr=0.01),
        lambda p: torch.optim.Adagrad(p, lr=0.01),
    ),
    "rmsprop": (
        lambda p: mt.optim.RMSprop(p, lr=0.001, momentum=0.9, centered=True),
        lambda p: torch.optim.RMSprop(p, lr=0.001, momentum=0.9, centered=True),
    ),
    "adam": (
        lambda p: mt.optim.Adam(p, lr=0.001),
        lambda p: torch.optim.Adam(p, lr=0.001),
    ),
    "adamw": (
        lambda p: mt.optim.AdamW(p, lr=0.001),
        lambda p: torch.optim.AdamW(p, lr=0.001),
    ),
}


def _model(make: Callable[[], mnn.Module], side: str, device: torch.device, dtype: torch.dtype):
    """The model of one side; the seed makes both sides' weights the same."""
    mt.manual_seed(0)
    ours = make().to(device=device, dtype=dtype)
    return ours if side == "mt" else torch_twin(ours)


def training_step(make: Callable[[], mnn.Module], input_shape: tuple, batch: int):
    """zero_grad, forward, cross-entropy, backward, SGD with momentum: one step on one batch."""

    def build(side: str, device: torch.device, dtype: torch.dtype) -> Step:
        generator = torch.Generator().manual_seed(0)
        x = torch.randn((batch, *input_shape), generator=generator).to(device, dtype)
        y = torch.randint(0, 10, (batch,), generator=generator).to(device)
        model = _model(make, side, device, dtype)
        make_optimizer = OPTIMIZERS["sgd"][SIDES.index(side)]
        optimizer = make_optimizer(list(model.parameters()))
        loss_fn = mnn.CrossEntropyLoss() if side == "mt" else torch.nn.CrossEntropyLoss()

        def step() -> object:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            return loss

        return step

    return build


def conv_forward_backward(batch, in_channels, out_channels, size, kernel, stride=1, padding=0):
    """One Conv2d layer: forward, sum, backward to the input, the weight and the bias."""

    def build(side: str, device: torch.device, dtype: torch.dtype) -> Step:
        generator = torch.Generator().manual_seed(0)
        x = torch.randn((batch, in_channels, size, size), generator=generator).to(device, dtype)
        layer = _model(
            lambda: mnn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding),
            side,
            device,
            dtype,
        )
        if side == "mt":
            leaf = mt.tensor(x, requires_grad=True)
        else:
            leaf = x.clone().requires_grad_()

        def step() -> object:
            layer.zero_grad()
            leaf.grad = None
            total = layer(leaf).sum()
            total.backward()
            return total

        return step

    return build


def optimizer_step(name: str):
    """One optimizer step over the MLP's parameters, with fixed gradients."""

    def build(side: str, device: torch.device, dtype: torch.dtype) -> Step:
        model = _model(mlp, side, device, dtype)
        params = list(model.parameters())
        generator = torch.Generator().manual_seed(1)
        for param in params:
            grad = torch.randn(param.shape, generator=generator).to(device, dtype)
            param.grad = mt.tensor(grad) if side == "mt" else grad
        optimizer = OPTIMIZERS[name][SIDES.index(side)](params)
        return optimizer.step

    return build


CASES = [
    Case("mlp_step_b64", training_step(mlp, (784,), 64), target=1.0, memory=True),
    Case("mlp_step_b1024", training_step(mlp, (784,), 1024), target=1.02, memory=True),
    Case("cnn_step_b64", training_step(lenet, (1, 32, 32), 64), target=1.2, memory=True),
    Case("cnn_step_b256", training_step(lenet, (1, 32, 32), 256), target=1.1, memory=True),
    Case("conv_b64_c1_6_s32_k5", conv_forward_backward(64, 1, 6, 32, 5), target=2.0),
    Case("conv_b64_c6_16_s14_k5", conv_forward_backward(64, 6, 16, 14, 5), target=2.0),
    Case(
        "conv_b32_c16_32_s16_k3_p1",
        conv_forward_backward(32, 16, 32, 16, 3, padding=1),
        target=2.0,
    ),
    Case(
        "conv_b32_c32_64_s16_k3_s2",
        conv_forward_backward(32, 32, 64, 16, 3, stride=2),
        target=2.0,
    ),
    *[Case(f"optim_{name}", optimizer_step(name)) for name in OPTIMIZERS],
]

# Peak memory may be at most this many times torch's, for the model training steps: the
# resident set, and the bytes held by live tensors.
MEMORY_TARGET = 1.2
TENSOR_BYTES_TARGET = 1.0
