"""torch's own test samples (OpInfo, ModuleInfo, OptimizerInfo) held against minitorch_edu."""
