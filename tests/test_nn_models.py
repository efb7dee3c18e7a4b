"""Whole models against their torch twins: the same loss and the same parameter gradients.

A small CNN (conv, relu, pool, flatten, linear, cross-entropy) with drawn shapes, and the
4-layer MLP 784-256-128-64-10, in float64. Then a few steps of plain gradient descent on
both, which must stay together.
"""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minitorch_edu as mt
import minitorch_edu.nn.functional as F
from minitorch_edu.testing import strategies as mts
from reference.nn import assert_matches_twin, torch_twin


class WithLoss(mt.nn.Module):
    """model + cross-entropy as one module, so a twin comparison covers the loss too."""

    def __init__(self, model, loss):
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, x, target):
        return self.loss(self.model(x), target)


class TorchWithLoss(torch.nn.Module):
    def __init__(self, model, loss):
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, x, target):
        return self.loss(self.model(x), target)


def small_cnn(nn, channels, hidden, classes, size, pool, kernel):
    flat = hidden * ((size - kernel + 1) // pool) ** 2
    return nn.Sequential(
        nn.Conv2d(channels, hidden, kernel),
        nn.ReLU(),
        nn.MaxPool2d(pool),
        nn.Flatten(),
        nn.Linear(flat, classes),
    )


def mlp(nn):
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 256),
        nn.ReLU(),
        nn.Linear(256, 128),
        nn.ReLU(),
        nn.Linear(128, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


@settings(max_examples=25)
@given(
    batch=st.integers(1, 4),
    channels=st.integers(1, 3),
    hidden=st.integers(1, 4),
    classes=st.integers(2, 5),
    kernel=st.integers(1, 3),
    pool=st.integers(1, 2),
    size=st.integers(4, 8),
    smoothing=st.sampled_from([0.0, 0.1]),
    seed=st.integers(0, 2**16),
    data=st.data(),
)
def test_small_cnn_matches_torch(
    batch, channels, hidden, classes, kernel, pool, size, smoothing, seed, data, device
):
    mt.manual_seed(seed)
    model = small_cnn(mt.nn, channels, hidden, classes, size, pool, kernel)
    ours = WithLoss(model, mt.nn.CrossEntropyLoss(label_smoothing=smoothing))
    ours.to(device, torch.float64)
    twin = TorchWithLoss(torch_twin(ours.model), torch_twin(ours.loss))
    x = data.draw(mts.tensors(shape=(batch, channels, size, size), device=device))
    target = torch.tensor(
        data.draw(st.lists(st.integers(0, classes - 1), min_size=batch, max_size=batch)),
        device=device,
    )
    run = assert_matches_twin(ours, x, target, twin=twin)
    assert set(run.grads) == {"model.0.weight", "model.0.bias", "model.4.weight", "model.4.bias"}


@settings(max_examples=5)
@given(batch=st.integers(1, 16), seed=st.integers(0, 2**16))
def test_mlp_784_256_128_64_10_matches_torch(batch, seed, device):
    mt.manual_seed(seed)
    ours = WithLoss(mlp(mt.nn), mt.nn.CrossEntropyLoss()).to(device, torch.float64)
    twin = TorchWithLoss(torch_twin(ours.model), torch.nn.CrossEntropyLoss())
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 1, 28, 28, generator=generator, dtype=torch.float64).to(device)
    target = torch.randint(0, 10, (batch,), generator=generator).to(device)
    run = assert_matches_twin(ours, x, target, twin=twin, rtol=1e-7, atol=1e-10)
    assert len(run.grads) == 8


def test_gradient_descent_stays_together_with_torch():
    mt.manual_seed(0)
    model = small_cnn(mt.nn, 1, 3, 4, 8, 2, 3).double()
    twin = torch_twin(model)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(6, 1, 8, 8, generator=generator, dtype=torch.float64)
    target = torch.randint(0, 4, (6,), generator=generator)
    for _ in range(5):
        model.zero_grad()
        twin.zero_grad()
        loss = F.cross_entropy(model(x), target)
        torch_loss = torch.nn.functional.cross_entropy(twin(x), target)
        loss.backward()
        torch_loss.backward()
        torch.testing.assert_close(loss.data, torch_loss.detach())
        with mt.no_grad(), torch.no_grad():
            for p, q in zip(model.parameters(), twin.parameters()):
                p -= 0.5 * p.grad
                q -= 0.5 * q.grad
    for (name, value), torch_value in zip(model.state_dict().items(), twin.state_dict().values()):
        torch.testing.assert_close(value, torch_value, msg=name)
