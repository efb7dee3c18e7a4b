"""Study tools: watch formulas happen (tracing, graph pictures, gradcheck, explanations).

trace()             record every op of a forward and backward pass, with its numbers
explain_gradient()  the chain rule for one element of a gradient, with the numbers
gradient_by_sample() a gradient split by sample, for every element at once
explain_step()      one optimizer step written out for one element, with the numbers
explore()           whole training steps recorded for the explorer page (save_html)
to_dot/render/draw  pictures of the computation graph
gradcheck()         analytic gradients against central finite differences
examples            small built-in runs of all of these (`minitorch-edu explain ...`)
"""

from minitorch_edu.study import examples
from minitorch_edu.study.chain import (
    ElementGradient,
    GradientExplanation,
    Group,
    Term,
    Use,
    explain_gradient,
)
from minitorch_edu.study.exploration import Exploration, ExploreError, explore
from minitorch_edu.study.format import Snapshot, snapshot
from minitorch_edu.study.gradcheck import GradcheckError, GradcheckResult, gradcheck
from minitorch_edu.study.graph import GraphPicture, GraphvizNotFoundError, draw, render, to_dot
from minitorch_edu.study.optimizer_step import (
    Hyperparameter,
    Line,
    StateEntry,
    StepExplanation,
    explain_step,
)
from minitorch_edu.study.samples import SampleGradients, SampleShares, gradient_by_sample
from minitorch_edu.study.trace import BackwardPass, Step, Tape, trace

__all__ = [
    "BackwardPass",
    "ElementGradient",
    "ExploreError",
    "Exploration",
    "GradcheckError",
    "GradcheckResult",
    "GradientExplanation",
    "GraphPicture",
    "GraphvizNotFoundError",
    "Group",
    "Hyperparameter",
    "Line",
    "SampleGradients",
    "SampleShares",
    "Snapshot",
    "StateEntry",
    "Step",
    "StepExplanation",
    "Tape",
    "Term",
    "Use",
    "draw",
    "explain_gradient",
    "explain_step",
    "explore",
    "gradcheck",
    "gradient_by_sample",
    "render",
    "snapshot",
    "to_dot",
    "trace",
]
