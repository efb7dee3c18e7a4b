"""DataLoader against torch.utils.data.DataLoader: same batches, same random streams, resumable."""

import collections

import numpy as np
import pytest
import torch
import torch.utils.data as torch_data
from hypothesis import given
from hypothesis import strategies as st

import minitorch_edu as mt
from minitorch_edu.checkpoint import load_checkpoint, save_checkpoint
from minitorch_edu.data import DataLoader, Dataset, TensorDataset, default_collate


def as_torch_structure(batch):
    """Our batch with every mt.Tensor replaced by its torch.Tensor, to compare with torch's."""
    if isinstance(batch, mt.Tensor):
        assert not batch.requires_grad and batch.grad_fn is None
        return batch.data
    if isinstance(batch, dict):
        return {key: as_torch_structure(value) for key, value in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(as_torch_structure(value) for value in batch))
    if isinstance(batch, list | tuple):
        return type(batch)(as_torch_structure(value) for value in batch)
    return batch


def assert_same_structure(ours, theirs):
    assert type(ours) is type(theirs), (type(ours), type(theirs))
    if isinstance(theirs, torch.Tensor):
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        assert torch.equal(ours, theirs)
    elif isinstance(theirs, dict):
        assert list(ours) == list(theirs)
        for key in theirs:
            assert_same_structure(ours[key], theirs[key])
    elif isinstance(theirs, list | tuple):
        assert len(ours) == len(theirs)
        for mine, other in zip(ours, theirs):
            assert_same_structure(mine, other)
    else:
        assert ours == theirs


def assert_same_batches(our_batches, torch_batches):
    assert len(our_batches) == len(torch_batches)
    for ours, theirs in zip(our_batches, torch_batches):
        assert_same_structure(as_torch_structure(ours), theirs)


def columns(count):
    features = torch.arange(count * 3, dtype=torch.float64).reshape(count, 3) / 7
    labels = torch.arange(count) % 4
    return features, labels


loader_options = st.fixed_dictionaries(
    {
        "batch_size": st.integers(1, 12),
        "shuffle": st.booleans(),
        "drop_last": st.booleans(),
    }
)


@given(
    count=st.integers(1, 40),
    options=loader_options,
    seed=st.integers(0, 2**32),
    epochs=st.integers(1, 3),
)
def test_same_batches_as_torch_with_a_seeded_generator(count, options, seed, epochs):
    features, labels = columns(count)
    ours = DataLoader(
        TensorDataset(features, labels), generator=torch.Generator().manual_seed(seed), **options
    )
    theirs = torch_data.DataLoader(
        torch_data.TensorDataset(features, labels),
        generator=torch.Generator().manual_seed(seed),
        **options,
    )
    assert len(ours) == len(theirs)
    our_batches = [batch for _ in range(epochs) for batch in ours]
    torch_batches = [batch for _ in range(epochs) for batch in theirs]
    assert_same_batches(our_batches, torch_batches)
    assert torch.equal(ours.generator.get_state(), theirs.generator.get_state())


@given(count=st.integers(1, 30), options=loader_options, seed=st.integers(0, 2**32))
def test_same_batches_and_global_rng_as_torch_without_a_generator(count, options, seed):
    features, labels = columns(count)
    torch.manual_seed(seed)
    torch_batches = [b for _ in range(2) for b in torch_data.DataLoader(
        torch_data.TensorDataset(features, labels), **options
    )]  # fmt: skip
    torch_state_after = torch.get_rng_state()
    mt.manual_seed(seed)
    our_batches = [
        b for _ in range(2) for b in DataLoader(TensorDataset(features, labels), **options)
    ]
    assert_same_batches(our_batches, torch_batches)
    # Same random numbers drawn from the global generator, so what follows stays in step.
    assert torch.equal(torch.get_rng_state(), torch_state_after)


class Records(Dataset):
    """Samples of every kind default_collate handles: tensors, arrays, numbers, strings, dicts."""

    Pair = collections.namedtuple("Pair", ["left", "right"])

    def __init__(self, count):
        self.count = count

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        return (
            torch.full((2, 2), float(index)),
            np.arange(3, dtype=np.int32) + index,
            index * 0.5,
            index,
            index % 2 == 0,
            f"sample {index}",
            {"weight": np.float32(index), "pair": self.Pair(index, [index, -index])},
        )


@given(count=st.integers(1, 17), options=loader_options, seed=st.integers(0, 1000))
def test_generic_dataset_collates_like_torch(count, options, seed):
    ours = DataLoader(Records(count), generator=torch.Generator().manual_seed(seed), **options)
    theirs = torch_data.DataLoader(
        Records(count), generator=torch.Generator().manual_seed(seed), **options
    )
    assert_same_batches(list(ours), list(theirs))


def test_accepts_torch_datasets_and_subsets():
    features, labels = columns(10)
    dataset = torch_data.TensorDataset(features, labels)
    subset = torch_data.Subset(dataset, [9, 2, 4, 4, 0])
    assert_same_batches(
        list(DataLoader(subset, batch_size=2)), list(torch_data.DataLoader(subset, batch_size=2))
    )
    batches = list(DataLoader(dataset, batch_size=4))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    assert all(isinstance(part, mt.Tensor) for batch in batches for part in batch)


def test_our_tensor_dataset_feeds_torchs_loader_too():
    features, labels = columns(9)
    ours = DataLoader(TensorDataset(features.numpy(), mt.tensor(labels)), batch_size=4)
    theirs = torch_data.DataLoader(TensorDataset(features, labels), batch_size=4)
    assert_same_batches(list(ours), list(theirs))


def test_fast_path_equals_per_sample_path():
    """Indexing whole batches gives what collating sample by sample gives."""
    features, labels = columns(23)

    class PerSample(Dataset):
        def __len__(self):
            return 23

        def __getitem__(self, index):
            return features[index], labels[index]

    fast = DataLoader(TensorDataset(features, labels), batch_size=5, shuffle=True,
                      generator=torch.Generator().manual_seed(3))  # fmt: skip
    slow = DataLoader(PerSample(), batch_size=5, shuffle=True,
                      generator=torch.Generator().manual_seed(3))  # fmt: skip
    for (x_fast, y_fast), (x_slow, y_slow) in zip(fast, slow):
        assert torch.equal(x_fast.data, x_slow.data) and torch.equal(y_fast.data, y_slow.data)


def test_tensor_dataset_on_a_device_gives_batches_there(device):
    features, labels = columns(8)
    loader = DataLoader(TensorDataset(features.to(device), labels.to(device)), batch_size=3,
                        shuffle=True, generator=torch.Generator().manual_seed(0))  # fmt: skip
    for x, y in loader:
        assert x.device.type == device.type and y.device.type == device.type


def test_custom_collate_fn_output_is_returned_unchanged():
    loader = DataLoader(TensorDataset(torch.arange(5)), batch_size=2, collate_fn=len)
    assert list(loader) == [2, 2, 1]


# ---------------------------------------------------------------------- resuming
@given(
    count=st.integers(1, 25),
    options=loader_options,
    seed=st.integers(0, 2**32),
    stop_fraction=st.floats(0, 1),
    with_generator=st.booleans(),
)
def test_resumed_loader_sees_the_batches_an_uninterrupted_one_sees(
    tmp_path, count, options, seed, stop_fraction, with_generator
):
    """Save the state after any batch, rebuild the loader from a checkpoint, carry on: the
    batches (and the random streams) are those of a run that never stopped."""
    features, labels = columns(count)
    epochs = 3

    def make_loader():
        generator = torch.Generator().manual_seed(seed) if with_generator else None
        return DataLoader(TensorDataset(features, labels), generator=generator, **options)

    mt.manual_seed(seed + 1)
    uninterrupted = make_loader()
    expected = [batch for _ in range(epochs) for batch in uninterrupted]
    expected_global_state = torch.get_rng_state()

    stop = round(stop_fraction * len(expected))
    mt.manual_seed(seed + 1)
    first_run = make_loader()
    seen = []
    epoch_iterators = (iter(first_run) for _ in range(epochs))
    flat = (batch for iterator in epoch_iterators for batch in iterator)
    for _ in range(stop):
        seen.append(next(flat))
    path = tmp_path / "loader.pt"
    save_checkpoint(path, {"loader": first_run.state_dict(), "torch_rng": torch.get_rng_state()})

    saved = load_checkpoint(path)
    mt.manual_seed(12345)  # the resumed process starts from unrelated random state
    resumed = make_loader()
    resumed.load_state_dict(saved["loader"])
    torch.set_rng_state(saved["torch_rng"])
    # Epochs finished before the one in progress (none was started when stop is 0).
    state = saved["loader"]
    epochs_done = 0
    if state["in_progress"]:
        epochs_done = (stop - state["batches_yielded"]) // len(first_run)
    rest = [batch for _ in range(epochs - epochs_done) for batch in resumed]
    assert_same_batches(seen + rest, [as_torch_structure(batch) for batch in expected])
    assert torch.equal(torch.get_rng_state(), expected_global_state)
    if with_generator:
        assert torch.equal(resumed.generator.get_state(), uninterrupted.generator.get_state())


def test_state_dict_of_an_idle_loader_and_round_trip():
    loader = DataLoader(TensorDataset(torch.arange(6)), batch_size=4, shuffle=True,
                        generator=torch.Generator().manual_seed(1))  # fmt: skip
    state = loader.state_dict()
    assert state["in_progress"] is False and state["epoch_order"] is None
    iterator = iter(loader)
    next(iterator)
    state = loader.state_dict()
    assert state["in_progress"] is True and state["batches_yielded"] == 1
    assert sorted(state["epoch_order"].tolist()) == list(range(6))
    next(iterator)
    with pytest.raises(StopIteration):
        next(iterator)
    assert loader.state_dict()["in_progress"] is False


def test_load_state_dict_refuses_mismatched_state():
    generator = torch.Generator().manual_seed(0)
    shuffled = DataLoader(TensorDataset(torch.arange(6)), batch_size=2, shuffle=True,
                          generator=generator)  # fmt: skip
    iterator = iter(shuffled)
    next(iterator)
    state = shuffled.state_dict()
    with pytest.raises(ValueError, match="expected keys"):
        shuffled.load_state_dict({"generator_state": None})
    with pytest.raises(ValueError, match="has no generator"):
        DataLoader(TensorDataset(torch.arange(6)), batch_size=2, shuffle=True).load_state_dict(
            state
        )
    with pytest.raises(ValueError, match="shuffle=True, this one has shuffle=False"):
        DataLoader(TensorDataset(torch.arange(6)), batch_size=2,
                   generator=torch.Generator()).load_state_dict(state)  # fmt: skip
    with pytest.raises(ValueError, match="covers 6 samples but an epoch of this loader has 7"):
        DataLoader(TensorDataset(torch.arange(7)), batch_size=2, shuffle=True,
                   generator=torch.Generator()).load_state_dict(state)  # fmt: skip
    with pytest.raises(ValueError, match="batches_yielded=9 is outside 0..3"):
        shuffled.load_state_dict({**state, "batches_yielded": 9})


# ---------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"batch_size": 0}, ValueError, "positive integer value, but got batch_size=0"),
        ({"batch_size": -3}, ValueError, "batch_size=-3"),
        ({"batch_size": 2.0}, ValueError, "batch_size=2.0"),
        ({"shuffle": 1}, TypeError, "shuffle should be a boolean"),
        ({"drop_last": "yes"}, TypeError, "drop_last should be a boolean"),
        ({"generator": 7}, TypeError, "generator should be a torch.Generator, got int"),
        ({"collate_fn": 3}, TypeError, "collate_fn should be callable"),
    ],
)  # fmt: skip
def test_bad_arguments_are_named(kwargs, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        DataLoader(TensorDataset(torch.arange(4)), **kwargs)


def test_non_datasets_and_empty_shuffles_are_refused():
    with pytest.raises(TypeError, match="map-style dataset .* got int"):
        DataLoader(5)
    with pytest.raises(ValueError, match="num_samples=0"):
        DataLoader(TensorDataset(torch.zeros(0, 2)), shuffle=True)
    assert list(DataLoader(TensorDataset(torch.zeros(0, 2)))) == []


def test_default_collate_errors():
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(TypeError, match="found object"):
        default_collate([object(), object()])
    with pytest.raises(TypeError, match="cannot stack NumPy arrays of dtype"):
        default_collate([np.array(["a"]), np.array(["b"])])
