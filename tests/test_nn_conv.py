"""Linear, Conv1d and Conv2d against torch.nn: drawn configurations, forward and every gradient.

Each example builds our layer (seeded), its torch twin with the same weights, and compares
the output and the gradients of input, weight and bias in float64. Configurations are drawn
wide enough to include strides that skip pixels, overlapping windows, dilation, groups,
'same'/'valid' and asymmetric padding, and every padding_mode. A second property draws
configurations without filtering: where torch rejects one, ours must reject it too, with
an error of the same type and a message that names the problem.
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minitorch_edu as mt
import minitorch_edu.nn.functional as F
from minitorch_edu.nn.functional.convolution import convolution_by_ops, same_padding
from minitorch_edu.study import gradcheck
from minitorch_edu.testing import assert_matches_torch
from minitorch_edu.testing import strategies as mts
from reference.nn import assert_matches_twin, torch_twin

CONV = {1: mt.nn.Conv1d, 2: mt.nn.Conv2d}
TORCH_CONV = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d}


def seeded(build, seed):
    mt.manual_seed(seed)
    return build()


# ---------------------------------------------------------------------------- Linear
@given(
    in_features=st.integers(1, 6),
    out_features=st.integers(1, 6),
    bias=st.booleans(),
    batch=st.sampled_from([(), (3,), (2, 3)]),
    seed=st.integers(0, 2**16),
    data=st.data(),
)
def test_linear_matches_torch(in_features, out_features, bias, batch, seed, data, device):
    layer = seeded(lambda: mt.nn.Linear(in_features, out_features, bias=bias), seed)
    layer.to(device, torch.float64)
    x = data.draw(mts.tensors(shape=(*batch, in_features), device=device))
    assert_matches_twin(layer, x)


@given(data=st.data())
def test_linear_function_second_order(data, device):
    x = data.draw(mts.tensors(shape=(3, 4), device=device))
    w = data.draw(mts.tensors(shape=(2, 4), device=device))
    b = data.draw(mts.tensors(shape=(2,), device=device))
    assert_matches_torch(F.linear, torch.nn.functional.linear, x, w, b, double_backward=True)


@settings(max_examples=10)
@given(data=st.data())
def test_linear_matches_finite_differences(data):
    x = data.draw(mts.tensors(shape=(2, 3)))
    w = data.draw(mts.tensors(shape=(2, 3)))
    b = data.draw(mts.tensors(shape=(2,)))
    gradcheck(F.linear, [x, w, b])


def test_linear_skips_unneeded_gradients():
    layer = mt.nn.Linear(3, 2)
    x = mt.randn(4, 3)  # a constant: its gradient is never computed
    layer(x).sum().backward()
    assert x.grad is None and layer.weight.grad is not None and layer.bias.grad is not None


@pytest.mark.parametrize(
    "input_shape, in_features, message",
    [((3, 5), 4, "4 features"), ((), 4, "4 features")],
)
def test_linear_rejects_wrong_feature_count(input_shape, in_features, message):
    layer = mt.nn.Linear(in_features, 2)
    x = torch.randn(input_shape)
    with pytest.raises(RuntimeError, match=message):
        layer(mt.tensor(x))
    with pytest.raises(RuntimeError):
        torch.nn.Linear(in_features, 2)(x)


def test_linear_rejects_dtype_mismatch():
    with pytest.raises(RuntimeError, match="float64.*float32"):
        mt.nn.Linear(3, 2)(mt.randn(4, 3, dtype=torch.float64))


# ---------------------------------------------------------------------------- Conv1d, Conv2d
@pytest.mark.parametrize("spatial_dims", [1, 2])
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_conv_matches_torch(spatial_dims, data, seed, device):
    config, input_shape = data.draw(mts.conv_configs(spatial_dims))
    layer = seeded(lambda: CONV[spatial_dims](**config), seed).to(device, torch.float64)
    x = data.draw(mts.tensors(shape=input_shape, device=device))
    assert_matches_twin(layer, x)


@settings(max_examples=15)
@pytest.mark.parametrize("spatial_dims", [1, 2])
@given(data=st.data())
def test_conv_second_order_matches_torch(spatial_dims, data):
    """Gradients of gradients (create_graph) go through the composed definition."""
    config, input_shape = data.draw(mts.conv_configs(spatial_dims))
    if config["padding_mode"] != "zeros":
        config["padding_mode"] = "zeros"
    x = data.draw(mts.tensors(shape=input_shape))
    weight_shape = (
        config["out_channels"],
        config["in_channels"] // config["groups"],
        *config["kernel_size"],
    )
    weight = data.draw(mts.tensors(shape=weight_shape))
    bias = data.draw(mts.tensors(shape=(config["out_channels"],)))
    arguments = {k: config[k] for k in ("stride", "padding", "dilation", "groups")}
    ours = F.conv1d if spatial_dims == 1 else F.conv2d
    theirs = torch.nn.functional.conv1d if spatial_dims == 1 else torch.nn.functional.conv2d
    assert_matches_torch(
        lambda x, w, b: ours(x, w, b, **arguments),
        lambda x, w, b: theirs(x, w, b, **arguments),
        x,
        weight,
        bias,
        double_backward=True,
    )


@settings(max_examples=10)
@given(data=st.data())
def test_conv2d_matches_finite_differences(data):
    config, input_shape = data.draw(mts.conv_configs(2))
    x = data.draw(mts.tensors(shape=input_shape))
    weight_shape = (
        config["out_channels"],
        config["in_channels"] // config["groups"],
        *config["kernel_size"],
    )
    weight = data.draw(mts.tensors(shape=weight_shape))
    arguments = {k: config[k] for k in ("stride", "padding", "dilation", "groups")}
    gradcheck(lambda x, w: F.conv2d(x, w, **arguments), [x, weight])


@given(data=st.data())
def test_composed_definition_equals_the_fast_convolution(data):
    config, input_shape = data.draw(mts.conv_configs(2))
    x = data.draw(mts.tensors(shape=input_shape))
    if x.dim() == 3:
        x = x.unsqueeze(0)
    weight_shape = (
        config["out_channels"],
        config["in_channels"] // config["groups"],
        *config["kernel_size"],
    )
    weight = data.draw(mts.tensors(shape=weight_shape))
    padding = config["padding"]
    if padding == "same":
        amounts = same_padding(config["kernel_size"], config["dilation"])
    elif padding == "valid":
        amounts = [(0, 0), (0, 0)]
    else:
        amounts = [(p, p) for p in ((padding,) * 2 if isinstance(padding, int) else padding)]
    composed = convolution_by_ops(
        x, weight, None, config["stride"], amounts, config["dilation"], config["groups"]
    )
    fast = F.conv2d(
        x, weight, None, config["stride"], padding, config["dilation"], config["groups"]
    )
    torch.testing.assert_close(composed.data, fast.data, rtol=1e-12, atol=1e-12)


@st.composite
def any_conv_call(draw):
    """Configurations drawn without regard to validity, and an input that may not fit."""
    spatial_dims = draw(st.sampled_from([1, 2]))
    d = spatial_dims
    padding = draw(
        st.one_of(
            st.integers(-1, 3),
            st.tuples(*[st.integers(0, 3)] * d),
            st.sampled_from(["same", "valid", "full"]),
        )
    )
    groups = draw(st.sampled_from([1, 1, 1, 2, 3, 0]))
    multiple = st.integers(1, 2).map(lambda k: k * max(groups, 1))
    config = dict(
        in_channels=draw(st.one_of(multiple, multiple, st.integers(1, 4))),
        out_channels=draw(st.one_of(multiple, multiple, st.integers(1, 4))),
        kernel_size=draw(st.one_of(st.integers(0, 5), st.tuples(*[st.integers(1, 5)] * d))),
        stride=draw(st.one_of(st.integers(0, 3), st.tuples(*[st.integers(1, 3)] * d))),
        padding=padding,
        dilation=draw(st.integers(0, 3)),
        groups=groups,
        padding_mode=draw(st.sampled_from(["zeros", "zeros", "reflect", "circular", "mirror"])),
    )
    rank = draw(st.sampled_from([d + 1, d + 2, d + 2, d + 3, d]))
    channels = draw(st.one_of(st.just(config["in_channels"]), st.integers(1, 6)))
    spatial = [draw(st.integers(1, 6)) for _ in range(d)]
    shape = {
        d: (channels, *spatial[1:]),
        d + 1: (channels, *spatial),
        d + 2: (2, channels, *spatial),
    }
    shape[d + 3] = (1, 2, channels, *spatial)
    return spatial_dims, config, shape[rank]


def outcome(build):
    """The exception `build()` raises, or None."""
    try:
        build()
    except Exception as error:  # noqa: BLE001 - any error counts as a rejection here
        return error
    return None


@settings(max_examples=120)
@given(call=any_conv_call())
def test_conv_rejects_what_torch_rejects(call):
    spatial_dims, config, shape = call
    x = torch.randn(shape, dtype=torch.float64)
    torch_error = outcome(lambda: TORCH_CONV[spatial_dims](**config).double()(x))
    our_error = outcome(lambda: CONV[spatial_dims](**config).double()(mt.tensor(x)))
    if torch_error is None:
        assert our_error is None, f"torch accepts {config} on {shape}, ours raised {our_error!r}"
    else:
        assert our_error is not None, f"torch rejects {config} on {shape}: {torch_error}"
        assert type(our_error) is type(torch_error), (our_error, torch_error)
        assert str(our_error)


def test_conv_errors_name_the_shapes():
    layer = mt.nn.Conv2d(4, 2, 3)
    with pytest.raises(RuntimeError, match=r"expected input\[2, 3, 5, 5\] to have 4 channels"):
        layer(mt.randn(2, 3, 5, 5))
    with pytest.raises(RuntimeError, match=r"3D \(unbatched\) or 4D \(batched\).*\[5, 5\]"):
        layer(mt.randn(5, 5))
    with pytest.raises(RuntimeError, match=r"Kernel size: \(3 x 3\)"):
        layer(mt.randn(1, 4, 2, 5))
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        mt.nn.Conv2d(3, 2, 3, groups=2)
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        mt.nn.Conv2d(3, 3, 3, stride=2, padding="same")
    with pytest.raises(RuntimeError, match="padding='same' is not supported for strided"):
        F.conv2d(mt.randn(1, 3, 5, 5), mt.randn(3, 3, 3, 3), stride=2, padding="same")
    with pytest.raises(RuntimeError, match=r"bias to be 1-dimensional with 3 elements.*\[2\]"):
        F.conv2d(mt.randn(1, 3, 5, 5), mt.randn(3, 3, 3, 3), mt.randn(2))


def test_conv_layer_repr_and_parameters_match_torch():
    for ours, theirs in [
        (mt.nn.Conv2d(3, 6, 5), torch.nn.Conv2d(3, 6, 5)),
        (
            mt.nn.Conv2d(4, 8, (3, 2), stride=2, padding=1, dilation=2, groups=2, bias=False),
            torch.nn.Conv2d(4, 8, (3, 2), stride=2, padding=1, dilation=2, groups=2, bias=False),
        ),
        (mt.nn.Conv1d(2, 4, 3, padding="same"), torch.nn.Conv1d(2, 4, 3, padding="same")),
        (
            mt.nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"),
            torch.nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"),
        ),
    ]:
        assert repr(ours) == repr(theirs)
        assert [(n, p.shape) for n, p in ours.named_parameters()] == [
            (n, p.shape) for n, p in theirs.named_parameters()
        ]
        assert repr(torch_twin(ours)) == repr(theirs)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@given(data=st.data())
def test_pad_matches_torch(mode, data, device):
    spatial = data.draw(st.integers(1, 3))
    shape = data.draw(
        mts.shapes(min_dims=spatial + 1, max_dims=spatial + 2, min_side=1, max_side=4)
    )
    x = data.draw(mts.tensors(shape=shape, device=device))
    amounts = []
    for i in range(spatial):
        size = shape[-1 - i]
        # Negative amounts crop; at least one element must stay. Circular crops before it
        # wraps, so its wrap limit is the cropped size; reflect's limit is the original size.
        crop_before = data.draw(st.integers(0, min(size - 1, 2)))
        crop_after = data.draw(st.integers(0, min(size - 1 - crop_before, 2)))
        kept = size - crop_before - crop_after
        limit = min({"reflect": size - 1, "circular": kept}.get(mode, 3), 3)
        for crop in (crop_before, crop_after):
            amounts.append(-crop if crop else data.draw(st.integers(0, limit)))
    value = 1.5 if mode == "constant" else None
    assert_matches_torch(
        lambda x: F.pad(x, amounts, mode=mode, value=value),
        lambda x: torch.nn.functional.pad(x, amounts, mode=mode, value=value),
        x,
    )


def test_pad_rejects_too_much_reflection():
    with pytest.raises(RuntimeError, match=r"padding \(3, 0\) of dim 2 must be at most 2"):
        F.pad(mt.randn(1, 1, 3), (3, 0), mode="reflect")
    with pytest.raises(NotImplementedError, match="Unrecognised padding mode"):
        F.pad(mt.randn(1, 1, 3), (1, 1), mode="mirror")


# ---------------------------------------------------------------------------- empty batches
@pytest.mark.parametrize("spatial_dims", [1, 2])
@pytest.mark.parametrize(
    "channels, size, kernel, options",
    [
        (2, 5, 2, {}),
        (2, 64, 3, {"padding": 1}),
        (16, 28, 5, {"stride": 2}),
        (4, 9, 3, {"groups": 2, "dilation": 2}),
    ],
)
def test_conv_of_an_empty_batch_matches_torch(spatial_dims, channels, size, kernel, options):
    """Batch 0: an empty output, an empty input gradient and zero weight and bias gradients,
    whichever way the convolution is lowered for the shape."""
    conv = torch.nn.functional.conv1d if spatial_dims == 1 else torch.nn.functional.conv2d
    ours = F.conv1d if spatial_dims == 1 else F.conv2d
    groups = options.get("groups", 1)
    x = torch.randn(0, channels, *(size,) * spatial_dims, dtype=torch.float64)
    w = torch.randn(4, channels // groups, *(kernel,) * spatial_dims, dtype=torch.float64)
    b = torch.randn(4, dtype=torch.float64)
    assert_matches_torch(lambda *a: ours(*a, **options), lambda *a: conv(*a, **options), x, w, b)


def test_linear_with_no_input_features_matches_torch():
    x = torch.randn(2, 3, 0, dtype=torch.float64)
    w = torch.randn(4, 0, dtype=torch.float64)
    b = torch.randn(4, dtype=torch.float64)
    assert_matches_torch(F.linear, torch.nn.functional.linear, x, w, b, double_backward=True)
    empty_batch = torch.randn(0, 5, dtype=torch.float64)
    w = torch.randn(4, 5, dtype=torch.float64)
    assert_matches_torch(F.linear, torch.nn.functional.linear, empty_batch, w, b)


def test_mm_takes_matrices_only_like_torch():
    a, b = torch.randn(3, 4, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    assert_matches_torch(mt.mm, torch.mm, a, b, double_backward=True)
    for x, y in ((a[0], b), (a, b[:, 0]), (a[None], b)):
        with pytest.raises(RuntimeError):
            torch.mm(x, y)
        with pytest.raises(RuntimeError, match="mm: .* must be a matrix"):
            mt.tensor(x).mm(mt.tensor(y))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_16_bit_padding_adds_gradients_in_float32(mode):
    """The copies' gradients are added in float32 and rounded once, as torch's reflect and
    replicate kernels do. (torch's circular padding adds them in 16 bits, in the order of its
    copies: ours is held against torch's float32 result there, and the difference is listed
    in tests/conformance/divergences.py.)"""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, generator=generator).to(torch.bfloat16)
    if mode == "circular":
        theirs = lambda a: torch.nn.functional.pad(a.float(), (2, 3), mode=mode).to(a.dtype)  # noqa: E731
    else:
        theirs = lambda a: torch.nn.functional.pad(a, (2, 3), mode=mode)  # noqa: E731
    assert_matches_torch(lambda a: F.pad(a, (2, 3), mode=mode), theirs, x, rtol=1.6e-2, atol=1e-5)
