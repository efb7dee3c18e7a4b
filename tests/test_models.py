"""The two networks of `minitorch-edu train` against torch twins written independently with
torch.nn (reference/models.py): same state_dict keys and shapes, same parameter counts, the
same outputs and gradients on the same weights, for the digits' 8x8 and MNIST's 28x28 images."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minitorch_edu as mt
from minitorch_edu.data import load_mnist, write_idx
from minitorch_edu.models import lenet, lenet_feature_size, lenet_padding, mlp
from minitorch_edu.train import build_model
from reference.models import parameter_count, torch_lenet, torch_mlp, torch_model
from reference.nn import assert_matches_twin


def shapes(model):
    return {name: tuple(value.shape) for name, value in model.state_dict().items()}


def twin_of(model, torch_model_):
    """The torch model holding `model`'s weights, in float64 on the model's device."""
    first = next(iter(model.parameters()))
    torch_model_.to(device=first.device, dtype=first.dtype)
    torch_model_.load_state_dict(model.state_dict())
    return torch_model_


def test_mlp_layers_are_those_asked_for():
    model = mlp(64, 10)
    assert shapes(model) == {
        "fc1.weight": (256, 64),
        "fc1.bias": (256,),
        "fc2.weight": (128, 256),
        "fc2.bias": (128,),
        "fc3.weight": (64, 128),
        "fc3.bias": (64,),
        "fc4.weight": (10, 64),
        "fc4.bias": (10,),
    }
    kinds = [type(layer).__name__ for layer in model.children()]
    assert kinds == ["Flatten"] + ["Linear", "ReLU"] * 3 + ["Linear"]
    assert parameter_count(model) == 64 * 256 + 256 + 256 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10


@pytest.mark.parametrize("in_features, classes", [(64, 10), (784, 10), (3 * 32 * 32, 7)])
def test_mlp_shapes_and_count_equal_the_torch_twin(in_features, classes):
    ours, theirs = mlp(in_features, classes), torch_mlp(in_features, classes)
    assert shapes(ours) == shapes(theirs)
    assert parameter_count(ours) == parameter_count(theirs)


@pytest.mark.parametrize(
    "image_size, paddings, side, features",
    [(8, (2, 2), 2, 64), (28, (2, 0), 5, 400), (32, (2, 0), 6, 576), (4, (2, 2), 1, 16)],
)
def test_lenet_sizes(image_size, paddings, side, features):
    assert lenet_padding(image_size) == paddings
    assert lenet_feature_size(image_size) == side
    model = lenet(1, image_size, 10)
    assert model.fc1.in_features == features
    assert (model.conv1.padding, model.conv2.padding) == ((2, 2), (paddings[1],) * 2)


def test_lenet_layers_are_those_asked_for():
    model = lenet(1, 28, 10)
    assert [type(layer).__name__ for layer in model.children()] == [
        "Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d",
        "Flatten", "Linear", "ReLU", "Linear", "ReLU", "Linear",
    ]  # fmt: skip
    assert shapes(model)["conv1.weight"] == (6, 1, 5, 5)
    assert shapes(model)["conv2.weight"] == (16, 6, 5, 5)
    assert [shapes(model)[f"fc{i}.weight"] for i in (1, 2, 3)] == [(120, 400), (84, 120), (10, 84)]
    # The classic LeNet-5 count on MNIST with a padded first convolution.
    assert parameter_count(model) == 61_706


@settings(max_examples=12)
@given(channels=st.integers(1, 3), image_size=st.integers(4, 36), classes=st.integers(2, 12))
def test_lenet_matches_the_torch_twin_for_any_size(channels, image_size, classes):
    ours, theirs = lenet(channels, image_size, classes), torch_lenet(channels, image_size, classes)
    assert shapes(ours) == shapes(theirs)
    assert parameter_count(ours) == parameter_count(theirs)
    twin_of(ours, theirs)
    images = torch.randn(2, channels, image_size, image_size)
    with mt.no_grad():
        output = ours(images).data
    assert output.shape == (2, classes)
    # float32 here: the full float64 comparison of outputs and gradients is below.
    torch.testing.assert_close(output, theirs(images).detach(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "name, image_shape",
    [("mlp", (1, 8, 8)), ("mlp", (1, 28, 28)), ("cnn", (1, 8, 8)), ("cnn", (1, 28, 28))],
)
def test_outputs_and_every_gradient_equal_torch_in_float64(name, image_shape, device):
    mt.manual_seed(0)
    model = build_model(name, image_shape, 10).to(device=device, dtype=torch.float64)
    twin = twin_of(model, torch_model(name, image_shape, 10))
    images = torch.randn(3, *image_shape, dtype=torch.float64, device=device)
    assert_matches_twin(model, images, twin=twin, rtol=1e-10, atol=1e-12)


def test_weights_move_both_ways():
    mt.manual_seed(1)
    model = lenet(1, 8, 10)
    torch.manual_seed(2)
    theirs = torch_lenet(1, 8, 10)
    model.load_state_dict(theirs.state_dict())
    assert all(
        torch.equal(model.state_dict()[name], value) for name, value in theirs.state_dict().items()
    )
    mt.manual_seed(3)
    fresh = lenet(1, 8, 10)
    theirs.load_state_dict(fresh.state_dict())
    assert all(
        torch.equal(theirs.state_dict()[name], value) for name, value in fresh.state_dict().items()
    )


def test_the_cnn_reads_a_tiny_mnist_written_as_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 256, (5, 28, 28), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(5, dtype=np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte", rng.integers(0, 256, (2, 28, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(2, dtype=np.uint8))
    images, _ = load_mnist(tmp_path, "train", normalize=True).tensors
    mt.manual_seed(0)
    model = build_model("cnn", tuple(images.shape[1:]), 10)
    assert model.fc1.in_features == 400
    twin = twin_of(model, torch_lenet(1, 28, 10))
    with mt.no_grad():
        output = model(images).data
    assert output.shape == (5, 10)
    torch.testing.assert_close(output, twin(images).detach(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: lenet(1, 3, 10), "images must be at least 4x4 pixels"),
        (lambda: lenet(0, 8, 10), "in_channels must be a positive integer, got 0"),
        (lambda: mlp(64, 0), "classes must be a positive integer, got 0"),
        (lambda: mlp(64.0, 10), "in_features must be a positive integer, got 64.0"),
        (lambda: build_model("cnn", (1, 8, 6), 10), "square images, got 8x6"),
        (lambda: build_model("resnet", (1, 8, 8), 10), "unknown model 'resnet'"),
    ],
)
def test_bad_sizes_are_refused_by_name(make, message):
    with pytest.raises(ValueError, match=message):
        make()
