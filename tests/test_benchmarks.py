"""The benchmark cases do the same arithmetic on both sides, and the commands run.

No times are checked here (they are measured by `python -m benchmarks`, never asserted):
what is checked is that a case's two sides start from the same weights and data, so that
a ratio of their times compares like with like.
"""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks import phases
from benchmarks.__main__ import main
from benchmarks.cases import CASES
from benchmarks.measure import peak_tensor_bytes

# The larger-batch training cases build the same models as the batch-64 ones.
SMALL_CASES = [case for case in CASES if "b1024" not in case.name and "b256" not in case.name]


@pytest.mark.parametrize("case", SMALL_CASES, ids=lambda case: case.name)
def test_both_sides_compute_the_same_step(case):
    steps = [case.build(side, torch.device("cpu"), torch.float64) for side in ("mt", "torch")]
    results = [step() for step in steps]
    if results[0] is None:  # an optimizer step: compare the parameters it updated
        return
    ours, theirs = (float(r.item()) for r in results)
    assert ours == pytest.approx(theirs, rel=1e-9)
    # a second step: the updates were the same too
    ours, theirs = (float(step().item()) for step in steps)
    assert ours == pytest.approx(theirs, rel=1e-9)


def test_optimizer_cases_update_alike():
    for case in (c for c in CASES if c.name.startswith("optim_")):
        params = {}
        for side in ("mt", "torch"):
            step = case.build(side, torch.device("cpu"), torch.float64)
            step()
            step()
            owner = step.__self__  # the optimizer whose step this is
            params[side] = [
                (p.data if side == "mt" else p.detach()).clone()
                for group in owner.param_groups
                for p in group["params"]
            ]
        for ours, theirs in zip(params["mt"], params["torch"], strict=True):
            torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12, msg=case.name)


def test_peak_tensor_bytes_sees_a_held_buffer():
    held = []

    def step():
        held.append(torch.empty(2**20, dtype=torch.uint8))  # 1 MiB kept alive
        scratch = torch.empty(2**21, dtype=torch.uint8)  # 2 MiB, freed at once
        del scratch

    peak = peak_tensor_bytes(step, 2)
    # 1 MiB held from the first step, then the second's 1 MiB and its 2 MiB scratch
    assert 4 * 2**20 <= peak < 5 * 2**20


def test_benchmark_command_writes_its_json(tmp_path, capsys):
    path = tmp_path / "result.json"
    code = main(
        ["--cases", "optim_sgd", "--device", "cpu", "--rounds", "2", "--seconds", "0.05"]
        + ["--no-memory", "--json", str(path)]
    )
    assert code == 0
    report = json.loads(path.read_text())
    (result,) = report["results"]
    assert result["case"] == "optim_sgd" and result["mt_ms"] > 0 and result["torch_ms"] > 0
    assert "optim_sgd" in capsys.readouterr().out


def test_phase_report_names_every_phase():
    text = phases.report("mlp", 4, torch.device("cpu"), torch.float32, steps=3)
    for phase in phases.PHASES:
        assert phase in text


def test_layer_report_times_every_layer_of_the_model():
    rows = phases.layer_times("cnn", 2, torch.device("cpu"), torch.float32, steps=2)
    assert [name.split()[1] for name, _ in rows] == [type(m).__name__ for m in phases.lenet()]
    assert all(len(times) == 4 and min(times) > 0 for _, times in rows)


def test_the_explain_benchmark_runs():
    from benchmarks import explain

    text = explain.report("cnn", 2, "conv1.bias", repeats=1)
    assert "explain_gradient(conv1.bias[" in text and "target < 5 s" in text


def test_the_data_parallel_benchmark_runs_the_same_step_on_both_sides():
    """benchmarks/distributed.py on 2 ranks, briefly: both sides start from the same loss,
    and every variant was timed."""
    import distributed_checks

    from benchmarks import distributed
    from minitorch_edu.testing.distributed import run_ranks

    measured = run_ranks(
        distributed.bench_rank,
        2,
        args=(8, 1, 0.05, "float64"),
        preload=distributed_checks.PRELOAD,
    )
    for rank in measured:
        ours, theirs = rank["first_losses"]["mt"], rank["first_losses"]["torch"]
        assert ours == pytest.approx(theirs, rel=1e-12)
        assert all(len(times) == rank["steps_per_round"] for times in rank["times"].values())
    row = distributed.summarise(2, 8, measured[0])
    assert row["per_rank"] == 4 and 0 <= row["mt"]["communication_fraction"] <= 1
