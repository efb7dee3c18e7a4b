"""Start-up: the command line answers --help and usage errors before torch is imported, and
the package's names, loaded on first use (minitorch_edu/lazy.py), are the API as before.

Timings are measured by `python -m benchmarks startup`, not here.
"""

import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import minitorch_edu as mt
from minitorch_edu import api
from minitorch_edu.study import api as study_api

REPOSITORY = Path(__file__).resolve().parents[1]

# (arguments, exit code): version and usage errors, none of which needs torch (and
# `--help` of every command and subcommand, found by walking the parser).
ANSWERED_WITHOUT_TORCH = [
    (["--version"], 0),
    ([], 2),
    (["frobnicate"], 2),
    (["train", "--learning-rate", "0.1"], 2),
    (["train", "--lr", "0"], 2),
    (["train", "--momentum", "0.9", "--optimizer", "adam"], 2),
    (["train", "--model", "transformer"], 2),
    (["train", "--epochs", "-1"], 2),
    (["train", "--plot", "curves.pdf"], 2),
    (["train", "--save", "/no/such/dir/run.pt"], 2),
    (["train", "--nproc", "0"], 2),
    (["train", "--zero"], 2),
    (["train", "--nproc", "3"], 2),
    (["explain", "optimizer", "--name", "lbfgs"], 2),
    (["explain", "optimizer", "--step", "0"], 2),
    (["explain", "mlp", "--seed", "-1"], 2),
    (["explain", "conv", "--pixel", "a,b"], 2),
]

PARSE_ONLY = """
import argparse, contextlib, io, json, sys
import minitorch_edu
after_import = "torch" in sys.modules
from minitorch_edu.cli import build_parser, main

def commands(parser, path):
    yield path
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                yield from commands(subparser, [*path, name])

helps = [[*path, "--help"] for path in commands(build_parser(), [])]
codes = []
for arguments in helps + json.loads(sys.argv[1]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            main(arguments)
            codes.append(None)
        except SystemExit as exit:
            codes.append(exit.code)
torch = "torch" in sys.modules
print(json.dumps({"after_import": after_import, "torch": torch, "helps": helps, "codes": codes}))
"""

FIRST_USE = """
import sys, types
import minitorch_edu as mt
assert "torch" not in sys.modules
x = mt.tensor([1.0, 2.0, 3.0], requires_grad=True)
(x * x).sum().backward()
print(x.grad.tolist(), mt.float64, mt.bool)
import minitorch_edu.study.trace  # the submodule first, then the function of the same name
from minitorch_edu import nn
from minitorch_edu import *  # noqa
print(nn.Linear.__name__, tensor is mt.tensor, float64, type(mt.study.trace).__name__)
"""


def run_python(source, *arguments):
    done = subprocess.run(
        [sys.executable, "-c", source, *arguments],
        capture_output=True,
        text=True,
        cwd=REPOSITORY,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_help_and_usage_errors_are_answered_before_torch_is_imported():
    arguments = [argv for argv, _ in ANSWERED_WITHOUT_TORCH]
    result = json.loads(run_python(PARSE_ONLY, json.dumps(arguments)))
    assert ["explain", "optimizer", "--help"] in result["helps"]
    expected = [0] * len(result["helps"]) + [code for _, code in ANSWERED_WITHOUT_TORCH]
    assert result["codes"] == expected
    assert not result["after_import"], "import minitorch_edu imported torch"
    assert not result["torch"], "parsing the command line imported torch"


def test_the_api_loads_on_first_use_in_a_fresh_process():
    printed = run_python(FIRST_USE).splitlines()
    assert printed == [
        "[2.0, 4.0, 6.0] torch.float64 torch.bool",
        "Linear True torch.float64 function",
    ]


def test_every_api_name_is_a_package_attribute():
    names = [name for name in vars(api) if not name.startswith("_")]
    assert {"tensor", "Tensor", "nn", "optim", "float64", "no_grad", "cat"} <= set(names)
    for name in names:
        assert getattr(mt, name) is getattr(api, name), name
    assert set(names) <= set(dir(mt))
    assert mt.__all__ == names
    assert mt.float32 is mt.float is torch.float32 and mt.long is torch.int64
    assert mt.__version__ == "0.1.0"
    with pytest.raises(AttributeError, match="module 'minitorch_edu' has no attribute 'tensr'"):
        mt.tensr  # noqa: B018
    assert not hasattr(mt, "__wrapped__")


def test_study_names_that_are_also_module_names_are_the_functions():

    assert isinstance(mt.study.trace, types.FunctionType)
    assert mt.study.trace is sys.modules["minitorch_edu.study.trace"].trace
    assert mt.study.gradcheck is sys.modules["minitorch_edu.study.gradcheck"].gradcheck
    for name in mt.study.__all__:
        assert getattr(mt.study, name) is getattr(study_api, name), name
    assert set(mt.study.__all__) <= set(dir(mt.study))


def test_the_explain_optimizer_choices_are_the_examples():
    from minitorch_edu.study import cli, examples

    assert cli.OPTIMIZER_EXAMPLES == examples.OPTIMIZERS


def test_the_digits_read_from_their_file_are_scikit_learns():
    from sklearn.datasets import load_digits

    from minitorch_edu.data.digits import _raw_digits, _sklearn_digits_file

    assert _sklearn_digits_file() is not None, "scikit-learn's digits.csv.gz has moved"
    images, labels = _raw_digits()
    reference = load_digits()
    assert images.dtype == reference.images.dtype and labels.dtype == np.int64
    np.testing.assert_array_equal(images, reference.images)
    np.testing.assert_array_equal(labels, reference.target)
