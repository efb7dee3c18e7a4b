"""Side-by-side speed and memory of minitorch_edu and torch (run: `python -m benchmarks`)."""
