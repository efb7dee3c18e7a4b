"""Train the digits MLP data parallel, then follow one gradient element across the ranks.

    torchrun --nproc-per-node 2 docs/examples/data_parallel.py

Every rank runs this same file. It reads its DistributedSampler share of each global batch
of 64, DistributedDataParallel averages the gradients after each backward, and rank 0
prints. tests/test_distributed.py runs it on 2 ranks and checks that it prints what
docs/data-parallel.md shows.
"""

import torch
import torch.distributed as dist

import minitorch_edu as mt
from minitorch_edu.models import mlp
from minitorch_edu.nn.parallel import DistributedDataParallel


def main() -> None:
    dist.init_process_group("gloo")  # torchrun's environment says who and where we are
    rank, world_size = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(1)
    train = mt.data.load_digits("train", seed=0, normalize=True)
    mt.manual_seed(0)
    # rank 0's weights on every rank; buckets of 0.1 MiB (not 25), to see two of them
    model = DistributedDataParallel(mlp(64, 10), bucket_cap_mb=0.1)
    optimizer = mt.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sampler = mt.data.DistributedSampler(train, seed=0)  # this rank's share of each epoch
    loader = mt.data.DataLoader(train, batch_size=64 // world_size, sampler=sampler)
    loss_function = mt.nn.CrossEntropyLoss()
    for epoch in range(2):
        sampler.set_epoch(epoch)
        for images, labels in loader:
            optimizer.zero_grad()
            loss = loss_function(model(images), labels)
            loss.backward()  # ... and every .grad is now the average over the ranks
            optimizer.step()
        if rank == 0:
            print(f"epoch {epoch + 1}: loss on rank 0's last batch {loss.item():.4f}")

    images, labels = next(iter(loader))
    with mt.study.trace(names=model) as tape:  # on every rank: all take part in the all-reduce
        loss_function(model(images), labels).backward()
    explanation = mt.study.explain_all_reduce(tape, model.module.fc1.weight, (0, 10))
    if rank == 0:
        print(explanation)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
