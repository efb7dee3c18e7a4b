"""The `minitorch-edu` command (also `python -m minitorch_edu`).

    minitorch-edu train --data digits --model mlp --optimizer adam --epochs 5
    minitorch-edu train --data mnist:/data/mnist --model cnn --device cuda --save run.pt
    minitorch-edu train --resume run.pt

Arguments are checked before anything runs; a bad one is a usage error (exit code 2) that
says what was wrong. Errors met while running (a damaged data file or checkpoint) print one
line and exit with code 1.

Status: `train` parses and validates its options and loads the data; the training loop itself
(`run_training`) is not written yet and says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path
from typing import Any

import torch

from minitorch_edu.checkpoint import CheckpointError
from minitorch_edu.data import (
    IdxFormatError,
    TensorDataset,
    find_mnist_files,
    load_digits,
    load_mnist,
)

PROGRAM = "minitorch-edu"
DATASETS = ("digits", "mnist")
MODELS = ("mlp", "cnn")
OPTIMIZERS = ("sgd", "adagrad", "rmsprop", "adam")
# Learning rate used when --lr is not given: what usually trains these small models well.
DEFAULT_LEARNING_RATES = {"sgd": 0.1, "adagrad": 0.05, "rmsprop": 0.001, "adam": 0.001}
MOMENTUM_OPTIMIZERS = ("sgd", "rmsprop")
# The digits train/test split is fixed, whatever --seed says, so runs with different seeds
# are scored on the same test set.
DIGITS_SPLIT_SEED = 0


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything `train` was asked to do, validated; `to_dict()` goes into checkpoints."""

    data: str  # "digits" or "mnist"
    data_path: str | None  # the MNIST directory
    model: str
    optimizer: str
    lr: float
    momentum: float
    batch_size: int
    epochs: int
    seed: int
    device: str  # "cpu" or "cuda", already resolved from "auto"
    compare_torch: bool
    plot: str | None
    save: str | None
    resume: str | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        names = {field.name for field in dataclasses.fields(cls)}
        if set(values) != names:
            raise ValueError(
                f"TrainConfig.from_dict: expected keys {sorted(names)}, got {sorted(values)}"
            )
        return cls(**values)


# ---------------------------------------------------------------------- parsing
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="minitorch_edu: the machinery under torch.nn and torch.optim, written out "
        "to be read.",
    )
    from minitorch_edu import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser(
        "train",
        help="train a small image classifier (training loop not written yet: this version "
        "validates options and loads the data)",
        description="Train a model on the bundled digits or on MNIST files you have. "
        "Status: options are validated and the data is loaded; the training loop is not "
        "written yet.",
    )
    train.add_argument(
        "--data",
        default="digits",
        metavar="digits|mnist:PATH",
        help="scikit-learn's bundled 8x8 digits, or MNIST IDX files in directory PATH "
        "(train-images-idx3-ubyte[.gz] and friends; nothing is downloaded); default: %(default)s",
    )
    train.add_argument(
        "--model", choices=MODELS, default="mlp", help="network to train (default: %(default)s)"
    )
    train.add_argument(
        "--optimizer", choices=OPTIMIZERS, default="adam", help="optimizer (default: %(default)s)"
    )
    train.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate (default: "
        + ", ".join(f"{name} {rate:g}" for name, rate in DEFAULT_LEARNING_RATES.items())
        + ")",
    )
    train.add_argument(
        "--momentum",
        type=float,
        default=None,
        help="momentum in [0, 1), for sgd and rmsprop (default: 0)",
    )
    train.add_argument(
        "--batch-size", type=int, default=64, help="samples per batch (default: %(default)s)"
    )
    train.add_argument(
        "--epochs", type=int, default=5, help="passes over the training set (default: %(default)s)"
    )
    train.add_argument(
        "--seed", type=int, default=0, help="seed for weights and shuffling (default: %(default)s)"
    )
    train.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where tensors live; auto picks cuda when a GPU is present (default: %(default)s)",
    )
    train.add_argument(
        "--compare-torch",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="train a torch.nn/torch.optim twin alongside and report how far apart they are "
        "(default: on)",
    )
    train.add_argument("--plot", metavar="PATH.png", default=None, help="save learning curves")
    train.add_argument("--save", metavar="PATH", default=None, help="write a checkpoint here")
    train.add_argument("--resume", metavar="PATH", default=None, help="continue from a checkpoint")
    # The command's own parser rides along, so its usage errors show `minitorch-edu train` usage.
    train.set_defaults(handler=_train_command, command_parser=train)
    return parser


def parse_train_config(argv: list[str]) -> TrainConfig:
    """The TrainConfig for `minitorch-edu train ARGV...` (exit 2 on a bad option)."""
    return validate_train_arguments(build_parser().parse_args(["train", *argv]))


def validate_train_arguments(arguments: argparse.Namespace) -> TrainConfig:
    """Check the `train` options and resolve defaults; a usage error (exit 2) on a bad one."""
    error = arguments.command_parser.error
    data, data_path = _parse_data(arguments.data, error)

    lr = DEFAULT_LEARNING_RATES[arguments.optimizer] if arguments.lr is None else arguments.lr
    if not (math.isfinite(lr) and lr > 0):
        error(f"argument --lr: must be a positive number, got {lr}")
    momentum = arguments.momentum
    if momentum is not None and arguments.optimizer not in MOMENTUM_OPTIMIZERS:
        error(
            f"argument --momentum: {arguments.optimizer} has no momentum "
            f"(it applies to {' and '.join(MOMENTUM_OPTIMIZERS)})"
        )
    momentum = 0.0 if momentum is None else momentum
    if not (math.isfinite(momentum) and 0 <= momentum < 1):
        error(f"argument --momentum: must be in [0, 1), got {momentum}")
    for flag, value in (("--batch-size", arguments.batch_size), ("--epochs", arguments.epochs)):
        if value <= 0:
            error(f"argument {flag}: must be a positive integer, got {value}")
    if arguments.seed < 0:
        error(f"argument --seed: must be a non-negative integer, got {arguments.seed}")

    device = arguments.device
    if device == "cuda" and not torch.cuda.is_available():
        error("argument --device: cuda was requested but torch finds no CUDA GPU on this machine")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"

    if arguments.plot is not None:
        if Path(arguments.plot).suffix.lower() != ".png":
            error(f"argument --plot: expected a .png file name, got {arguments.plot!r}")
        _check_parent_directory("--plot", arguments.plot, error)
    if arguments.save is not None:
        if Path(arguments.save).is_dir():
            error(f"argument --save: {arguments.save} is a directory; give a file name")
        _check_parent_directory("--save", arguments.save, error)
    if arguments.resume is not None and not Path(arguments.resume).is_file():
        error(f"argument --resume: checkpoint {arguments.resume} does not exist")

    return TrainConfig(
        data=data,
        data_path=data_path,
        model=arguments.model,
        optimizer=arguments.optimizer,
        lr=lr,
        momentum=momentum,
        batch_size=arguments.batch_size,
        epochs=arguments.epochs,
        seed=arguments.seed,
        device=device,
        compare_torch=arguments.compare_torch,
        plot=arguments.plot,
        save=arguments.save,
        resume=arguments.resume,
    )


def _parse_data(spec: str, error: Any) -> tuple[str, str | None]:
    """'digits' -> ('digits', None); 'mnist:PATH' -> ('mnist', PATH) after finding its files."""
    name, _, path = spec.partition(":")
    if name not in DATASETS:
        error(f"argument --data: unknown data set {spec!r}; choose digits or mnist:PATH")
    if name == "digits":
        if path:
            error(f"argument --data: digits is bundled and takes no path, got {spec!r}")
        return "digits", None
    if not path:
        error("argument --data: mnist needs the directory holding its files: --data mnist:PATH")
    try:
        for split in ("train", "test"):
            find_mnist_files(path, split)
    except (FileNotFoundError, NotADirectoryError) as missing:
        error(f"argument --data: {missing}")
    return "mnist", path


def _check_parent_directory(flag: str, path: str, error: Any) -> None:
    parent = Path(path).parent
    if not parent.is_dir():
        error(f"argument {flag}: directory {parent} does not exist")


# ---------------------------------------------------------------------- running
def load_datasets(config: TrainConfig) -> tuple[TensorDataset, TensorDataset]:
    """(train, test) datasets for `config.data`, normalised with the data set's statistics."""
    if config.data == "digits":
        train = load_digits("train", seed=DIGITS_SPLIT_SEED, normalize=True)
        test = load_digits("test", seed=DIGITS_SPLIT_SEED, normalize=True)
    else:
        train = load_mnist(config.data_path, "train", normalize=True)
        test = load_mnist(config.data_path, "test", normalize=True)
    image_shape = "x".join(str(size) for size in train.tensors[0].shape[1:])
    classes = int(train.tensors[1].max().item()) + 1
    print(
        f"data: {config.data} ({image_shape} images, {classes} classes): "
        f"{len(train)} train / {len(test)} test samples"
    )
    return train, test


def run_training(config: TrainConfig) -> dict[str, Any]:
    """Train as `config` says and return the metrics. Not written yet past loading the data."""
    load_datasets(config)
    raise NotImplementedError(
        "the training loop is not written yet: options were validated and the data loaded, "
        "but no model was trained"
    )


def _train_command(config: TrainConfig) -> int:
    run_training(config)
    return 0


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    config = validate_train_arguments(arguments)
    try:
        return arguments.handler(config)
    except (FileNotFoundError, IdxFormatError, CheckpointError, NotImplementedError) as failure:
        print(f"{PROGRAM}: error: {failure}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
