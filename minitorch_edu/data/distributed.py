"""`DistributedSampler`: which samples each of N processes reads in an epoch (torch's indices).

In data-parallel training every process (rank r of N) runs the same model on its own share
of each epoch. The sampler hands rank r the indices

    order        = randperm(n) from a generator seeded with seed + epoch   (shuffle=True)
                 = 0, 1, ..., n-1                                            (shuffle=False)
    num_samples  = ceil(n / N)                     (drop_last=False, or n divisible by N)
                 = ceil((n - N) / N)               (drop_last=True and n not divisible by N)
    total        = num_samples * N
    padded       = order, then order again from its start, until it is `total` long
                   (drop_last=False: a few samples are read twice in the epoch)
                 = order[:total]                   (drop_last=True: the tail is dropped)
    rank r reads padded[r], padded[r + N], padded[r + 2N], ...   (num_samples indices)

so the N shares are disjoint (apart from the padding), equally long, and cover the epoch.
Every rank draws the same permutation (same seed, same epoch), which is why no process needs
to talk to another to agree on it. Call `set_epoch(epoch)` before each epoch, or every
epoch repeats the same order. These are exactly the indices of
`torch.utils.data.DistributedSampler` (tests/test_data_distributed.py checks every rank,
epoch, shuffle and drop_last against it).

    sampler = DistributedSampler(dataset, num_replicas=N, rank=r, seed=0)
    loader = DataLoader(dataset, batch_size=B // N, sampler=sampler)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for images, labels in loader: ...
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch


class DistributedSampler:
    """Rank `rank`'s share of each epoch, out of `num_replicas` processes (see the module).

    num_replicas and rank default to the world size and rank of torch.distributed's process
    group (started with torch.distributed.init_process_group, or by torchrun).
    """

    def __init__(
        self,
        dataset: Any,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if num_replicas is None or rank is None:
            import torch.distributed as dist

            if not (dist.is_available() and dist.is_initialized()):
                raise RuntimeError(
                    "DistributedSampler: num_replicas and rank default to the process group's "
                    "world size and rank, but no process group is initialized; call "
                    "torch.distributed.init_process_group(...) first (torchrun does it for "
                    "you), or pass num_replicas= and rank="
                )
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if isinstance(num_replicas, bool) or not isinstance(num_replicas, int) or num_replicas < 1:
            raise ValueError(
                f"Invalid num_replicas {num_replicas!r}, num_replicas should be a positive "
                "integer (the number of processes)"
            )
        if rank >= num_replicas or rank < 0:
            raise ValueError(
                f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]"
            )
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        count = len(dataset)
        if drop_last and count % num_replicas != 0:
            self.num_samples = math.ceil((count - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(count / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self) -> Iterator[int]:
        count = len(self.dataset)
        if self.shuffle:
            generator = torch.Generator()
            generator.manual_seed(self.seed + self.epoch)
            order = torch.randperm(count, generator=generator).tolist()
        else:
            order = list(range(count))
        if self.drop_last:
            padded = order[: self.total_size]
        else:
            repeats = math.ceil(self.total_size / count) if count else 0
            padded = (order * repeats)[: self.total_size]
        return iter(padded[self.rank : self.total_size : self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use epoch `epoch`'s order next (the permutation is seeded with seed + epoch)."""
        self.epoch = epoch

    def __repr__(self) -> str:
        return (
            f"DistributedSampler(rank {self.rank} of {self.num_replicas}, "
            f"{self.num_samples} of {len(self.dataset)} samples, shuffle={self.shuffle}, "
            f"seed={self.seed}, drop_last={self.drop_last}, epoch={self.epoch})"
        )
