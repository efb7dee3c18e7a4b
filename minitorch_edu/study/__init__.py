"""Study tools: watch formulas happen (tracing, graph pictures, gradcheck, explanations)."""

from minitorch_edu.study.gradcheck import GradcheckError, GradcheckResult, gradcheck

__all__ = ["GradcheckError", "GradcheckResult", "gradcheck"]
