"""Neural-network building blocks with torch.nn's names: `import minitorch_edu.nn as nn`.

module.py       Module: registration, parameters(), train/eval, to(), state_dict
parameter.py    Parameter
containers.py   Sequential, ModuleList, ModuleDict
init.py         kaiming / xavier / uniform / normal initialisation
linear.py       Linear, Identity
conv.py         Conv1d, Conv2d
pooling.py      MaxPool2d, AvgPool2d
activation.py   ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, LogSoftmax
dropout.py      Dropout
flatten.py      Flatten
loss.py         CrossEntropyLoss, NLLLoss, MSELoss, BCEWithLogitsLoss
functional/     the functions behind the layers, with their formulas (F.linear, F.conv2d, ...)
parallel/       DistributedDataParallel: data parallelism on torch.distributed
"""

from minitorch_edu.nn import functional, init, parallel
from minitorch_edu.nn.activation import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from minitorch_edu.nn.containers import ModuleDict, ModuleList, Sequential
from minitorch_edu.nn.conv import Conv1d, Conv2d
from minitorch_edu.nn.dropout import Dropout
from minitorch_edu.nn.flatten import Flatten
from minitorch_edu.nn.linear import Identity, Linear
from minitorch_edu.nn.loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from minitorch_edu.nn.module import Module
from minitorch_edu.nn.parameter import Parameter
from minitorch_edu.nn.pooling import AvgPool2d, MaxPool2d

__all__ = [
    "AvgPool2d",
    "BCEWithLogitsLoss",
    "Conv1d",
    "Conv2d",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "Identity",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "MaxPool2d",
    "Module",
    "ModuleDict",
    "ModuleList",
    "NLLLoss",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "functional",
    "init",
    "parallel",
]
