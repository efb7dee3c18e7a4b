"""Optimizers and learning-rate schedulers, with PyTorch's names, defaults and state dicts.

    optimizer = mt.optim.Adam(params, lr=1e-3)
    for batch in batches:
        optimizer.zero_grad()
        loss(batch).backward()
        optimizer.step()

Each optimizer's file holds its update rule in its docstring and the code that computes it,
line by line (one parameter at a time, and grouped with `foreach`).
"""

from minitorch_edu.optim import lr_scheduler
from minitorch_edu.optim.adagrad import Adagrad
from minitorch_edu.optim.adam import Adam, AdamW
from minitorch_edu.optim.optimizer import Optimizer
from minitorch_edu.optim.rmsprop import RMSprop
from minitorch_edu.optim.sgd import SGD
from minitorch_edu.optim.zero_redundancy import ZeroRedundancyOptimizer

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "Optimizer",
    "RMSprop",
    "ZeroRedundancyOptimizer",
    "lr_scheduler",
]
