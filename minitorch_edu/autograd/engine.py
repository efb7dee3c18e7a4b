"""The backward engine: reverse-mode differentiation over the recorded graph.

Given outputs y and the gradients dL/dy, visit every node that led to them in reverse
topological order (each node after every node that used its output), call its backward,
and pass each input's gradient on:

    to a parent node   -> added to what that node has received so far (the sum over paths)
    to a leaf          -> added into leaf.grad (or handed back, for autograd.grad)

The order comes from an iterative depth-first search, so a chain of 100,000 ops needs no
recursion. Before a gradient is passed on, it is summed back to the input's shape: a
broadcast input of shape (3, 1) used as (3, 4) gets the sum over the 4 columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from minitorch_edu.autograd import function, grad_mode
from minitorch_edu.autograd.function import Function
from minitorch_edu.autograd.tensor import Tensor, as_torch
from minitorch_edu.autograd.torch_function import type_name


def topological_order(roots: Sequence[Function]) -> list[Function]:
    """Nodes reachable from `roots`, each listed before the nodes that produced its inputs."""
    order: list[Function] = []
    visited: set[Function] = set()
    for root in roots:
        if root in visited:  # reached from an earlier root: already placed
            continue
        visited.add(root)
        stack = [(root, iter(root.parents))]
        while stack:
            node, parents = stack[-1]
            for parent in parents:
                if isinstance(parent, Function) and parent not in visited:
                    visited.add(parent)
                    stack.append((parent, iter(parent.parents)))
                    break
            else:  # all parents done: post-order
                stack.pop()
                order.append(node)
    order.reverse()
    return order


def sum_to_shape(grad: Any, shape: torch.Size) -> Any:
    """Undo broadcasting: sum `grad` over the dimensions that broadcasting added or stretched."""
    if grad.shape == shape:
        return grad
    leading = grad.dim() - len(shape)
    stretched = tuple(
        leading + i for i, size in enumerate(shape) if size == 1 and grad.shape[leading + i] != 1
    )
    if leading < 0 or any(
        size != 1 and size != grad.shape[leading + i] for i, size in enumerate(shape)
    ):
        raise RuntimeError(f"gradient of shape {tuple(grad.shape)} cannot be summed to {shape}")
    if stretched:
        grad = grad.sum(dim=stretched, keepdim=True)
    if leading:
        grad = grad.sum(dim=tuple(range(leading)))
    return grad


def backward(
    outputs: Any,
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    inputs: Any = None,
    allow_unused: bool = True,
    accumulate: bool = True,
) -> tuple[Tensor | None, ...] | None:
    """Run backward from `outputs` (a Tensor or a sequence), as torch.autograd.backward.

    accumulate=True (Tensor.backward): add into `.grad` of the leaves (only of `inputs` if given).
    accumulate=False (autograd.grad): touch no `.grad`; return the gradients of `inputs`.
    """
    if isinstance(outputs, Tensor):
        outputs = [outputs]
    grad_outputs = _grad_output_list(grad_outputs, len(outputs))
    if retain_graph is None:
        retain_graph = create_graph
    targets = _as_tensor_list(inputs) if inputs is not None else None
    if targets is not None and not targets:
        raise RuntimeError("'inputs' argument to backward() cannot be empty.")
    if targets is not None and not accumulate:
        for index, t in enumerate(targets):
            if not t.requires_grad:
                raise RuntimeError(
                    f"One of the differentiated Tensors (index {index}) does not require grad"
                )

    tracer = function.tracer
    if tracer is not None:
        tracer.on_backward_begin(outputs)
    try:
        with grad_mode.set_grad_enabled(create_graph):
            pass_ = _BackwardPass(create_graph, retain_graph, targets, accumulate)
            pass_.seed(outputs, grad_outputs)
            pass_.run()
    finally:
        if tracer is not None:
            tracer.on_backward_end()

    if accumulate:
        return None
    results = []
    for t in targets:
        grad = pass_.captured.get(t)
        if grad is None and not allow_unused:
            raise RuntimeError(
                f"The differentiated Tensor at index {len(results)} appears to not have been "
                "used in the graph. Set allow_unused=True if this is the desired behavior."
            )
        results.append(None if grad is None else _as_user_grad(grad))
    return tuple(results)


class _BackwardPass:
    """State of one backward call: gradients waiting at nodes, what to capture, what to free."""

    def __init__(self, create_graph: bool, retain_graph: bool, targets: Any, accumulate: bool):
        self.create_graph = create_graph
        self.retain_graph = retain_graph
        self.accumulate = accumulate
        self.pending: dict[Function, Any] = {}  # node -> gradient of its output, summed so far
        self.roots: list[Function] = []
        # Tensors whose gradient is wanted, found by their node (non-leaf) or by themselves (leaf).
        self.targets = targets
        self.target_nodes = {t.grad_fn: t for t in targets or () if t.grad_fn is not None}
        self.target_leaves = {t for t in targets or () if t.grad_fn is None}
        self.captured: dict[Tensor, Any] = {}
        # Leaves with hooks: their gradient is summed over all paths first, then the hooks
        # see it once (as in torch, where hooks run before the leaf's accumulation).
        self.hooked_leaves: dict[Tensor, Any] = {}
        # Leaves with post-accumulate hooks that received a gradient in this pass and have not
        # had their hooks run yet.
        self.reached: set[Tensor] = set()

    def seed(self, outputs: Sequence[Tensor], grad_outputs: Sequence[Any]) -> None:
        for index, (output, grad) in enumerate(zip(outputs, grad_outputs)):
            if not output.requires_grad:
                raise RuntimeError(
                    f"element {index} of tensors does not require grad and does not have a grad_fn"
                )
            grad = self._initial_grad(index, output, grad)
            if output.grad_fn is None:
                self.deliver_to_leaf(output, grad, grad)
            else:
                self.add_pending(output.grad_fn, grad)
                self.roots.append(output.grad_fn)

    def _initial_grad(self, index: int, output: Tensor, grad: Any) -> Any:
        if grad is None:
            if output.numel() != 1:
                raise RuntimeError(
                    "grad can be implicitly created only for scalar outputs; pass "
                    f"gradient= (a tensor of shape {tuple(output.shape)}) for non-scalar outputs"
                )
            grad = torch.ones_like(output.data)
        elif isinstance(grad, Tensor):
            if not self.create_graph:
                grad = grad.data
        else:
            grad = as_torch(grad, device=output.device)
        if grad.shape != output.shape:
            raise RuntimeError(
                f"Mismatch in shape: grad_output[{index}] has a shape of {tuple(grad.shape)} "
                f"and output[{index}] has a shape of {tuple(output.shape)}."
            )
        if self.create_graph and not isinstance(grad, Tensor):
            grad = Tensor._wrap(grad)
        return grad

    def add_pending(self, node: Function, grad: Any) -> None:
        previous = self.pending.get(node)
        self.pending[node] = grad if previous is None else previous + grad

    def run(self) -> None:
        order = topological_order(self.roots)
        needed = self._needed_nodes(order) if self.targets is not None else None
        # Leaves with post-accumulate hooks, and how many graph edges still lead into each:
        # when the last of them is done, the leaf's gradient is final and the hooks run.
        edges_left = None
        if Tensor.post_accumulate_hook_count and self.accumulate:
            edges_left = _edges_into_watched_leaves(order)
        for node in order:
            self.run_node(node, needed)
            if edges_left is not None:
                for parent in node.parents:
                    if parent in edges_left:
                        edges_left[parent] -= 1
                        if edges_left[parent] == 0:
                            self.finish_leaf(parent)
        for leaf, grad in self.hooked_leaves.items():
            grad = _run_hooks(leaf._hooks, grad)
            self.deliver(leaf, grad, grad)
        self.hooked_leaves.clear()
        for leaf in list(self.reached):  # reached without a node (a leaf was an output)
            self.finish_leaf(leaf)

    def run_node(self, node: Function, needed: set[Function] | None) -> None:
        """Call one node's backward and pass each input's gradient on."""
        grad = self.pending.pop(node, None)
        if grad is None:
            return  # no gradient reached this node (its users returned None)
        if node._grad_hooks:
            grad = _run_hooks(node._grad_hooks, grad)
        if node in self.target_nodes:
            self.deliver(self.target_nodes[node], grad, grad)
        if needed is not None and node not in needed:
            return
        input_grads = type(node).backward(node, grad)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        if len(input_grads) != len(node.parents):
            raise RuntimeError(
                f"{node.name()} returned {len(input_grads)} gradients for "
                f"{len(node.parents)} inputs"
            )
        if function.tracer is not None:
            function.tracer.on_backward(node, grad, input_grads)
        create_graph = self.create_graph
        for parent, input_grad in zip(node.parents, input_grads):
            if parent is None or input_grad is None:
                continue
            if not create_graph and isinstance(input_grad, Tensor):
                input_grad = input_grad.data  # a backward may use our ops on plain tensors
            if isinstance(parent, Function):
                input_grad = _match(input_grad, parent.output_shape, parent.output_dtype)
                self.add_pending(parent, input_grad)
            else:
                input_grad = _match(input_grad, parent.data.shape, parent.data.dtype)
                self.deliver_to_leaf(parent, input_grad, grad)
        if not self.retain_graph:
            node.release()  # its saved tensors are no longer needed: free them now

    def finish_leaf(self, leaf: Tensor) -> None:
        """Every path into `leaf` is done: complete its `.grad`, then run its post-accumulate
        hooks (if this pass gave it a gradient)."""
        if leaf in self.hooked_leaves:
            grad = _run_hooks(leaf._hooks, self.hooked_leaves.pop(leaf))
            self.deliver(leaf, grad, grad)
        if leaf in self.reached:
            self.reached.discard(leaf)
            for hook in list(leaf._post_accumulate_hooks or ()):
                hook(leaf)

    def _needed_nodes(self, order: list[Function]) -> set[Function]:
        """Nodes whose backward leads to a target: the rest need not run (autograd.grad, inputs=).

        A node is needed when one of its parents is a target leaf, a target node, or needed.
        """
        needed: set[Function] = set()
        leading = set(self.target_nodes)  # nodes whose gradient is wanted or leads to one
        for node in reversed(order):  # parents before children
            for parent in node.parents:
                if parent in leading or parent in self.target_leaves:
                    needed.add(node)
                    leading.add(node)
                    break
        return needed

    def deliver_to_leaf(self, leaf: Tensor, grad: Any, grad_of_node: Any) -> None:
        if self.targets is not None and leaf not in self.target_leaves:
            return
        if leaf._post_accumulate_hooks and self.accumulate:
            self.reached.add(leaf)
        if leaf._hooks:
            previous = self.hooked_leaves.get(leaf)
            self.hooked_leaves[leaf] = grad if previous is None else previous + grad
            return
        self.deliver(leaf, grad, grad_of_node)

    def deliver(self, tensor: Tensor, grad: Any, grad_of_node: Any) -> None:
        """Add a finished gradient into `tensor.grad`, or keep it for autograd.grad."""
        if function.tracer is not None:
            function.tracer.on_deliver(tensor, grad)
        if not self.accumulate:
            previous = self.captured.get(tensor)
            self.captured[tensor] = grad if previous is None else previous + grad
        elif self.create_graph:
            # A recorded copy, as torch makes: the same gradient object may go to several
            # tensors (add hands its gradient to both inputs), and .grad must not be shared.
            if tensor._grad is None:
                tensor._grad = grad.clone() if isinstance(grad, Tensor) else Tensor._wrap(grad)
            else:
                tensor._grad = tensor._grad + grad
        elif tensor._grad is None:
            # A backward may hand on its incoming gradient (add) or a view of it (reshape),
            # which other tensors may also receive: copy those so no two .grad share memory.
            if grad is grad_of_node or grad._base is not None:
                grad = grad.clone()
            tensor._grad = Tensor._wrap(grad)
        elif tensor._grad.grad_fn is None:
            tensor._grad.data.add_(grad)  # in place: accumulation across backward calls
        else:
            tensor._grad = Tensor._wrap(tensor._grad.data + grad)


def _edges_into_watched_leaves(order: list[Function]) -> dict[Tensor, int]:
    """For each leaf with post-accumulate hooks: how many times nodes in `order` use it."""
    edges: dict[Tensor, int] = {}
    for node in order:
        for parent in node.parents:
            if isinstance(parent, Tensor) and parent._post_accumulate_hooks:
                edges[parent] = edges.get(parent, 0) + 1
    return edges


def _match(grad: Any, shape: torch.Size, dtype: torch.dtype) -> Any:
    """The gradient summed back to the input's shape and cast to its dtype."""
    if grad.shape != shape:
        grad = sum_to_shape(grad, shape)
    if grad.dtype != dtype:
        grad = grad.to(dtype)
    return grad


def _run_hooks(hooks: list, grad: Any) -> Any:
    """Call each hook with the gradient (as our Tensor); a returned tensor replaces it."""
    is_tensor = isinstance(grad, Tensor)
    for hook in list(hooks):
        result = hook(grad if is_tensor else Tensor._wrap(grad))
        if result is None:
            continue
        if result.shape != grad.shape:
            name = getattr(hook, "__name__", type(hook).__name__)
            raise RuntimeError(
                f"hook '{name}' has changed the size of value: it returned shape "
                f"{tuple(result.shape)} for a gradient of shape {tuple(grad.shape)}"
            )
        if is_tensor:
            grad = result if isinstance(result, Tensor) else Tensor._wrap(as_torch(result))
        else:
            grad = as_torch(result)
    return grad


def _as_user_grad(grad: Any) -> Tensor:
    return grad if isinstance(grad, Tensor) else Tensor._wrap(grad)


def _as_tensor_list(values: Any) -> list[Tensor]:
    if isinstance(values, Tensor):
        return [values]
    values = list(values)
    for v in values:
        if not isinstance(v, Tensor):
            raise TypeError(f"expected minitorch_edu Tensors as inputs, got {type_name(v)}")
    return values


def _grad_output_list(grad_outputs: Any, count: int) -> list:
    """One gradient (or None) per output; a single tensor stands for a one-element list."""
    if grad_outputs is None:
        return [None] * count
    if isinstance(grad_outputs, Tensor | torch.Tensor | np.ndarray | int | float):
        grad_outputs = [grad_outputs]
    else:
        grad_outputs = list(grad_outputs)
    if len(grad_outputs) != count:
        raise RuntimeError(
            f"grad requires one grad_output per output: got {len(grad_outputs)} grad_outputs "
            f"for {count} outputs"
        )
    return grad_outputs


def grad(
    outputs: Any,
    inputs: Any,
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool | None = None,
) -> tuple[Tensor | None, ...]:
    """d(outputs)/d(inputs), returned instead of accumulated into `.grad`.

    With `create_graph=True` the result is itself part of a graph, so it can be
    differentiated again (Hessian-vector products, gradient penalties).
    """
    outputs = _as_tensor_list(outputs)
    result = backward(
        outputs,
        grad_outputs,
        retain_graph,
        create_graph,
        inputs=inputs,
        allow_unused=bool(allow_unused),
        accumulate=False,
    )
    assert result is not None
    return result
