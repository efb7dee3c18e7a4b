"""The benchmark cases: each builds a minitorch_edu side and its torch twin on the same data.

A case is a function `(side, device, dtype) -> step` returning a zero-argument callable that
runs one unit of work (a training step, a conv forward+backward, an optimizer step). Both
sides start from the same weights and see the same batches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

import minitorch_edu as mt
import minitorch_edu.nn as mnn


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[str, torch.device, torch.dtype], Callable[[], None]]


def mlp(classes: int = 10) -> mnn.Module:
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
    """LeNet-style CNN for 1x32x32 inputs."""
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


def torch_mlp(classes: int = 10) -> torch.nn.Module:
    nn = torch.nn
    return nn.Sequential(
        nn.Linear(784, 256),
        nn.ReLU(),
        nn.Linear(256, 128),
        nn.ReLU(),
        nn.Linear(128, 64),
        nn.ReLU(),
        nn.Linear(64, classes),
    )


def torch_lenet(classes: int = 10) -> torch.nn.Module:
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 6, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, classes),
    )


OPTIMIZERS = {
    "sgd": (
        lambda p: mt.optim.SGD(p, lr=0.01, momentum=0.9),
        lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9),
    ),
    "adagrad": (lambda p: mt.optim.Adagrad(p, lr=0.01), lambda p: torch.optim.Adagrad(p, lr=0.01)),
    "rmsprop": (
        lambda p: mt.optim.RMSprop(p, lr=0.001, momentum=0.9, centered=True),
        lambda p: torch.optim.RMSprop(p, lr=0.001, momentum=0.9, centered=True),
    ),
    "adam": (lambda p: mt.optim.Adam(p, lr=0.001), lambda p: torch.optim.Adam(p, lr=0.001)),
    "adamw": (lambda p: mt.optim.AdamW(p, lr=0.001), lambda p: torch.optim.AdamW(p, lr=0.001)),
}


def _twins(make_mt, make_torch, device, dtype):
    """The same initial weights on both sides."""
    ours = make_mt().to(device=device, dtype=dtype)
    theirs = make_torch().to(device=device, dtype=dtype)
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def training_step(make_mt, make_torch, input_shape, batch, optimizer="sgd"):
    def build(side: str, device: torch.device, dtype: torch.dtype) -> Callable[[], None]:
        generator = torch.Generator().manual_seed(0)
        x = torch.randn((batch, *input_shape), generator=generator).to(device, dtype)
        y = torch.randint(0, 10, (batch,), generator=generator).to(device)
        mt.manual_seed(0)
        ours, theirs = _twins(make_mt, make_torch, device, dtype)
        make_ours, make_theirs = OPTIMIZERS[optimizer]
        if side == "mt":
            opt, loss_fn = make_ours(list(ours.parameters())), mnn.CrossEntropyLoss()

            def step() -> None:
                opt.zero_grad()
                loss_fn(ours(x), y).backward()
                opt.step()

        else:
            opt, loss_fn = make_theirs(list(theirs.parameters())), torch.nn.CrossEntropyLoss()

            def step() -> None:
                opt.zero_grad()
                loss_fn(theirs(x), y).backward()
                opt.step()

        return step

    return build


def conv_forward_backward(batch, in_channels, out_channels, size, kernel, stride=1, padding=0):
    def build(side: str, device: torch.device, dtype: torch.dtype) -> Callable[[], None]:
        generator = torch.Generator().manual_seed(0)
        x = torch.randn((batch, in_channels, size, size), generator=generator).to(device, dtype)
        mt.manual_seed(0)
        ours, theirs = _twins(
            lambda: mnn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding),
            lambda: torch.nn.Conv2d(in_channels, out_channels, kernel, stride, padding),
            device,
            dtype,
        )
        if side == "mt":
            leaf = mt.Tensor(x.clone(), requires_grad=True)

            def step() -> None:
                ours.zero_grad()
                leaf.grad = None
                ours(leaf).sum().backward()

        else:
            torch_leaf = x.clone().requires_grad_()

            def step() -> None:
                theirs.zero_grad()
                torch_leaf.grad = None
                theirs(torch_leaf).sum().backward()

        return step

    return build


def optimizer_step(name: str):
    """One optimizer step over the MLP's parameters with fixed gradients."""

    def build(side: str, device: torch.device, dtype: torch.dtype) -> Callable[[], None]:
        mt.manual_seed(0)
        ours, theirs = _twins(mlp, torch_mlp, device, dtype)
        generator = torch.Generator().manual_seed(1)
        grads = [
            torch.randn(p.shape, generator=generator).to(device, dtype) for p in theirs.parameters()
        ]
        make_ours, make_theirs = OPTIMIZERS[name]
        if side == "mt":
            params = list(ours.parameters())
            for p, g in zip(params, grads):
                p.grad = mt.Tensor(g.clone())
            opt = make_ours(params)
        else:
            params = list(theirs.parameters())
            for p, g in zip(params, grads):
                p.grad = g.clone()
            opt = make_theirs(params)
        return opt.step

    return build


CASES = [
    Case("mlp_step_b64", training_step(mlp, torch_mlp, (784,), 64)),
    Case("mlp_step_b1024", training_step(mlp, torch_mlp, (784,), 1024)),
    Case("cnn_step_b64", training_step(lenet, torch_lenet, (1, 32, 32), 64)),
    Case("cnn_step_b256", training_step(lenet, torch_lenet, (1, 32, 32), 256)),
    Case("conv_b64_c1_6_s32_k5", conv_forward_backward(64, 1, 6, 32, 5)),
    Case("conv_b64_c6_16_s14_k5", conv_forward_backward(64, 6, 16, 14, 5)),
    Case("conv_b32_c16_32_s16_k3_p1", conv_forward_backward(32, 16, 32, 16, 3, padding=1)),
    Case("conv_b32_c32_64_s16_k3_s2", conv_forward_backward(32, 32, 64, 16, 3, stride=2)),
    *[Case(f"optim_{name}", optimizer_step(name)) for name in OPTIMIZERS],
]

# The cases whose peak memory is measured (in fresh subprocesses).
MEMORY_CASES = ["mlp_step_b64", "mlp_step_b1024", "cnn_step_b64", "cnn_step_b256"]
