"""DistributedSampler against torch.utils.data.DistributedSampler: the same indices for every
rank, epoch, shuffle, drop_last and seed, the same lengths and the same refusals; and our
DataLoader driven by it hands out the batches torch's DataLoader does. No processes needed:
the sampler only reads num_replicas and rank."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minitorch_edu as mt
from minitorch_edu.data import DataLoader, DistributedSampler, TensorDataset


@given(
    count=st.integers(0, 40),
    num_replicas=st.integers(1, 6),
    shuffle=st.booleans(),
    drop_last=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_every_rank_and_epoch_draws_torchs_indices(count, num_replicas, shuffle, drop_last, seed):
    dataset = list(range(count))
    for rank in range(num_replicas):
        options = dict(shuffle=shuffle, seed=seed, drop_last=drop_last)
        ours = DistributedSampler(dataset, num_replicas, rank, **options)
        theirs = torch.utils.data.DistributedSampler(dataset, num_replicas, rank, **options)
        assert len(ours) == len(theirs)
        for epoch in (0, 1, 5):
            ours.set_epoch(epoch)
            theirs.set_epoch(epoch)
            assert list(ours) == list(theirs), (rank, epoch)


def test_shares_are_disjoint_and_cover_the_epoch():
    dataset = list(range(10))
    shares = [list(DistributedSampler(dataset, 3, rank, seed=4)) for rank in range(3)]
    assert [len(share) for share in shares] == [4, 4, 4]  # ceil(10 / 3), two read twice
    everything = sorted(sum(shares, []))
    assert set(everything) == set(dataset) and len(everything) == 12
    dropped = [
        list(DistributedSampler(dataset, 3, rank, shuffle=False, drop_last=True))
        for rank in range(3)
    ]
    assert sorted(sum(dropped, [])) == list(range(9))  # the tail (one sample) is dropped


@pytest.mark.parametrize("num_replicas, rank", [(3, 3), (3, -1), (2, 5)])
def test_bad_rank_is_refused_like_torch(num_replicas, rank):
    with pytest.raises(ValueError) as theirs:
        torch.utils.data.DistributedSampler(range(4), num_replicas, rank)
    with pytest.raises(ValueError) as ours:
        DistributedSampler(range(4), num_replicas, rank)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("num_replicas", [0, -2])
def test_bad_world_size_is_refused_with_its_own_message(num_replicas):
    with pytest.raises(ValueError):  # torch refuses it too, speaking of the rank
        torch.utils.data.DistributedSampler(range(4), num_replicas, 0)
    with pytest.raises(ValueError, match=f"Invalid num_replicas {num_replicas}, .*positive"):
        DistributedSampler(range(4), num_replicas, 0)


def test_without_a_process_group_the_defaults_say_what_to_do():
    with pytest.raises(RuntimeError, match="init_process_group.*or pass num_replicas= and rank="):
        DistributedSampler(range(4))


def test_dataloader_with_the_sampler_gives_torchs_batches():
    images = torch.arange(26 * 3, dtype=torch.float64).reshape(26, 3)
    labels = torch.arange(26)
    for rank in range(4):
        ours_sampler = DistributedSampler(range(26), 4, rank, seed=7)
        torch_sampler = torch.utils.data.DistributedSampler(range(26), 4, rank, seed=7)
        ours = DataLoader(TensorDataset(images, labels), batch_size=3, sampler=ours_sampler)
        theirs = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(images, labels), batch_size=3, sampler=torch_sampler
        )
        assert len(ours) == len(theirs) == 3
        for epoch in range(2):
            ours_sampler.set_epoch(epoch)
            torch_sampler.set_epoch(epoch)
            mt.manual_seed(epoch)
            ours_batches = [(x.data.clone(), y.data.clone()) for x, y in ours]
            ours_rng = torch.get_rng_state()
            torch.manual_seed(epoch)
            torch_batches = list(theirs)
            assert torch.equal(ours_rng, torch.get_rng_state())  # same draws from the global
            for (x, y), (tx, ty) in zip(ours_batches, torch_batches, strict=True):
                assert torch.equal(x, tx) and torch.equal(y, ty)


def test_dataloader_refuses_a_sampler_with_shuffle_and_resumes_a_sampled_epoch():
    dataset = TensorDataset(torch.arange(10.0))
    sampler = DistributedSampler(dataset, 2, 1, seed=3)
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(dataset, batch_size=2, shuffle=True, sampler=sampler)
    with pytest.raises(TypeError, match="iterable and have a length"):
        DataLoader(dataset, batch_size=2, sampler=3)
    loader = DataLoader(dataset, batch_size=2, sampler=sampler)
    iterator = iter(loader)
    first = next(iterator)[0].tolist()
    state = loader.state_dict()
    rest = [batch[0].tolist() for batch in iterator]
    resumed = DataLoader(dataset, batch_size=2, sampler=DistributedSampler(dataset, 2, 1, seed=9))
    resumed.load_state_dict(state)  # the saved order wins over the new sampler's seed
    assert [batch[0].tolist() for batch in resumed] == rest
    assert first + sum(rest, []) == [float(i) for i in sampler]
