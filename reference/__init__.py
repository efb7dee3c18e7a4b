"""The oracle: torch counterparts of minitorch_edu components, built to match them exactly.

Only here (and in tests/ and benchmarks/) do torch.nn, torch.optim and torch.autograd appear.
"""
