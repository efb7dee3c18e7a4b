"""The torch side of `minitorch-edu train --compare-torch`: the same run, in torch.nn/torch.optim.

    twin = TorchTwin("mlp", (1, 8, 8), 10, model, optimizer)   # our model and optimizer
    for images, labels in loader:                                # the batches we train on
        ...our step...
        twin_loss = twin.step(images.data, labels.data)

The twin starts from our model's weights (copied through state_dict) and runs PyTorch's
optimizer of the same class with every hyperparameter ours has, so the two runs differ only
in how the arithmetic is done.

In a data-parallel run (`distributed=True`, inside a process group) the twin is torch's own
DistributedDataParallel around the torch model, and, when ours is a ZeroRedundancyOptimizer,
torch's ZeroRedundancyOptimizer around torch's optimizer class.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

import minitorch_edu as mt
from reference.models import torch_model
from reference.optim import torch_optimizer_like


class TorchTwin:
    """A torch.nn model, a torch.optim optimizer and torch.nn.CrossEntropyLoss, stepped in turn."""

    def __init__(
        self,
        model_name: str,
        image_shape: tuple[int, ...],
        classes: int,
        model: mt.nn.Module,
        optimizer: mt.optim.Optimizer,
        distributed: bool = False,
    ) -> None:
        first = next(iter(model.parameters()))
        # Building a torch model initialises its weights from torch's global generator; fork it
        # so that training with or without the twin draws the same random numbers.
        with torch.random.fork_rng(devices=[]):
            self.plain_model = torch_model(model_name, image_shape, classes)
        self.plain_model.to(device=first.device, dtype=first.dtype)
        self.plain_model.load_state_dict(model.state_dict())
        self.model = self.plain_model
        if distributed:
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.plain_model, device_ids=None if first.device.type == "cpu" else [first.device]
            )
        if isinstance(optimizer, mt.optim.ZeroRedundancyOptimizer):
            from torch.distributed.optim import ZeroRedundancyOptimizer

            self.optimizer = ZeroRedundancyOptimizer(
                list(self.model.parameters()),
                optimizer_class=getattr(torch.optim, optimizer.optimizer_class.__name__),
                **optimizer.defaults,
            )
        else:
            self.optimizer = torch_optimizer_like(optimizer, list(self.model.parameters()))
        self.loss_function = torch.nn.CrossEntropyLoss()

    @staticmethod
    def exact_cudnn() -> Any:
        """cuDNN settings for a fair and repeatable comparison (they matter on a GPU only):
        no TF32, since our float32 convolutions are full-precision matrix products, and
        deterministic algorithms, since a resumed run must repeat the uninterrupted one."""
        return torch.backends.cudnn.flags(
            enabled=torch.backends.cudnn.enabled,
            benchmark=False,
            deterministic=True,
            allow_tf32=False,
        )

    def step(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """One training step on a batch; returns the batch's loss before the update."""
        with self.exact_cudnn():
            self.optimizer.zero_grad()
            loss = self.loss_function(self.model(images), labels)
            loss.backward()
            self.optimizer.step()
        return loss.item()

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Predicted classes for a batch, in evaluation mode."""
        self.model.eval()
        with self.exact_cudnn():
            predictions = self.model(images).argmax(dim=1)
        self.model.train()
        return predictions

    def consolidate(self) -> None:
        """Collect a sharded optimizer state on rank 0 (every rank calls it before saving)."""
        if hasattr(self.optimizer, "consolidate_state_dict"):
            self.optimizer.consolidate_state_dict(to=0)

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.plain_model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.plain_model.load_state_dict(state["model"])
        # a copy: torch's ZeroRedundancyOptimizer writes into the dict it loads
        self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
