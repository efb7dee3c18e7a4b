"""`minitorch-edu explore`: record training steps and write the explorer page.

    minitorch-edu explore                                  LeNet, Adam, 3 steps of 8 digits
    minitorch-edu explore --model mlp --optimizer sgd --steps 5 --output mlp.html
    minitorch-edu explore --element conv1.weight[0,0,2,2] --element relu1[0,2,3,3]
    minitorch-edu explore --script my_step.py --output mine.html

With --script, FILE.py is run (as a module named `minitorch_edu_explore`, so an
`if __name__ == "__main__":` block in it does not run) and must define `model`, `optimizer`,
`loss_fn`, and either `inputs` and `targets` (one batch, used for every step) or `batches`
(an iterable of (inputs, targets), one per step). It may define `elements` as well, as for
`mt.study.explore`. --model, --optimizer, --lr, --momentum, --batch and --seed then do not
apply.

Nothing heavy is imported until the command runs: `--help` answers at once.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

PROGRAM = "minitorch-edu"
MODELS = ("mlp", "cnn")
OPTIMIZERS = ("sgd", "adagrad", "rmsprop", "adam")
SCRIPT_NAMES = ("model", "optimizer", "loss_fn")
ELEMENT = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*\[\s*(\d+(?:\s*,\s*\d+)*)?\s*\]\s*$")


def add_explore_command(commands: Any) -> argparse.ArgumentParser:
    """Add `explore` to the main command's subparsers; it sets `handler` and `command_parser`."""
    explore = commands.add_parser(
        "explore",
        help="record training steps and write a page that steps through them in the browser",
        description="Record whole training steps (forward, loss, backward, every optimizer "
        "update) of a LeNet or an MLP on the bundled 8x8 digits, or of your own model "
        "(--script), and write one self-contained HTML page that steps through them: the "
        "graph, every op with its numbers, the chain rule for any element you click. It "
        "opens offline by double-click.",
        epilog="--script FILE.py: the file must define model, optimizer, loss_fn, and inputs "
        "and targets (or batches, one (inputs, targets) per step); it may define elements "
        "(a dict {parameter or activation name: [index, ...]}). It runs as a module named "
        "minitorch_edu_explore, so its `if __name__ == '__main__':` block does not run.",
    )
    explore.add_argument("--model", choices=MODELS, default="cnn", help="default: %(default)s")
    explore.add_argument(
        "--optimizer", choices=OPTIMIZERS, default="adam", help="default: %(default)s"
    )
    explore.add_argument(
        "--lr", type=float, default=None, help="learning rate (default: as `train` uses)"
    )
    explore.add_argument(
        "--momentum", type=float, default=None, help="for sgd and rmsprop (default: as `train`)"
    )
    explore.add_argument(
        "--batch", type=int, default=8, help="samples per step (default: %(default)s)"
    )
    explore.add_argument(
        "--steps", type=int, default=3, help="training steps to record (default: %(default)s)"
    )
    explore.add_argument(
        "--seed", type=int, default=0, help="seed of the weights and batches (default: 0)"
    )
    explore.add_argument(
        "--element",
        action="append",
        default=[],
        metavar="NAME[I,J,...]",
        help="an element to explain term by term as well as the largest gradients: a "
        "parameter's (conv1.weight[0,0,2,2]) or an activation's, named as the page shows it "
        "(relu1[0,2,3,3], maxpool2d1[...], linear2[...]); repeat for more",
    )
    explore.add_argument(
        "--script",
        metavar="FILE.py",
        default=None,
        help="record your own model's training step (see below)",
    )
    explore.add_argument(
        "--output",
        metavar="PAGE.html",
        default="explorer.html",
        help="where to write the page (default: %(default)s)",
    )
    explore.set_defaults(handler=run_explore_command, command_parser=explore)
    return explore


def run_explore_command(arguments: argparse.Namespace) -> int:
    """Check the options, record, write the page and say how to open it."""
    error = arguments.command_parser.error
    if arguments.steps < 1:
        error(f"argument --steps: must be a positive integer, got {arguments.steps}")
    if arguments.batch < 1:
        error(f"argument --batch: must be a positive integer, got {arguments.batch}")
    if arguments.seed < 0:
        error(f"argument --seed: must be a non-negative integer, got {arguments.seed}")
    if arguments.lr is not None and not arguments.lr > 0:
        error(f"argument --lr: must be a positive number, got {arguments.lr}")
    if arguments.momentum is not None:
        if arguments.optimizer not in ("sgd", "rmsprop"):
            error(f"argument --momentum: {arguments.optimizer} has no momentum (sgd, rmsprop do)")
        if not 0 <= arguments.momentum < 1:
            error(f"argument --momentum: must be in [0, 1), got {arguments.momentum}")
    elements = parse_elements(arguments.element, error)
    output = Path(arguments.output)
    if output.is_dir():
        error(f"argument --output: {output} is a directory; give a file name such as page.html")
    if not (output.parent if str(output.parent) else Path(".")).is_dir():
        error(f"argument --output: directory {output.parent} does not exist")
    if arguments.script is not None and not Path(arguments.script).is_file():
        error(f"argument --script: {arguments.script} is not a file")

    from minitorch_edu.study import exploration as exploring  # imports torch

    try:
        return _record(arguments, elements, output, exploring)
    except exploring.ExploreError as problem:
        print(f"{PROGRAM}: error: {problem}", file=sys.stderr)
        return 1


def _record(arguments: argparse.Namespace, elements: dict, output: Path, exploring: Any) -> int:
    started = time.perf_counter()
    if arguments.script is not None:
        setup = exploring.load_script(arguments.script)
        what = f"{arguments.script}"
    else:
        setup = exploring.digits_setup(
            arguments.model,
            arguments.optimizer,
            batch=arguments.batch,
            steps=arguments.steps,
            seed=arguments.seed,
            lr=arguments.lr,
            momentum=arguments.momentum,
        )
        model = "LeNet" if arguments.model == "cnn" else "MLP"
        what = f"{model} on the digits, {arguments.optimizer}, batch {arguments.batch}"
    setup.elements = {**setup.elements, **elements}
    exploration = exploring.explore(
        setup.model,
        setup.loss_fn,
        setup.optimizer,
        setup.inputs,
        setup.targets,
        steps=arguments.steps,
        batches=setup.batches,
        elements=setup.elements,
        title=setup.title or what,
    )
    path = exploration.save_html(output)
    seconds = time.perf_counter() - started
    size = path.stat().st_size / 2**20
    steps = len(exploration.losses)
    print(
        f"wrote {path} ({size:.1f} MB): {steps} training step{'s' * (steps != 1)} of {what}, "
        f"{len(exploration.timeline)} steps on the timeline, recorded in {seconds:.1f} s"
    )
    print(
        f"open it in a browser: {path.resolve().as_uri()}  (double-click works: no server, "
        "no network; ← and → step through it)"
    )
    return 0


def parse_elements(texts: list[str], error: Any) -> dict[str, list[tuple[int, ...]]]:
    """['conv1.weight[0,0,2,2]', 'fc3.bias[3]'] -> {'conv1.weight': [(0, 0, 2, 2)], ...}."""
    elements: dict[str, list[tuple[int, ...]]] = {}
    for text in texts:
        match = ELEMENT.match(text)
        if match is None or match.group(2) is None:
            error(
                f"argument --element: expected NAME[I,J,...] such as conv1.weight[0,0,2,2], "
                f"got {text!r}"
            )
        index = tuple(int(part) for part in match.group(2).split(","))
        elements.setdefault(match.group(1), []).append(index)
    return elements
