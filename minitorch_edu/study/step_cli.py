"""`minitorch-edu explain step`: one real training step on the digits, traced and explained.

    minitorch-edu explain step --model cnn --batch 64
    minitorch-edu explain step --model mlp --batch 16 --element fc1.weight[3,10] --sample 2

The model is the one `minitorch-edu train` trains (the MLP or LeNet of models.py), in
float64, on the first `--batch` digits of a seeded shuffle of the training split. It
prints the forward and backward tables of the step and the chain rule for one element of
one parameter, grouped by sample. Torch and the heavy modules are imported by the handler
only, so that `--help` answers at once.
"""

from __future__ import annotations

import argparse
import re
import textwrap
from typing import Any

ELEMENT = re.compile(r"^(?P<name>[\w.]+)(?:\[(?P<index>[\d,\s]*)\])?$")
WIDTH = 100


def add_step_command(examples_parsers: Any) -> argparse.ArgumentParser:
    """Add `step` to the `explain` command's examples."""
    step = examples_parsers.add_parser(
        "step",
        help="a real training step (MLP or LeNet on the digits): trace and chain rule",
        description="One training step of the MLP or LeNet that `minitorch-edu train` trains, "
        "in float64 on a batch of the bundled 8x8 digits: the forward and backward tables "
        "(every op, its formula and its numbers) and the chain rule for one element of one "
        "parameter, its terms grouped by sample.",
    )
    step.add_argument("--model", choices=("mlp", "cnn"), default="cnn", help="default: cnn")
    step.add_argument("--batch", type=int, default=16, help="samples in the batch (default: 16)")
    step.add_argument(
        "--sample",
        type=int,
        default=None,
        metavar="I",
        help="also list the terms of sample I of the batch in the chain rule",
    )
    step.add_argument(
        "--print-limit",
        type=int,
        default=16,
        metavar="K",
        help="tensors with at most K elements print whole, larger ones as a summary (default: 16)",
    )
    step.add_argument(
        "--element",
        default=None,
        metavar="NAME[INDEX]",
        help="the parameter element to explain, e.g. conv1.weight[0,0,2,2] or fc1.bias[3]; "
        "default: the first layer's weight element with the largest gradient",
    )
    step.add_argument(
        "--max-expansions",
        type=int,
        default=12,
        metavar="M",
        help="upstream gradients to work out, the most important first (default: 12)",
    )
    step.add_argument(
        "--no-values",
        dest="values",
        action="store_false",
        help="print the tables without the numbers of each tensor",
    )
    step.add_argument("--seed", type=int, default=0, help="seed of the weights and the batch")
    step.set_defaults(example_parser=step)
    return step


def parse_element(text: str) -> tuple[str, tuple[int, ...] | None]:
    """'conv1.weight[0, 0, 2, 2]' -> ('conv1.weight', (0, 0, 2, 2)); 'fc1.bias' -> (.., None)."""
    match = ELEMENT.match(text.strip())
    if match is None:
        raise ValueError(
            f"expected NAME or NAME[INDEX] such as conv1.weight[0,0,2,2], got {text!r}"
        )
    index = match["index"]
    if index is None:
        return match["name"], None
    try:
        return match["name"], tuple(int(part) for part in index.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"the index of {text!r} must be whole numbers") from None


def run_step_command(arguments: argparse.Namespace) -> int:
    error = arguments.example_parser.error
    if arguments.batch < 1:
        error(f"argument --batch: must be 1 or more, got {arguments.batch}")
    if arguments.print_limit < 0:
        error(f"argument --print-limit: must be 0 or more, got {arguments.print_limit}")
    if arguments.max_expansions < 0:
        error(f"argument --max-expansions: must be 0 or more, got {arguments.max_expansions}")
    if arguments.seed < 0:
        error(f"argument --seed: must be a non-negative integer, got {arguments.seed}")
    if arguments.sample is not None and not 0 <= arguments.sample < arguments.batch:
        error(f"argument --sample: must be in [0, {arguments.batch}) for --batch {arguments.batch}")
    chosen = None
    if arguments.element is not None:
        try:
            chosen = parse_element(arguments.element)
        except ValueError as problem:
            error(f"argument --element: {problem}")
    try:
        print(training_step_text(arguments, chosen))
    except (IndexError, KeyError) as problem:
        error(f"argument --element: {problem.args[0]}")
    return 0


def training_step_text(arguments: argparse.Namespace, chosen: Any) -> str:
    """The whole printout: what ran, the forward and backward tables, the chain rule."""
    import torch

    import minitorch_edu.nn.functional as F
    from minitorch_edu import creation, models
    from minitorch_edu.autograd.tensor import Tensor
    from minitorch_edu.data.digits import load_digits
    from minitorch_edu.study.chain import explain_gradient
    from minitorch_edu.study.trace import trace

    train = load_digits("train", seed=0, normalize=True)
    images, labels = train.tensors
    if arguments.batch > len(images):
        raise IndexError(f"--batch {arguments.batch} is more than the {len(images)} digits")
    generator = torch.Generator().manual_seed(arguments.seed)
    picked = torch.randperm(len(images), generator=generator)[: arguments.batch]
    creation.manual_seed(arguments.seed)
    if arguments.model == "cnn":
        model = models.lenet(1, 8, 10).double()
        title = "LeNet (conv 5x5 -> 6, pool, conv 5x5 -> 16, pool, 64 -> 120 -> 84 -> 10)"
    else:
        model = models.mlp(64, 10).double()
        title = "MLP (64 -> 256 -> 128 -> 64 -> 10, ReLU between)"
    x = Tensor(images[picked].double())
    target = labels[picked]
    parameters = dict(model.named_parameters())
    names: dict[Any, str] = {tensor: name for name, tensor in parameters.items()}
    names[x] = "images"
    with trace(names=names, print_limit=arguments.print_limit) as tape:
        loss = F.cross_entropy(model(x), target)
        loss.backward(retain_graph=True)  # keep what backward saved: the chain rule reads it
    names[loss] = "loss"
    name, index = _element(chosen, parameters)
    explanation = explain_gradient(
        loss,
        parameters[name],
        index,
        tape=tape,
        names=names,
        sample=arguments.sample,
        max_expansions=arguments.max_expansions,
    )
    begin = tape.passes[0].first_step
    limit = arguments.print_limit
    header = [
        f"One training step of the {title}",
        f"float64, seed {arguments.seed}; a batch of {arguments.batch} digits (8x8 images, "
        f"classes {target.tolist()[:12]}{' ...' if arguments.batch > 12 else ''})",
        f"loss = cross_entropy(model(images), classes) = {loss.item():.8g}",
        f"explained: d(loss)/d({name}{list(index)}),",
        f"           the number backward puts into {name}.grad{list(index)}",
    ]
    parts = [
        "\n".join(header),
        _section(
            "Forward pass",
            tape[:begin].table(arguments.values, print_limit=limit, width=WIDTH),
        ),
        _section(
            "Backward pass",
            tape.backward_pass().table(arguments.values, print_limit=limit, width=WIDTH),
        ),
        _section("The chain rule for one element", explanation.text(width=WIDTH)),
    ]
    return "\n".join(_fit(line, WIDTH) for line in "\n\n".join(parts).split("\n"))


def _fit(line: str, width: int) -> str:
    """A line longer than `width` wrapped at spaces, continued with a hanging indent."""
    if len(line) <= width:
        return line
    indent = " " * (len(line) - len(line.lstrip()) + 4)
    return textwrap.fill(
        line, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False
    )


def _element(chosen: Any, parameters: dict) -> tuple[str, tuple[int, ...]]:
    if chosen is None:  # the first weight's element with the largest gradient
        name = next(name for name in parameters if name.endswith("weight"))
        grad = parameters[name].grad.data
        flat = int(grad.abs().argmax())
        index = []
        for size in reversed(grad.shape):
            index.append(flat % size)
            flat //= size
        return name, tuple(reversed(index))
    name, index = chosen
    if name not in parameters:
        raise KeyError(f"no parameter {name!r}; the model has {', '.join(parameters)}")
    shape = tuple(parameters[name].shape)
    if index is None:
        index = (0,) * len(shape)
    if len(index) != len(shape) or not all(0 <= i < n for i, n in zip(index, shape)):
        raise IndexError(
            f"{name}{list(index)} is not an element of {name}, of shape {list(shape)} "
            f"(give {len(shape)} indices, each from 0 to its size - 1)"
        )
    return name, index


def _section(heading: str, body: str) -> str:
    return f"{heading}\n{'-' * len(heading)}\n{body}"
