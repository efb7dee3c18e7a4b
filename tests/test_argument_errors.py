"""Bad arguments get a clear error, never a Python-internal one.

A wrong type or value given to a layer, a functional, an optimizer, a scheduler, the DataLoader
or a shape op must not surface as `'float' object is not iterable`, `'<' not supported between
'str' and 'int'`, `tuple index out of range` or `integer modulo by zero`: the error names the
argument and what it should be. Each call is made on torch too: where torch gives a real error
(not one of those), ours has the same type; where torch accepts the value, so do we, except
for the few listed in REFUSED_ALTHOUGH_TORCH_ACCEPTS, each with its reason.
"""

from __future__ import annotations

import re
import warnings

import pytest
import torch

import minitorch_edu as mt
import minitorch_edu.nn.functional as F

# What a Python-internal error says: the language tripping over a value, not a check.
INTERNAL = re.compile(
    r"not supported between instances|object is not iterable|object is not subscriptable|"
    r"object is not callable|index out of range|modulo by zero|division by zero|"
    r"not all arguments converted|can't multiply sequence|unsupported operand type|"
    r"has no attribute|cannot be interpreted as an integer|invalid literal for|"
    r"list indices must be|unhashable type|positional argument|unexpected keyword|"
    r"pop from empty"
)
INTERNAL_TYPES = (ZeroDivisionError, AttributeError, KeyError, AssertionError, NameError)


def images():
    return torch.randn(1, 1, 5, 5)


def sgd(torch_side, **options):
    """SGD over one parameter, on either side."""
    if torch_side:
        return torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], **({"lr": 0.1} | options))
    return mt.optim.SGD([mt.nn.Parameter(torch.ones(2))], **({"lr": 0.1} | options))


def both(make):
    """A case whose call is written once, against a namespace: `make(torch_namespace)` and
    `make(our_namespace)`."""
    return make


class Side:
    """What a case calls: torch's modules or ours, under the same names."""

    def __init__(self, torch_side: bool) -> None:
        self.is_torch = torch_side
        self.nn = torch.nn if torch_side else mt.nn
        self.F = torch.nn.functional if torch_side else F
        self.optim = torch.optim if torch_side else mt.optim
        self.tensor = (lambda t: t) if torch_side else mt.tensor
        self.data = torch.utils.data if torch_side else mt.data

    def optimizer(self, name="SGD", **options):
        parameter = (torch.nn.Parameter if self.is_torch else mt.nn.Parameter)(torch.ones(2))
        return getattr(self.optim, name)([parameter], **({"lr": 0.1} | options))

    def scheduler(self, name, *arguments, **options):
        scheduler = getattr(self.optim.lr_scheduler, name)(self.optimizer(), *arguments, **options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scheduler.step()
        return scheduler


X = torch.randn(2, 3)
LOGITS, TARGET = torch.randn(2, 3), torch.tensor([0, 2])

CASES = {
    # layers and their functional forms
    "Conv2d stride=1.5": lambda s: s.nn.Conv2d(1, 1, 3, stride=1.5)(s.tensor(images())),
    "Conv2d padding=1.5": lambda s: s.nn.Conv2d(1, 1, 3, padding=1.5)(s.tensor(images())),
    "Conv2d dilation=1.5": lambda s: s.nn.Conv2d(1, 1, 3, dilation=1.5)(s.tensor(images())),
    "Conv1d kernel_size=1.5": lambda s: s.nn.Conv1d(1, 1, 1.5),
    "Conv2d in_channels='a'": lambda s: s.nn.Conv2d("a", 1, 3),
    "Conv2d out_channels='a'": lambda s: s.nn.Conv2d(1, "a", 3),
    "Conv2d groups=1.5": lambda s: s.nn.Conv2d(2, 2, 3, groups=1.5),
    "F.conv2d stride=1.5": lambda s: s.F.conv2d(
        s.tensor(images()), s.tensor(torch.ones(1, 1, 3, 3)), stride=1.5
    ),
    "MaxPool2d stride=1.5": lambda s: s.nn.MaxPool2d(2, stride=1.5)(s.tensor(images())),
    "F.max_pool2d kernel_size=1.5": lambda s: s.F.max_pool2d(s.tensor(images()), 1.5),
    "F.avg_pool2d kernel_size='a'": lambda s: s.F.avg_pool2d(s.tensor(images()), "a"),
    "Linear in_features='a'": lambda s: s.nn.Linear("a", 2),
    "Linear in_features=2.5": lambda s: s.nn.Linear(2.5, 2),
    "CrossEntropyLoss weight=list": lambda s: s.nn.CrossEntropyLoss(weight=[1.0, 2.0]),
    "NLLLoss weight=list": lambda s: s.nn.NLLLoss(weight=[1.0, 2.0]),
    "BCEWithLogitsLoss pos_weight=list": lambda s: s.nn.BCEWithLogitsLoss(pos_weight=[1.0]),
    "Dropout p='a'": lambda s: s.nn.Dropout("a"),
    "Dropout p=None": lambda s: s.nn.Dropout(None),
    "F.dropout p='a'": lambda s: s.F.dropout(s.tensor(X), "a"),
    "Softmax dim='a'": lambda s: s.nn.Softmax("a")(s.tensor(X)),
    "F.softmax dim=1.5": lambda s: s.F.softmax(s.tensor(X), 1.5),
    "F.log_softmax dim='a'": lambda s: s.F.log_softmax(s.tensor(X), "a"),
    "Flatten start_dim='a'": lambda s: s.nn.Flatten("a")(s.tensor(images())),
    "CrossEntropyLoss label_smoothing='a'": lambda s: s.nn.CrossEntropyLoss(label_smoothing="a")(
        s.tensor(LOGITS), TARGET
    ),
    "NLLLoss ignore_index='a'": lambda s: s.nn.NLLLoss(ignore_index="a")(s.tensor(LOGITS), TARGET),
    "LeakyReLU negative_slope='a'": lambda s: s.nn.LeakyReLU("a")(s.tensor(X)),
    # optimizers
    "SGD lr='0.1'": lambda s: s.optimizer(lr="0.1"),
    "SGD momentum='0.9'": lambda s: s.optimizer(momentum="0.9"),
    "SGD params=3": lambda s: s.optim.SGD(3, lr=0.1),
    "Adam lr='0.1'": lambda s: s.optimizer("Adam", lr="0.1"),
    "Adam eps='a'": lambda s: s.optimizer("Adam", eps="a"),
    "Adam betas=0.9": lambda s: s.optimizer("Adam", betas=0.9),
    "Adam betas=('a', 0.9)": lambda s: s.optimizer("Adam", betas=("a", 0.9)),
    "AdamW weight_decay='a'": lambda s: s.optimizer("AdamW", weight_decay="a"),
    "RMSprop alpha='a'": lambda s: s.optimizer("RMSprop", alpha="a"),
    "Adagrad lr_decay='a'": lambda s: s.optimizer("Adagrad", lr_decay="a"),
    "Optimizer.load_state_dict([1])": lambda s: s.optimizer().load_state_dict([1]),
    # schedulers
    "StepLR step_size=0": lambda s: s.scheduler("StepLR", step_size=0),
    "StepLR gamma='a'": lambda s: s.scheduler("StepLR", 1, gamma="a"),
    "StepLR step_size=-1": lambda s: s.scheduler("StepLR", step_size=-1),
    "StepLR step_size=1.5": lambda s: s.scheduler("StepLR", step_size=1.5),
    "CosineAnnealingLR T_max=-2": lambda s: s.scheduler("CosineAnnealingLR", T_max=-2),
    "ExponentialLR gamma='a'": lambda s: s.scheduler("ExponentialLR", gamma="a"),
    "CosineAnnealingLR T_max=0": lambda s: s.scheduler("CosineAnnealingLR", T_max=0),
    "LambdaLR lr_lambda=3": lambda s: s.scheduler("LambdaLR", 3),
    # shape ops
    "unbind dim=5": lambda s: s.tensor(torch.ones(2, 3)).unbind(5),
    "split dim=5": lambda s: s.tensor(torch.ones(2, 3)).split(1, 5),
    "chunk dim=5": lambda s: s.tensor(torch.ones(2, 3)).chunk(2, 5),
    "unbind dim=1.5": lambda s: s.tensor(torch.ones(4)).unbind(1.5),
    "split split_size=1.5": lambda s: s.tensor(torch.ones(4)).split(1.5),
    "chunk chunks=1.5": lambda s: s.tensor(torch.ones(4)).chunk(1.5),
    "stack dim=5": lambda s: (torch if s.is_torch else mt).stack(
        [s.tensor(torch.ones(2)), s.tensor(torch.ones(2))], 5
    ),
    "squeeze dim=1.5": lambda s: s.tensor(torch.ones(6)).squeeze(1.5),
    "flatten start_dim=1.5": lambda s: s.tensor(torch.ones(6)).flatten(1.5),
    "permute dims='a','b'": lambda s: s.tensor(torch.ones(2, 3)).permute("a", "b"),
    "unsqueeze dim='a'": lambda s: s.tensor(torch.ones(2, 3)).unsqueeze("a"),
    "cat(5)": lambda s: (torch if s.is_torch else mt).cat(5),
    "cat(tensor)": lambda s: (torch if s.is_torch else mt).cat(s.tensor(torch.ones(2, 3))),
    "stack(5)": lambda s: (torch if s.is_torch else mt).stack(5),
    "narrow start='a'": lambda s: s.tensor(torch.ones(4)).narrow(0, "a", 1),
    "select index='a'": lambda s: s.tensor(torch.ones(4)).select(0, "a"),
    "as_strided size='a'": lambda s: s.tensor(torch.ones(4)).as_strided("a", (1,)),
    "F.pad pad=(1.5, 1)": lambda s: s.F.pad(s.tensor(X), (1.5, 1)),
    "Optimizer.step(closure=3)": lambda s: s.optimizer().step(3),
    "scheduler.load_state_dict(3)": lambda s: s.scheduler("StepLR", 1).load_state_dict(3),
    "default_collate([])": lambda s: s.data.default_collate([]),
    "manual_seed('a')": lambda s: (torch if s.is_torch else mt).manual_seed("a"),
    "manual_seed(None)": lambda s: (torch if s.is_torch else mt).manual_seed(None),
    # data
    "DataLoader batch_size=1.5": lambda s: s.data.DataLoader(
        s.data.TensorDataset(torch.ones(3)), batch_size=1.5
    ),
    "DataLoader batch_size='a'": lambda s: s.data.DataLoader(
        s.data.TensorDataset(torch.ones(3)), batch_size="a"
    ),
}

# Values torch accepts without complaint that we refuse, and why.
REFUSED_ALTHOUGH_TORCH_ACCEPTS = {
    "StepLR step_size=-1": "torch multiplies the lr by gamma every epoch (t mod -1 is 0)",
    "CosineAnnealingLR T_max=-2": "torch runs the cosine backwards",
}


def outcome(call, side):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            call(Side(side))
    except Exception as error:  # noqa: BLE001 - every error is looked at
        return error
    return None


def is_internal(error: BaseException) -> bool:
    return isinstance(error, INTERNAL_TYPES) or INTERNAL.search(str(error)) is not None


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_arguments_get_a_clear_error_of_torchs_type(case):
    ours, theirs = outcome(CASES[case], False), outcome(CASES[case], True)
    if theirs is None and case not in REFUSED_ALTHOUGH_TORCH_ACCEPTS:
        assert ours is None, f"torch accepts {case}; ours: {ours!r}"
        return
    assert ours is not None, f"torch refuses {case} ({theirs!r}); ours accepts it"
    assert not is_internal(ours), f"{case}: a Python-internal error: {ours!r}"
    if theirs is not None and not is_internal(theirs):
        assert type(ours) is type(theirs), (ours, theirs)
    if theirs is not None and is_internal(theirs) and not isinstance(theirs, INTERNAL_TYPES):
        assert isinstance(ours, type(theirs)), (ours, theirs)  # torch's TypeError stays one
