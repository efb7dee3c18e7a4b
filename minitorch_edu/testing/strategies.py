"""Hypothesis strategies for property tests of tensor code, layers, losses and optimizers.

    from hypothesis import given, strategies as st
    from minitorch_edu.testing import strategies as mts

    @given(mts.tensors(shape=mts.shapes(max_dims=3)))
    def test_exp_log(x): ...

    @given(data=st.data())
    def test_my_conv(data):
        config, input_shape = data.draw(mts.conv_configs(spatial_dims=2))
        x = data.draw(mts.tensors(shape=input_shape))
        ...   # torch.nn.Conv2d(**config) accepts x; so must yours

What there is:

    tensors            shapes(), broadcastable_shapes(), tensors() (bounded values, float64 by
                       default, permuted memory layouts), nonzero_tensors(), positive_tensors(),
                       tied_tensors(), dims()
    layers             linear_configs(), conv_configs(spatial_dims), pool_configs(average):
                       keyword arguments torch's layer accepts, with an input shape it accepts
    losses             reductions(), classification_targets() (input shape, classes, a target
                       of labels or probabilities, ignore_index), class_weights(classes)
    optimizers         optimizer_hyperparameters(name): keyword arguments for SGD, Adagrad,
                       RMSprop, Adam or AdamW, every flag and valid ranges;
                       optimizer_units(name): the same, as units a parameter group may override

Tensors come out float64 by default, with bounded values (no NaN or inf) and, with
`non_contiguous=True`, with permuted memory layouts, so strided code paths get exercised.
Configurations are valid by construction (no `assume` that rejects most draws), and they
reach the corners: strides that skip pixels, overlapping windows, dilation, groups, 'same'
padding, every padding mode, ceil_mode, ignored labels, every optimizer flag.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

_NUMPY_DTYPES = {torch.float64: np.float64, torch.float32: np.float32}
_TINY = {torch.float64: 1e-30, torch.float32: 1e-6}


def shapes(
    min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4
) -> st.SearchStrategy[tuple[int, ...]]:
    """Tensor shapes; sides of 1 are common, so broadcasting edge cases come up."""
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def broadcastable_shapes(
    num_shapes: int = 2, min_dims: int = 0, max_dims: int = 3, max_side: int = 4
) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    """`num_shapes` shapes that broadcast together (some dims 1 or missing)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims, max_side=max_side
    ).map(lambda result: result.input_shapes)


@st.composite
def tensors(
    draw: st.DrawFn,
    shape: Any = None,
    dtype: torch.dtype = torch.float64,
    min_value: float = -3.0,
    max_value: float = 3.0,
    non_contiguous: bool = True,
    device: str | torch.device = "cpu",
    integer_valued: bool = False,
    distinct: bool = False,
) -> torch.Tensor:
    """A torch.Tensor with values in [min_value, max_value] (magnitudes below 1e-30, or 1e-6
    in float32, drawn as 0: their powers would underflow).

    `shape` may be a tuple or a strategy of tuples (default: `shapes()`).
    `integer_valued=True` draws whole numbers only (still of a floating dtype), so that
    equal values (ties in max, maximum, sort) come up often. `distinct=True` makes every
    element differ from every other by at least 0.01, far from ties (for finite differences
    of max and min).
    """
    if shape is None:
        shape = shapes()
    if isinstance(shape, st.SearchStrategy):
        shape = draw(shape)
    shape = tuple(shape)
    order = list(range(len(shape)))
    if non_contiguous and len(shape) > 1:
        order = draw(st.permutations(order))
    stored_shape = tuple(shape[i] for i in order)
    width = 32 if dtype == torch.float32 else 64
    if distinct:
        elements = st.integers(int(min_value * 100), int(max_value * 100)).map(lambda i: i / 100)
    elif integer_valued:
        elements = st.integers(int(min_value), int(max_value)).map(float)
    else:
        # Magnitudes so small that their squares or fourth powers underflow into subnormal
        # numbers, where precision is lost and no two implementations agree, become 0.
        tiny = _TINY[dtype]
        elements = st.floats(min_value, max_value, allow_nan=False, width=width).map(
            lambda value: 0.0 if abs(value) < tiny else value
        )
    array = draw(hnp.arrays(_NUMPY_DTYPES[dtype], stored_shape, elements=elements, unique=distinct))
    stored = torch.from_numpy(array).to(device)
    # stored dim j holds logical dim order[j]: permute back to the logical order
    inverse = [order.index(i) for i in range(len(shape))]
    return stored.permute(inverse) if shape else stored


def nonzero_tensors(**kwargs: Any) -> st.SearchStrategy[torch.Tensor]:
    """Tensors whose elements are bounded away from zero (for division, log of |x|, ...)."""
    low = kwargs.pop("min_abs", 0.5)
    return tensors(**kwargs).map(lambda t: torch.where(t >= 0, t + low, t - low))


def positive_tensors(min_value: float = 0.1, max_value: float = 5.0, **kwargs: Any):
    """Tensors with values in [min_value, max_value] (for log, sqrt, fractional powers)."""
    return tensors(min_value=min_value, max_value=max_value, **kwargs)


def tied_tensors(**kwargs: Any) -> st.SearchStrategy[torch.Tensor]:
    """Tensors of small whole numbers (as floats): many elements are equal."""
    kwargs.setdefault("min_value", -2)
    kwargs.setdefault("max_value", 2)
    return tensors(integer_valued=True, **kwargs)


def dims(ndim: int, allow_none: bool = False) -> st.SearchStrategy[Any]:
    """A dim argument for a tensor of `ndim` dims: an int or a tuple (either may hold
    negative dims), or None."""
    if ndim == 0:
        return st.sampled_from([None, 0, -1] if allow_none else [0, -1])
    single = st.integers(-ndim, ndim - 1)
    several = st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).flatmap(
        lambda chosen: st.tuples(*(st.sampled_from([d, d - ndim]) for d in chosen))
    )
    options = [single, several]
    if allow_none:
        options.append(st.none())
    return st.one_of(*options)


# ---------------------------------------------------------------------- layers
@st.composite
def linear_configs(
    draw: st.DrawFn, max_features: int = 6
) -> tuple[dict[str, Any], tuple[int, ...]]:
    """(keyword arguments of Linear, an input shape): in_features, out_features, bias, and
    an input with no batch dim, one, or two."""
    config = dict(
        in_features=draw(st.integers(1, max_features)),
        out_features=draw(st.integers(1, max_features)),
        bias=draw(st.booleans()),
    )
    batch = draw(st.sampled_from([(), (3,), (2, 3)]))
    return config, (*batch, config["in_features"])


@st.composite
def conv_configs(draw: st.DrawFn, spatial_dims: int) -> tuple[dict[str, Any], tuple[int, ...]]:
    """(keyword arguments of Conv1d/Conv2d, an input shape it accepts).

    Drawn: groups, kernel sizes, strides (also skipping pixels), dilation, padding (an int,
    one per dim, 'valid', or 'same' where every stride is 1), every padding_mode, bias, and
    an input big enough for the padded, dilated kernel (and for reflect/circular padding),
    unbatched or with a batch of 1 or 2.
    """
    d = spatial_dims
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    kernel_size = tuple(draw(st.integers(1, 3)) for _ in range(d))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(d))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(d))
    paddings = [st.integers(0, 2), st.tuples(*[st.integers(0, 2)] * d), st.just("valid")]
    if all(s == 1 for s in stride):
        paddings.append(st.just("same"))
    padding = draw(st.one_of(*paddings))
    padding_mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    config = dict(
        in_channels=groups * draw(st.integers(1, 2)),
        out_channels=groups * draw(st.integers(1, 2)),
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        bias=draw(st.booleans()),
        padding_mode=padding_mode,
    )
    if padding == "same":
        # torch splits the total d (k - 1) with the extra element after
        amounts = [
            (dl * (k - 1) // 2, dl * (k - 1) - dl * (k - 1) // 2)
            for k, dl in zip(kernel_size, dilation)
        ]
    elif padding == "valid":
        amounts = [(0, 0)] * d
    else:
        amounts = [(p, p) for p in ((padding,) * d if isinstance(padding, int) else padding)]
    sizes = []
    for k, dl, (before, after) in zip(kernel_size, dilation, amounts):
        smallest = max(1, dl * (k - 1) + 1 - before - after)
        if padding_mode == "reflect":
            smallest = max(smallest, before + 1, after + 1)
        elif padding_mode == "circular":
            smallest = max(smallest, before, after)
        sizes.append(draw(st.integers(smallest, smallest + 4)))
    batch = draw(st.sampled_from([(), (1,), (2,)]))
    return config, (*batch, config["in_channels"], *sizes)


@st.composite
def pool_configs(draw: st.DrawFn, average: bool = False) -> tuple[dict[str, Any], tuple[int, ...]]:
    """(keyword arguments of MaxPool2d, or AvgPool2d with `average`, an input shape).

    Drawn: kernel sizes (an int or a pair), stride (None, an int or a pair: overlapping and
    skipping windows), padding up to half the kernel, dilation (max pooling), ceil_mode,
    count_include_pad and divisor_override (average pooling). Configurations where a dilated
    window would fall wholly into the padding are left out: torch's max pooling then records
    an index outside the input.
    """
    kernel_size = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = draw(st.one_of(st.none(), st.integers(1, 4), st.tuples(*[st.integers(1, 4)] * 2)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel_size)
    dilation = (1, 1) if average else tuple(draw(st.integers(1, 2)) for _ in range(2))
    config = dict(
        kernel_size=draw(st.sampled_from([kernel_size, kernel_size[0]]))
        if kernel_size[0] == kernel_size[1]
        else kernel_size,
        stride=stride,
        padding=padding,
        ceil_mode=draw(st.booleans()),
    )
    if average:
        config["count_include_pad"] = draw(st.booleans())
        config["divisor_override"] = draw(st.one_of(st.none(), st.integers(1, 5)))
    else:
        config["dilation"] = dilation
    sizes = [
        draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), max(1, d * (k - 1) + 1 - 2 * p) + 5))
        for k, p, d in zip(kernel_size, padding, dilation)
    ]
    stride_pair = (
        kernel_size if stride is None else (stride,) * 2 if isinstance(stride, int) else stride
    )
    for n, k, s, p, d in zip(sizes, kernel_size, stride_pair, padding, dilation):
        assume(_every_window_reads_the_input(n, k, s, p, d, config["ceil_mode"]))
    batch = draw(st.sampled_from([(), (1,), (2,)]))
    return config, (*batch, draw(st.integers(1, 3)), *sizes)


def pooled_size(
    size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool
) -> int:
    """How many windows a pooling layer fits along one dim (torch's pooling_output_shape)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        count = -(-span // stride) + 1
        if (count - 1) * stride >= size + padding:  # the last window would start in the padding
            count -= 1
        return count
    return span // stride + 1


def _every_window_reads_the_input(size, kernel, stride, padding, dilation, ceil_mode) -> bool:
    windows = pooled_size(size, kernel, stride, padding, dilation, ceil_mode)
    for w in range(windows):
        taps = [w * stride - padding + i * dilation for i in range(kernel)]
        if not any(0 <= t < size for t in taps):
            return False
    return True


# ---------------------------------------------------------------------- losses
def reductions() -> st.SearchStrategy[str]:
    """A loss's `reduction`: 'mean', 'sum' or 'none'."""
    return st.sampled_from(["mean", "sum", "none"])


@st.composite
def classification_targets(
    draw: st.DrawFn, device: str | torch.device = "cpu", allow_probabilities: bool = True
) -> tuple[tuple[int, ...], int, torch.Tensor, int]:
    """(input shape, number of classes, target, ignore_index) for a classifier loss.

    The input is (C,), (N, C) or (N, C, d1[, d2]); the target holds class labels (int64,
    of the input's shape without C, some equal to ignore_index) or, a quarter of the time
    when `allow_probabilities`, class probabilities of the input's own shape (values in
    [0, 1], ignore_index then -100).
    """
    classes = draw(st.integers(1, 5))
    batched = draw(st.integers(0, 4)) > 0
    extra = tuple(draw(st.lists(st.integers(1, 3), max_size=2))) if batched else ()
    batch = (draw(st.integers(1, 4)),) if batched else ()
    input_shape = (*batch, classes, *extra)
    target_shape = (*batch, *extra)
    ignore_index = draw(st.sampled_from([-100, -100, 0, classes - 1, -1]))
    if allow_probabilities and draw(st.integers(0, 3)) == 0:
        target = draw(tensors(shape=input_shape, min_value=0, max_value=1, device=device))
        return input_shape, classes, target, -100
    labels = st.integers(0, classes - 1)
    if draw(st.booleans()):
        labels = st.one_of(labels, st.just(ignore_index))
    flat = [draw(labels) for _ in range(int(np.prod(target_shape, dtype=int)))]
    values = torch.tensor(flat, dtype=torch.int64, device=device).reshape(target_shape)
    return input_shape, classes, values, ignore_index


def class_weights(
    classes: int, device: str | torch.device = "cpu"
) -> st.SearchStrategy[torch.Tensor | None]:
    """A loss's `weight`: None, or one weight per class in [0.1, 2]."""
    return st.one_of(
        st.none(), tensors(shape=(classes,), min_value=0.1, max_value=2.0, device=device)
    )


# ---------------------------------------------------------------------- optimizers
def _unit(**options: st.SearchStrategy) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(options)


def _maybe(strategy: st.SearchStrategy, off: Any) -> st.SearchStrategy:
    """The option switched off (its neutral value) or a drawn value."""
    return st.one_of(st.just(off), strategy)


_BOOLEANS = st.booleans()
_FOREACH = st.sampled_from([None, False, True])
_SGD_MOMENTUM = st.one_of(
    _unit(momentum=st.just(0.0), dampening=_maybe(st.floats(0, 1), 0.0), nesterov=st.just(False)),
    _unit(
        momentum=st.floats(0.01, 0.99), dampening=_maybe(st.floats(0, 1), 0.0), nesterov=_BOOLEANS
    ).map(lambda options: {**options, "dampening": 0.0} if options["nesterov"] else options),
)
_ADAM_UNITS = {
    "lr": _unit(lr=st.floats(0.0, 0.5)),
    "betas": _unit(betas=st.tuples(st.floats(0.0, 0.99), st.floats(0.0, 0.999))),
    "eps": _unit(eps=st.sampled_from([1e-8, 1e-3, 0.5])),
    "weight_decay": _unit(weight_decay=_maybe(st.floats(0.0, 0.5), 0.0)),
    "amsgrad": _unit(amsgrad=_BOOLEANS),
    "maximize": _unit(maximize=_BOOLEANS),
    "foreach": _unit(foreach=_FOREACH),
}
# name: (units a parameter group may override, units only the constructor takes)
_OPTIMIZER_UNITS: dict[str, tuple[dict[str, st.SearchStrategy], dict[str, st.SearchStrategy]]] = {
    "SGD": (
        {
            "lr": _unit(lr=st.floats(0.0, 1.0)),
            "momentum": _SGD_MOMENTUM,
            "weight_decay": _unit(weight_decay=_maybe(st.floats(0.0, 0.5), 0.0)),
            "maximize": _unit(maximize=_BOOLEANS),
            "foreach": _unit(foreach=_FOREACH),
        },
        {},
    ),
    "Adagrad": (
        {
            "lr": _unit(lr=st.floats(0.0, 1.0)),
            "lr_decay": _unit(lr_decay=_maybe(st.floats(0.0, 1.0), 0.0)),
            "weight_decay": _unit(weight_decay=_maybe(st.floats(0.0, 0.5), 0.0)),
            "eps": _unit(eps=st.sampled_from([1e-10, 1e-4, 0.5])),
            "maximize": _unit(maximize=_BOOLEANS),
            "foreach": _unit(foreach=_FOREACH),
        },
        # PyTorch starts every group's sum at the constructor's value, so no group sets it.
        {
            "initial_accumulator_value": _unit(
                initial_accumulator_value=_maybe(st.floats(0, 1), 0.0)
            )
        },
    ),
    "RMSprop": (
        {
            "lr": _unit(lr=st.floats(0.0, 0.5)),
            "alpha": _unit(alpha=st.floats(0.1, 0.999)),  # 0: centered v - ḡ² is 0 ± rounding
            "eps": _unit(eps=st.sampled_from([1e-8, 1e-3, 0.5])),
            "weight_decay": _unit(weight_decay=_maybe(st.floats(0.0, 0.5), 0.0)),
            "momentum": _unit(momentum=_maybe(st.floats(0.01, 0.99), 0.0)),
            "centered": _unit(centered=_BOOLEANS),
            "maximize": _unit(maximize=_BOOLEANS),
            "foreach": _unit(foreach=_FOREACH),
        },
        {},
    ),
    "Adam": (
        {**_ADAM_UNITS, "decoupled": _unit(decoupled_weight_decay=_BOOLEANS)},
        {},
    ),
    "AdamW": (_ADAM_UNITS, {}),
}
OPTIMIZERS = tuple(_OPTIMIZER_UNITS)


def optimizer_units(
    name: str,
) -> tuple[dict[str, st.SearchStrategy[dict]], dict[str, st.SearchStrategy[dict]]]:
    """(units a parameter group may override, units only the constructor takes) for the
    optimizer `name` ("SGD", "Adagrad", "RMSprop", "Adam", "AdamW").

    A unit draws options that only make sense together, as a dict: SGD's momentum unit
    draws momentum, dampening and nesterov (nesterov with dampening 0). Every hyperparameter
    and flag of the optimizer is some unit's, with values from the valid range: a zero
    (switched off) often, since the branches that skip work need testing as much as the
    others. Draw every unit for the constructor, a subset for each group's overrides.
    """
    if name not in _OPTIMIZER_UNITS:
        raise ValueError(f"optimizer_units: unknown optimizer {name!r}; choose from {OPTIMIZERS}")
    units, constructor_only = _OPTIMIZER_UNITS[name]
    return dict(units), dict(constructor_only)


def optimizer_hyperparameters(name: str, foreach: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments for the optimizer `name`'s constructor: every unit drawn.

        kwargs = data.draw(mts.optimizer_hyperparameters("Adam"))
        optimizer = mt.optim.Adam(params, **kwargs)

    `foreach=False` leaves the `foreach` option out (the constructor's default then).
    """
    units, constructor_only = optimizer_units(name)
    if not foreach:
        units.pop("foreach")

    def merge(parts: tuple[dict[str, Any], ...]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for part in parts:
            merged.update(part)
        return merged

    return st.tuples(*units.values(), *constructor_only.values()).map(merge)
