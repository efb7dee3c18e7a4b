"""The `minitorch-edu` command (also `python -m minitorch_edu`).

    minitorch-edu train                       MLP on the bundled digits, SGD with momentum,
                                              compared step by step with torch
    minitorch-edu train --model cnn --optimizer adam --epochs 5 --plot curves.png
    minitorch-edu train --data mnist:/data/mnist --model cnn --device cuda --save run.pt
    minitorch-edu train --resume run.pt --epochs 20
    minitorch-edu train --nproc 4 --zero             4 processes, data parallel (torchrun)
    minitorch-edu explore --model cnn --steps 3   a page that steps through training steps

Arguments are checked before anything runs; a bad one is a usage error (exit code 2) that
says what was wrong. Errors met while running (a damaged data file or checkpoint, a checkpoint
that cannot continue this run) print one line and exit with code 1.

Each subcommand is added to the parser by a function `add_<name>_command(commands)` that builds
its sub-parser and sets `handler`, a function(arguments) -> exit code that `main` calls.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from minitorch_edu.explore_cli import add_explore_command
from minitorch_edu.study.cli import add_explain_command

# Nothing above imports torch: `--help` and usage errors answer at once. torch and the
# modules built on it are imported inside the functions that run a command.
if TYPE_CHECKING:
    from minitorch_edu.data import TensorDataset
    from minitorch_edu.train import TrainingResult

PROGRAM = "minitorch-edu"
DATASETS = ("digits", "mnist")
MODELS = ("mlp", "cnn")
OPTIMIZERS = ("sgd", "adagrad", "rmsprop", "adam")
# What `minitorch-edu train` does when an option is left out (and no checkpoint is resumed).
# These defaults reach over 97% test accuracy on the digits in about ten seconds.
TRAIN_DEFAULTS = {
    "data": "digits",
    "model": "mlp",
    "optimizer": "sgd",
    "batch_size": 64,
    "epochs": 10,
    "seed": 0,
    "device": "auto",
    "dtype": "float32",
    "compare_torch": True,
}
# Learning rate used when --lr is not given: what trains these small models well.
DEFAULT_LEARNING_RATES = {"sgd": 0.02, "adagrad": 0.05, "rmsprop": 0.001, "adam": 0.001}
MOMENTUM_OPTIMIZERS = ("sgd", "rmsprop")
DEFAULT_MOMENTUM = {"sgd": 0.9, "rmsprop": 0.0}
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
    momentum: float  # 0 for the optimizers without momentum
    batch_size: int
    epochs: int  # the total to reach, counting the epochs before a resume
    seed: int
    device: str  # "cpu" or "cuda", already resolved from "auto"
    dtype: str  # "float32" or "float64": the parameters' and images' dtype
    compare_torch: bool
    plot: str | None
    save: str | None
    resume: str | None
    # Data parallelism (minitorch_edu/distributed_train.py). sampler: "loader" (one process,
    # the DataLoader shuffles) or "distributed" (DistributedSampler's order, any number of
    # processes); nproc: how many processes this run has; zero: shard the optimizer state.
    sampler: str = "loader"
    nproc: int = 1
    zero: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        names = {field.name for field in dataclasses.fields(cls)}
        # Checkpoints written before the data-parallel fields existed lack them.
        defaults = {"sampler": "loader", "nproc": 1, "zero": False}
        values = {**{k: v for k, v in defaults.items() if k not in values}, **values}
        if set(values) != names:
            raise ValueError(
                f"TrainConfig.from_dict: expected keys {sorted(names)}, got {sorted(values)}"
            )
        for field in dataclasses.fields(cls):  # annotations are strings: "float", "str | None"
            value = values[field.name]
            kinds = {"str": (str,), "float": (float, int), "int": (int,), "bool": (bool,)}
            allowed = kinds[field.type.split(" | ")[0]]
            if (value is None and "None" in field.type) or (
                isinstance(value, allowed) and (field.type == "bool" or type(value) is not bool)
            ):
                continue
            raise TypeError(
                f"TrainConfig.from_dict: {field.name} should be {field.type}, got {value!r}"
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
    add_train_command(commands)
    add_explain_command(commands)
    add_explore_command(commands)
    return parser


def add_train_command(commands: Any) -> None:
    """The `train` subcommand. Options that shape training default to None here, so that a
    resumed run can tell the options given from those left out; `validate_train_arguments`
    fills in TRAIN_DEFAULTS (or the checkpoint's values)."""
    defaults = TRAIN_DEFAULTS
    train = commands.add_parser(
        "train",
        help="train an image classifier, side by side with its torch twin",
        description="Train an MLP or a LeNet CNN on the bundled 8x8 digits or on MNIST files "
        "you have, with a progress bar, per-epoch loss and test accuracy, and (by default) "
        "the same network trained by torch.nn/torch.optim from the same weights on the same "
        "batches, to show that both compute the same thing. With no options: "
        f"{defaults['model']} on {defaults['data']}, sgd with momentum "
        f"{DEFAULT_MOMENTUM['sgd']:g}, {defaults['epochs']} epochs.",
        epilog="Resuming: --resume PATH continues a run saved with --save. Options left out "
        "are taken from the checkpoint; options given must equal the checkpoint's, except "
        "--epochs (the total to reach), --save and --plot. The resumed run computes exactly "
        "what the uninterrupted run would have.",
    )
    train.add_argument(
        "--data",
        default=None,
        metavar="digits|mnist:PATH",
        help="scikit-learn's bundled 8x8 digits, or MNIST IDX files in directory PATH "
        "(train-images-idx3-ubyte[.gz] and friends; nothing is downloaded); "
        f"default: {defaults['data']}",
    )
    train.add_argument(
        "--model",
        choices=MODELS,
        default=None,
        help=f"network to train: a 4-layer MLP or LeNet (default: {defaults['model']})",
    )
    train.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        default=None,
        help=f"optimizer (default: {defaults['optimizer']})",
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
        help="momentum in [0, 1), for sgd and rmsprop (default: "
        + ", ".join(f"{name} {value:g}" for name, value in DEFAULT_MOMENTUM.items())
        + ")",
    )
    train.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help=f"samples per batch (default: {defaults['batch_size']})",
    )
    train.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="passes over the training set; with --resume, the total to reach "
        f"(default: {defaults['epochs']}, or the checkpoint's)",
    )
    train.add_argument(
        "--seed",
        type=int,
        default=None,
        help=f"seed for the initial weights and the batch order (default: {defaults['seed']})",
    )
    train.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default=None,
        help="where tensors live; auto picks cuda when a GPU is present "
        f"(default: {defaults['device']})",
    )
    train.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        default=None,
        help="floating-point type of the weights and images; float64 shows how closely the "
        f"two libraries agree when rounding is tiny (default: {defaults['dtype']})",
    )
    train.add_argument(
        "--compare-torch",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train the torch.nn/torch.optim twin alongside, from the same weights on the same "
        "batches, and report how far apart the losses are and each side's time per step "
        "(default: on)",
    )
    train.add_argument(
        "--plot", metavar="PATH.png", default=None, help="save loss and accuracy curves as a PNG"
    )
    train.add_argument(
        "--save",
        metavar="PATH",
        default=None,
        help="write a checkpoint here after every epoch (atomically: an interrupted write "
        "leaves the previous checkpoint whole)",
    )
    train.add_argument(
        "--resume", metavar="PATH", default=None, help="continue the run saved in this checkpoint"
    )
    train.add_argument(
        "--nproc",
        type=int,
        default=None,
        metavar="N",
        help="train data parallel with N processes on this machine, started through torch's "
        "launcher (torchrun): gloo on CPU, NCCL with one GPU per process on CUDA; --batch-size "
        "is the global batch, split evenly; rank 0 prints and saves (a checkpoint resumes with "
        "any number of processes). Under torchrun, train runs as one of its processes by itself",
    )
    train.add_argument(
        "--zero",
        action="store_true",
        help="with --nproc: shard the optimizer state over the processes (ZeRO-1, "
        "ZeroRedundancyOptimizer); the same numbers, less memory per process",
    )
    train.add_argument(
        "--master-port",
        type=int,
        default=None,
        metavar="PORT",
        help="with --nproc: the rendezvous port on 127.0.0.1 (default: a free one)",
    )
    # The command's own parser rides along, so its usage errors show `minitorch-edu train` usage.
    train.set_defaults(handler=_train_command, command_parser=train)


def parse_train_config(argv: list[str]) -> TrainConfig:
    """The TrainConfig for `minitorch-edu train ARGV...` (exit 2 on a bad option)."""
    return validate_train_arguments(build_parser().parse_args(["train", *argv]))


def validate_train_arguments(arguments: argparse.Namespace) -> TrainConfig:
    """Check the `train` options and fill in the ones left out; a usage error (exit 2) on a bad
    one. With --resume the checkpoint is read (CheckpointError if it is not ours) and supplies
    the options left out."""
    error = arguments.command_parser.error
    given = {
        name: getattr(arguments, name)
        for name in (*TRAIN_DEFAULTS, "lr", "momentum")
        if getattr(arguments, name) is not None
    }
    saved, epochs_done = None, 0
    if arguments.resume is not None:
        saved, epochs_done = _saved_config(arguments.resume, error)
        # The checkpoint's values, in the form the command line gives them.
        fallback = {name: saved[name] for name in (*TRAIN_DEFAULTS, "lr", "momentum")}
        fallback["data"] = saved["data"] + (f":{saved['data_path']}" if saved["data_path"] else "")
    else:
        fallback = dict(TRAIN_DEFAULTS)
    values = {**fallback, **given}

    data, data_path = _parse_data(values["data"], error)
    optimizer = values["optimizer"]
    if "momentum" in given and optimizer not in MOMENTUM_OPTIMIZERS:
        error(
            f"argument --momentum: {optimizer} has no momentum "
            f"(it applies to {' and '.join(MOMENTUM_OPTIMIZERS)})"
        )
    values.setdefault("lr", DEFAULT_LEARNING_RATES[optimizer])  # defaults for the optimizer
    values.setdefault("momentum", DEFAULT_MOMENTUM.get(optimizer, 0.0))
    lr, momentum = values["lr"], values["momentum"]
    if not (math.isfinite(lr) and lr > 0):
        error(f"argument --lr: must be a positive number, got {lr}")
    if not (math.isfinite(momentum) and 0 <= momentum < 1):
        error(f"argument --momentum: must be in [0, 1), got {momentum}")
    for flag, name in (("--batch-size", "batch_size"), ("--epochs", "epochs")):
        if values[name] <= 0:
            error(f"argument {flag}: must be a positive integer, got {values[name]}")
    if values["seed"] < 0:
        error(f"argument --seed: must be a non-negative integer, got {values['seed']}")
    if saved is not None and "device" not in given and not _device_available(saved["device"]):
        error(
            f"argument --resume: {arguments.resume} was trained on {saved['device']}, and torch "
            "finds no CUDA GPU here; a resumed run continues on the device it started on"
        )
    if arguments.plot is not None:
        if Path(arguments.plot).suffix.lower() != ".png":
            error(f"argument --plot: expected a .png file name, got {arguments.plot!r}")
        _check_parent_directory("--plot", arguments.plot, error)
    if arguments.save is not None:
        if Path(arguments.save).is_dir():
            error(f"argument --save: {arguments.save} is a directory; give a file name")
        _check_parent_directory("--save", arguments.save, error)
    sampler, nproc = _data_parallel_settings(arguments, saved, values["batch_size"], error)
    device = _resolve_device(values["device"], error)  # imports torch: the last check
    if nproc > 1 and device == "cuda" and "RANK" not in os.environ:  # not yet a rank
        if nproc > _cuda_device_count():
            error(
                f"argument --nproc: {nproc} processes on cuda need one GPU each; torch finds "
                f"{_cuda_device_count()}"
            )
    config = TrainConfig(
        data=data,
        data_path=data_path,
        model=values["model"],
        optimizer=optimizer,
        lr=lr,
        momentum=momentum,
        batch_size=values["batch_size"],
        epochs=values["epochs"],
        seed=values["seed"],
        device=device,
        dtype=values["dtype"],
        compare_torch=values["compare_torch"],
        plot=arguments.plot,
        save=arguments.save,
        resume=arguments.resume,
        sampler=sampler,
        nproc=nproc,
        zero=arguments.zero,
    )
    if saved is not None:
        _check_resume_options(config, saved, epochs_done, error)
    return config


def _data_parallel_settings(
    arguments: argparse.Namespace, saved: dict[str, Any] | None, batch_size: int, error: Any
) -> tuple[str, int]:
    """(sampler, processes) for --nproc, torchrun's environment and the checkpoint."""
    from minitorch_edu.launch import port_in_use, torchrun_world  # no torch: usage errors

    nproc, world = arguments.nproc, torchrun_world()
    if nproc is not None and nproc < 1:
        error(f"argument --nproc: must be a positive number of processes, got {nproc}")
    if world is not None and nproc is not None and nproc != world[3]:
        error(
            f"argument --nproc: {nproc} processes asked for, but torchrun started "
            f"{world[3]} on this machine"
        )
    processes = world[1] if world is not None else (nproc or 1)
    distributed = nproc is not None or world is not None
    saved_sampler = None if saved is None else saved.get("sampler", "loader")
    if saved_sampler == "loader" and distributed:
        error(
            f"argument --resume: {arguments.resume} was trained in one process, with the "
            "DataLoader's own shuffling; it continues only that way (leave out --nproc)"
        )
    if saved_sampler == "distributed":
        distributed = True
    if batch_size % processes:
        error(
            f"argument --batch-size: the global batch of {batch_size} does not split evenly "
            f"over {processes} processes; give a multiple of {processes}"
        )
    if arguments.zero and not distributed:
        error("argument --zero: ZeRO shards the optimizer state over processes; add --nproc N")
    if arguments.master_port is not None:
        if nproc is None or nproc < 2 or world is not None:
            error("argument --master-port: it sets the rendezvous of --nproc N (N > 1)")
        if not 1 <= arguments.master_port <= 65535:
            error(f"argument --master-port: {arguments.master_port} is not a port (1-65535)")
        if port_in_use(arguments.master_port):
            error(
                f"argument --master-port: port {arguments.master_port} is in use; pick another "
                "or leave --master-port out to take a free one"
            )
    return ("distributed" if distributed else "loader"), processes


def _saved_config(path: str, error: Any) -> tuple[dict[str, Any], int]:
    """(the run options saved in checkpoint `path`, epochs it has completed)."""
    from minitorch_edu.checkpoint import CheckpointError
    from minitorch_edu.train import load_training_checkpoint

    if not Path(path).is_file():
        error(f"argument --resume: checkpoint {path} does not exist")
    payload = load_training_checkpoint(path)
    try:
        saved = TrainConfig.from_dict(payload["config"]).to_dict()
    except (TypeError, ValueError) as problem:
        raise CheckpointError(
            f"{path} holds no `minitorch-edu train` run settings this version understands "
            f"({problem})"
        ) from problem
    return saved, payload["epoch"]


def _check_resume_options(
    config: TrainConfig, saved: dict[str, Any], epochs_done: int, error: Any
) -> None:
    from minitorch_edu.train import TRAJECTORY_OPTIONS

    current = config.to_dict()
    differences = [
        f"--{name.replace('_', '-')} {_option_text(name, current)} (checkpoint: "
        f"{_option_text(name, saved)})"
        for name in TRAJECTORY_OPTIONS
        if current[name] != saved[name]
    ]
    if differences:
        error(
            f"argument --resume: a resumed run must train as the saved one did; leave these "
            f"options out or give the checkpoint's values: {'; '.join(differences)}"
        )
    if config.epochs <= epochs_done:
        error(
            f"argument --epochs: {config.resume} has completed {epochs_done} epochs already; "
            f"to train further, ask for more with --epochs N, N > {epochs_done}"
        )


def _option_text(name: str, values: dict[str, Any]) -> str:
    if name == "compare_torch":
        return "on" if values[name] else "off"
    return str(values[name])


def _cuda_device_count() -> int:
    import torch

    return torch.cuda.device_count()


def _device_available(device: str) -> bool:
    import torch

    return device != "cuda" or torch.cuda.is_available()


def _resolve_device(device: str, error: Any) -> str:
    if not _device_available(device):
        error("argument --device: cuda was requested but torch finds no CUDA GPU on this machine")
    if device == "auto":
        return "cuda" if _device_available("cuda") else "cpu"
    return device


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
    from minitorch_edu.data import find_mnist_files

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
def load_datasets(config: TrainConfig, quiet: bool = False) -> tuple[TensorDataset, TensorDataset]:
    """(train, test) datasets for `config.data`, normalised with the data set's statistics."""
    from minitorch_edu.data import IdxFormatError, find_mnist_files, load_digits, load_mnist_splits

    if config.data == "digits":
        train = load_digits("train", seed=DIGITS_SPLIT_SEED, normalize=True)
        test = load_digits("test", seed=DIGITS_SPLIT_SEED, normalize=True)
    else:
        train, test = load_mnist_splits(config.data_path, normalize=True)
        height, width = train.tensors[0].shape[-2:]
        if config.model == "cnn" and height != width:
            raise IdxFormatError(
                f"{find_mnist_files(config.data_path, 'train')[0]}: its images are "
                f"{height}x{width}, and the cnn (LeNet) takes square images; use --model mlp"
            )
    image_shape = "x".join(str(size) for size in train.tensors[0].shape[1:])
    classes = int(train.tensors[1].max().item()) + 1
    if not quiet:
        print(
            f"data: {config.data} ({image_shape} images, {classes} classes): "
            f"{len(train)} train / {len(test)} test samples"
        )
    return train, test


def run_training(config: TrainConfig) -> TrainingResult:
    """Load the data and train as `config` says (minitorch_edu.train.run_training)."""
    from minitorch_edu.train import run_training as train_on

    return train_on(config, *load_datasets(config))


def _train_command(arguments: argparse.Namespace) -> int:
    config = validate_train_arguments(arguments)
    if config.sampler == "distributed":
        from minitorch_edu import launch

        if config.nproc > 1 and launch.torchrun_world() is None:
            return launch.launch(config, rank_arguments(config), arguments.master_port)
        from minitorch_edu.distributed_train import run_rank

        run_rank(config, *load_datasets(config, quiet=_not_rank_0()))
        return 0
    run_training(config)
    return 0


def rank_arguments(config: TrainConfig) -> list[str]:
    """The command line each rank of --nproc runs: `config` spelled out in full (no option
    left to a default, none abbreviated, none that torchrun's own parser would take)."""
    argv = ["train", "--data", config.data + (f":{config.data_path}" if config.data_path else "")]
    argv += ["--model", config.model, "--optimizer", config.optimizer, "--lr", repr(config.lr)]
    if config.optimizer in MOMENTUM_OPTIMIZERS:
        argv += ["--momentum", repr(config.momentum)]
    argv += ["--batch-size", str(config.batch_size), "--epochs", str(config.epochs)]
    argv += ["--seed", str(config.seed), "--device", config.device, "--dtype", config.dtype]
    argv.append("--compare-torch" if config.compare_torch else "--no-compare-torch")
    for flag, value in (
        ("--plot", config.plot),
        ("--save", config.save),
        ("--resume", config.resume),
    ):
        if value is not None:
            argv += [flag, value]
    return argv + (["--zero"] if config.zero else [])


def _not_rank_0() -> bool:
    return os.environ.get("RANK", "0") != "0"


def run_errors() -> tuple[type[Exception], ...]:
    """Errors met while running: one line on stderr and exit code 1, no traceback."""
    from minitorch_edu.checkpoint import CheckpointError
    from minitorch_edu.data import IdxFormatError
    from minitorch_edu.launch import LaunchError
    from minitorch_edu.nn.parallel import ProcessGroupError
    from minitorch_edu.train import ResumeError, TorchTwinUnavailable

    return (
        OSError,
        IdxFormatError,
        CheckpointError,
        ResumeError,
        TorchTwinUnavailable,
        ProcessGroupError,
        LaunchError,
    )


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)  # --help and usage errors end here, torch-free
    try:
        return arguments.handler(arguments)
    except BrokenPipeError:  # the output went to a program that stopped reading (`| head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second complaint
        return 1
    except KeyboardInterrupt:
        print(f"{PROGRAM}: interrupted", file=sys.stderr)
        return 130
    except Exception as failure:  # (not SystemExit: a usage error found while running)
        if not isinstance(failure, run_errors()):
            raise
        print(f"{PROGRAM}: error: {failure}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
