"""TensorDataset, the bundled digits and the ToTensor/Normalize transforms."""

import numpy as np
import pytest
import sklearn.datasets
import torch
from hypothesis import given
from hypothesis import strategies as st

import minitorch_edu as mt
from minitorch_edu.data import (
    DIGITS_MEAN,
    DIGITS_STD,
    Compose,
    Normalize,
    TensorDataset,
    ToTensor,
    digits_split_indices,
    load_digits,
)


@pytest.fixture(scope="module")
def sklearn_digits():
    bunch = sklearn.datasets.load_digits()
    return bunch.images, bunch.target


# ---------------------------------------------------------------------- TensorDataset
def test_tensor_dataset_accepts_mt_torch_and_numpy():
    dataset = TensorDataset(
        mt.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([5, 6]), np.array([7, 8])
    )
    assert len(dataset) == 2
    first = dataset[1]
    assert all(isinstance(part, torch.Tensor) for part in first)
    assert [part.tolist() for part in first] == [[3.0, 4.0], 6, 8]
    assert all(not column.requires_grad for column in dataset.tensors)
    assert "2 samples" in repr(dataset)


def test_tensor_dataset_reads_like_torchs():
    features, labels = torch.randn(5, 3), torch.arange(5)
    ours, theirs = TensorDataset(features, labels), torch.utils.data.TensorDataset(features, labels)
    for index in range(5):
        assert all(torch.equal(a, b) for a, b in zip(ours[index], theirs[index]))


def test_tensor_dataset_errors_name_the_problem():
    with pytest.raises(
        ValueError, match=r"equal first dimensions.*tensor 0: \(3, 2\), tensor 1: \(4,\)"
    ):
        TensorDataset(torch.zeros(3, 2), torch.zeros(4))
    with pytest.raises(TypeError, match="tensor 1 is a list"):
        TensorDataset(torch.zeros(3), [1, 2, 3])
    with pytest.raises(ValueError, match="tensor 0 is a 0-dim scalar"):
        TensorDataset(torch.tensor(1.0))
    with pytest.raises(ValueError, match="at least one tensor"):
        TensorDataset()


# ---------------------------------------------------------------------- digits
@given(seed=st.integers(0, 2**31), test_fraction=st.sampled_from([0.1, 0.2, 0.25, 0.5, 0.9]))
def test_digits_split_is_disjoint_complete_stratified_and_fixed_by_seed(
    sklearn_digits, seed, test_fraction
):
    train, test = digits_split_indices(seed, test_fraction)
    assert set(train.tolist()).isdisjoint(test.tolist())
    assert sorted(train.tolist() + test.tolist()) == list(range(1797))
    again_train, again_test = digits_split_indices(seed, test_fraction)
    assert torch.equal(train, again_train) and torch.equal(test, again_test)
    labels = torch.from_numpy(sklearn_digits[1])
    class_sizes = torch.bincount(labels, minlength=10)
    test_sizes = torch.bincount(labels[test], minlength=10)
    assert all(
        test_sizes[c].item() == round(test_fraction * class_sizes[c].item()) for c in range(10)
    )


def test_different_seeds_give_different_splits():
    assert not torch.equal(digits_split_indices(0)[1], digits_split_indices(1)[1])


def test_load_digits_shapes_dtypes_and_values(sklearn_digits):
    images, labels = sklearn_digits
    train, test = load_digits("train", seed=3), load_digits("test", seed=3)
    assert (len(train), len(test)) == (1438, 359)
    train_indices, test_indices = digits_split_indices(3)
    for dataset, indices in ((train, train_indices), (test, test_indices)):
        pixels, targets = dataset.tensors
        assert pixels.shape == (len(indices), 1, 8, 8) and pixels.dtype == torch.float32
        assert targets.shape == (len(indices),) and targets.dtype == torch.int64
        expected = images[indices.numpy()].astype(np.float64) / 16.0
        np.testing.assert_array_equal(pixels[:, 0].numpy(), expected.astype(np.float32))
        np.testing.assert_array_equal(targets.numpy(), labels[indices.numpy()])
        assert 0.0 <= pixels.min().item() and pixels.max().item() <= 1.0


def test_digits_normalisation(sklearn_digits):
    images, _ = sklearn_digits
    scaled = images.astype(np.float64) / 16.0
    # The published constants are the statistics of every pixel of every image.
    assert DIGITS_MEAN == pytest.approx(scaled.mean(), abs=5e-5)
    assert DIGITS_STD == pytest.approx(scaled.std(), abs=5e-5)
    plain = load_digits("test", seed=1).tensors[0].double()
    standard = load_digits("test", seed=1, normalize=True).tensors[0].double()
    custom = load_digits("test", seed=1, normalize=(0.5, 0.25)).tensors[0].double()
    torch.testing.assert_close(standard, (plain - DIGITS_MEAN) / DIGITS_STD, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(custom, (plain - 0.5) / 0.25, rtol=1e-6, atol=1e-6)


def test_load_digits_bad_arguments():
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'validation'"):
        load_digits("validation")
    for fraction in (0, 1, 1.5, -0.1):
        with pytest.raises(ValueError, match=f"test_fraction must be .* got {fraction}"):
            load_digits(test_fraction=fraction)
    with pytest.raises(ValueError, match="leaves the test split empty"):
        load_digits(test_fraction=0.001)
    with pytest.raises(TypeError, match="seed must be an integer, got float"):
        load_digits(seed=1.5)
    with pytest.raises(ValueError, match="normalize must be True, False or a \\(mean, std\\) pair"):
        load_digits(normalize="yes")


# ---------------------------------------------------------------------- transforms
@given(
    pixels=st.lists(st.integers(0, 255), min_size=12, max_size=12),
    mean=st.floats(-1, 1),
    std=st.floats(0.01, 2),
)
def test_to_tensor_and_normalize_follow_their_formulas(pixels, mean, std):
    images = np.array(pixels, dtype=np.uint8).reshape(3, 2, 2)
    scaled = ToTensor()(images)
    assert scaled.shape == (3, 1, 2, 2) and scaled.dtype == torch.float32
    expected = torch.from_numpy(images.astype(np.float64) / 255).unsqueeze(1)
    torch.testing.assert_close(scaled.double(), expected, rtol=1e-7, atol=1e-7)
    normalized = Compose([ToTensor(), Normalize(mean, std)])(images)
    torch.testing.assert_close(normalized.double(), (expected - mean) / std, rtol=1e-5, atol=1e-5)


def test_normalize_works_per_channel():
    images = torch.rand(4, 3, 2, 2, dtype=torch.float64)
    mean, std = (0.1, 0.2, 0.3), (1.0, 2.0, 4.0)
    expected = torch.stack([(images[:, c] - mean[c]) / std[c] for c in range(3)], dim=1)
    torch.testing.assert_close(Normalize(mean, std)(images), expected)


def test_transform_errors_are_clear():
    with pytest.raises(ValueError, match="std must be positive in every channel"):
        Normalize(0.5, 0.0)
    with pytest.raises(ValueError, match="mean has 2 channels but std has 1"):
        Normalize((0.1, 0.2), 0.3)
    with pytest.raises(ValueError, match="C=1 channels, got \\(4, 3, 2, 2\\)"):
        Normalize(0.1, 0.3)(torch.rand(4, 3, 2, 2))
    with pytest.raises(TypeError, match="apply ToTensor first"):
        Normalize(0.1, 0.3)(torch.zeros(1, 2, 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match="expected images of shape \\(H, W\\) or \\(N, H, W\\)"):
        ToTensor()(np.zeros(5))
    with pytest.raises(ValueError, match="max_value must be a positive number"):
        ToTensor(max_value=0)
