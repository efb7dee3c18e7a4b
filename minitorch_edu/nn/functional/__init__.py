"""The functional API, with torch's names and arguments: `import minitorch_edu.nn.functional as F`.

One file per family, each holding its formulas: linear.py, convolution.py (on windows.py
and einsum.py), pooling.py, activation.py, softmax.py, dropout.py, cross_entropy.py,
mse_loss.py, binary_cross_entropy.py, padding.py.
"""

from minitorch_edu.nn.functional.activation import leaky_relu, relu, sigmoid, tanh
from minitorch_edu.nn.functional.binary_cross_entropy import binary_cross_entropy_with_logits
from minitorch_edu.nn.functional.convolution import conv1d, conv2d
from minitorch_edu.nn.functional.cross_entropy import cross_entropy, nll_loss
from minitorch_edu.nn.functional.dropout import dropout
from minitorch_edu.nn.functional.linear import linear
from minitorch_edu.nn.functional.mse_loss import mse_loss
from minitorch_edu.nn.functional.padding import pad
from minitorch_edu.nn.functional.pooling import avg_pool2d, max_pool2d
from minitorch_edu.nn.functional.softmax import log_softmax, softmax

__all__ = [
    "avg_pool2d",
    "binary_cross_entropy_with_logits",
    "conv1d",
    "conv2d",
    "cross_entropy",
    "dropout",
    "leaky_relu",
    "linear",
    "log_softmax",
    "max_pool2d",
    "mse_loss",
    "nll_loss",
    "pad",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
]
