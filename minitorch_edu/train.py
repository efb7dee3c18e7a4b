"""The training loop behind `minitorch-edu train`, written to be read.

A training step is the same five lines as in any PyTorch program:

    optimizer.zero_grad()                   forget the previous batch's gradients
    logits = model(images)                  forward pass: (batch, classes) scores
    loss = loss_function(logits, labels)    cross-entropy: one number for the batch
    loss.backward()                         reverse-mode autograd fills every parameter's .grad
    optimizer.step()                        update every parameter from its .grad

`train_one_epoch` runs them over every batch of an epoch; `run_training` adds what a real run
needs around them:

- evaluation: after each epoch, the fraction of the test set the model classifies right;
- a torch twin (`compare_torch`): the same network in torch.nn with torch.optim's optimizer
  (reference/training.py), started from the same weights and stepped on the same batches, so
  every step's loss can be compared with ours and both sides timed;
- checkpoints (`save`) after every epoch, holding everything the run depends on: weights,
  optimizer state, epoch and step counts, the random number generators, the DataLoader's
  position and the twin's state. A run resumed from one (`resume`) repeats, bit for bit, what
  the uninterrupted run would have done;
- learning curves (`plot`), drawn with matplotlib's Agg renderer (no display needed).

Resuming: the options that shape training (TRAJECTORY_OPTIONS) must equal the checkpoint's, and
the data must be the same (checked by digest); `epochs` is the total to reach, so it may grow;
`save` and `plot` are free.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from minitorch_edu import nn, optim
from minitorch_edu.autograd.grad_mode import no_grad
from minitorch_edu.checkpoint import (
    TRAINING_KEYS,
    CheckpointError,
    capture_rng_state,
    load_checkpoint,
    payload_digest,
    restore_rng_state,
    save_checkpoint,
)
from minitorch_edu.creation import manual_seed
from minitorch_edu.data import DataLoader, TensorDataset
from minitorch_edu.models import describe_lenet_padding, lenet, mlp

if TYPE_CHECKING:
    from minitorch_edu.cli import TrainConfig

# Options whose value changes what training computes: a resumed run must keep them.
TRAJECTORY_OPTIONS = (
    "data",
    "model",
    "optimizer",
    "lr",
    "momentum",
    "batch_size",
    "seed",
    "device",
    "dtype",
    "compare_torch",
)
# Threads torch uses for CPU arithmetic during a run. These small models train fastest on one
# (more threads spend longer meeting than computing, and far longer when other programs share
# the cores), and a fixed count keeps results reproducible: how a matrix product splits its
# sums, and so its rounding, depends on the thread count.
CPU_THREADS = 1
# Test images per forward pass when measuring accuracy (no gradients are kept, so it can be big).
EVALUATION_BATCH_SIZE = 1000


class ResumeError(ValueError):
    """A checkpoint cannot continue this run: other options, other data, or nothing left to do."""


class TorchTwinUnavailable(RuntimeError):
    """The torch side of --compare-torch (the `reference` package) cannot be imported."""


# ---------------------------------------------------------------------- building blocks
def build_model(name: str, image_shape: tuple[int, ...], classes: int) -> nn.Module:
    """'mlp' or 'cnn' (LeNet), sized for images of shape (channels, height, width)."""
    channels, height, width = image_shape
    if name == "mlp":
        return mlp(channels * height * width, classes)
    if name == "cnn":
        if height != width:
            raise ValueError(f"the cnn expects square images, got {height}x{width}")
        return lenet(channels, height, classes)
    raise ValueError(f"unknown model {name!r}; choose mlp or cnn")


def build_optimizer(
    name: str, parameters: list[nn.Parameter], lr: float, momentum: float
) -> optim.Optimizer:
    """The optimizer `name` over `parameters`; momentum applies to sgd and rmsprop only."""
    optimizer_class, options = optimizer_options(name, lr, momentum)
    return optimizer_class(parameters, **options)


def optimizer_options(name: str, lr: float, momentum: float) -> tuple[type, dict[str, float]]:
    """(class, keyword arguments) of the optimizer `name`."""
    if name == "sgd":
        return optim.SGD, {"lr": lr, "momentum": momentum}
    if name == "rmsprop":
        return optim.RMSprop, {"lr": lr, "momentum": momentum}
    if name == "adagrad":
        return optim.Adagrad, {"lr": lr}
    if name == "adam":
        return optim.Adam, {"lr": lr}
    raise ValueError(f"unknown optimizer {name!r}; choose sgd, adagrad, rmsprop or adam")


def load_torch_twin_class() -> type:
    """reference.training.TorchTwin: torch.nn and torch.optim live outside this package."""
    try:
        from reference.training import TorchTwin
    except ModuleNotFoundError as missing:
        if missing.name not in ("reference", "reference.training", "reference.models"):
            raise
        raise TorchTwinUnavailable(
            "comparing with torch needs the torch oracle in the repository's reference/ "
            "folder, which is not importable here: run from the repository root "
            "(python -m minitorch_edu train ...), or pass --no-compare-torch"
        ) from missing
    return TorchTwin


@dataclass
class History:
    """What a run has measured, step by step and epoch by epoch (saved in checkpoints).

    The torch_ lists stay empty when there is no twin.
    """

    step_loss: list[float] = field(default_factory=list)  # each batch's loss, in order
    train_loss: list[float] = field(default_factory=list)  # per epoch: mean batch loss
    test_accuracy: list[float] = field(default_factory=list)  # per epoch: fraction right
    torch_step_loss: list[float] = field(default_factory=list)
    torch_train_loss: list[float] = field(default_factory=list)
    torch_test_accuracy: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[float]]:
        return {name: list(values) for name, values in vars(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, list[float]]) -> History:
        return cls(**{name: list(values[name]) for name in vars(cls())})


def relative_differences(ours: list[float], theirs: list[float]) -> list[float]:
    """|ours - torch| / |torch| at each step: 0 where the two are equal, inf where only torch's
    is 0."""
    differences = []
    for our_loss, torch_loss in zip(ours, theirs):
        if our_loss == torch_loss:
            differences.append(0.0)
        elif torch_loss == 0:
            differences.append(math.inf)
        else:
            differences.append(abs(our_loss - torch_loss) / abs(torch_loss))
    return differences


# ---------------------------------------------------------------------- one epoch
def train_one_epoch(
    model: nn.Module,
    loss_function: nn.Module,
    optimizer: optim.Optimizer,
    loader: DataLoader,
    twin: Any = None,
    description: str = "",
    show_progress: bool = True,
) -> tuple[list[float], list[float], list[float], list[float]]:
    """One pass over `loader`; the twin (if any) takes the same step on the same batch.

    Returns (our losses, twin's losses, our seconds per step, twin's seconds per step).
    The progress bar shows on a terminal, when `show_progress`.
    """
    losses, twin_losses, seconds, twin_seconds = [], [], [], []
    progress = tqdm(
        loader, desc=description, unit="batch", leave=False, disable=None if show_progress else True
    )
    for images, labels in progress:
        started = time.perf_counter()
        optimizer.zero_grad()
        logits = model(images)
        loss = loss_function(logits, labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())  # .item() waits for a GPU to finish: the time is complete
        seconds.append(time.perf_counter() - started)

        if twin is not None:
            started = time.perf_counter()
            twin_losses.append(twin.step(images.data, labels.data))
            twin_seconds.append(time.perf_counter() - started)
        progress.set_postfix(loss=f"{sum(losses) / len(losses):.4f}", refresh=False)
    return losses, twin_losses, seconds, twin_seconds


def predict(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The class each image is given (the largest logit), computed without recording a graph."""
    model.eval()
    with no_grad():
        predictions = model(images).argmax(dim=1).data
    model.train()
    return predictions


def accuracy(predict_batch: Any, dataset: TensorDataset) -> float:
    """Fraction of `dataset` that `predict_batch(images) -> classes` gets right."""
    images, labels = dataset.tensors
    correct = 0
    for start in range(0, len(labels), EVALUATION_BATCH_SIZE):
        batch = slice(start, start + EVALUATION_BATCH_SIZE)
        correct += int((predict_batch(images[batch]) == labels[batch]).sum().item())
    return correct / len(labels)


# ---------------------------------------------------------------------- the run
@dataclass
class TrainingResult:
    """What `run_training` leaves: the trained model (and twin), history and timings."""

    model: nn.Module
    optimizer: optim.Optimizer
    twin: Any  # reference.training.TorchTwin, or None
    history: History
    epoch: int  # epochs completed in all (including those before a resume)
    step: int  # optimizer steps taken in all
    seconds_per_step: list[float]  # this session's steps only
    torch_seconds_per_step: list[float]
    wall_seconds: float  # this session's training and evaluation

    @property
    def largest_relative_difference(self) -> float | None:
        """max over every step so far of |our loss - torch's| / |torch's| (None: no twin)."""
        history = self.history
        if self.twin is None or not history.torch_step_loss:
            return None
        return max(relative_differences(history.step_loss, history.torch_step_loss))


@contextlib.contextmanager
def cpu_threads(count: int) -> Iterator[None]:
    """Let torch use `count` CPU threads inside the block, and the previous number after it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run_training(
    config: TrainConfig, train_set: TensorDataset, test_set: TensorDataset
) -> TrainingResult:
    """Train as `config` says on `train_set`, measuring on `test_set` after every epoch.

    CPU arithmetic runs on CPU_THREADS threads (the previous setting is restored after).
    """
    with cpu_threads(CPU_THREADS):
        return _run_training(config, train_set, test_set)


@dataclass
class RunData:
    """The data of a run, on its device and in its dtype, and what is known about it."""

    train_set: TensorDataset
    test_set: TensorDataset
    image_shape: tuple[int, ...]  # (channels, height, width)
    classes: int
    digest: str | None  # of the data as given (checkpoints are tied to it), when needed


def prepare_data(config: TrainConfig, train_set: TensorDataset, test_set: TensorDataset) -> RunData:
    images, labels = train_set.tensors
    classes = int(max(labels.max().item(), test_set.tensors[1].max().item())) + 1
    needs_digest = config.save is not None or config.resume is not None
    digest = payload_digest([train_set.tensors, test_set.tensors]) if needs_digest else None
    device, dtype = torch.device(config.device), getattr(torch, config.dtype)
    train_set, test_set = (
        TensorDataset(dataset.tensors[0].to(device, dtype), dataset.tensors[1].to(device))
        for dataset in (train_set, test_set)
    )
    return RunData(train_set, test_set, tuple(images.shape[1:]), classes, digest)


def resume(
    config: TrainConfig,
    data_digest: str | None,
    model: nn.Module,
    optimizer: optim.Optimizer,
    loader: DataLoader,
    twin: Any,
) -> tuple[History, int, int]:
    """Load config.resume into the run's parts; (history, epochs done, steps done)."""
    payload = load_training_checkpoint(config.resume)
    check_resumable(config, payload, data_digest)
    restore_run(config.resume, payload, model, optimizer, loader, twin)
    return History.from_dict(payload["metrics"]), payload["epoch"], payload["step"]


def record_epoch(
    history: History,
    losses: list[float],
    twin_losses: list[float],
    model: nn.Module,
    twin: Any,
    test_set: TensorDataset,
) -> None:
    """Add an epoch's losses and the test accuracy after it (ours and the twin's) to history."""
    history.step_loss += losses
    history.train_loss.append(sum(losses) / len(losses))
    history.test_accuracy.append(accuracy(lambda x: predict(model, x), test_set))
    if twin is not None:
        history.torch_step_loss += twin_losses
        history.torch_train_loss.append(sum(twin_losses) / len(twin_losses))
        history.torch_test_accuracy.append(accuracy(twin.predict, test_set))


def _run_training(
    config: TrainConfig, train_set: TensorDataset, test_set: TensorDataset
) -> TrainingResult:
    data = prepare_data(config, train_set, test_set)
    train_set, test_set = data.train_set, data.test_set
    image_shape, classes = data.image_shape, data.classes
    device, dtype = torch.device(config.device), getattr(torch, config.dtype)

    manual_seed(config.seed)  # the initial weights
    model = build_model(config.model, image_shape, classes).to(device=device, dtype=dtype)
    optimizer = build_optimizer(
        config.optimizer, list(model.parameters()), config.lr, config.momentum
    )
    loss_function = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(config.seed)  # the order of the batches
    loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True, generator=generator)
    twin = None
    if config.compare_torch:
        twin = load_torch_twin_class()(config.model, image_shape, classes, model, optimizer)

    history, epoch, step = History(), 0, 0
    if config.resume is not None:
        history, epoch, step = resume(config, data.digest, model, optimizer, loader, twin)

    print_header(config, model, optimizer, image_shape, epoch)
    seconds, twin_seconds = [], []
    started = time.perf_counter()
    while epoch < config.epochs:
        epoch += 1
        description = f"epoch {epoch}/{config.epochs}"
        losses, twin_losses, epoch_seconds, epoch_twin_seconds = train_one_epoch(
            model, loss_function, optimizer, loader, twin, description
        )
        step += len(losses)
        seconds += epoch_seconds
        twin_seconds += epoch_twin_seconds
        record_epoch(history, losses, twin_losses, model, twin, test_set)
        print(epoch_line(history, epoch, config.epochs, len(losses)), flush=True)
        if config.save is not None:
            payload = training_payload(
                config, model, optimizer, loader, twin, history, epoch, step, data.digest
            )
            save_checkpoint(config.save, payload)

    result = TrainingResult(
        model=model,
        optimizer=optimizer,
        twin=twin,
        history=history,
        epoch=epoch,
        step=step,
        seconds_per_step=seconds,
        torch_seconds_per_step=twin_seconds,
        wall_seconds=time.perf_counter() - started,
    )
    report_finished(config, result, f"{config.model} on {config.data}, {config.optimizer}")
    return result


def report_finished(config: TrainConfig, result: TrainingResult, title: str) -> None:
    """The summary, where the checkpoint is, and the learning curves when asked for."""
    print_summary(result)
    if config.save is not None:
        print(f"checkpoint: {config.save} (epoch {result.epoch}, step {result.step})")
    if config.plot is not None:
        plot_history(result.history, config.plot, title=title)
        print(f"plot: {config.plot}")


# ---------------------------------------------------------------------- checkpoints
def training_payload(
    config: TrainConfig,
    model: nn.Module,
    optimizer: optim.Optimizer,
    loader: DataLoader,
    twin: Any,
    history: History,
    epoch: int,
    step: int,
    data_digest: str | None,
) -> dict[str, Any]:
    """Everything a resumed run needs: the layout minitorch_edu.checkpoint describes, plus the
    torch twin's state and a digest of the data."""
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": None,  # the command offers no learning-rate schedule
        "epoch": epoch,
        "step": step,
        "rng": capture_rng_state(),
        "loader": loader.state_dict(),
        "config": config.to_dict(),
        "metrics": history.to_dict(),
        "torch_twin": None if twin is None else twin.state_dict(),
        "data_digest": data_digest,
    }


def load_training_checkpoint(path: str) -> dict[str, Any]:
    """The payload of a `minitorch-edu train` checkpoint, its parts checked for the kinds of
    values a run saves (CheckpointError naming the file and the part otherwise)."""
    payload = load_checkpoint(path, required_keys=TRAINING_KEYS)
    problem = training_payload_problem(payload)
    if problem is not None:
        raise CheckpointError(f"{path} is not a loadable minitorch-edu train checkpoint: {problem}")
    return payload


def training_payload_problem(payload: dict[str, Any]) -> str | None:
    """What is wrong with the parts of a training payload, or None (see training_payload)."""

    def is_count(value: Any) -> bool:
        return type(value) is int and value >= 0

    def is_dict_of(value: Any, kind: type) -> bool:
        return isinstance(value, dict) and all(isinstance(v, kind) for v in value.values())

    optimizer = payload["optimizer"]
    rng = payload["rng"]
    metrics = payload["metrics"]
    history_names = set(vars(History()))
    checks = [
        ("model", is_dict_of(payload["model"], torch.Tensor), "a dict of tensors"),
        (
            "optimizer",
            isinstance(optimizer, dict)
            and isinstance(optimizer.get("state"), dict)
            and isinstance(optimizer.get("param_groups"), list)
            and all(
                isinstance(group, dict) and isinstance(group.get("params"), list)
                for group in optimizer["param_groups"]
            ),
            "an optimizer state dict ('state' and 'param_groups')",
        ),
        ("scheduler", payload["scheduler"] is None or isinstance(payload["scheduler"], dict), ""),
        ("epoch", is_count(payload["epoch"]), "a count of epochs"),
        ("step", is_count(payload["step"]), "a count of steps"),
        (
            "rng",
            isinstance(rng, dict) and set(rng) == {"torch", "cuda", "python", "numpy"},
            "a dict of generator states with keys cuda, numpy, python, torch",
        ),
        ("loader", isinstance(payload["loader"], dict), "a DataLoader state dict"),
        ("config", isinstance(payload["config"], dict), "a dict of run settings"),
        (
            "metrics",
            isinstance(metrics, dict)
            and set(metrics) == history_names
            and all(
                isinstance(values, list) and all(type(v) in (int, float) for v in values)
                for values in metrics.values()
            ),
            f"a dict of lists of numbers with keys {', '.join(sorted(history_names))}",
        ),
        (
            "torch_twin",
            payload.get("torch_twin") is None or is_dict_of(payload["torch_twin"], dict),
            "None or the twin's model and optimizer state dicts",
        ),
        (
            "data_digest",
            payload.get("data_digest") is None or isinstance(payload["data_digest"], str),
            "",
        ),
    ]
    for name, fine, expected in checks:
        if not fine:
            value = payload.get(name)
            what = f"expected {expected}" if expected else "of an unexpected kind"
            return f"its {name!r} is {_kind_of(value)}, {what}"
    return None


def _kind_of(value: Any) -> str:
    if isinstance(value, dict):
        return f"a dict with keys {sorted(map(str, value))[:8]}"
    return f"a {type(value).__name__}" if value is not None else "None"


def restore_run(
    source: str,
    payload: dict[str, Any],
    model: nn.Module,
    optimizer: optim.Optimizer,
    loader: DataLoader,
    twin: Any,
) -> None:
    """Put a checkpoint's state into this run's model, optimizer, loader, generators and twin.

    A part that does not fit (weights of another model, optimizer state of other parameters, a
    damaged generator state) raises CheckpointError naming the file and the part, on one line.
    """
    parts = [
        ("model weights", lambda: model.load_state_dict(payload["model"])),
        ("optimizer state", lambda: _load_optimizer_state(optimizer, payload["optimizer"])),
        ("data loader position", lambda: loader.load_state_dict(payload["loader"])),
        ("random number generator state", lambda: restore_rng_state(payload["rng"])),
    ]
    if twin is not None:
        parts.append(("torch twin's state", lambda: twin.load_state_dict(payload["torch_twin"])))
    for what, restore in parts:
        try:
            restore()
        except (RuntimeError, ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
            raise CheckpointError(
                f"{source}: its {what} cannot be restored into this run ({_one_line(error)})"
            ) from error


def _one_line(error: BaseException) -> str:
    """An error's message on one line; of a list of problems (load_state_dict's), the first."""
    lines = [line.strip() for line in str(error).split("\n") if line.strip()]
    if not lines:
        return type(error).__name__
    if len(lines) > 2 and lines[0].endswith(":"):  # "Error(s) in loading state_dict for X:"
        return f"{lines[1]} (and {len(lines) - 2} more)"
    return " ".join(lines)


def _load_optimizer_state(optimizer: optim.Optimizer, state_dict: dict[str, Any]) -> None:
    """optimizer.load_state_dict, after checking each saved state tensor has its parameter's
    shape (torch does not check, and the first step would fail far from the cause)."""
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    saved_indices = [i for group in state_dict["param_groups"] for i in group["params"]]
    position = {index: n for n, index in enumerate(saved_indices)}
    for index, values in state_dict["state"].items():
        if (
            index not in position
            or position[index] >= len(parameters)
            or not isinstance(values, dict)
        ):
            continue  # load_state_dict itself reports groups that do not match
        shape = parameters[position[index]].shape
        for name, value in values.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != shape:
                raise ValueError(
                    f"state {name!r} of parameter {index} has shape {list(value.shape)}, the "
                    f"parameter has {list(shape)}"
                )
    optimizer.load_state_dict(state_dict)


def option_mismatches(config: dict[str, Any], saved: dict[str, Any]) -> list[str]:
    """'name: value (saved: value)' for each trajectory option that differs from the saved one."""
    return [
        f"{name}: {config[name]!r} (checkpoint: {saved.get(name)!r})"
        for name in TRAJECTORY_OPTIONS
        if config[name] != saved.get(name)
    ]


def check_resumable(config: TrainConfig, payload: dict[str, Any], data_digest: str | None) -> None:
    """Raise ResumeError unless `payload` can continue the run that `config` describes."""
    source = config.resume
    mismatches = option_mismatches(config.to_dict(), payload["config"])
    if mismatches:
        raise ResumeError(
            f"cannot resume from {source}: a resumed run must train as the saved one did, but "
            + "; ".join(mismatches)
        )
    saved_sampler = payload["config"].get("sampler", "loader")
    if saved_sampler != getattr(config, "sampler", "loader"):
        raise ResumeError(
            f"cannot resume from {source}: it was trained with "
            f"{'DistributedSampler' if saved_sampler == 'distributed' else 'the DataLoader'}'s "
            "batch order, and a resumed run keeps it"
        )
    if payload.get("data_digest") != data_digest:
        raise ResumeError(
            f"cannot resume from {source}: the training or test data differ from the data it "
            "was trained on"
        )
    if config.compare_torch and payload.get("torch_twin") is None:
        raise ResumeError(f"cannot resume from {source}: it holds no torch twin to compare with")
    if payload["epoch"] >= config.epochs:
        raise ResumeError(
            f"{source} has completed {payload['epoch']} epochs already; ask for more with "
            f"--epochs N, N > {payload['epoch']}"
        )


# ---------------------------------------------------------------------- what is printed
def describe_model(model: nn.Module) -> str:
    """One line: the layers in order and the number of parameters."""
    parts = []
    for layer in model.children():
        kind = type(layer).__name__
        if kind == "Linear":
            parts.append(f"Linear({layer.in_features}->{layer.out_features})")
        elif kind == "Conv2d":
            parts.append(
                f"Conv2d({layer.in_channels}->{layer.out_channels}, "
                f"{'x'.join(map(str, layer.kernel_size))}, pad {layer.padding[0]})"
            )
        elif kind == "MaxPool2d":
            parts.append(f"MaxPool2d({layer.kernel_size})")
        else:
            parts.append(kind)
    count = sum(parameter.numel() for parameter in model.parameters())
    return f"{' -> '.join(parts)}  ({count:,} parameters)"


def print_header(
    config: TrainConfig,
    model: nn.Module,
    optimizer: optim.Optimizer,
    image_shape: tuple[int, ...],
    epochs_done: int,
) -> None:
    dtype = next(iter(model.parameters())).dtype
    threads = torch.get_num_threads()
    where = f"cpu ({threads} thread{'s' if threads > 1 else ''})"
    if config.device != "cpu":
        where = config.device
    hyperparameters = f"lr={config.lr:g}"
    if config.optimizer in ("sgd", "rmsprop"):
        hyperparameters += f", momentum={config.momentum:g}"
    print(f"model: {config.model}: {describe_model(model)}")
    if config.model == "cnn":
        print(f"cnn: {describe_lenet_padding(image_shape[-1])}")
    print(
        f"training: {type(optimizer).__name__}({hyperparameters}), cross-entropy loss, batch size "
        f"{config.batch_size}, {config.epochs} epochs, seed {config.seed}, on {where} in "
        f"{str(dtype).removeprefix('torch.')}"
    )
    if config.resume is not None:
        print(f"resumed: {config.resume} after epoch {epochs_done}")
    if config.compare_torch:
        print("compared with: torch.nn + torch.optim, same initial weights, same batches")


def epoch_line(history: History, epoch: int, epochs: int, steps: int) -> str:
    """'epoch 3/10  train loss ...  test accuracy ...' with torch's numbers when comparing."""
    width = len(str(epochs))
    line = (
        f"epoch {epoch:>{width}}/{epochs}  train loss {history.train_loss[-1]:.6f}  "
        f"test accuracy {100 * history.test_accuracy[-1]:.2f}%"
    )
    if history.torch_train_loss:
        differences = relative_differences(
            history.step_loss[-steps:], history.torch_step_loss[-steps:]
        )
        line += (
            f"  |  torch: train loss {history.torch_train_loss[-1]:.6f}  test accuracy "
            f"{100 * history.torch_test_accuracy[-1]:.2f}%  |  largest relative loss "
            f"difference {max(differences):.2e}"
        )
    return line


def print_summary(result: TrainingResult) -> None:
    history = result.history
    line = (
        f"finished: {result.epoch} epochs, {result.step} steps; final test accuracy "
        f"{100 * history.test_accuracy[-1]:.2f}%"
    )
    if history.torch_test_accuracy:
        line += f" (torch {100 * history.torch_test_accuracy[-1]:.2f}%)"
    print(f"{line}; {result.wall_seconds:.1f} s training and evaluating")
    difference = result.largest_relative_difference
    if difference is not None:
        print(
            f"loss agreement with torch: largest relative difference over all {result.step} "
            f"steps: {difference:.2e}"
        )
    if result.seconds_per_step:
        timing = f"median time per step: minitorch_edu {_milliseconds(result.seconds_per_step)}"
        if result.torch_seconds_per_step:
            timing += f", torch {_milliseconds(result.torch_seconds_per_step)}"
        print(f"{timing} (over {len(result.seconds_per_step)} steps)")


def _milliseconds(seconds: list[float]) -> str:
    return f"{1000 * statistics.median(seconds):.3f} ms"


# ---------------------------------------------------------------------- learning curves
def plot_history(history: History, path: str, title: str = "") -> None:
    """Learning curves as a PNG: training loss per batch and per epoch (log scale), test accuracy
    per epoch, and, with a twin, torch's curves dashed beside ours and a third panel with the
    relative difference of the two losses at every step."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import LogFormatter, MaxNLocator

    comparing = bool(history.torch_step_loss)
    # A Figure with an Agg canvas, not pyplot: no display and no global state.
    figure = Figure(figsize=(16 if comparing else 11, 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    panels = figure.subplots(1, 3 if comparing else 2)
    losses, accuracies = panels[0], panels[1]
    epochs = list(range(1, len(history.train_loss) + 1))
    steps_per_epoch = len(history.step_loss) / max(len(epochs), 1)
    steps_in_epochs = [(step + 1) / steps_per_epoch for step in range(len(history.step_loss))]

    curves = [("minitorch_edu", "-", history.step_loss, history.train_loss, history.test_accuracy)]
    if comparing:
        curves.append(
            (
                "torch",
                "--",
                history.torch_step_loss,
                history.torch_train_loss,
                history.torch_test_accuracy,
            )
        )
    for color, (name, style, step_loss, epoch_loss, test_accuracy) in zip(("C0", "C1"), curves):
        losses.plot(steps_in_epochs, step_loss, style, color=color, alpha=0.3, linewidth=0.8)
        losses.plot(epochs, epoch_loss, style, color=color, marker="o", label=f"{name}, epoch mean")
        percent = [100 * value for value in test_accuracy]
        accuracies.plot(epochs, percent, style, color=color, marker="o", label=name)
    losses.set(xlabel="epoch", ylabel="training loss (cross-entropy)", yscale="log")
    losses.set_title("training loss: each batch (faint) and epoch mean")
    accuracies.set(xlabel="epoch", ylabel="test accuracy (%)")
    accuracies.set_title("test accuracy")
    if comparing:
        differences = relative_differences(history.step_loss, history.torch_step_loss)
        # A log scale cannot show 0: steps where the losses are equal are counted, not drawn.
        shown = [(x, d) for x, d in zip(steps_in_epochs, differences) if d > 0]
        equal = len(differences) - len(shown)
        if shown:
            panels[2].plot(*zip(*shown), ".", color="C2", markersize=3)
            panels[2].set_yscale("log")
        panels[2].set(xlabel="epoch", ylabel="|ours - torch| / |torch|")
        panels[2].set_title(f"relative loss difference ({equal} of {len(differences)} equal)")
    for axes in panels:
        axes.grid(True, alpha=0.3)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    losses.yaxis.set_major_formatter(LogFormatter())  # 0.5 rather than 5x10^-1
    losses.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    losses.legend()
    accuracies.legend()
    if title:
        figure.suptitle(title)
    figure.savefig(path, dpi=100)
