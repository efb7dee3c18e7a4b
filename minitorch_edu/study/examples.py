"""Built-in study examples: small, seeded runs that show a formula happening with real numbers.

    from minitorch_edu.study import examples

    run = examples.mlp_step(seed=0)
    print(run.text())          # forward table, backward table, the chain rule for one weight
    run.tape                   # the recorded steps, run.explanation the chain rule, run.loss ...

    print(examples.conv_step(pixel=(1, 2)).text())       # a conv layer; one pixel's gradient
    print(examples.optimizer_step("adam", step=3).text())  # one Adam step for one weight
    examples.mlp_graph().save("mlp.dot")                  # the MLP step's graph, as DOT text

Every example is small enough to print on a terminal, in float64, and the same for the same
seed. `minitorch-edu explain ...` runs them from the command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

import minitorch_edu.nn.functional as F
from minitorch_edu import creation, nn, optim
from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.study.chain import GradientExplanation, explain_gradient
from minitorch_edu.study.graph import GraphPicture, draw
from minitorch_edu.study.optimizer_step import StepExplanation, explain_step
from minitorch_edu.study.trace import Tape, trace

OPTIMIZERS = ("sgd", "adagrad", "rmsprop", "adam", "adamw")
# What each optimizer example uses unless told otherwise: rates that move these small
# problems visibly in a few steps, and momentum on where the optimizer has it.
OPTIMIZER_DEFAULTS: dict[str, dict[str, Any]] = {
    "sgd": {"lr": 0.1, "momentum": 0.9},
    "adagrad": {"lr": 0.1},
    "rmsprop": {"lr": 0.01, "momentum": 0.0},
    "adam": {"lr": 0.01},
    "adamw": {"lr": 0.01, "weight_decay": 0.01},
}
_OPTIMIZER_CLASSES = {
    "sgd": optim.SGD,
    "adagrad": optim.Adagrad,
    "rmsprop": optim.RMSprop,
    "adam": optim.Adam,
    "adamw": optim.AdamW,
}


@dataclass
class Example:
    """One example, run: what was computed, its tape, and the explanation it ends with.

    title        one line saying what the example is
    description  what ran, in a few lines (shapes, loss, the element explained)
    tape         the recorded forward and backward steps (None for optimizer steps)
    explanation  a GradientExplanation (mlp, conv) or a StepExplanation (optimizers)
    loss         the scalar the backward pass started from
    names        the labels used: {tensor: name}
    """

    title: str
    description: str
    tape: Tape | None
    explanation: GradientExplanation | StepExplanation
    loss: Tensor
    names: dict[Tensor, str] = field(default_factory=dict)

    def text(self, values: bool = True, digits: int = 4) -> str:
        """The whole example: title, what ran, forward and backward tables, the explanation."""
        parts = [f"{self.title}\n{'=' * len(self.title)}", self.description]
        if self.tape is not None:
            begin = self.tape.passes[0].first_step if self.tape.passes else len(self.tape)
            parts.append(_section("Forward pass", self.tape[:begin].table(values, digits=digits)))
            parts.append(
                _section("Backward pass", self.tape.backward_pass().table(values, digits=digits))
            )
        heading = (
            "The optimizer step for one element"
            if isinstance(self.explanation, StepExplanation)
            else "The chain rule for one element"
        )
        parts.append(_section(heading, self.explanation.text(digits=max(digits, 6))))
        return "\n\n".join(parts)

    def __str__(self) -> str:
        return self.text()


# ---------------------------------------------------------------------- the MLP step
def mlp_model(seed: int = 0) -> tuple[nn.Module, Tensor, Tensor]:
    """The MLP of the examples and its batch: Linear(4, 3) -> Tanh -> Linear(3, 2), float64,
    with 2 samples x of 4 features (drawn from the seed) and their classes `target`, [0, 1]."""
    creation.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).double()
    generator = torch.Generator().manual_seed(seed)
    x = Tensor(torch.randn(2, 4, generator=generator, dtype=torch.float64))
    target = Tensor(torch.tensor([0, 1]))
    return model, x, target


def mlp_step(
    seed: int = 0, parameter: str = "0.weight", element: tuple[int, ...] | None = None
) -> Example:
    """One training step's forward and backward through the MLP, with cross-entropy, and
    the chain rule for one element of one parameter (default: 0.weight[0, 0])."""
    model, x, target = mlp_model(seed)
    parameters = dict(model.named_parameters())
    if parameter not in parameters:
        raise ValueError(
            f"mlp_step: no parameter {parameter!r}; the MLP has {', '.join(parameters)}"
        )
    chosen = parameters[parameter]
    element = _element(element, chosen, f"parameter {parameter}")
    names = {tensor: name for name, tensor in parameters.items()}
    names[x] = "x"
    with trace(names=names) as tape:
        loss = F.cross_entropy(model(x), target)
        loss.backward(retain_graph=True)  # keep what backward saved: the chain rule reads it
    names[loss] = "loss"
    explanation = explain_gradient(loss, chosen, element, tape=tape, names=names, max_terms=6)
    description = (
        "model: Linear(4, 3) -> Tanh -> Linear(3, 2), float64, seed "
        f"{seed}\nbatch: x of shape (2, 4), classes {target.tolist()}; "
        "loss = cross_entropy(model(x), target) (nllloss1 in the tables)\n"
        f"explained: d(loss)/d({parameter}{list(element)}), which backward put into "
        f"{parameter}.grad{list(element)} = {chosen.grad.data[element].item():.8g}"
    )
    return Example("One MLP training step", description, tape, explanation, loss, names)


def mlp_graph(seed: int = 0) -> GraphPicture:
    """The graph of the MLP step's loss (the saved tensors kept), ready to show or save."""
    model, x, target = mlp_model(seed)
    loss = F.cross_entropy(model(x), target)
    names = {tensor: name for name, tensor in model.named_parameters()}
    names.update({x: "x", loss: "loss"})
    return draw(loss, names=names)


# ---------------------------------------------------------------------- the conv layer
def conv_step(seed: int = 0, pixel: tuple[int, int] = (1, 1)) -> Example:
    """A Conv2d(1, 2, kernel_size=2) on one 4x4 image, loss = mean(tanh(conv(image))):
    forward and backward, and the gradient of one pixel of the image explained (an inner
    pixel is read by four windows of each of the two filters)."""
    creation.manual_seed(seed)
    conv = nn.Conv2d(1, 2, kernel_size=2).double()
    generator = torch.Generator().manual_seed(seed)
    image = Tensor(torch.randn(1, 1, 4, 4, generator=generator, dtype=torch.float64))
    image.requires_grad_()
    pixel = tuple(pixel)
    if len(pixel) != 2 or not all(0 <= i < 4 for i in pixel):
        raise IndexError(
            f"pixel {list(pixel)} is not in the 4x4 image: give row,column, each from 0 to 3"
        )
    index = (0, 0, *pixel)
    names = {conv.weight: "weight", conv.bias: "bias", image: "image"}
    with trace(names=names) as tape:
        loss = conv(image).tanh().mean()
        loss.backward(retain_graph=True)
    names[loss] = "loss"
    explanation = explain_gradient(loss, image, index, tape=tape, names=names, max_terms=8)
    description = (
        f"layer: Conv2d(1, 2, kernel_size=2), float64, seed {seed}; image of shape "
        "(1, 1, 4, 4); loss = mean(tanh(conv(image))) (mean1 in the tables)\n"
        f"explained: d(loss)/d(image{list(index)}), the sum over the output positions "
        "whose windows read that pixel"
    )
    return Example(
        "One convolution layer, forward and backward", description, tape, explanation, loss, names
    )


# ---------------------------------------------------------------------- optimizer steps
def optimizer_step(
    name: str = "adam",
    seed: int = 0,
    step: int = 3,
    parameter: str = "weight",
    element: tuple[int, ...] | None = None,
    **hyperparameters: Any,
) -> Example:
    """Train Linear(3, 2) on a fixed batch (mean squared error) for `step` steps with the
    optimizer `name` (sgd, adagrad, rmsprop, adam, adamw), and explain the last one for one
    element of `parameter` ("weight" or "bias"). `hyperparameters` go to the optimizer, over
    OPTIMIZER_DEFAULTS."""
    if name not in _OPTIMIZER_CLASSES:
        raise ValueError(f"optimizer_step: unknown optimizer {name!r}; choose from {OPTIMIZERS}")
    if step < 1:
        raise ValueError(f"optimizer_step: step must be 1 or more, got {step}")
    creation.manual_seed(seed)
    layer = nn.Linear(3, 2).double()
    generator = torch.Generator().manual_seed(seed)
    x = Tensor(torch.randn(4, 3, generator=generator, dtype=torch.float64))
    y = Tensor(torch.randn(4, 2, generator=generator, dtype=torch.float64))
    parameters = dict(layer.named_parameters())
    if parameter not in parameters:
        raise ValueError(f"optimizer_step: no parameter {parameter!r}; use weight or bias")
    chosen = parameters[parameter]
    element = _element(element, chosen, f"parameter {parameter}")
    options = {**OPTIMIZER_DEFAULTS[name], **hyperparameters}
    optimizer = _OPTIMIZER_CLASSES[name](layer.parameters(), **options)
    for number in range(1, step + 1):
        optimizer.zero_grad()
        loss = F.mse_loss(layer(x), y)
        loss.backward()
        if number < step:
            optimizer.step()
    with explain_step(optimizer, chosen, element, names=layer) as explanation:
        optimizer.step()
    settings = ", ".join(f"{key}={value}" for key, value in options.items())
    description = (
        f"model: Linear(3, 2), float64, seed {seed}; loss = mse_loss(model(x), y) on a fixed "
        f"batch of 4\noptimizer: {type(optimizer).__name__}({settings}); steps 1 to "
        f"{step - 1} ran plainly, step {step} is explained for {parameter}{list(element)}"
        if step > 1
        else f"model: Linear(3, 2), float64, seed {seed}; loss = mse_loss(model(x), y) on a "
        f"fixed batch of 4\noptimizer: {type(optimizer).__name__}({settings}); its first step "
        f"is explained for {parameter}{list(element)}"
    )
    title = f"One {type(optimizer).__name__} step"
    return Example(title, description, None, explanation, loss, {chosen: parameter})


# ---------------------------------------------------------------------- helpers
def _element(element: tuple[int, ...] | None, tensor: Tensor, what: str) -> tuple[int, ...]:
    """The element index, checked against the tensor's shape (default: all zeros)."""
    shape = tuple(tensor.shape)
    if element is None:
        return (0,) * len(shape)
    element = tuple(element)
    if len(element) != len(shape) or not all(0 <= i < n for i, n in zip(element, shape)):
        raise IndexError(
            f"element {list(element)} is not in {what}, of shape {list(shape)} "
            f"(give {len(shape)} indices, each from 0 to its size - 1)"
        )
    return element


def _section(heading: str, body: str) -> str:
    return f"{heading}\n{'-' * len(heading)}\n{body}"
