"""The `minitorch-edu` command: the default run a new user starts with (as a subprocess), help,
usage errors (exit code 2) that say what was wrong, one-line run errors (exit code 1), and how
options combine with --resume."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from minitorch_edu import cli
from minitorch_edu.checkpoint import load_checkpoint, save_checkpoint
from minitorch_edu.data import write_idx

REPOSITORY = Path(__file__).resolve().parents[1]
TRAIN_OPTIONS = [
    "--data", "--model", "--optimizer", "--lr", "--momentum", "--batch-size", "--epochs",
    "--seed", "--device", "--dtype", "--compare-torch", "--no-compare-torch", "--plot", "--save",
    "--resume",
]  # fmt: skip
# The default run must reach this test accuracy on the digits, and its losses must stay this
# close to torch's at every step (float32 rounding differences grow over the 230 steps).
DEFAULT_RUN_ACCURACY = 0.95
DEFAULT_RUN_RELATIVE_DIFFERENCE = 1e-2


def start_command(*arguments):
    """`python -m minitorch_edu ARGUMENTS` started in a fresh process, on the CPU."""
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY), "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.Popen(
        [sys.executable, "-m", "minitorch_edu", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPOSITORY,
        env=environment,
    )


@pytest.fixture(scope="module")
def command_results(tmp_path_factory):
    """The commands below, run side by side; name -> CompletedProcess."""
    foreign = tmp_path_factory.mktemp("runs") / "foreign.pt"
    foreign.write_bytes(b"these bytes are not a checkpoint")
    commands = {
        "default": ["train"],
        "help": ["train", "--help"],
        "bad flag": ["train", "--learning-rate", "0.1"],
        "foreign checkpoint": ["train", "--resume", str(foreign)],
    }
    processes = {name: start_command(*arguments) for name, arguments in commands.items()}
    results = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=300)
        results[name] = subprocess.CompletedProcess(
            process.args, process.returncode, stdout, stderr
        )
    return results


def number_after(label, text):
    return float(re.search(re.escape(label) + r"\s*([0-9.eE+-]+)", text).group(1))


# ---------------------------------------------------------------------- as a subprocess
def test_the_default_run_learns_the_digits_and_agrees_with_torch(command_results):
    result = command_results["default"]
    assert result.returncode == 0, result.stderr
    output = result.stdout
    assert "data: digits (1x8x8 images, 10 classes): 1438 train / 359 test samples" in output
    assert "training: SGD(lr=0.02, momentum=0.9)" in output and "10 epochs" in output
    assert "in float32" in output
    epochs = re.findall(
        r"epoch +(\d+)/10  train loss ([0-9.]+)  test accuracy ([0-9.]+)%  \|  torch: train "
        r"loss ([0-9.]+)  test accuracy ([0-9.]+)%  \|  largest relative loss difference (\S+)",
        output,
    )
    assert [int(epoch[0]) for epoch in epochs] == list(range(1, 11))
    ours, theirs = [float(e[1]) for e in epochs], [float(e[3]) for e in epochs]
    assert ours[-1] < ours[0] / 10  # it learns
    for our_loss, torch_loss, difference in zip(ours, theirs, (float(e[5]) for e in epochs)):
        assert difference <= DEFAULT_RUN_RELATIVE_DIFFERENCE
        # The printed epoch means agree too (both printed to 6 decimals).
        assert our_loss == pytest.approx(torch_loss, rel=DEFAULT_RUN_RELATIVE_DIFFERENCE, abs=2e-6)
    assert float(epochs[0][5]) < 1e-5  # before rounding differences have had time to grow
    final = number_after("final test accuracy", output) / 100
    assert final >= DEFAULT_RUN_ACCURACY and final == float(epochs[-1][2]) / 100
    assert number_after("largest relative difference over all 230 steps:", output) == max(
        float(e[5]) for e in epochs
    )
    assert number_after("median time per step: minitorch_edu", output) > 0
    assert number_after(", torch", output.split("median time per step")[1]) > 0


def test_help_lists_the_options(command_results):
    result = command_results["help"]
    assert result.returncode == 0 and "usage: minitorch-edu train" in result.stdout
    for option in TRAIN_OPTIONS:
        assert option in result.stdout, option
    text = " ".join(result.stdout.split())
    assert "sgd with momentum 0.9, 10 epochs" in text
    assert "Options left out are taken from the checkpoint" in text


def test_bad_flag_is_a_usage_error(command_results):
    result = command_results["bad flag"]
    assert result.returncode == 2
    assert "usage: minitorch-edu" in result.stderr
    assert "unrecognized arguments: --learning-rate" in result.stderr


def test_a_foreign_checkpoint_is_a_one_line_error(command_results):
    result = command_results["foreign checkpoint"]
    assert result.returncode == 1
    assert result.stderr.startswith("minitorch-edu: error: ") and result.stderr.count("\n") == 1
    assert "is not a loadable minitorch_edu checkpoint: not a torch save archive" in result.stderr


# ---------------------------------------------------------------------- in process
def usage_error(capsys, *arguments):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", *arguments])
    assert exit_info.value.code == 2
    return " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--data", "mnist"], "mnist needs the directory holding its files: --data mnist:PATH"),
        (["--data", "mnist:"], "mnist needs the directory"),
        (["--data", "digits:/tmp"], "digits is bundled and takes no path"),
        (["--data", "mnist:/no/such/place"], "MNIST directory /no/such/place does not exist"),
        (["--lr", "0"], "argument --lr: must be a positive number, got 0.0"),
        (["--lr", "-0.5"], "argument --lr: must be a positive number, got -0.5"),
        (["--lr", "nan"], "argument --lr: must be a positive number, got nan"),
        (["--lr", "fast"], "argument --lr: invalid float value: 'fast'"),
        (["--batch-size", "0"], "argument --batch-size: must be a positive integer, got 0"),
        (["--batch-size", "2.5"], "argument --batch-size: invalid int value: '2.5'"),
        (["--epochs", "-1"], "argument --epochs: must be a positive integer, got -1"),
        (["--seed", "-3"], "argument --seed: must be a non-negative integer, got -3"),
        (["--momentum", "1.0", "--optimizer", "sgd"], "--momentum: must be in [0, 1), got 1.0"),
        (["--momentum", "-0.1"], "--momentum: must be in [0, 1), got -0.1"),
        (["--momentum", "0.9", "--optimizer", "adam"], "argument --momentum: adam has no momentum"),
        (["--model", "transformer"], "argument --model: invalid choice: 'transformer'"),
        (["--optimizer", "lbfgs"], "argument --optimizer: invalid choice: 'lbfgs'"),
        (["--device", "tpu"], "argument --device: invalid choice: 'tpu'"),
        (["--dtype", "float16"], "argument --dtype: invalid choice: 'float16'"),
        (["--plot", "curves.pdf"], "argument --plot: expected a .png file name, got 'curves.pdf'"),
        (["--plot", "/no/such/dir/curves.png"], "--plot: directory /no/such/dir does not exist"),
        (["--save", "/no/such/dir/run.pt"], "--save: directory /no/such/dir does not exist"),
        (["--resume", "/no/such/run.pt"], "--resume: checkpoint /no/such/run.pt does not exist"),
    ],
)  # fmt: skip
def test_bad_options_are_usage_errors_that_say_what_was_wrong(capsys, arguments, message):
    error = usage_error(capsys, *arguments)
    assert "usage: minitorch-edu train" in error
    assert message in error


def test_save_to_a_directory_is_refused(capsys, tmp_path):
    assert f"argument --save: {tmp_path} is a directory" in usage_error(
        capsys, "--save", str(tmp_path)
    )


def test_cuda_without_a_gpu_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    error = usage_error(capsys, "--device", "cuda")
    assert "argument --device: cuda was requested but torch finds no CUDA GPU" in error
    assert cli.parse_train_config(["--device", "auto"]).device == "cpu"


def test_auto_device_picks_cuda_when_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert cli.parse_train_config([]).device == "cuda"
    assert cli.parse_train_config(["--device", "cpu"]).device == "cpu"


def test_defaults_and_plain_dict_round_trip(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config = cli.parse_train_config([])
    assert config == cli.TrainConfig(
        data="digits", data_path=None, model="mlp", optimizer="sgd", lr=0.02, momentum=0.9,
        batch_size=64, epochs=10, seed=0, device="cpu", dtype="float32", compare_torch=True,
        plot=None, save=None, resume=None,
    )  # fmt: skip
    plain = config.to_dict()
    assert all(value is None or type(value) in (str, int, float, bool) for value in plain.values())
    assert cli.TrainConfig.from_dict(plain) == config
    with pytest.raises(ValueError, match="expected keys"):
        cli.TrainConfig.from_dict({**plain, "extra": 1})
    adam = cli.parse_train_config(["--optimizer", "adam", "--no-compare-torch"])
    assert (adam.lr, adam.momentum, adam.compare_torch) == (0.001, 0.0, False)
    assert cli.parse_train_config(["--optimizer", "rmsprop"]).momentum == 0.0
    plot = str(tmp_path / "c.PNG")
    options = ["--optimizer", "rmsprop", "--momentum", "0.5", "--lr", "0.01", "--plot", plot]
    explicit = cli.parse_train_config([*options, "--dtype", "float64"])
    assert (explicit.lr, explicit.momentum, explicit.plot, explicit.dtype) == (
        0.01,
        0.5,
        plot,
        "float64",
    )


def write_small_mnist(directory, train_count=6, test_count=4, labels_count=None):
    rng = np.random.default_rng(0)
    for prefix, count in (("train", train_count), ("t10k", test_count)):
        write_idx(
            directory / f"{prefix}-images-idx3-ubyte.gz",
            rng.integers(0, 256, (count, 28, 28), dtype=np.uint8),
        )
        labels = np.arange(labels_count or count, dtype=np.uint8) % 10
        write_idx(directory / f"{prefix}-labels-idx1-ubyte", labels)  # fmt: skip


def test_top_level_help_lists_the_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    output = capsys.readouterr().out
    assert "usage: minitorch-edu" in output and "train" in output


def test_the_cnn_trains_on_mnist_files(capsys, tmp_path):
    write_small_mnist(tmp_path, train_count=12)
    arguments = [
        "--data",
        f"mnist:{tmp_path}",
        "--model",
        "cnn",
        "--epochs",
        "2",
        "--device",
        "cpu",
    ]
    assert cli.main(["train", *arguments, "--batch-size", "5"]) == 0
    output = capsys.readouterr().out
    assert "data: mnist (1x28x28 images, 10 classes): 12 train / 4 test samples" in output
    assert "cnn: 28x28 images: conv1 pads by 2, conv2 by 0; sizes 28 -> pool 14 -> pool 5" in output
    assert "Linear(400->120)" in output and "(61,706 parameters)" in output
    assert "finished: 2 epochs, 6 steps" in output


def test_mnist_with_a_split_missing_is_a_usage_error(capsys, tmp_path):
    write_small_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    error = usage_error(capsys, "--data", f"mnist:{tmp_path}")
    assert (
        "no MNIST test files" in error and "found" in error and "t10k-images-idx3-ubyte.gz" in error
    )


def test_damaged_mnist_file_is_a_one_line_error(capsys, tmp_path):
    write_small_mnist(tmp_path, labels_count=5)
    assert cli.main(["train", "--data", f"mnist:{tmp_path}", "--device", "cpu"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("minitorch-edu: error: ") and "holds 6 images but" in error
    assert error.count("\n") == 1


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2
    assert "the following arguments are required: COMMAND" in capsys.readouterr().err


def test_interrupting_a_run_exits_with_130(capsys, monkeypatch):
    def interrupt(*arguments, **keywords):
        raise KeyboardInterrupt

    monkeypatch.setattr("minitorch_edu.train.train_one_epoch", interrupt)
    assert cli.main(["train", "--device", "cpu", "--no-compare-torch"]) == 130
    assert capsys.readouterr().err == "minitorch-edu: interrupted\n"


# ---------------------------------------------------------------------- resuming
@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A 1-epoch adam run on the digits, saved (what --resume reads its options from)."""
    path = tmp_path_factory.mktemp("saved") / "run.pt"
    options = ["--optimizer", "adam", "--lr", "0.002", "--batch-size", "256", "--seed", "3"]
    cli.main(["train", *options, "--epochs", "1", "--device", "cpu", "--save", str(path)])
    return path


def test_resume_takes_left_out_options_from_the_checkpoint(saved_run, capsys):
    config = cli.parse_train_config(["--resume", str(saved_run), "--epochs", "2"])
    saved = load_checkpoint(saved_run)["config"]
    assert config.to_dict() == {**saved, "epochs": 2, "resume": str(saved_run), "save": None}
    assert (config.optimizer, config.lr, config.batch_size, config.seed) == ("adam", 0.002, 256, 3)
    # Options given with the checkpoint's values are accepted; --save and --plot are free.
    same = ["--optimizer", "adam", "--lr", "0.002", "--model", "mlp", "--compare-torch"]
    config = cli.parse_train_config(
        ["--resume", str(saved_run), "--epochs", "3", *same, "--save", str(saved_run)]
    )
    assert (config.epochs, config.save) == (3, str(saved_run))
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--lr", "0.01"], "--lr 0.01 (checkpoint: 0.002)"),
        (["--optimizer", "sgd"], "--optimizer sgd (checkpoint: adam)"),
        (["--model", "cnn", "--seed", "4"], "--model cnn (checkpoint: mlp); --seed 4 (checkpoint:"),
        (["--batch-size", "64"], "--batch-size 64 (checkpoint: 256)"),
        (["--dtype", "float64"], "--dtype float64 (checkpoint: float32)"),
        (["--no-compare-torch"], "--compare-torch off (checkpoint: on)"),
    ],
)  # fmt: skip
def test_resume_refuses_options_that_change_training(saved_run, capsys, arguments, message):
    error = usage_error(capsys, "--resume", str(saved_run), "--epochs", "2", *arguments)
    assert "argument --resume: a resumed run must train as the saved one did" in error
    assert message in error


def test_resume_needs_epochs_left_to_train(saved_run, capsys):
    error = usage_error(capsys, "--resume", str(saved_run))
    assert f"argument --epochs: {saved_run} has completed 1 epochs already" in error
    assert "--epochs N, N > 1" in error
    assert "completed 1 epochs" in usage_error(capsys, "--resume", str(saved_run), "--epochs", "1")


def test_resume_stays_on_the_device_it_started_on(saved_run, tmp_path, capsys, monkeypatch):
    payload = load_checkpoint(saved_run)
    payload["config"]["device"] = "cuda"  # as if saved on a GPU machine
    moved = tmp_path / "from_a_gpu.pt"
    save_checkpoint(moved, payload)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    error = usage_error(capsys, "--resume", str(moved), "--epochs", "2")
    assert f"argument --resume: {moved} was trained on cuda, and torch finds no CUDA GPU" in error
    error = usage_error(capsys, "--resume", str(moved), "--epochs", "2", "--device", "cpu")
    assert "--device cpu (checkpoint: cuda)" in error


def test_explain_is_a_command_of_the_main_program(capsys):
    assert cli.main(["explain", "optimizer", "--name", "sgd", "--momentum", "0.9"]) == 0
    printed = capsys.readouterr().out
    assert "SGD step for weight[0, 0]" in printed
    assert "agrees" in printed and "DIFFERS" not in printed
    with pytest.raises(SystemExit) as usage:
        cli.main(["explain", "optimizer", "--name", "lbfgs"])
    assert usage.value.code == 2
