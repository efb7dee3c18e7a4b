"""`minitorch-edu explain`: print a traced step of a built-in example, no code to write.

    minitorch-edu explain mlp                        # one MLP training step, traced
    minitorch-edu explain mlp --parameter 2.weight --element 1,0 --seed 3
    minitorch-edu explain conv --pixel 2,1           # a conv layer; one pixel's gradient
    minitorch-edu explain optimizer --name adam --step 3 --element 0,2
    minitorch-edu explain graph --output mlp --format svg
    minitorch-edu explain step --model cnn --batch 64   # a real training step (step_cli.py)

The main command adds this one with `add_explain_command(subparsers)`; it also runs alone:
`python -m minitorch_edu.study.cli explain mlp`. The examples are those of
`minitorch_edu.study.examples`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Parsing imports no torch (so `--help` answers at once): the examples, which need it, are
# imported by the function that runs them.
if TYPE_CHECKING:
    from minitorch_edu.study import examples

PROGRAM = "minitorch-edu"
PICTURE_FORMATS = ("png", "svg")
# The optimizers of `explain optimizer`: minitorch_edu.study.examples.OPTIMIZERS, written out
# here so that parsing needs no torch (a test checks the two agree).
OPTIMIZER_EXAMPLES = ("sgd", "adagrad", "rmsprop", "adam", "adamw")


def add_explain_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add `explain` to a command's subparsers (from `parser.add_subparsers()`).

    The parsed arguments carry `handler` (call it with them: it prints the example and
    returns the exit status) and `command_parser` (the `explain` parser).
    """
    explain = subparsers.add_parser(
        "explain",
        help="print one traced step of a built-in example (mlp, conv, optimizer, graph) or "
        "of a real training step (step)",
        description="Run a small built-in example and print what happened, with the numbers: "
        "every op of the forward and backward pass, the chain rule for one element, or one "
        "optimizer step written out.",
    )
    examples_parsers = explain.add_subparsers(dest="example", metavar="EXAMPLE", required=True)

    mlp = examples_parsers.add_parser(
        "mlp",
        help="one MLP training step: forward and backward tables, the chain rule for one weight",
        description="Linear(4, 3) -> Tanh -> Linear(3, 2) on a batch of 2, cross-entropy: the "
        "forward table, the backward table (with the gradient delivered to each parameter), "
        "and the chain rule for one element of one parameter.",
    )
    mlp.add_argument(
        "--parameter",
        choices=("0.weight", "0.bias", "2.weight", "2.bias"),
        default="0.weight",
        help="the parameter whose gradient is explained (default: %(default)s)",
    )
    _element_option(mlp, "--element", "the element of the parameter, e.g. 2,3 (default: 0,0)")

    conv = examples_parsers.add_parser(
        "conv",
        help="one conv layer forward and backward, with a pixel's gradient explained",
        description="Conv2d(1, 2, kernel_size=2) on one 4x4 image, loss = mean(tanh(conv)): "
        "the forward and backward tables, and the gradient of one image pixel as the sum "
        "over the windows that read it.",
    )
    _element_option(conv, "--pixel", "row,column of the 4x4 image (default: 1,1)", "1,1")

    optimizer = examples_parsers.add_parser(
        "optimizer",
        help="one optimizer step written out for one weight",
        description="Train Linear(3, 2) on a fixed batch for a few steps and write the last "
        "step out for one element: the optimizer's update rule with that step's gradient, "
        "state and hyperparameters, checked against the real step.",
    )
    optimizer.add_argument(
        "--name", choices=OPTIMIZER_EXAMPLES, default="adam", help="default: %(default)s"
    )
    optimizer.add_argument(
        "--step", type=int, default=3, help="which step to explain, from 1 (default: %(default)s)"
    )
    optimizer.add_argument(
        "--parameter", choices=("weight", "bias"), default="weight", help="default: %(default)s"
    )
    _element_option(optimizer, "--element", "the element of the parameter (default: 0,0)")
    optimizer.add_argument("--lr", type=float, default=None, help="learning rate")
    optimizer.add_argument(
        "--momentum", type=float, default=None, help="momentum, for sgd and rmsprop"
    )
    optimizer.add_argument("--weight-decay", type=float, default=None, help="weight decay")

    graph = examples_parsers.add_parser(
        "graph",
        help="write the graph of the MLP step: DOT always, PNG/SVG when Graphviz is there",
        description="Write the computation graph of the MLP step as Graphviz DOT text "
        "(PATH.dot) and, when Graphviz's `dot` program is installed, as a picture.",
    )
    graph.add_argument(
        "--output",
        default="mlp_step",
        metavar="PATH",
        help="file name without extension (default: %(default)s)",
    )
    graph.add_argument(
        "--format", choices=PICTURE_FORMATS, default="png", help="picture format (default: png)"
    )

    from minitorch_edu.study.step_cli import add_step_command

    add_step_command(examples_parsers)

    for parser in (mlp, conv, optimizer, graph):
        parser.add_argument(
            "--seed", type=int, default=0, help="seed of the weights and data (default: 0)"
        )
        parser.set_defaults(example_parser=parser)
    for parser in (mlp, conv):
        parser.add_argument(
            "--no-values",
            dest="values",
            action="store_false",
            help="print the tables without the numbers of each tensor",
        )
    explain.set_defaults(handler=run_explain_command, command_parser=explain)
    return explain


def run_explain_command(arguments: argparse.Namespace) -> int:
    """Run the example `arguments` name and print it; returns the exit status.

    The options are checked before the examples (and torch) are imported.
    """
    error = arguments.example_parser.error
    if arguments.seed < 0:
        error(f"argument --seed: must be a non-negative integer, got {arguments.seed}")
    try:
        if arguments.example in ("mlp", "conv"):
            from minitorch_edu.study import examples
        if arguments.example == "mlp":
            run = examples.mlp_step(arguments.seed, arguments.parameter, arguments.element)
            print(run.text(values=arguments.values))
        elif arguments.example == "conv":
            run = examples.conv_step(arguments.seed, arguments.pixel)
            print(run.text(values=arguments.values))
        elif arguments.example == "step":
            from minitorch_edu.study.step_cli import run_step_command

            return run_step_command(arguments)
        elif arguments.example == "optimizer":
            print(_optimizer_example(arguments, error).text())
        else:
            return _write_graph(arguments)
    except IndexError as bad_index:  # an element outside the tensor: a usage error
        error(str(bad_index))
    return 0


def _optimizer_example(arguments: argparse.Namespace, error: Any) -> examples.Example:
    if arguments.step < 1:
        error(f"argument --step: must be 1 or more, got {arguments.step}")
    options = {}
    if arguments.lr is not None:
        if not arguments.lr > 0:
            error(f"argument --lr: must be a positive number, got {arguments.lr}")
        options["lr"] = arguments.lr
    if arguments.momentum is not None:
        if arguments.name not in ("sgd", "rmsprop"):
            error(f"argument --momentum: {arguments.name} has no momentum (sgd and rmsprop do)")
        if not 0 <= arguments.momentum < 1:
            error(f"argument --momentum: must be in [0, 1), got {arguments.momentum}")
        options["momentum"] = arguments.momentum
    if arguments.weight_decay is not None:
        if not arguments.weight_decay >= 0:
            error(f"argument --weight-decay: must be 0 or more, got {arguments.weight_decay}")
        options["weight_decay"] = arguments.weight_decay
    from minitorch_edu.study import examples

    return examples.optimizer_step(
        arguments.name,
        arguments.seed,
        arguments.step,
        arguments.parameter,
        arguments.element,
        **options,
    )


def _write_graph(arguments: argparse.Namespace) -> int:
    from minitorch_edu.study import examples
    from minitorch_edu.study.graph import INSTALL_HELP, GraphvizNotFoundError

    picture = examples.mlp_graph(arguments.seed)
    base = Path(arguments.output)
    if base.suffix.lower() in (".dot", ".gv", *(f".{kind}" for kind in PICTURE_FORMATS)):
        base = base.with_suffix("")
    if not base.parent.is_dir():
        arguments.example_parser.error(f"argument --output: directory {base.parent} does not exist")
    dot_path = picture.save(base.with_name(base.name + ".dot"))
    print(f"wrote {dot_path} (Graphviz DOT text of the MLP step's graph)")
    picture_path = base.with_name(f"{base.name}.{arguments.format}")
    try:
        picture.save(picture_path)
    except GraphvizNotFoundError:
        print(
            f"no {arguments.format.upper()} drawn: Graphviz's `dot` is not installed. "
            f"{INSTALL_HELP}"
        )
        return 0
    print(f"wrote {picture_path}")
    return 0


def _element_option(
    parser: argparse.ArgumentParser, flag: str, help: str, default: str | None = None
) -> None:
    parser.add_argument(
        flag,
        type=_indices,
        default=None if default is None else _indices(default),
        metavar="I,J",
        help=help,
    )


def _indices(text: str) -> tuple[int, ...]:
    """'2,3' -> (2, 3); '4' -> (4,)."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected whole numbers separated by commas, like 2,3; got {text!r}"
        ) from None
    if any(value < 0 for value in values):
        raise argparse.ArgumentTypeError(f"indices must be 0 or more, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    """A parser with `explain` as its one command (how this module runs on its own)."""
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description="minitorch_edu's study examples, traced and explained."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_explain_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    return arguments.handler(arguments)


if __name__ == "__main__":
    sys.exit(main())
