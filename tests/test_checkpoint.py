"""Checkpoints: exact round trips, atomic saves that survive interruption, refusal of every
file that is not a whole minitorch_edu checkpoint (without ever running code from a pickle)."""

import errno
import math
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minitorch_edu as mt
from minitorch_edu import checkpoint
from minitorch_edu.checkpoint import (
    FORMAT,
    TRAINING_KEYS,
    CheckpointError,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)

REPOSITORY = Path(__file__).resolve().parents[1]


def assert_identical(loaded, original):
    """Same types (exactly), same structure, bit-identical tensors and floats."""
    assert type(loaded) is type(original), (type(loaded), type(original))
    if isinstance(original, torch.Tensor):
        assert loaded.dtype == original.dtype and loaded.shape == original.shape
        assert original.numel() == 0 or torch.equal(
            loaded.reshape(-1).view(torch.uint8),
            original.reshape(-1).contiguous().view(torch.uint8),
        )
    elif isinstance(original, dict):
        assert list(loaded) == list(original)
        for key in original:
            assert_identical(loaded[key], original[key])
    elif isinstance(original, list | tuple):
        assert len(loaded) == len(original)
        for mine, theirs in zip(loaded, original):
            assert_identical(mine, theirs)
    elif isinstance(original, float):
        assert loaded.hex() == original.hex() if not math.isnan(original) else math.isnan(loaded)
    else:
        assert loaded == original


def training_payload(scale=1.0):
    """A payload laid out as a training run saves it."""
    return {
        "model": OrderedDict(
            [
                ("0.weight", torch.randn(4, 3) * scale),
                ("0.bias", torch.zeros(4, dtype=torch.float64)),
            ]
        ),
        "optimizer": {
            "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(4, 3)}},
            "param_groups": [
                {"lr": 1e-3, "betas": (0.9, 0.999), "foreach": None, "params": [0, 1]}
            ],
        },
        "scheduler": None,
        "odd_tensors": [
            torch.randn(3, 4).t(),  # not contiguous
            torch.randn(5).to(torch.bfloat16),
            torch.tensor(2.5, dtype=torch.float64),  # 0-dim
            torch.zeros(0, 3),
            torch.tensor([True, False]),
        ],
        "epoch": 2,
        "step": 46,
        "rng": capture_rng_state(),
        "loader": mt.data.DataLoader(
            mt.data.TensorDataset(torch.arange(5)), generator=torch.Generator()
        ).state_dict(),
        "config": {"data": "digits", "lr": 1e-3, "plot": None, "device": "cpu"},
        "metrics": {"train_loss": [2.3, 1.1, float("nan")], "test_accuracy": [0.5, 0.8]},
    }


# ---------------------------------------------------------------------- round trips
def test_training_payload_round_trips(tmp_path):
    payload = training_payload()
    save_checkpoint(tmp_path / "run.pt", payload)
    loaded = load_checkpoint(tmp_path / "run.pt", required_keys=TRAINING_KEYS)
    assert_identical(loaded, payload)


tensor_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**62), 2**62),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from([torch.float32, torch.int64, torch.device("cpu")]),
    st.sampled_from(["f8", "f4", "i8", "u1", "?"]).flatmap(
        lambda dtype: hnp.arrays(np.dtype(dtype), tensor_shapes)
    ).map(lambda array: torch.from_numpy(array.copy())),
)  # fmt: skip
payloads = st.dictionaries(
    st.text(max_size=6),
    st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.lists(children, max_size=3).map(tuple),
            st.dictionaries(st.text(max_size=4) | st.integers(-5, 5), children, max_size=3),
        ),
        max_leaves=12,
    ),
    max_size=4,
)


@given(payload=payloads)
def test_any_plain_payload_round_trips_exactly(tmp_path, payload):
    save_checkpoint(tmp_path / "any.pt", payload)
    assert_identical(load_checkpoint(tmp_path / "any.pt"), payload)


def test_rng_state_survives_a_checkpoint(tmp_path):
    save_checkpoint(tmp_path / "rng.pt", {"rng": capture_rng_state()})
    expected = (torch.rand(3), random.random(), np.random.rand(2))
    restore_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    again = (torch.rand(3), random.random(), np.random.rand(2))
    assert torch.equal(expected[0], again[0]) and expected[1] == again[1]
    np.testing.assert_array_equal(expected[2], again[2])


def test_unsaveable_values_are_named_before_anything_is_written(tmp_path):
    path = tmp_path / "run.pt"
    save_checkpoint(path, {"epoch": 1})
    before = path.read_bytes()
    cases = [
        (
            {"model": {"w": mt.tensor([1.0])}},
            r"payload\['model'\]\['w'\] is a minitorch_edu.*\.data",
        ),
        ({"rng": (np.zeros(2),)}, r"payload\['rng'\]\[0\] is a numpy.ndarray.*torch.from_numpy"),
        ({"lr": np.float64(0.1)}, r"payload\['lr'\] is a numpy.float64"),
        ({"s": {1, 2}}, r"payload\['s'\] is a builtins.set"),
        ({"d": {(1, 2): 3}}, r"dict keys must be str or int, got tuple"),
        ({"g": torch.ones(2, requires_grad=True)}, r"payload\['g'\].*detach"),
    ]
    for payload, message in cases:
        with pytest.raises(TypeError, match=message):
            save_checkpoint(path, payload)
    with pytest.raises(TypeError, match="payload must be a dict, got list"):
        save_checkpoint(path, [1])
    with pytest.raises(FileNotFoundError, match="directory .*missing does not exist"):
        save_checkpoint(tmp_path / "missing" / "run.pt", {})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]


# ---------------------------------------------------------------------- interrupted saves
def interrupt_torch_save(monkeypatch):
    """torch.save writes part of the file, then the process is interrupted."""
    real_save = torch.save

    def half_then_interrupt(obj, file):
        real_save(obj, file)
        file.truncate(file.tell() // 2)
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.torch, "save", half_then_interrupt)
    return KeyboardInterrupt


def fail_fsync(monkeypatch):
    def no_space(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.os, "fsync", no_space)
    return OSError


def fail_replace(monkeypatch):
    def refuse(source, target):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(checkpoint.os, "replace", refuse)
    return PermissionError


@pytest.mark.parametrize("interrupt", [interrupt_torch_save, fail_fsync, fail_replace])
def test_interrupted_save_leaves_the_previous_checkpoint_untouched(
    tmp_path, monkeypatch, interrupt
):
    path = tmp_path / "run.pt"
    previous = training_payload()
    save_checkpoint(path, previous)
    before = path.read_bytes()
    error = interrupt(monkeypatch)
    with pytest.raises(error):
        save_checkpoint(path, training_payload(scale=10.0))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert_identical(load_checkpoint(path), previous)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]  # no temporary file left


WRITER = textwrap.dedent(
    """
    import itertools, os, sys, time, torch
    from minitorch_edu import checkpoint
    path, mode = sys.argv[1], sys.argv[2]
    if mode == "slow-fsync":  # a slow disk: say so, then take long to flush
        def slow_fsync(descriptor, real=os.fsync):
            open(path + ".fsync-started", "w").close()
            time.sleep(60)
            real(descriptor)
        checkpoint.os.fsync = slow_fsync
    weights = torch.empty(16_000_000)  # 64 MB: long enough to be caught writing
    for generation in itertools.count():
        payload = {"generation": generation, "weights": weights.fill_(generation)}
        checkpoint.save_checkpoint(path, payload)
    """
)


def temporary_files(directory):
    return [p for p in directory.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("mode", ["mid-write", "slow-fsync"])
def test_killed_writer_leaves_a_loadable_checkpoint(tmp_path, mode):
    """SIGKILL a process while it writes a large checkpoint: the file at the target path is
    still a whole checkpoint, and the half-written temporary file is refused."""
    path = tmp_path / "run.pt"
    save_checkpoint(path, {"generation": -1, "weights": torch.full((3,), -1.0)})
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), mode], env=environment)
    caught = None
    deadline = time.monotonic() + 40
    try:
        while caught is None and time.monotonic() < deadline and writer.poll() is None:
            if mode == "slow-fsync":
                caught = Path(f"{path}.fsync-started").exists() or None
            else:
                # Partly written: present, and well short of 64 MB.
                for temporary in temporary_files(tmp_path):
                    try:
                        if 1_000_000 < temporary.stat().st_size < 32_000_000:
                            caught = True
                    except FileNotFoundError:
                        pass
            time.sleep(0.0005)
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait()
    assert writer.returncode == -signal.SIGKILL, "the writer died on its own"
    assert caught, f"never caught the writer {mode}"

    payload = load_checkpoint(path)
    generation = payload["generation"]
    assert torch.all(payload["weights"] == generation), "a mix of two saves"
    leftovers = temporary_files(tmp_path)
    assert leftovers, "the kill should have left the temporary file behind"
    if mode == "mid-write":
        for leftover in leftovers:
            with pytest.raises(CheckpointError, match="truncated, damaged"):
                load_checkpoint(leftover)
    # The next save cleans up after the killed one.
    save_checkpoint(path, {"generation": -2})
    assert temporary_files(tmp_path) == []
    assert load_checkpoint(path) == {"generation": -2}


def no_such_process() -> int:
    """A process id that no process can have (above the kernel's largest)."""
    try:
        return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
    except OSError:
        return 2**22 + 1


def test_a_save_removes_only_stale_temporaries_of_its_own_file(tmp_path):
    path = tmp_path / "run.pt"
    dead, alive = no_such_process(), os.getppid()
    stale = tmp_path / f".run.pt.{dead}.0badc0de.tmp"
    ancient = tmp_path / f".run.pt.{alive}.0ddba11a.tmp"
    kept = [
        tmp_path / f".run.pt.{alive}.5ca1ab1e.tmp",  # a save in progress in another process
        tmp_path / f".other.pt.{dead}.0badc0de.tmp",  # another file's
        tmp_path / ".run.pt.notes.tmp",  # not ours at all
        tmp_path / "run.pt.tmp",
    ]
    for file in [stale, ancient, *kept]:
        file.write_bytes(b"half")
    day_and_more = time.time() - checkpoint.STALE_AFTER_SECONDS - 60
    os.utime(ancient, (day_and_more, day_and_more))
    save_checkpoint(path, {"a": 1})
    assert sorted(tmp_path.iterdir()) == sorted([path, *kept])


class FullDisk:
    """A file whose writes fail with ENOSPC once `room` bytes are written, as a full disk's do."""

    def __init__(self, file, room):
        self.file, self.room = file, room

    def write(self, data):
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.file.write(data)

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.file.close()


@pytest.mark.parametrize("room", [0, 3000])
def test_a_full_disk_gives_a_clear_error_and_keeps_the_previous_checkpoint(
    tmp_path, monkeypatch, room
):
    """torch's own writer meets ENOSPC (it raises 'enforce fail at inline_container.cc')."""
    path = tmp_path / "run.pt"
    previous = training_payload()
    save_checkpoint(path, previous)
    before = path.read_bytes()
    open_new = checkpoint._open_new
    monkeypatch.setattr(checkpoint, "_open_new", lambda target: FullDisk(open_new(target), room))
    with pytest.raises(OSError) as failure:
        save_checkpoint(path, training_payload(scale=10.0))
    assert failure.value.errno == errno.ENOSPC
    assert str(failure.value) == (
        f"cannot write checkpoint {path}: No space left on device; the previous run.pt is "
        "unchanged and no partial file was left"
    )
    assert path.read_bytes() == before
    assert sorted(tmp_path.iterdir()) == [path]
    new = tmp_path / "new.pt"
    with pytest.raises(
        OSError, match=f"cannot write checkpoint {new}: No space left on device; no"
    ):
        save_checkpoint(new, {"a": torch.zeros(1000)})
    assert sorted(tmp_path.iterdir()) == [path]


FULL_TMPFS = textwrap.dedent(
    """
    import os, sys, torch
    from minitorch_edu.checkpoint import load_checkpoint, save_checkpoint
    directory = sys.argv[1]
    os.system(f"mount -t tmpfs -o size=600k none {directory}")
    path = os.path.join(directory, "run.pt")
    save_checkpoint(path, {"weights": torch.zeros(100_000)})  # 400 kB: fits once, not twice
    before = open(path, "rb").read()
    try:
        save_checkpoint(path, {"weights": torch.ones(100_000)})
    except OSError as error:
        print(error)
    assert open(path, "rb").read() == before
    assert torch.equal(load_checkpoint(path)["weights"], torch.zeros(100_000))
    print(sorted(os.listdir(directory)))
    """
)


def test_a_save_onto_a_really_full_disk(tmp_path):
    """A real full file system: a small tmpfs, mounted in a user namespace (skipped where the
    machine allows none)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("no `unshare` to mount a small tmpfs without privileges")
    probe = subprocess.run(
        [
            unshare,
            "--user",
            "--map-root-user",
            "--mount",
            "mount",
            "-t",
            "tmpfs",
            "none",
            str(tmp_path),
        ],
        capture_output=True,
    )
    if probe.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs in a user namespace here: {probe.stderr.decode().strip()}"
        )
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    result = subprocess.run(
        [
            unshare,
            "--user",
            "--map-root-user",
            "--mount",
            sys.executable,
            "-c",
            FULL_TMPFS,
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    path = tmp_path / "run.pt"
    assert result.stdout == (
        f"cannot write checkpoint {path}: No space left on device; the previous run.pt is "
        "unchanged and no partial file was left\n['run.pt']\n"
    )


# ---------------------------------------------------------------------- refusals
class RunsCode:
    """Unpickling this would call os.mkdir(marker): what a malicious checkpoint does."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_malicious_pickles_are_refused_without_running_their_code(tmp_path):
    marker = tmp_path / "code-ran"
    evil = RunsCode(marker)
    # The trap is real: an ordinary unpickle runs the code.
    pickle.loads(pickle.dumps(evil))
    assert marker.exists()
    marker.rmdir()

    plain_pickle = tmp_path / "plain.pkl"
    plain_pickle.write_bytes(pickle.dumps({"format": FORMAT, "payload": evil}))
    inside_torch_file = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "format_version": 1, "payload": {"x": evil}}, inside_torch_file)
    with pytest.raises(CheckpointError, match="not a torch save archive"):
        load_checkpoint(plain_pickle)
    with pytest.raises(CheckpointError, match=r"objects other than tensors .*GLOBAL posix.mkdir"):
        load_checkpoint(inside_torch_file)
    assert not marker.exists()


def valid_file(tmp_path):
    path = tmp_path / "valid.pt"
    save_checkpoint(path, {"weights": torch.arange(250_000, dtype=torch.float32), "epoch": 3})
    return path


def test_corrupted_tensor_bytes_are_caught_by_the_digest(tmp_path):
    path = valid_file(tmp_path)
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0x40  # deep inside the 1 MB tensor
    path.write_bytes(bytes(content))
    # torch alone does not notice...
    assert torch.load(path, weights_only=True)["payload"]["epoch"] == 3
    # ...the digest does.
    with pytest.raises(CheckpointError, match="payload digest does not match"):
        load_checkpoint(path)


@pytest.mark.parametrize("keep", [0.0, 0.001, 0.3, 0.9, 0.9999])
def test_truncated_files_are_refused(tmp_path, keep):
    path = valid_file(tmp_path)
    content = path.read_bytes()
    path.write_bytes(content[: int(len(content) * keep)])
    with pytest.raises(
        CheckpointError, match=f"{path.name} is not a loadable minitorch_edu checkpoint"
    ):
        load_checkpoint(path)


def test_foreign_files_are_refused_with_the_reason(tmp_path):
    cases = {
        "random.bin": (random.Random(0).randbytes(5000), "not a torch save archive"),
        "empty.pt": (b"", r"not a torch save archive \(empty file"),
        "notes.txt": (b"epoch 3, loss 0.1\n", "not a torch save archive"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match=f"{name} is not a loadable .*: {message}"):
            load_checkpoint(tmp_path / name)

    torch.save({"model": {"w": torch.ones(2)}}, tmp_path / "plain_torch.pt")
    with pytest.raises(CheckpointError, match="no 'minitorch_edu.checkpoint' format marker"):
        load_checkpoint(tmp_path / "plain_torch.pt")
    torch.save(torch.ones(3), tmp_path / "tensor.pt")
    with pytest.raises(CheckpointError, match="format marker"):
        load_checkpoint(tmp_path / "tensor.pt")


def test_versions_and_required_keys_are_checked(tmp_path):
    path = valid_file(tmp_path)
    wrapper = torch.load(path, weights_only=True)
    torch.save({**wrapper, "format_version": 2}, tmp_path / "newer.pt")
    with pytest.raises(CheckpointError, match="format version 2 was written by a newer"):
        load_checkpoint(tmp_path / "newer.pt")
    torch.save({**wrapper, "format_version": "1"}, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match="invalid format_version '1'"):
        load_checkpoint(tmp_path / "odd.pt")
    without_digest = {key: value for key, value in wrapper.items() if key != "payload_sha256"}
    torch.save(without_digest, tmp_path / "no_digest.pt")
    with pytest.raises(CheckpointError, match="missing payload_sha256"):
        load_checkpoint(tmp_path / "no_digest.pt")
    with pytest.raises(CheckpointError, match=r"lacks required keys \['model', 'optimizer'\]"):
        load_checkpoint(path, required_keys=("model", "epoch", "optimizer"))
    with pytest.raises(FileNotFoundError, match="checkpoint .*absent.pt does not exist"):
        load_checkpoint(tmp_path / "absent.pt")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_every_flipped_byte_of_the_pickle_gives_the_checkpoint_error_or_the_same_payload(
    tmp_path,
):
    """torch's unpickler meets damaged bytes with IndexError, TypeError, AssertionError...;
    none of them may reach the user: each is a CheckpointError naming the file."""
    path = tmp_path / "good.pt"
    payload = {"model": {"w": torch.ones(2, 3)}, "state": {0: {"step": torch.tensor(3.0)}}}
    payload["settings"] = [1, 2.5, "s", None, (True, -7)]
    save_checkpoint(path, payload)
    good = path.read_bytes()
    (pickle_entry,) = [i for i in zipfile.ZipFile(path).infolist() if i.filename.endswith(".pkl")]
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(good)
    refused = 0
    with open(damaged, "r+b") as file:
        for position in range(pickle_entry.header_offset + 30 + pickle_entry.compress_size):
            for flip in (0xFF,):
                os.pwrite(file.fileno(), bytes([good[position] ^ flip]), position)
                try:
                    assert_identical(load_checkpoint(damaged), payload)
                except CheckpointError as error:
                    assert str(error).startswith(f"{damaged} is not a loadable minitorch_edu")
                    refused += 1
            os.pwrite(file.fileno(), good[position : position + 1], position)
    assert refused > 300
