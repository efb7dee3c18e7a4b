"""Data parallelism on torch.distributed: `DistributedDataParallel` (distributed.py) and the
gradient reducer it runs on (reducer.py: buckets, hooks, all-reduce)."""

from minitorch_edu.nn.parallel.distributed import DistributedDataParallel
from minitorch_edu.nn.parallel.reducer import ProcessGroupError

__all__ = ["DistributedDataParallel", "ProcessGroupError"]
