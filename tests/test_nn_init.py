"""Initialisation: the same numbers as torch after the same seed, and the right distributions.

Same seed, same numbers: every init function and every layer's default initialisation
draws from torch's generator with torch's calls, so the weights are bit-identical. The
statistical checks look at the distributions themselves on large layers: bounds,
moments, and a Kolmogorov-Smirnov distance to the intended uniform or normal law.
"""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minitorch_edu as mt
from minitorch_edu.nn import init


@given(
    in_features=st.integers(1, 50),
    out_features=st.integers(1, 50),
    bias=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_linear_gets_torchs_weights_after_the_same_seed(in_features, out_features, bias, seed):
    mt.manual_seed(seed)
    ours = mt.nn.Linear(in_features, out_features, bias=bias)
    torch.manual_seed(seed)
    theirs = torch.nn.Linear(in_features, out_features, bias=bias)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    for key, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key


@given(
    spatial_dims=st.sampled_from([1, 2]),
    groups=st.sampled_from([1, 2]),
    channels=st.integers(1, 3),
    kernel=st.integers(1, 4),
    bias=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_conv_gets_torchs_weights_after_the_same_seed(
    spatial_dims, groups, channels, kernel, bias, seed
):
    ours_class = mt.nn.Conv1d if spatial_dims == 1 else mt.nn.Conv2d
    torch_class = torch.nn.Conv1d if spatial_dims == 1 else torch.nn.Conv2d
    arguments = dict(groups=groups, bias=bias)
    mt.manual_seed(seed)
    ours = ours_class(groups * channels, 2 * groups, kernel, **arguments)
    torch.manual_seed(seed)
    theirs = torch_class(groups * channels, 2 * groups, kernel, **arguments)
    for key, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key


def test_a_model_gets_torchs_weights_after_the_same_seed():
    def build(nn):
        return nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(6 * 12 * 12, 10)
        )

    mt.manual_seed(7)
    ours = build(mt.nn)
    torch.manual_seed(7)
    theirs = build(torch.nn)
    for key, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key


INITS = {
    "uniform_": (dict(a=-0.5, b=2.0),),
    "normal_": (dict(mean=1.0, std=0.3),),
    "constant_": (dict(val=0.7),),
    "zeros_": ({},),
    "ones_": ({},),
    "xavier_uniform_": ({}, dict(gain=2.0)),
    "xavier_normal_": ({}, dict(gain=0.5)),
    "kaiming_uniform_": (
        {},
        dict(a=math.sqrt(5)),
        dict(mode="fan_out", nonlinearity="relu"),
        dict(a=0.2, nonlinearity="leaky_relu"),
    ),
    "kaiming_normal_": ({}, dict(mode="fan_out", nonlinearity="tanh")),
}


@pytest.mark.parametrize("name", INITS)
@pytest.mark.parametrize("shape", [(7, 5), (4, 3, 2, 2), (6, 2, 5)])
def test_init_functions_draw_torchs_numbers(name, shape):
    for arguments in INITS[name]:
        ours = mt.nn.Parameter(torch.empty(shape))
        theirs = torch.nn.Parameter(torch.empty(shape))
        torch.manual_seed(3)
        assert getattr(init, name)(ours, **arguments) is ours
        torch.manual_seed(3)
        getattr(torch.nn.init, name)(theirs, **arguments)
        assert torch.equal(ours.data, theirs.data), arguments
        generator = torch.Generator().manual_seed(11)
        if "generator" in getattr(torch.nn.init, name).__code__.co_varnames:
            getattr(init, name)(ours, **arguments, generator=generator)
            getattr(torch.nn.init, name)(
                theirs, **arguments, generator=torch.Generator().manual_seed(11)
            )
            assert torch.equal(ours.data, theirs.data), arguments


@pytest.mark.parametrize(
    "nonlinearity, param",
    [
        ("linear", None),
        ("conv2d", None),
        ("sigmoid", None),
        ("tanh", None),
        ("relu", None),
        ("leaky_relu", None),
        ("leaky_relu", 0.2),
        ("leaky_relu", math.sqrt(5)),
        ("selu", None),
    ],
)
def test_calculate_gain_matches_torch(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == torch.nn.init.calculate_gain(
        nonlinearity, param
    )


def test_bad_init_arguments_are_rejected():
    with pytest.raises(ValueError, match="Unsupported nonlinearity gelu"):
        init.calculate_gain("gelu")
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.kaiming_uniform_(mt.nn.Parameter(torch.empty(5)))
    with pytest.raises(ValueError, match="Mode fan_sideways not supported"):
        init.kaiming_normal_(mt.nn.Parameter(torch.empty(2, 2)), mode="fan_sideways")
    assert init.calculate_fan_in_and_fan_out(torch.empty(6, 4, 3, 2)) == (24, 36)


# ---------------------------------------------------------------------------- statistics
def ks_distance(values: torch.Tensor, cdf) -> float:
    """sup |empirical CDF - cdf| (the Kolmogorov-Smirnov statistic)."""
    x = values.flatten().double().sort().values
    n = x.numel()
    expected = cdf(x)
    above = torch.arange(1, n + 1, dtype=torch.float64) / n - expected
    below = expected - torch.arange(0, n, dtype=torch.float64) / n
    return max(above.max().item(), below.max().item())


def ks_limit(n: int) -> float:
    """The 0.1% critical value of the KS statistic for n samples."""
    return 1.95 / math.sqrt(n)


def uniform_cdf(bound):
    return lambda x: ((x + bound) / (2 * bound)).clamp(0, 1)


def normal_cdf(std):
    return lambda x: 0.5 * (1 + torch.erf(x / (std * math.sqrt(2))))


@pytest.mark.parametrize(
    "layer, fan_in",
    [
        (lambda: mt.nn.Linear(800, 300), 800),
        (lambda: mt.nn.Conv2d(16, 64, 5), 16 * 25),
        (lambda: mt.nn.Conv2d(16, 64, 3, groups=4), 4 * 9),
        (lambda: mt.nn.Conv1d(8, 512, 7), 8 * 7),
    ],
    ids=["linear", "conv2d", "conv2d_groups", "conv1d"],
)
def test_default_init_is_uniform_within_one_over_sqrt_fan_in(layer, fan_in):
    """kaiming_uniform_(a=sqrt(5)) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in)); the bias too."""
    mt.manual_seed(0)
    module = layer()
    bound = 1 / math.sqrt(fan_in)
    for name, values in (("weight", module.weight.data), ("bias", module.bias.data)):
        n = values.numel()
        assert values.abs().max().item() <= bound, name
        assert values.abs().max().item() > bound * (1 - 20 / n), name  # reaches the bound
        assert abs(values.mean().item()) < 4 * bound / math.sqrt(3 * n), name
        assert abs(values.var().item() / (bound**2 / 3) - 1) < 6 * math.sqrt(0.8 / n), name
        assert ks_distance(values, uniform_cdf(bound)) < ks_limit(n), name


def test_kaiming_normal_and_xavier_have_the_intended_spread():
    mt.manual_seed(1)
    weight = mt.nn.Parameter(torch.empty(400, 300))
    init.kaiming_normal_(weight, nonlinearity="relu")
    std = math.sqrt(2) / math.sqrt(300)
    assert ks_distance(weight.data, normal_cdf(std)) < ks_limit(weight.numel())
    init.xavier_uniform_(weight)
    bound = math.sqrt(6 / 700)
    assert weight.data.abs().max().item() <= bound
    assert ks_distance(weight.data, uniform_cdf(bound)) < ks_limit(weight.numel())
    init.xavier_normal_(weight, gain=2.0)
    assert ks_distance(weight.data, normal_cdf(2 * math.sqrt(2 / 700))) < ks_limit(weight.numel())


def test_ks_check_can_fail():
    """The statistical check is not vacuous: a bound off by 10% is detected."""
    mt.manual_seed(0)
    module = mt.nn.Linear(800, 300)
    wrong_bound = 1.1 / math.sqrt(800)
    assert ks_distance(module.weight.data, uniform_cdf(wrong_bound)) > ks_limit(
        module.weight.numel()
    )
