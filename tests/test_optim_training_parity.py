"""Training parity: real models trained for 50 steps, minitorch_edu against torch.

The MLP 784-256-128-64-10 and a small CNN start from the same weights (copied through
state_dict), see the same random batches, and are trained by each optimizer. The losses
must agree at every step (relative 1e-6 in float64) and so must the final weights.
"""

import pytest
import torch

import minitorch_edu as mt
import minitorch_edu.nn as nn
from reference.nn import torch_twin

STEPS = 50

OPTIMIZERS = {
    "sgd_momentum": (mt.optim.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
    "adagrad": (mt.optim.Adagrad, torch.optim.Adagrad, {"lr": 0.05}),
    "rmsprop_centered_momentum": (
        mt.optim.RMSprop,
        torch.optim.RMSprop,
        {"lr": 0.002, "centered": True, "momentum": 0.9},
    ),
    "adam": (mt.optim.Adam, torch.optim.Adam, {"lr": 0.002}),
}


def mlp() -> nn.Module:
    return nn.Sequential(
        nn.Linear(784, 256),
        nn.ReLU(),
        nn.Linear(256, 128),
        nn.ReLU(),
        nn.Linear(128, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 2 * 2, 10),
    )


MODELS = {"mlp": (mlp, (784,), 16), "cnn": (small_cnn, (1, 12, 12), 8)}


@pytest.mark.parametrize("optimizer_name", OPTIMIZERS)
@pytest.mark.parametrize("model_name", MODELS)
def test_training_matches_torch_step_for_step(model_name, optimizer_name, device):
    build, input_shape, batch = MODELS[model_name]
    ours_class, torch_class, hyperparameters = OPTIMIZERS[optimizer_name]
    mt.manual_seed(0)
    model = build().to(device=device, dtype=torch.float64)
    twin = torch_twin(model)
    ours = ours_class(model.parameters(), **hyperparameters)
    theirs = torch_class(twin.parameters(), **hyperparameters)
    loss_fn, torch_loss_fn = nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()

    generator = torch.Generator().manual_seed(1)
    for step in range(STEPS):
        x = torch.randn((batch, *input_shape), generator=generator, dtype=torch.float64)
        y = torch.randint(0, 10, (batch,), generator=generator)
        x, y = x.to(device), y.to(device)

        ours.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        ours.step()

        theirs.zero_grad()
        torch_loss = torch_loss_fn(twin(x), y)
        torch_loss.backward()
        theirs.step()

        relative = abs(loss.item() - torch_loss.item()) / abs(torch_loss.item())
        assert relative < 1e-6, f"step {step}: loss {loss.item()} vs torch {torch_loss.item()}"

    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, twin.state_dict()[name], rtol=1e-6, atol=1e-9)
