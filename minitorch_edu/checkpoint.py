"""Checkpoints: save a training run's state to one file, safely, and load it back, safely.

Safe to write: the file is written under a temporary name in the same directory, flushed and
fsynced, then renamed over the target (`os.replace`, atomic), and the directory is fsynced. A
save that is interrupted (an exception, a full disk, a killed process) leaves the previous
checkpoint as it was. A write that fails (a full disk) raises an OSError that says so and
removes the temporary file; a killed save can leave its `.<name>.<pid>.<random>.tmp` behind,
and the next save into that directory removes it (`remove_stale_temporaries`).

Safe to read: files are read with `torch.load(weights_only=True)`, which only rebuilds
tensors and plain values and never runs code stored in a pickle. Before that, the file must
be a torch zip archive; after it, the contents must carry our format marker and version, and
a SHA-256 digest of the payload must match (torch does not notice flipped bytes inside tensor
data). Anything else raises `CheckpointError` naming the file and what is wrong.

A file holds

    {
        "format": "minitorch_edu.checkpoint",
        "format_version": 1,
        "minitorch_edu_version": "0.1.0",     (informational)
        "torch_version": "2.13.0+cpu",        (informational)
        "payload_sha256": "...",              (digest of the payload's structure and bytes)
        "payload": {...},                     (what the caller saved)
    }

and the payload is nested dicts (str or int keys), lists and tuples of None, bool, int,
float, str, torch.dtype, torch.device and torch.Tensor. A training run saves:

    {
        "model": model.state_dict(),          {parameter name: torch.Tensor}
        "optimizer": optimizer.state_dict(),  {"state": {index: {...}}, "param_groups": [...]}
        "scheduler": scheduler.state_dict() or None,
        "epoch": int,                         epochs completed
        "step": int,                          optimizer steps taken
        "rng": capture_rng_state(),           {"torch", "cuda", "python", "numpy"}
        "loader": train_loader.state_dict(),  {"generator_state", "in_progress", "epoch_order",
                                               "batches_yielded"}
        "config": {...},                      the run's settings (CLI options) as plain values
        "metrics": {...},                     e.g. {"train_loss": [...], "test_accuracy": [...]}
    }
"""

from __future__ import annotations

import hashlib
import os
import pickle
import random
import re
import secrets
import time
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = "minitorch_edu.checkpoint"
FORMAT_VERSION = 1
TRAINING_KEYS = (
    "model",
    "optimizer",
    "scheduler",
    "epoch",
    "step",
    "rng",
    "loader",
    "config",
    "metrics",
)
_ZIP_START = b"PK\x03\x04"
_PLAIN_TYPES = (type(None), bool, int, str, torch.dtype, torch.device)


class CheckpointError(ValueError):
    """A file is not a loadable minitorch_edu checkpoint: foreign, damaged, or too new."""


# ---------------------------------------------------------------------- saving
def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write `payload` to `path` atomically: the old file stays whole until the new one is."""
    if not isinstance(payload, dict):
        raise TypeError(f"save_checkpoint: payload must be a dict, got {type(payload).__name__}")
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"save_checkpoint: directory {path.parent} does not exist")
    from minitorch_edu import __version__

    wrapper = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "minitorch_edu_version": __version__,
        "torch_version": str(torch.__version__),  # a str subclass that weights_only refuses
        "payload_sha256": payload_digest(payload),  # also rejects values we could not load
        "payload": payload,
    }
    write_atomically(path, lambda file: torch.save(wrapper, file), "checkpoint")


def write_atomically(path: Path, write: Any, what: str = "file") -> None:
    """Call `write(file)` on a new temporary file beside `path`, then rename it over `path`.

    A failed write (OSError, or torch's RuntimeError wrapping one: "enforce fail at
    inline_container.cc") removes the temporary file and raises an OSError naming `path`, the
    reason, and that the file already there is unchanged. Stale temporaries of earlier, killed
    saves to `path` are removed first.
    """
    directory = path.parent
    remove_stale_temporaries(path)
    temporary = directory / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        with _open_new(temporary) as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        cause = _os_error_in(error)
        if cause is None:
            raise
        kept = f"the previous {path.name} is unchanged and " if path.exists() else ""
        failure = type(cause)(  # the same kind: PermissionError stays one
            f"cannot write {what} {path}: {cause.strerror or cause}; {kept}no partial file was left"
        )
        failure.errno = cause.errno  # so callers can still tell ENOSPC from EACCES
        raise failure from error
    _fsync_directory(directory)


def _open_new(path: Path) -> Any:
    # O_EXCL: never write through a file (or link) someone else made; 0o666 minus the umask
    # gives the permissions an ordinary open() would.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    return os.fdopen(descriptor, "wb")


def _os_error_in(error: BaseException) -> OSError | None:
    """The OSError behind a failed write: the error itself, or what torch's writer met."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, OSError) and error.errno is not None:
            return error
        error, seen = error.__cause__ or error.__context__, seen + 1
    return None


# A temporary made by write_atomically: .<name>.<pid>.<8 hex digits>.tmp
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp")
STALE_AFTER_SECONDS = 24 * 3600


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove temporaries of earlier saves to `path` whose writer is gone (its process no longer
    runs, or the file is a day old); a save still in progress elsewhere is left alone.
    Returns what was removed."""
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        match = _TEMPORARY.fullmatch(entry.name)
        if match is None or match["name"] != path.name or not entry.is_file(follow_symlinks=False):
            continue
        pid = int(match["pid"])
        try:
            old = now - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_SECONDS
        except OSError:
            continue
        if pid == os.getpid() or not _process_exists(pid) or old:
            try:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                pass
    return removed


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process (or a number we cannot check): keep its file
    return True


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); platforms without directory fsync skip it."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def payload_digest(payload: Any) -> str:
    """SHA-256 over the payload's structure, types and bytes (tensors by dtype, shape, bytes).

    Raises TypeError, naming the place, for any value a checkpoint cannot hold.
    """
    digest = hashlib.sha256()
    _digest_into(digest, payload, "payload")
    return digest.hexdigest()


def _digest_into(digest: Any, value: Any, where: str) -> None:
    # Exact types, not isinstance: subclasses (NumPy floats, enums, namedtuples) would pickle
    # as objects that a weights_only load refuses.
    kind = type(value)

    def add(tag: str, text: str = "") -> None:
        digest.update(f"{tag}:{len(text)}:{text};".encode())

    if isinstance(value, torch.Tensor):
        if value.layout != torch.strided or value.is_quantized:
            raise TypeError(
                f"checkpoint {where}: only dense tensors can be saved, got {value.layout}"
            )
        if value.requires_grad:
            raise TypeError(
                f"checkpoint {where}: save tensor.detach(), not a tensor requiring grad"
            )
        add("tensor", f"{value.dtype}{tuple(value.shape)}")
        if value.numel():  # an empty tensor may have stride 0, which cannot be viewed as bytes
            flat = value.detach().reshape(-1).contiguous().cpu()
            digest.update(flat.view(torch.uint8).numpy())  # hashed in place, not copied
    elif kind is float:
        add("float", value.hex())
    elif kind in _PLAIN_TYPES:
        add(kind.__name__, str(value))
    elif kind in (dict, OrderedDict):
        add("dict", str(len(value)))
        for key, item in value.items():
            if type(key) not in (str, int):
                raise TypeError(
                    f"checkpoint {where}: dict keys must be str or int, got {type(key).__name__} "
                    f"{key!r}"
                )
            _digest_into(digest, key, where)
            _digest_into(digest, item, f"{where}[{key!r}]")
    elif kind in (list, tuple, torch.Size):
        add("list" if kind is list else "tuple", str(len(value)))
        for index, item in enumerate(value):
            _digest_into(digest, item, f"{where}[{index}]")
    else:
        hint = ""
        if kind.__module__.startswith("minitorch_edu"):
            hint = " (save its .data, or its state_dict())"
        elif kind.__module__ == "numpy":
            hint = " (convert with torch.from_numpy(array) or .item())"
        raise TypeError(
            f"checkpoint {where} is a {kind.__module__}.{kind.__qualname__}; a checkpoint holds "
            "only dicts, lists, tuples, None, bool, int, float, str, torch.dtype, "
            f"torch.device and torch.Tensor{hint}"
        )


# ---------------------------------------------------------------------- loading
def load_checkpoint(
    path: str | os.PathLike,
    map_location: Any = "cpu",
    required_keys: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The payload saved by `save_checkpoint`, after checking the file is whole and ours.

    required_keys: payload keys that must be present (e.g. TRAINING_KEYS).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")

    def refuse(problem: str) -> CheckpointError:
        return CheckpointError(f"{path} is not a loadable minitorch_edu checkpoint: {problem}")

    with open(path, "rb") as file:
        start = file.read(4)
    if start != _ZIP_START:
        kind = "empty file" if not start else f"starts with bytes {start!r}"
        raise refuse(f"not a torch save archive ({kind}; a legacy pickle, or damaged)")
    try:
        wrapper = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        if "global" not in str(error).lower():  # not a refused object: damaged pickle bytes
            raise refuse(
                f"the archive is damaged ({type(error).__name__}: {_first_line(error)})"
            ) from error
        raise refuse(
            "it holds objects other than tensors and plain values, which are never unpickled "
            f"here ({_first_line(error)})"
        ) from error
    except Exception as error:  # noqa: BLE001 - any failure to decode means a damaged file
        raise refuse(
            f"the archive is truncated, damaged or not a torch file ({type(error).__name__}: "
            f"{_first_line(error)})"
        ) from error

    if not isinstance(wrapper, dict) or wrapper.get("format") != FORMAT:
        raise refuse(f"no '{FORMAT}' format marker (a torch file saved some other way?)")
    version = wrapper.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise refuse(f"invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise refuse(
            f"format version {version} was written by a newer minitorch_edu; this one reads "
            f"versions up to {FORMAT_VERSION}"
        )
    missing = [key for key in ("payload", "payload_sha256") if key not in wrapper]
    if missing:
        raise refuse(f"missing {', '.join(missing)}")
    payload = wrapper["payload"]
    if not isinstance(payload, dict):
        raise refuse(f"payload is a {type(payload).__name__}, expected a dict")
    try:
        digest = payload_digest(payload)
    except TypeError as error:
        raise refuse(str(error)) from error
    if digest != wrapper["payload_sha256"]:
        raise refuse("payload digest does not match: the file's contents were altered or damaged")
    missing = [key for key in required_keys if key not in payload]
    if missing:
        raise refuse(f"payload lacks required keys {missing} (it has {sorted(map(str, payload))})")
    return payload


def _first_line(error: BaseException) -> str:
    """The informative line of a torch error (for weights_only refusals, what it refused)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if "GLOBAL" in line:  # what a weights_only load refused to import
            return line.removeprefix("WeightsUnpickler error:").strip().split(". ")[0][:300]
    return (lines[0].split(". ")[0] if lines else type(error).__name__)[:300]


# ---------------------------------------------------------------------- random number state
def capture_rng_state() -> dict[str, Any]:
    """Every global random number generator's state, as plain values and tensors.

    torch    torch.get_rng_state() (CPU)
    cuda     [state per GPU] (empty without CUDA)
    python   random.getstate()
    numpy    np.random.get_state(), its key array as an int64 tensor
    """
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put back what `capture_rng_state` returned (after it went through a checkpoint)."""
    torch.set_rng_state(state["torch"].cpu())
    cuda_states = state["cuda"]
    if cuda_states:
        if torch.cuda.is_available() and torch.cuda.device_count() == len(cuda_states):
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])
        else:
            warnings.warn(
                f"the checkpoint holds random state for {len(cuda_states)} GPU(s), this machine "
                f"has {torch.cuda.device_count() if torch.cuda.is_available() else 0}; "
                "GPU random numbers will differ from the original run",
                stacklevel=2,
            )
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
