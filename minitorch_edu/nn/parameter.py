"""`Parameter`: a Tensor that a Module learns.

A Parameter is an ordinary leaf Tensor with `requires_grad=True` by default. Its only
extra meaning is for `Module`: assigning one as an attribute (`self.weight = Parameter(...)`)
registers it, so `module.parameters()` finds it and an optimizer can update it.
"""

from __future__ import annotations

from typing import Any

import torch

from minitorch_edu.autograd.tensor import Tensor


class Parameter(Tensor):
    """A leaf Tensor registered by the Module it is assigned to.

    `Parameter(data)` shares memory with `data` (a torch.Tensor or our Tensor), as in torch.
    """

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        if data is None:
            data = torch.empty(0)
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol: Any) -> Any:
        # copy.deepcopy and pickle: rebuild from a copy of the numbers and the flag.
        return (_rebuild_parameter, (self.data, self.requires_grad, self.grad))


def _rebuild_parameter(data: torch.Tensor, requires_grad: bool, grad: Tensor | None) -> Parameter:
    parameter = Parameter(data, requires_grad=requires_grad)
    parameter.grad = grad
    return parameter
