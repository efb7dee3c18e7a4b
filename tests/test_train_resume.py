"""Checkpoints of a training run: a run resumed from one repeats the uninterrupted run bit for
bit (losses, weights, optimizer state, the twin's too); an interrupted save leaves the previous
checkpoint loadable; damaged and foreign files are refused with a clear message and exit 1."""

import io
from contextlib import redirect_stdout

import pytest
import torch

from minitorch_edu import cli, train
from minitorch_edu.checkpoint import load_checkpoint, save_checkpoint
from minitorch_edu.data import TensorDataset, load_digits

# Options that vary between a run and its resumption without changing what is trained.
FREE_OPTIONS = ("epochs", "save", "resume", "plot")


def run(*arguments):
    """`minitorch-edu train ARGUMENTS` in process, on the CPU; the TrainingResult and output."""
    output = io.StringIO()
    with redirect_stdout(output):
        result = cli.run_training(cli.parse_train_config([*arguments, "--device", "cpu"]))
    return result, output.getvalue()


def assert_identical(ours, theirs, where="payload"):
    """Equal structure, equal plain values, tensors equal bit for bit (torch.equal, same dtype)."""
    assert type(ours) is type(theirs), where
    if isinstance(ours, torch.Tensor):
        assert ours.dtype == theirs.dtype and torch.equal(ours, theirs), where
    elif isinstance(ours, dict):
        assert list(ours) == list(theirs), where
        for key in ours:
            assert_identical(ours[key], theirs[key], f"{where}[{key!r}]")
    elif isinstance(ours, list | tuple):
        assert len(ours) == len(theirs), where
        for index, (a, b) in enumerate(zip(ours, theirs)):
            assert_identical(a, b, f"{where}[{index}]")
    else:
        assert ours == theirs, where


def without_free_options(payload):
    return {
        **payload,
        "config": {k: v for k, v in payload["config"].items() if k not in FREE_OPTIONS},
    }


@pytest.mark.parametrize(
    "model, optimizer, first, second",
    [
        ("mlp", "sgd", 2, 1),
        ("mlp", "adam", 1, 2),
        ("mlp", "rmsprop", 1, 1),
        ("mlp", "adagrad", 1, 1),
        ("cnn", "sgd", 1, 1),
        ("cnn", "adam", 1, 1),
    ],
)
def test_a_resumed_run_repeats_the_uninterrupted_one_bit_for_bit(
    tmp_path, model, optimizer, first, second
):
    options = ["--model", model, "--optimizer", optimizer, "--batch-size", "128", "--seed", "5"]
    if optimizer == "rmsprop":
        options += ["--momentum", "0.5"]
    total = str(first + second)
    straight, _ = run(*options, "--epochs", total, "--save", str(tmp_path / "straight.pt"))
    run(*options, "--epochs", str(first), "--save", str(tmp_path / "first.pt"))
    # The resumed run gives only what may change: the other options come from the checkpoint.
    arguments = ["--resume", str(tmp_path / "first.pt"), "--epochs", total]
    resumed, output = run(*arguments, "--save", str(tmp_path / "resumed.pt"))

    assert f"resumed: {tmp_path / 'first.pt'} after epoch {first}" in output
    assert resumed.history == straight.history  # every step's loss, both sides, and accuracies
    assert (resumed.epoch, resumed.step) == (straight.epoch, straight.step)
    for name, value in straight.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name
    for name, value in straight.twin.model.state_dict().items():
        assert torch.equal(resumed.twin.model.state_dict()[name], value), name
    # The saved files hold the same state in full: optimizer, generators, DataLoader, twin.
    assert_identical(
        without_free_options(load_checkpoint(tmp_path / "resumed.pt")),
        without_free_options(load_checkpoint(tmp_path / "straight.pt")),
    )


def test_a_save_interrupted_mid_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch, capsys):
    path = tmp_path / "run.pt"
    options = ["--batch-size", "128", "--device", "cpu", "--save", str(path)]
    real_save, calls = torch.save, []

    def save_that_fails_the_second_time(obj, file, *arguments, **keywords):
        calls.append(file)
        if len(calls) == 2:
            file.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(28, "No space left on device")
        return real_save(obj, file, *arguments, **keywords)

    monkeypatch.setattr(torch, "save", save_that_fails_the_second_time)
    assert cli.main(["train", *options, "--epochs", "3"]) == 1
    error = capsys.readouterr().err
    assert error == (
        f"minitorch-edu: error: cannot write checkpoint {path}: No space left on device; the "
        "previous run.pt is unchanged and no partial file was left\n"
    )
    assert len(calls) == 2
    monkeypatch.undo()

    assert load_checkpoint(path)["epoch"] == 1  # whole, and from the epoch before the failure
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]  # no half-written leftovers
    resumed, _ = run("--resume", str(path), "--epochs", "2")
    straight, _ = run("--batch-size", "128", "--epochs", "2")
    assert resumed.history == straight.history


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "run.pt"
    run("--epochs", "1", "--batch-size", "256", "--no-compare-torch", "--save", str(path))
    return path.read_bytes()


def resume_error(capsys, path):
    assert cli.main(["train", "--resume", str(path), "--epochs", "2", "--device", "cpu"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("minitorch-edu: error: ") and error.count("\n") == 1
    return error


@pytest.mark.parametrize("where", [0.5, 0.9])
def test_a_corrupted_checkpoint_is_refused(tmp_path, capsys, checkpoint_bytes, where):
    damaged = bytearray(checkpoint_bytes)
    damaged[int(where * len(damaged))] ^= 0xFF
    path = tmp_path / "damaged.pt"
    path.write_bytes(bytes(damaged))
    assert f"{path} is not a loadable minitorch_edu checkpoint" in resume_error(capsys, path)


def test_a_truncated_checkpoint_is_refused(tmp_path, capsys, checkpoint_bytes):
    path = tmp_path / "truncated.pt"
    path.write_bytes(checkpoint_bytes[: len(checkpoint_bytes) // 2])
    error = resume_error(capsys, path)
    assert "is not a loadable minitorch_edu checkpoint: the archive is truncated" in error


def test_foreign_files_are_refused_with_the_reason(tmp_path, capsys):
    weights = tmp_path / "weights.pt"
    torch.save({"fc1.weight": torch.zeros(2, 2)}, weights)
    assert "no 'minitorch_edu.checkpoint' format marker" in resume_error(capsys, weights)
    other = tmp_path / "other.pt"
    save_checkpoint(other, {"model": {}})  # ours, but no training run
    assert "payload lacks required keys" in resume_error(capsys, other)
    settings = tmp_path / "settings.pt"
    save_checkpoint(settings, {key: None for key in train.TRAINING_KEYS} | {"config": {"a": 1}})
    assert "its 'model' is None, expected a dict of tensors" in resume_error(capsys, settings)


def replace_part(payload, change):
    changed = {key: value for key, value in payload.items()}
    change(changed)
    return changed


def other_model_weights(payload):
    payload["model"] = {name: torch.zeros(3, 5) for name in payload["model"]}


def optimizer_state_for_other_shapes(payload):
    state = payload["optimizer"]["state"]
    state[0] = {name: torch.zeros(7) if value.dim() else value for name, value in state[0].items()}


def garbage_generator_state(payload):
    payload["rng"] = {**payload["rng"], "torch": torch.zeros(3, dtype=torch.uint8)}


OTHER_CONTENT = {
    # what the file holds instead: (the change, what the one-line error must say)
    "weights of another model": (
        other_model_weights,
        "its model weights cannot be restored into this run (size mismatch for fc1.weight: "
        "copying a param with shape torch.Size([3, 5]) from checkpoint, the shape in current "
        "model is torch.Size([256, 64]). (and 7 more))",
    ),
    "no optimizer state": (
        lambda payload: payload.update(optimizer={}),
        "its 'optimizer' is a dict with keys [], expected an optimizer state dict",
    ),
    "optimizer state of other parameters": (
        optimizer_state_for_other_shapes,
        "its optimizer state cannot be restored into this run (state 'momentum_buffer' of "
        "parameter 0 has shape [7]",
    ),
    "a non-dict rng": (lambda payload: payload.update(rng=7), "its 'rng' is a int, expected a"),
    "a damaged generator state": (
        garbage_generator_state,
        "its random number generator state cannot be restored into this run (",
    ),
    "a negative epoch count": (lambda p: p.update(epoch=-1), "its 'epoch' is a int, expected a"),
    "metrics without a curve": (
        lambda payload: payload["metrics"].pop("train_loss"),
        "its 'metrics' is a dict with keys",
    ),
    "a text learning rate": (
        lambda payload: payload["config"].update(lr="0.1"),
        "holds no `minitorch-edu train` run settings this version understands "
        "(TrainConfig.from_dict: lr should be float, got '0.1')",
    ),
    "a loader state of another kind": (
        lambda payload: payload.update(loader={"position": 3}),
        "its data loader position cannot be restored into this run (DataLoader.load_state_dict: "
        "expected",
    ),
}


@pytest.mark.parametrize("content", OTHER_CONTENT, ids=list(OTHER_CONTENT))
def test_a_whole_checkpoint_holding_other_content_is_refused_in_one_line(
    tmp_path, capsys, checkpoint_bytes, content
):
    """The file passes the format and digest checks (it was saved as a checkpoint) but what it
    holds cannot continue this run."""
    change, message = OTHER_CONTENT[content]
    (tmp_path / "good.pt").write_bytes(checkpoint_bytes)
    payload = load_checkpoint(tmp_path / "good.pt")
    change(payload)
    path = tmp_path / "other.pt"
    save_checkpoint(path, payload)
    error = resume_error(capsys, path)
    assert f"{path}" in error and message in error, error


def test_resuming_on_other_data_is_refused(tmp_path):
    path = tmp_path / "run.pt"
    digits = load_digits("train", normalize=True), load_digits("test", normalize=True)
    configuration = cli.parse_train_config(
        ["--epochs", "1", "--no-compare-torch", "--device", "cpu", "--save", str(path)]
    )
    with redirect_stdout(io.StringIO()):
        train.run_training(configuration, *digits)
    resumed = cli.parse_train_config(
        ["--resume", str(path), "--epochs", "2", "--no-compare-torch", "--device", "cpu"]
    )
    fewer = TensorDataset(*(column[:-1] for column in digits[0].tensors))
    with pytest.raises(train.ResumeError, match="the training or test data differ"):
        train.run_training(resumed, fewer, digits[1])
    changed = dict(vars(resumed), lr=0.5)
    with pytest.raises(train.ResumeError, match=r"lr: 0.5 \(checkpoint: 0.02\)"):
        train.run_training(cli.TrainConfig(**changed), *digits)


@pytest.mark.cuda
def test_on_a_gpu_a_resumed_run_repeats_the_uninterrupted_one(tmp_path):
    options = ["--model", "cnn", "--batch-size", "128", "--device", "cuda"]

    def run_on_gpu(*arguments):
        with redirect_stdout(io.StringIO()):
            return cli.run_training(cli.parse_train_config([*options, *arguments]))

    straight = run_on_gpu("--epochs", "2")
    run_on_gpu("--epochs", "1", "--save", str(tmp_path / "first.pt"))
    resumed = run_on_gpu("--resume", str(tmp_path / "first.pt"), "--epochs", "2")
    assert resumed.history == straight.history
    for name, value in straight.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name
