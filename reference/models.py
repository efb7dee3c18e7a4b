"""torch.nn twins of minitorch_edu.models, written out as one would write them in PyTorch.

They are built from torch.nn alone (not copied from our modules), so a test that compares
layer shapes and state_dict keys with ours compares two independent constructions. Weights
move between a model and its twin with `twin.load_state_dict(model.state_dict())` and back.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn


def torch_mlp(in_features: int, classes: int) -> nn.Sequential:
    """Flatten, Linear in_features -> 256 -> 128 -> 64 -> classes, ReLU between."""
    return nn.Sequential(
        OrderedDict(
            flatten=nn.Flatten(),
            fc1=nn.Linear(in_features, 256),
            relu1=nn.ReLU(),
            fc2=nn.Linear(256, 128),
            relu2=nn.ReLU(),
            fc3=nn.Linear(128, 64),
            relu3=nn.ReLU(),
            fc4=nn.Linear(64, classes),
        )
    )


def torch_lenet(in_channels: int, image_size: int, classes: int) -> nn.Sequential:
    """LeNet: conv5x5(6)-relu-pool, conv5x5(16)-relu-pool, 120, 84, classes.

    conv1 pads by 2; conv2 pads by 2 only for images under 28 pixels (8 -> 8 -> 4 -> 4 -> 2
    for the digits, 28 -> 28 -> 14 -> 10 -> 5 for MNIST).
    """
    second_padding = 0 if image_size >= 28 else 2
    side = (image_size + 4 - 4) // 2
    side = (side + 2 * second_padding - 4) // 2
    return nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(in_channels, 6, kernel_size=5, padding=2),
            relu1=nn.ReLU(),
            pool1=nn.MaxPool2d(2),
            conv2=nn.Conv2d(6, 16, kernel_size=5, padding=second_padding),
            relu2=nn.ReLU(),
            pool2=nn.MaxPool2d(2),
            flatten=nn.Flatten(),
            fc1=nn.Linear(16 * side * side, 120),
            relu3=nn.ReLU(),
            fc2=nn.Linear(120, 84),
            relu4=nn.ReLU(),
            fc3=nn.Linear(84, classes),
        )
    )


def torch_model(name: str, image_shape: tuple[int, ...], classes: int) -> nn.Sequential:
    """The twin of `minitorch_edu.train.build_model(name, image_shape, classes)`."""
    channels, height, width = image_shape
    if name == "mlp":
        return torch_mlp(channels * height * width, classes)
    if name == "cnn":
        return torch_lenet(channels, height, classes)
    raise ValueError(f"unknown model {name!r}")


def parameter_count(model: nn.Module | object) -> int:
    """Number of learned numbers in a model of either library."""
    return sum(parameter.numel() for parameter in model.parameters())
