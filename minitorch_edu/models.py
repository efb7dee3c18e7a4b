"""The two classic networks that `minitorch-edu train` trains: a 4-layer MLP and LeNet.

Both are `nn.Sequential`s with named layers, so they print as a list of their parts and their
state_dict keys (`fc1.weight`, `conv2.bias`, ...) are the ones their torch twins in
reference/models.py use: weights move both ways with `load_state_dict`.

    mlp(64, 10)          8x8 digits:    Flatten -> 64 -> 256 -> 128 -> 64 -> 10
    lenet(1, 28, 10)     28x28 MNIST:   the classic LeNet-5 layout, 16 * 5 * 5 = 400 features
    lenet(1, 8, 10)      8x8 digits:    "same" convolutions, 16 * 2 * 2 = 64 features
"""

from __future__ import annotations

from collections import OrderedDict

from minitorch_edu import nn

MLP_HIDDEN_SIZES = (256, 128, 64)
# Below this image size the second convolution is zero-padded too (see `lenet_padding`).
CLASSIC_LENET_SIZE = 28


def mlp(in_features: int, classes: int) -> nn.Sequential:
    """Flatten, then Linear in_features -> 256 -> 128 -> 64 -> classes with ReLU between.

    in_features is the pixel count of one image (C * H * W), e.g. 64 for the 8x8 digits and
    784 for 28x28 MNIST.
    """
    _check_positive(in_features=in_features, classes=classes)
    sizes = (in_features, *MLP_HIDDEN_SIZES, classes)
    layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
    for number, (inputs, outputs) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        layers[f"fc{number}"] = nn.Linear(inputs, outputs)
        if number < len(sizes) - 1:  # no ReLU after the last layer: it gives the logits
            layers[f"relu{number}"] = nn.ReLU()
    return nn.Sequential(layers)


def lenet_padding(image_size: int) -> tuple[int, int]:
    """Zero padding of the two 5x5 convolutions for square images of side `image_size`.

    The first convolution always pads by 2, so it keeps the image size ("same" padding), as
    LeNet-5 does on MNIST. The second pads by 2 only for images smaller than 28 pixels:

        28x28:  28 -conv-> 28 -pool-> 14 -conv-> 10 -pool-> 5     (padding 2, 0)
         8x8:    8 -conv->  8 -pool->  4 -conv->  4 -pool-> 2     (padding 2, 2)

    Padding keeps small images such as the 8x8 digits from shrinking to nothing, without
    inventing pixels by resizing them.
    """
    if image_size < 4:
        raise ValueError(
            f"lenet: images must be at least 4x4 pixels (two 2x2 poolings), got {image_size}x"
            f"{image_size}"
        )
    return 2, (0 if image_size >= CLASSIC_LENET_SIZE else 2)


def lenet_feature_size(image_size: int) -> int:
    """Side of the feature maps after the second pooling (5 for 28x28, 2 for 8x8)."""
    first_padding, second_padding = lenet_padding(image_size)
    size = (image_size + 2 * first_padding - 4) // 2  # conv 5x5, then pool 2x2
    return (size + 2 * second_padding - 4) // 2


def lenet(in_channels: int, image_size: int, classes: int) -> nn.Sequential:
    """LeNet-style CNN for square images of side `image_size` with `in_channels` channels.

    conv 5x5 -> 6 channels, ReLU, max-pool 2x2,
    conv 5x5 -> 16 channels, ReLU, max-pool 2x2,
    Flatten, Linear -> 120, ReLU, Linear -> 84, ReLU, Linear -> classes.

    The convolutions are zero-padded as `lenet_padding` says (2 and 0 for 28x28 and larger,
    2 and 2 for smaller images such as the 8x8 digits).
    """
    _check_positive(in_channels=in_channels, image_size=image_size, classes=classes)
    first_padding, second_padding = lenet_padding(image_size)
    features = 16 * lenet_feature_size(image_size) ** 2
    return nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(in_channels, 6, kernel_size=5, padding=first_padding),
            relu1=nn.ReLU(),
            pool1=nn.MaxPool2d(2),
            conv2=nn.Conv2d(6, 16, kernel_size=5, padding=second_padding),
            relu2=nn.ReLU(),
            pool2=nn.MaxPool2d(2),
            flatten=nn.Flatten(),
            fc1=nn.Linear(features, 120),
            relu3=nn.ReLU(),
            fc2=nn.Linear(120, 84),
            relu4=nn.ReLU(),
            fc3=nn.Linear(84, classes),
        )
    )


def describe_lenet_padding(image_size: int) -> str:
    """One line saying how `lenet` treats images of this size (printed in the run header)."""
    first_padding, second_padding = lenet_padding(image_size)
    after_first = (image_size + 2 * first_padding - 4) // 2
    after_second = lenet_feature_size(image_size)
    return (
        f"{image_size}x{image_size} images: conv1 pads by {first_padding}, conv2 by "
        f"{second_padding}; sizes {image_size} -> pool {after_first} -> pool {after_second}, "
        f"{16 * after_second**2} features"
    )


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
