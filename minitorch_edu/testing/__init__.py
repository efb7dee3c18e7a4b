"""Property-testing kit: test your own tensor code against torch the way this project does.

A property test states something that must hold for *every* input, and hypothesis draws
inputs to try to break it: shapes with sides of 1 (broadcasting), 0-d tensors, permuted
memory layouts, zeros, hyperparameters at the edges of their ranges. Three oracles:

    torch                assert_matches_torch(ours, torch's, *inputs): the forward value and
                         every input's gradient (and, with double_backward=True, the
                         gradients of the gradients) agree in float64
    finite differences   minitorch_edu.study.gradcheck(fn, inputs): the analytic gradient
                         agrees with (f(x + eps) - f(x - eps)) / (2 eps), element by element
    the strategies       minitorch_edu.testing.strategies (imported as `mts`): inputs and
                         configurations that torch accepts, drawn to reach the corners

A new op, written as a Function, tested both ways:

    import torch
    from hypothesis import given, settings, strategies as st
    import minitorch_edu as mt
    from minitorch_edu.study import gradcheck
    from minitorch_edu.testing import assert_matches_torch, strategies as mts

    class Softplus(mt.Function):
        formula = "da = grad * sigmoid(a)"

        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return torch.log1p(torch.exp(-a.abs())) + a.clamp(min=0)

        @staticmethod
        def backward(ctx, grad):
            (a,) = ctx.saved_tensors
            return grad * a.sigmoid()

    @settings(deadline=None)  # gradcheck runs a forward per element: no time limit
    @given(mts.tensors(shape=mts.shapes(max_dims=3)))
    def test_softplus(x):
        assert_matches_torch(Softplus.apply, torch.nn.functional.softplus, x)
        gradcheck(Softplus.apply, [x])

A layer, with configurations torch accepts:

    @given(data=st.data())
    def test_my_conv(data):
        config, input_shape = data.draw(mts.conv_configs(spatial_dims=2))
        x = data.draw(mts.tensors(shape=input_shape))
        ...   # build yours and torch.nn.Conv2d(**config) with the same weights; compare

An optimizer, with every flag drawn:

    @given(data=st.data())
    def test_my_adam(data):
        kwargs = data.draw(mts.optimizer_hyperparameters("Adam"))
        ...   # run yours and torch.optim.Adam(params, **kwargs) on the same gradients

When a check fails, the message names what differs and its worst element with both values
(assert_matches_torch), or the worst element's analytic and numeric gradient (gradcheck),
and hypothesis shrinks the input to a small one that still fails.

    Case             one drawn example of an op: our function, torch's, the inputs, and
                     whether finite differences apply (cases.py)
    assert_close     torch.testing.assert_close with that message, for your own comparisons
"""

from minitorch_edu.testing import strategies
from minitorch_edu.testing.cases import Case
from minitorch_edu.testing.compare import Comparison, assert_close, assert_matches_torch

__all__ = ["Case", "Comparison", "assert_close", "assert_matches_torch", "strategies"]
