"""Property-testing helpers users can reuse: hypothesis strategies and torch comparisons."""

from minitorch_edu.testing import strategies
from minitorch_edu.testing.cases import Case
from minitorch_edu.testing.compare import Comparison, assert_close, assert_matches_torch

__all__ = ["Case", "Comparison", "assert_close", "assert_matches_torch", "strategies"]
