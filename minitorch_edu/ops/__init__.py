"""The differentiable ops, one family per file, each op's forward and backward together."""
