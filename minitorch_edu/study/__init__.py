"""Study tools: watch formulas happen (tracing, graph pictures, gradcheck, explanations)."""

from minitorch_edu.study.chain import (
    ElementGradient,
    GradientExplanation,
    Term,
    Use,
    explain_gradient,
)
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
from minitorch_edu.study.trace import Step, Tape, trace

__all__ = [
    "ElementGradient",
    "GradcheckError",
    "GradcheckResult",
    "GradientExplanation",
    "GraphPicture",
    "GraphvizNotFoundError",
    "Hyperparameter",
    "Line",
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
    "gradcheck",
    "render",
    "snapshot",
    "to_dot",
    "trace",
]
