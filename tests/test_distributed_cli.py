"""`minitorch-edu train --nproc N`: data-parallel training through torch's launcher.

One real run as a user starts it (a subprocess; torchrun starts 2 ranks): it must agree with
torch's DistributedDataParallel twin and with one process training on the global batches.
Its checkpoint then resumes in 1 process and in 4 ranks (with ZeRO), and each resumed run
must end where the oracle ends: torch.nn and torch.optim in one process, from the
checkpoint's weights and optimizer state, on the global batches that torch's own
DistributedSampler gives that many ranks. Usage errors are checked without starting anything.
"""

import math
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import distributed_checks as checks
import pytest
import torch
import torch.distributed as dist

from minitorch_edu import cli
from minitorch_edu.checkpoint import TRAINING_KEYS, load_checkpoint, save_checkpoint
from minitorch_edu.data import load_digits
from minitorch_edu.testing.distributed import run_ranks
from reference.models import torch_model

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="torch.distributed with gloo is not available in this torch build",
)
REPOSITORY = Path(__file__).resolve().parents[1]
BATCH, LR, MOMENTUM, SEED = 64, 0.02, 0.9, 0
TOLERANCE = 1e-10  # float64, relative, after an epoch of 23 steps


def run_command(*arguments, timeout=300):
    """`python -m minitorch_edu ARGUMENTS` in its own session, killed whole if it overruns."""
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY), "CUDA_VISIBLE_DEVICES": ""}
    process = subprocess.Popen(
        [sys.executable, "-m", "minitorch_edu", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPOSITORY,
        env=environment,
        start_new_session=True,  # the launcher and its ranks: one process group to kill
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """One epoch of the MLP on the digits in float64 with 2 ranks, compared with torch's DDP
    and saved: (completed process, checkpoint path)."""
    checkpoint = tmp_path_factory.mktemp("nproc") / "two.pt"
    completed = run_command(
        "train", "--nproc", "2", "--epochs", "1", "--dtype", "float64", "--save", str(checkpoint)
    )
    assert completed.returncode == 0, completed.stderr
    return completed, checkpoint


def oracle(state, world_size, epochs, optimizer_state=None):
    """torch.nn + torch.optim in one process on the global batches of `world_size` ranks:
    step k takes every rank's k-th batch of its DistributedSampler share, together."""
    train = load_digits("train", seed=0, normalize=True)
    images, labels = train.tensors[0].double(), train.tensors[1]
    model = torch_model("mlp", (1, 8, 8), 10).double()
    model.load_state_dict(state)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    per_rank = BATCH // world_size
    for epoch in epochs:
        shares = []
        for rank in range(world_size):
            sampler = torch.utils.data.DistributedSampler(
                range(len(labels)), world_size, rank, shuffle=True, seed=SEED
            )
            sampler.set_epoch(epoch)
            shares.append(list(sampler))
        for start in range(0, len(shares[0]), per_rank):
            batch = sum((share[start : start + per_rank] for share in shares), [])
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(images[batch]), labels[batch]).backward()
            optimizer.step()
    return model.state_dict(), optimizer.state_dict()


def assert_close(ours, theirs):
    for name, value in theirs.items():
        difference = (ours[name] - value).abs().max() / value.abs().max()
        assert difference < TOLERANCE, (name, difference.item())


def initial_weights():
    from minitorch_edu import manual_seed
    from minitorch_edu.models import mlp

    manual_seed(SEED)
    return {name: value.double() for name, value in mlp(64, 10).state_dict().items()}


# ---------------------------------------------------------------------- the launcher
def test_nproc_trains_through_torchrun_and_agrees_with_torchs_ddp(two_ranks):
    completed, checkpoint = two_ranks
    out = completed.stdout
    assert "data parallel: 2 processes (gloo), global batch 64 = 2 x 32" in out
    assert "torch's DistributedDataParallel alongside" in out
    assert out.count("epoch 1/1") == 1  # rank 0 alone prints
    difference = float(re.search(r"largest relative difference over all 23 steps: (\S+)", out)[1])
    assert difference < 1e-12
    assert checkpoint.is_file()


def test_two_ranks_end_where_one_process_on_the_global_batches_ends(two_ranks):
    payload = load_checkpoint(two_ranks[1], required_keys=TRAINING_KEYS)
    assert payload["config"]["sampler"] == "distributed" and payload["config"]["nproc"] == 2
    model, _ = oracle(initial_weights(), 2, epochs=[0])
    assert_close(payload["model"], model)


def test_a_two_rank_checkpoint_resumes_in_one_process(two_ranks, tmp_path, capsys):
    saved = load_checkpoint(two_ranks[1], required_keys=TRAINING_KEYS)
    resumed = tmp_path / "one.pt"
    arguments = ["train", "--resume", str(two_ranks[1]), "--epochs", "2", "--save", str(resumed)]
    assert cli.main(arguments) == 0
    assert "data parallel: 1 process, global batch 64 = 1 x 64" in capsys.readouterr().out
    payload = load_checkpoint(resumed, required_keys=TRAINING_KEYS)
    model, optimizer = oracle(saved["model"], 1, epochs=[1], optimizer_state=saved["optimizer"])
    assert_close(payload["model"], model)
    assert_close(payload["optimizer"]["state"][0], optimizer["state"][0])
    assert payload["epoch"] == 2 and payload["config"]["nproc"] == 1


def test_a_two_rank_checkpoint_resumes_in_four_ranks_with_zero(two_ranks, tmp_path):
    saved = load_checkpoint(two_ranks[1], required_keys=TRAINING_KEYS)
    resumed = tmp_path / "four.pt"
    arguments = ["train", "--resume", str(two_ranks[1]), "--epochs", "2", "--zero"]
    arguments += ["--save", str(resumed)]
    results = run_ranks(
        checks.command_rank, 4, args=(arguments,), init=False, preload=checks.PRELOAD
    )
    assert [code for code, _, _ in results] == [0, 0, 0, 0], results[0][2]
    out = results[0][1]
    assert "4 processes (gloo), global batch 64 = 4 x 16, optimizer state sharded" in out
    difference = float(re.search(r"largest relative difference over all 46 steps: (\S+)", out)[1])
    assert difference < 1e-12  # torch's DDP and torch's ZeRO, resumed from the same state
    assert all(out == "" for _, out, _ in results[1:])  # only rank 0 prints
    payload = load_checkpoint(resumed, required_keys=TRAINING_KEYS)
    model, optimizer = oracle(saved["model"], 4, epochs=[1], optimizer_state=saved["optimizer"])
    assert_close(payload["model"], model)
    assert sorted(payload["optimizer"]["state"]) == list(range(8))  # consolidated: all of it
    for index, state in optimizer["state"].items():
        assert_close(payload["optimizer"]["state"][index], state)


# ---------------------------------------------------------------------- usage errors
def usage_error(capsys, *arguments):
    with pytest.raises(SystemExit) as exit:
        cli.main(["train", *arguments])
    assert exit.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--nproc", "0"], "--nproc: must be a positive number of processes, got 0"),
        (["--nproc", "3"], "the global batch of 64 does not split evenly over 3 processes"),
        (["--zero"], "--zero: ZeRO shards the optimizer state over processes; add --nproc N"),
        (["--master-port", "29500"], "--master-port: it sets the rendezvous of --nproc N"),
        (["--nproc", "2", "--master-port", "70000"], "70000 is not a port"),
    ],
)
def test_bad_data_parallel_options_are_usage_errors(capsys, arguments, message):
    assert message in usage_error(capsys, *arguments)


def test_more_processes_than_gpus_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    error = usage_error(capsys, "--nproc", "2", "--device", "cuda")
    assert "--nproc: 2 processes on cuda need one GPU each; torch finds 1" in error


def test_an_occupied_port_is_a_usage_error(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        error = usage_error(capsys, "--nproc", "2", "--master-port", str(port))
    assert f"--master-port: port {port} is in use; pick another or leave --master-port out" in error


def test_a_one_process_checkpoint_does_not_resume_in_several(capsys, tmp_path):
    from minitorch_edu.checkpoint import capture_rng_state
    from minitorch_edu.train import History

    config = cli.parse_train_config(["--epochs", "1"]).to_dict()
    path = tmp_path / "single.pt"
    payload = {
        "model": {},
        "optimizer": {"state": {}, "param_groups": []},
        "scheduler": None,
        "epoch": 1,
        "step": 23,
        "rng": capture_rng_state(),
        "loader": {},
        "config": config,
        "metrics": History().to_dict(),
    }
    save_checkpoint(path, payload)  # what a one-process run saves, as far as options go
    error = usage_error(capsys, "--resume", str(path), "--epochs", "2", "--nproc", "2")
    assert "was trained in one process, with the DataLoader's own shuffling" in error


def test_checkpoints_from_before_data_parallelism_still_load():
    config = cli.parse_train_config(["--epochs", "1"]).to_dict()
    for name in ("sampler", "nproc", "zero"):
        del config[name]
    assert cli.TrainConfig.from_dict(config).sampler == "loader"


def test_each_rank_runs_the_whole_configuration_spelled_out(monkeypatch):
    config = cli.parse_train_config(["--nproc", "2", "--lr", "0.1", "--zero"])
    argv = cli.rank_arguments(config)
    assert not any(a.startswith(("--nproc", "--master")) for a in argv)
    assert math.isclose(float(argv[argv.index("--lr") + 1]), 0.1)
    torchrun = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    for name, value in {**torchrun, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}.items():
        monkeypatch.setenv(name, value)
    assert cli.parse_train_config(argv[1:]) == config  # what a rank sees is what was asked
