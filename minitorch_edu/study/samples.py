"""A gradient split by sample (or by channel), for every element at once.

    parts = mt.study.gradient_by_sample(loss, model.conv1.weight, names=model)
    parts.by_sample()          # (N, *weight.shape): sample n's share of each element
    parts.by_sample().sum(0)   # == weight.grad (up to rounding)
    parts.element((0, 0, 1, 1))  # one element: its total and each sample's share, per use
    parts.top(3)               # for every element, its 3 largest samples and the rest
    parts.to_dict()            # JSON-ready

    mt.study.gradient_by_sample(loss, hidden, dim=1)  # an activation, split by the
                               # channel (or feature) of the layer that uses it

Where a tensor is used by a node whose output has a batch dim first (Linear, Conv2d, an
elementwise op on a batch), the chain rule's sum over that node's output elements j splits
by the sample j[0]. Sample n's share comes from the node's own backward called with the
gradient it received kept at sample n and zeroed elsewhere (one masked vector-Jacobian
product per sample): backward is linear in that gradient, so the shares add up to the
gradient. This is what `explain_gradient` groups as `j = [n, ...]`, for every element of
the tensor in N backward calls instead of one explanation per element.

Any other dim of j splits the same way (`dim=`): for an activation, whose element at
sample n only reaches sample n of the next layer, the sample says nothing, but the next
layer's channel or output feature j[1] does: hidden[n, k] feeds linear2[n, o] for every o,
and `dim=1` gives each o's part, upstream[n, o] x W[o, k].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from minitorch_edu.autograd import engine
from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.study import chain
from minitorch_edu.study.format import format_number, format_shape
from minitorch_edu.study.trace import Tape


@dataclass
class SampleShares:
    """One use of the tensor (an input of one node) and its share, split by sample (or
    along another dim of the node's output: `dim`)."""

    op: str
    node_label: str
    input_position: int
    input_name: str
    share: torch.Tensor  # this use's gradient, the tensor's shape, as the engine computed it
    samples: torch.Tensor  # (N, *shape): part n of the share (N = the node output's dim `dim`)
    dim: int = 0  # the dim of the node's output split along; one part when it has no such dim

    def to_dict(self, index: tuple[int, ...] | None = None) -> dict[str, Any]:
        if index is None:
            share, samples = self.share.tolist(), self.samples.tolist()
        else:
            share = self.share[index].item()
            samples = self.samples[(slice(None), *index)].tolist()
        return {
            "op": self.op,
            "node": self.node_label,
            "input_position": self.input_position,
            "input_name": self.input_name,
            "dim": self.dim,
            "share": share,
            "samples": samples,
        }


@dataclass
class SampleGradients:
    """What `gradient_by_sample` found: the gradient of one tensor, per use and per sample."""

    output_label: str
    label: str
    shape: tuple[int, ...]
    value: torch.Tensor  # the whole gradient (the sum of the uses' shares)
    uses: list[SampleShares] = field(default_factory=list)
    dim: int = 0  # the dim of each use's output the shares are split along (0: the sample)

    @property
    def sample_count(self) -> int:
        counts = {len(use.samples) for use in self.uses}
        if len(counts) != 1:
            raise ValueError(
                f"gradient_by_sample: the uses of {self.label} split into different numbers "
                f"of samples ({sorted(counts)}): read each use's `samples` instead"
            )
        return counts.pop()

    def by_sample(self) -> torch.Tensor:
        """(N, *shape): each sample's part of the gradient, summed over the uses."""
        self.sample_count  # noqa: B018 - checks that the uses agree on N
        return sum(use.samples for use in self.uses)

    def element(self, index: Any) -> dict[str, Any]:
        """One element: its gradient, each use's share and each sample's part of it."""
        index = chain._normalize_index(index, torch.Size(self.shape))
        return {
            "tensor": self.label,
            "index": list(index),
            "value": self.value[index].item(),
            "uses": [use.to_dict(index) for use in self.uses],
        }

    def top(self, k: int = 3) -> dict[str, torch.Tensor]:
        """For every element: the k samples with the largest parts (by magnitude), their
        parts, and the sum of the other samples' parts (the rest, so that they add up)."""
        parts = self.by_sample().reshape(self.sample_count, -1).to(torch.float64)
        k = min(k, parts.shape[0])
        values, samples = parts.abs().topk(k, dim=0)
        picked = parts.gather(0, samples)
        rest = parts.sum(0) - picked.sum(0)
        shape = (k, *self.shape)
        return {
            "samples": samples.reshape(shape),
            "values": picked.reshape(shape),
            "rest": rest.reshape(self.shape),
        }

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        """JSON-ready. Every sample's part of every element, or with `top`, only the `top`
        largest per element and the rest's sum."""
        result: dict[str, Any] = {
            "format": "minitorch_edu.study.gradient_by_sample",
            "version": 1,
            "output": self.output_label,
            "tensor": self.label,
            "dim": self.dim,
            "shape": list(self.shape),
            "value": self.value.tolist(),
        }
        if top is None:
            result["uses"] = [use.to_dict() for use in self.uses]
        else:
            found = self.top(top)
            result["top"] = {key: value.tolist() for key, value in found.items()}
        return result

    def text(self, index: Any = None, digits: int = 4, limit: int = 8) -> str:
        """Each use's share of one element (default: the largest), sample by sample."""
        if index is None:
            index = chain._unflatten(int(self.value.abs().argmax()), torch.Size(self.shape))
        found = self.element(index)
        where = f"{self.label}{format_shape(found['index'])}"
        part = "sample {}" if self.dim == 0 else f"j[{self.dim}] = {{}}"
        noun = "samples" if self.dim == 0 else "parts"
        lines = [
            f"d({self.output_label})/d({where}) = {format_number(found['value'], 8)}, split by "
            + ("sample" if self.dim == 0 else f"j[{self.dim}], dim {self.dim} of each use's output")
        ]
        for use in found["uses"]:
            parts = use["samples"]
            lines.append(
                f"  via {use['node']} ({use['op']}, {use['input_name']}): "
                f"{format_number(use['share'], digits)} = sum over {len(parts)} {noun}"
            )
            ranked = sorted(range(len(parts)), key=lambda n: -abs(parts[n]))
            for n in ranked[:limit]:
                lines.append(f"    {part.format(n)}: {format_number(parts[n], digits)}")
            if len(parts) > limit:
                rest = math.fsum(parts[n] for n in ranked[limit:])
                lines.append(
                    f"    the other {len(parts) - limit} {noun}: {format_number(rest, digits)}"
                )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text())

    def _repr_html_(self) -> str:
        from minitorch_edu.study.display import sample_gradients_html

        return sample_gradients_html(self)


def gradient_by_sample(
    output: Tensor,
    tensor: Tensor,
    *,
    gradient: Any = None,
    tape: Tape | None = None,
    names: Any = None,
    dim: int = 0,
) -> SampleGradients:
    """The gradient of `tensor` split by use and by sample, for all its elements at once.

    output, gradient, tape, names   as for `explain_gradient`
    dim        which index of each use's output element j to split by: 0, the sample
               (a parameter's gradient); 1, the channel of a convolution or pool, the
               output feature of a Linear (an activation's gradient). Part k is the node's
               backward with its gradient kept where j[dim] = k

    A use whose node output has no dim `dim` (a 0-d loss) gives one part: its whole share.
    """
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 0:
        raise ValueError(f"gradient_by_sample: dim must be an integer >= 0, got {dim!r}")
    if not isinstance(output, Tensor) or not isinstance(tensor, Tensor):
        raise TypeError(
            "gradient_by_sample: output and tensor must be minitorch_edu Tensors, got "
            f"{type(output).__name__} and {type(tensor).__name__}"
        )
    if output.grad_fn is None:
        raise ValueError("gradient_by_sample: output has no graph (it does not require grad)")
    if not tensor.requires_grad:
        raise ValueError("gradient_by_sample: tensor does not require grad, so it has no gradient")
    root = output.grad_fn
    target = tensor if tensor.grad_fn is None else tensor.grad_fn
    order = engine.topological_order([root])
    labels = chain.graph_labels(order, names, output)
    users = [
        (node, position)
        for node in order
        for position, parent in enumerate(node.parents)
        if parent is target
    ]
    if not users:
        raise ValueError(
            f"gradient_by_sample: the tensor ({labels.label(tensor)}, shape "
            f"{tuple(tensor.shape)}) is not used in the graph of the output"
        )
    if tape is None:
        leaves = {id(p): p for n in order for p in n.parents if isinstance(p, Tensor)}
        wanted = [tensor] if tensor.grad_fn is None else [tensor, *leaves.values()]
        records = chain._run_backward(output, wanted, gradient)
    else:
        records = chain._records_from_tape(tape, root, order)
    shape = torch.Size(tensor.shape)
    result = SampleGradients(
        labels.label(output), labels.label(tensor), tuple(shape), torch.zeros(shape), dim=dim
    )
    total = None
    for node, position in users:
        record = records.get(id(node))
        if record is None or record.input_grads[position] is None:
            continue
        share = engine.sum_to_shape(record.input_grads[position], shape)
        total = share.clone() if total is None else total + share
        formula = type(node).derivatives
        result.uses.append(
            SampleShares(
                op=type(node).__name__,
                node_label=labels.label(node),
                input_position=position,
                input_name=formula.input_name(position) if formula else f"input {position}",
                share=share,
                samples=_per_part(record, position, shape, dim),
                dim=dim,
            )
        )
    if total is not None:
        result.value = total
    return result


def _per_part(record: Any, position: int, shape: torch.Size, dim: int) -> torch.Tensor:
    """(K, *shape): the node's backward with its gradient kept at j[dim] = k, for each k
    (one part, the whole share, when its output has no dim `dim`)."""
    node = record.node
    if node._saved is None:
        raise RuntimeError(
            f"gradient_by_sample: {type(node).__name__}'s saved tensors were freed by that "
            "backward; run it with retain_graph=True, or call without a tape"
        )
    grad = record.grad.to(record.device)
    if grad.dim() > dim:
        seeds = []
        for k in range(grad.shape[dim]):
            masked = torch.zeros_like(grad)
            masked.select(dim, k).copy_(grad.select(dim, k))
            seeds.append(masked)
    else:
        seeds = [grad]
    saved_needs = node.needs_input_grad
    node.needs_input_grad = tuple(i == position for i in range(len(saved_needs)))
    parts = []
    try:
        with chain._quiet():
            for seed in seeds:
                grads = type(node).backward(node, seed)
                part = (grads if isinstance(grads, tuple) else (grads,))[position]
                part = engine.sum_to_shape(chain.as_torch(part), shape)
                parts.append(part.to("cpu"))
    finally:
        node.needs_input_grad = saved_needs
    return torch.stack(parts)
