"""Study tools: watch formulas happen (tracing, graph pictures, gradcheck, explanations).

trace()             record every op of a forward and backward pass, with its numbers
explain_gradient()  the chain rule for one element of a gradient, with the numbers
gradient_by_sample() a gradient split by sample, for every element at once
explain_step()      one optimizer step written out for one element, with the numbers
explain_all_reduce() one gradient element across DistributedDataParallel's ranks: each
                    rank's value, the bucket it rode in, the average
explore()           whole training steps recorded for the explorer page (save_html)
to_dot/render/draw  pictures of the computation graph
gradcheck()         analytic gradients against central finite differences
examples            small built-in runs of all of these (`minitorch-edu explain ...`)

The names are defined in minitorch_edu/study/api.py and imported on first use
(minitorch_edu/lazy.py), so that the `explain` command parses its arguments before torch
is imported.
"""

import sys
from typing import TYPE_CHECKING

from minitorch_edu.lazy import SubmodulesDoNotShadow, load_on_first_use

__all__ = [
    "AllReduceExplanation",
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
    "explain_all_reduce",
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

__getattr__, __dir__ = load_on_first_use(globals(), "minitorch_edu.study.api")
# `trace` and `gradcheck` name both a submodule and a function: the function, always.
sys.modules[__name__].__class__ = SubmodulesDoNotShadow

if TYPE_CHECKING:  # editors and type checkers see the whole API here
    from minitorch_edu.study.api import *  # noqa: F403
