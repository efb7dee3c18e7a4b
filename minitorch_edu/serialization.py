"""`minitorch_edu.save` / `minitorch_edu.load`: state dicts to and from files, as the tutorials
write them:

    mt.save(model.state_dict(), "model.pth")
    model.load_state_dict(mt.load("model.pth", weights_only=True))

A file holds what `torch.save` writes for the same state dict (our Tensors are stored as the
torch tensors they hold), so torch loads it into a torch model and we load torch's files.

Only weights: `save` takes state dicts (nested dicts, lists and tuples of tensors, numbers,
strings, None, dtypes and devices) and refuses a model or any other object, naming where it
sits; `load` unpickles with `weights_only=True`, which never runs code stored in a file. A
path is written atomically (a temporary file renamed over it, as checkpoints are), so a failed
save leaves the file that was there.
"""

from __future__ import annotations

import os
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import IO, Any

import torch

from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.checkpoint import _first_line, write_atomically

_PLAIN = (type(None), bool, int, float, complex, str, bytes, torch.dtype, torch.device, torch.Size)


def save(obj: Any, f: str | os.PathLike | IO[bytes], pickle_protocol: int = 2) -> None:
    """Write a state dict to `f` (a path or a binary file), in torch's format."""
    plain = _as_plain(obj, "obj")
    if isinstance(f, str | os.PathLike):
        path = Path(f)
        if not path.parent.is_dir():
            raise FileNotFoundError(f"minitorch_edu.save: directory {path.parent} does not exist")
        write_atomically(
            path, lambda file: torch.save(plain, file, pickle_protocol=pickle_protocol)
        )
    else:
        torch.save(plain, f, pickle_protocol=pickle_protocol)


def load(
    f: str | os.PathLike | IO[bytes],
    map_location: Any = None,
    pickle_module: Any = None,
    *,
    weights_only: bool | None = True,
    mmap: bool | None = None,
) -> Any:
    """What `save` (or `torch.save` of a state dict) wrote: torch tensors and plain values."""
    if weights_only is False:
        raise ValueError(
            "minitorch_edu.load loads weights only (weights_only=True): unpickling other "
            "objects can run code stored in the file. For a file you trust, use "
            "torch.load(..., weights_only=False)."
        )
    if pickle_module is not None:
        raise ValueError("minitorch_edu.load takes no pickle_module: it loads weights only")
    name = f if isinstance(f, str | os.PathLike) else getattr(f, "name", "the file")
    try:
        return torch.load(f, map_location=map_location, weights_only=True, mmap=mmap)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except pickle.UnpicklingError as error:
        if "global" not in str(error).lower():
            raise pickle.UnpicklingError(
                f"{name} is not a loadable torch file: truncated, damaged or of another format "
                f"({_first_line(error)})"
            ) from None
        raise pickle.UnpicklingError(
            f"{name} holds objects other than tensors and plain values, which "
            "minitorch_edu.load does not unpickle (was a whole model saved? save and load "
            f"model.state_dict() instead): {_first_line(error)}"
        ) from None
    except Exception as error:  # noqa: BLE001 - any other failure to decode: a damaged file
        raise RuntimeError(
            f"{name} is not a loadable torch file: truncated, damaged or of another format "
            f"({type(error).__name__}: {_first_line(error)})"
        ) from None


def _as_plain(value: Any, where: str) -> Any:
    """`value` with our Tensors as torch tensors; TypeError, naming the place, for anything
    a weights-only load would refuse."""
    if isinstance(value, Tensor):
        return value.data.detach()
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, dict):
        plain = {key: _as_plain(item, f"{where}[{key!r}]") for key, item in value.items()}
        return OrderedDict(plain) if isinstance(value, OrderedDict) else plain
    if isinstance(value, list | tuple) and not hasattr(value, "_fields"):
        return type(value)(_as_plain(item, f"{where}[{i}]") for i, item in enumerate(value))
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    hint = ""
    if hasattr(value, "state_dict"):
        hint = " (save its state_dict() instead, and load it with load_state_dict)"
    raise TypeError(
        f"minitorch_edu.save stores state dicts: tensors, numbers, strings, None, dtypes and "
        f"devices in dicts, lists and tuples; {where} is a {kind}{hint}"
    )
