"""The `minitorch-edu` command: help, usage errors (exit code 2) that say what was wrong,
data loading, and an honest "not written yet" from the training loop."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from minitorch_edu import cli
from minitorch_edu.data import write_idx

REPOSITORY = Path(__file__).resolve().parents[1]
TRAIN_OPTIONS = [
    "--data", "--model", "--optimizer", "--lr", "--momentum", "--batch-size", "--epochs",
    "--seed", "--device", "--compare-torch", "--no-compare-torch", "--plot", "--save", "--resume",
]  # fmt: skip


SUBPROCESS_RUNS = {
    "help": ["train", "--help"],
    "bad flag": ["train", "--learning-rate", "0.1"],
    "bad data": ["train", "--data", "cifar10"],
}


@pytest.fixture(scope="module")
def command_results():
    """`python -m minitorch_edu ARGUMENTS` for each run above, each in a fresh process."""
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    return {
        name: subprocess.run(
            [sys.executable, "-m", "minitorch_edu", *arguments],
            capture_output=True,
            text=True,
            cwd=REPOSITORY,
            env=environment,
            timeout=120,
        )
        for name, arguments in SUBPROCESS_RUNS.items()
    }


# ---------------------------------------------------------------------- as a subprocess
def test_help_lists_the_options(command_results):
    result = command_results["help"]
    assert result.returncode == 0 and "usage: minitorch-edu train" in result.stdout
    for option in TRAIN_OPTIONS:
        assert option in result.stdout, option
    assert "not written yet" in " ".join(result.stdout.split())  # promises no training yet


def test_bad_flag_is_a_usage_error(command_results):
    result = command_results["bad flag"]
    assert result.returncode == 2
    assert "usage: minitorch-edu" in result.stderr
    assert "unrecognized arguments: --learning-rate" in result.stderr


def test_validation_error_from_a_subprocess(command_results):
    result = command_results["bad data"]
    assert result.returncode == 2
    assert "usage: minitorch-edu train" in result.stderr
    assert (
        "argument --data: unknown data set 'cifar10'; choose digits or mnist:PATH" in result.stderr
    )


# ---------------------------------------------------------------------- in process
def usage_error(capsys, *arguments):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", *arguments])
    assert exit_info.value.code == 2
    return capsys.readouterr().err


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
        (["--momentum", "0.9", "--optimizer", "adam"], "argument --momentum: adam has no momentum"),
        (["--model", "transformer"], "argument --model: invalid choice: 'transformer'"),
        (["--optimizer", "lbfgs"], "argument --optimizer: invalid choice: 'lbfgs'"),
        (["--device", "tpu"], "argument --device: invalid choice: 'tpu'"),
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


def test_config_defaults_and_plain_dict_round_trip(tmp_path):
    config = cli.parse_train_config(["--optimizer", "sgd", "--device", "cpu", "--no-compare-torch"])
    assert (config.lr, config.momentum) == (cli.DEFAULT_LEARNING_RATES["sgd"], 0.0)
    assert config.compare_torch is False and config.data == "digits" and config.data_path is None
    plain = config.to_dict()
    assert all(value is None or type(value) in (str, int, float, bool) for value in plain.values())
    assert cli.TrainConfig.from_dict(plain) == config
    with pytest.raises(ValueError, match="expected keys"):
        cli.TrainConfig.from_dict({**plain, "extra": 1})
    plot = str(tmp_path / "c.PNG")
    options = ["--optimizer", "rmsprop", "--momentum", "0.5", "--lr", "0.01", "--plot", plot]
    explicit = cli.parse_train_config([*options, "--device", "cpu"])
    assert (explicit.lr, explicit.momentum, explicit.plot) == (0.01, 0.5, plot)


def write_small_mnist(directory, train_count=6, test_count=4, labels_count=None):
    rng = np.random.default_rng(0)
    for prefix, count in (("train", train_count), ("t10k", test_count)):
        write_idx(
            directory / f"{prefix}-images-idx3-ubyte.gz",
            rng.integers(0, 256, (count, 28, 28), dtype=np.uint8),
        )
        labels = np.arange(labels_count or count, dtype=np.uint8) % 10
        write_idx(directory / f"{prefix}-labels-idx1-ubyte", labels)  # fmt: skip


def test_train_loads_the_digits_and_says_training_is_not_written_yet(capsys):
    assert cli.main(["train", "--data", "digits", "--epochs", "1", "--device", "cpu"]) == 1
    output = capsys.readouterr()
    sizes = "data: digits (1x8x8 images, 10 classes): 1438 train / 359 test samples"
    assert sizes in output.out
    assert (
        output.err == "minitorch-edu: error: the training loop is not written yet: options "
        "were validated and the data loaded, but no model was trained\n"
    )


def test_top_level_help_lists_the_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    output = capsys.readouterr().out
    assert "usage: minitorch-edu" in output and "train" in output


def test_train_on_mnist_files_loads_both_splits(capsys, tmp_path):
    write_small_mnist(tmp_path)
    assert cli.main(["train", "--data", f"mnist:{tmp_path}", "--device", "cpu"]) == 1
    output = capsys.readouterr()
    assert "data: mnist (1x28x28 images, 6 classes): 6 train / 4 test samples" in output.out
    assert "the training loop is not written yet" in output.err


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
