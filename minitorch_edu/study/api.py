"""The study tools' public names: `mt.study.<name>` (imported on first use, see
minitorch_edu/study/__init__.py)."""

from minitorch_edu.study import examples
from minitorch_edu.study.all_reduce import AllReduceExplanation, explain_all_reduce
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
