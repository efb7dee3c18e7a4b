"""pad: constant padding (mt.pad), and reflect / replicate / circular padding by indexing.

`pad` lists (before, after) amounts from the last dim backwards, as torch's F.pad does.
The non-constant modes pick, for every padded position j (from -before to size + after),
which input element it copies, then gather those slices with index_select:

    replicate:  clamp(j, 0, n - 1)                 a a a | a b c d | d d d
    reflect:    (n - 1) - |(n - 1) - |j||          d c b | a b c d | c b a
    circular:   j mod n                            b c d | a b c d | a b c

index_select's backward adds every copy's gradient back to its source element.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.nn.functional.arguments import raw, shape_text
from minitorch_edu.ops.indexing import index_select
from minitorch_edu.ops.join import pad as pad_constant_op
from minitorch_edu.ops.pointwise import HALF_PRECISION

MODES = ("constant", "reflect", "replicate", "circular")


def source_positions(size: int, before: int, after: int, mode: str, device: Any) -> torch.Tensor:
    """For each position of the padded dim, the input position it copies."""
    j = torch.arange(-before, size + after, device=device)
    if mode == "replicate":
        return j.clamp(0, size - 1)
    if mode == "reflect":
        return (size - 1) - ((size - 1) - j.abs()).abs()
    return j.remainder(size)  # circular


def pad(
    input: Any, pad: Sequence[int], mode: str = "constant", value: float | None = None
) -> Tensor:
    """Pad the last len(pad) // 2 dims: (left, right) of the last, then of the one before, ..."""
    if mode not in MODES:
        raise NotImplementedError(f"Unrecognised padding mode {mode}; expected one of {MODES}")
    if mode == "constant":
        return pad_constant_op(input, pad, value=value)
    if value is not None and value != 0:
        raise ValueError(f'Padding mode "{mode}" doesn\'t take in value argument')
    x = raw(input)
    padded_dims = len(pad) // 2
    if (
        len(pad) % 2
        or padded_dims not in (1, 2, 3)
        or x.dim() not in (padded_dims + 1, padded_dims + 2)
    ):
        raise NotImplementedError(
            f"pad: mode {mode!r} pads the last 1, 2 or 3 dims of a batched or unbatched input "
            f"(e.g. pad of length 4 for a 3-D or 4-D input); got pad {tuple(pad)} for input of "
            f"size {shape_text(x)}"
        )
    batched = x.dim() == padded_dims + 2
    if any(size == 0 for size in x.shape[int(batched) :]) and mode != "circular":
        raise RuntimeError(
            f"pad: mode {mode!r} needs non-empty dims (but the batch dim), got input of size "
            f"{shape_text(x)}"
        )
    if x.dtype == torch.bool and mode != "circular":
        raise RuntimeError(f"pad: mode {mode!r} is not implemented for bool tensors (as torch)")
    # 16-bit floats are padded in float32, so that backward adds the copies' gradients in
    # float32 and rounds once, as torch's reflect and replicate kernels do (torch's circular
    # padding is made of copies whose gradients add in 16 bits: ours is the more exact)
    in_float32 = x.dtype in HALF_PRECISION
    out = input.float() if in_float32 else input
    for i in range(padded_dims):
        dim = x.dim() - 1 - i
        before, after = pad[2 * i], pad[2 * i + 1]
        # Negative amounts crop. As in torch's kernels, circular crops before it wraps around;
        # reflect and replicate pad the original edges first and crop afterwards.
        crop_first = mode == "circular"
        if crop_first:
            out, before, after = _crop(out, dim, before, after, x, allow_empty=True)
        size = out.shape[dim]
        limit = {"reflect": size - 1, "circular": size}.get(mode)  # replicate: any amount
        if limit is not None and max(before, after) > limit:
            raise RuntimeError(
                f"pad: with mode {mode!r} the padding ({before}, {after}) of dim {dim} must be at "
                f"most {limit} for its size {size} (input of size {shape_text(x)})"
            )
        grow_before, grow_after = max(before, 0), max(after, 0)
        if grow_before or grow_after:
            positions = source_positions(size, grow_before, grow_after, mode, x.device)
            out = index_select(out, dim, positions)
        if not crop_first:
            out, _, _ = _crop(out, dim, before - grow_before, after - grow_after, x)
    if in_float32:
        out = out.to(x.dtype)
    return out if isinstance(out, Tensor) else Tensor(out)


def _crop(
    out: Any, dim: int, before: int, after: int, x: Any, allow_empty: bool = False
) -> tuple[Any, int, int]:
    """Cut -before elements off the start and -after off the end of `dim` where negative."""
    if before >= 0 and after >= 0:
        return out, before, after
    size = out.shape[dim]
    kept = size + min(before, 0) + min(after, 0)
    if kept < 0 or (kept == 0 and not allow_empty):
        raise RuntimeError(
            f"pad: padding ({before}, {after}) of dim {dim} leaves no elements of its {size} "
            f"(input of size {shape_text(x)})"
        )
    return out.narrow(dim, max(-before, 0), kept), max(before, 0), max(after, 0)
