"""DistributedDataParallel, ZeroRedundancyOptimizer and the study view of the all-reduce,
on 2 and 4 real gloo processes of this machine (minitorch_edu.testing.run_ranks: loopback
only, a port picked at run time, every wait bounded, every process reaped).

One process group per world size runs every check (tests/distributed_checks.py says what
each rank does); the tests below read its results. In float64, against:
- one process that trains on the whole batch (what data parallelism must equal),
- torch's DistributedDataParallel and ZeroRedundancyOptimizer on the torch twin.
"""

import math
import os
from pathlib import Path

import distributed_checks as checks  # the ranks' side, beside this file
import pytest
import torch
import torch.distributed as dist

import minitorch_edu as mt
from minitorch_edu.nn.parallel import DistributedDataParallel
from minitorch_edu.nn.parallel.reducer import FIRST_BUCKET_BYTES, MIB, assign_buckets
from minitorch_edu.study.exploration import decode_tensor, read_trace
from minitorch_edu.testing.distributed import RanksFailed, run_ranks

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="torch.distributed with gloo is not available in this torch build",
)
REPOSITORY = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-12  # relative, float64, after several steps
TIMEOUT = float(os.environ.get("MINITORCH_EDU_DISTRIBUTED_TIMEOUT", 60))


def relative_difference(ours, theirs):
    return max(
        ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item()
        for a, b in zip(ours, theirs, strict=True)
    )


@pytest.fixture(scope="module", params=[2, 4], ids=["2 ranks", "4 ranks"])
def ranks(request):
    """What every rank of one process group returned from checks.data_parallel_checks."""
    return run_ranks(
        checks.data_parallel_checks, request.param, timeout=TIMEOUT, preload=checks.PRELOAD
    )


# ---------------------------------------------------------------------- data parallelism
@pytest.mark.parametrize("case", ["sgd", "adam", "sgd as bucket view", "adam as bucket view"])
def test_n_ranks_end_where_one_process_with_the_whole_batch_ends(ranks, case):
    for result in ranks:
        ours, single = result[case]
        assert relative_difference(ours, single) < TOLERANCE
    for result in ranks[1:]:  # and the replicas are equal, to the bit
        for a, b in zip(result[case][0], ranks[0][case][0]):
            assert torch.equal(a, b)


def test_ranks_that_start_from_other_weights_end_identical(ranks):
    assert all(result["sgd start differs"] for result in ranks)  # seeds differ by rank
    # ... and the test above found them equal after training: the broadcast at construction


def test_gradient_as_bucket_view_makes_grad_a_view_of_its_bucket(ranks):
    assert all(result["grad is a bucket view"] for result in ranks)


def test_no_sync_accumulation_equals_the_larger_batch(ranks):
    for result in ranks:
        no_sync = result["no_sync"]
        assert relative_difference(*no_sync["grads"]) < TOLERANCE
        assert relative_difference(*no_sync["parameters"]) < TOLERANCE
        # inside no_sync the gradient stays this rank's own
        assert relative_difference(*no_sync["local inside no_sync"]) < TOLERANCE


def test_zero_with_adam_equals_plain_adam(ranks):
    world_size = len(ranks)
    for result in ranks:
        assert relative_difference(*result["zero"]["parameters"]) < TOLERANCE
        assert relative_difference(*result["zero resumed"]) < TOLERANCE
    consolidated, plain = ranks[0]["zero"]["state"]
    assert consolidated["param_groups"] == plain["param_groups"]
    assert sorted(consolidated["state"]) == sorted(plain["state"])
    for index, state in plain["state"].items():
        for name, value in state.items():
            assert relative_difference([consolidated["state"][index][name]], [value]) < TOLERANCE
    # each rank keeps the state of its own shard only, and the shards are torch's
    owned = ranks[0]["zero"]["owned"]
    assert owned == ranks[0]["zero"]["torch owned"]
    assert set(owned) == set(range(world_size))
    for rank, result in enumerate(ranks):
        assert result["zero"]["state tensors here"] == 3 * owned.count(rank)  # step, m, v
    sizes = [result["zero"]["elements here"] for result in ranks]
    assert sum(sizes) == sum(p.numel() for p in checks.model(0).parameters())


def test_our_ddp_equals_torchs_ddp_step_for_step(ranks):
    for result in ranks:
        compared = result["torch ddp"]
        for step in compared["steps"]:
            assert relative_difference(*step["grads"]) < TOLERANCE
            assert relative_difference(*step["parameters"]) < TOLERANCE
        assert compared["our buckets"] == compared["torch buckets"]
        assert len(compared["our buckets"]) > 1
        ours_keys, torch_keys = compared["state_dict keys"]
        assert ours_keys == torch_keys and ours_keys[0].startswith("module.")


def test_find_unused_parameters_gives_torchs_gradients(ranks):
    for result in ranks:
        grads, torch_grads = result["unused"]["grads"], result["unused"]["torch grads"]
        assert grads.keys() == torch_grads.keys()
        for name, grad in grads.items():
            assert (grad is None) == (torch_grads[name] is None), name
            if grad is not None:
                assert relative_difference([grad], [torch_grads[name]]) < TOLERANCE
        assert grads["never.weight"] is None  # used by no rank: left alone


def test_a_parameter_without_gradient_is_named_at_the_next_forward(ranks):
    message = ranks[1]["unused"]["strict message"]  # rank 1 uses the odd head
    assert message.startswith("Expected to have finished reduction in the prior iteration")
    assert "find_unused_parameters=True" in message
    assert message.endswith("rank 1: even.weight, even.bias, never.weight, never.bias")


def test_buffers_are_rank_0s_at_construction_and_at_every_forward(ranks):
    for rank, result in enumerate(ranks):
        at_construction, after_forward = result["buffers"][True]
        assert at_construction.tolist() == [0.0, 0.0]  # rank 0's
        assert after_forward.tolist() == [10.0, 10.0]  # rank 0's change, broadcast at forward
        # broadcast_buffers=False: the buffers are left as each rank has them, as in torch
        at_construction, after_forward = result["buffers"][False]
        assert at_construction.tolist() == [rank, rank]
        assert after_forward.tolist() == [10.0 + rank] * 2


def test_refusals_say_what_is_wrong(ranks):
    messages = ranks[0]["refusals"]
    assert "same model on every rank" in messages["mismatched"]
    assert "(4, 5)" in messages["mismatched"] and "rank 1" in messages["mismatched"]
    assert "doesn't have any parameter that requires a gradient" in messages["frozen"]
    assert "device_ids" in messages["device_ids"]


# ---------------------------------------------------------------------- the study view
def test_the_trace_shows_each_ranks_gradient_its_bucket_and_the_average(ranks):
    world_size = len(ranks)
    local = [result["study"]["local"] for result in ranks]
    for result in ranks:
        study = result["study"]
        explanation = study["explanation"]
        assert explanation.local == local  # every rank's own gradient, as it computed it
        assert math.isclose(explanation.averaged, study["averaged"], rel_tol=0, abs_tol=0)
        assert math.isclose(explanation.averaged, sum(local) / world_size, rel_tol=1e-12)
        assert explanation.bucket == 1 and explanation.buckets == 2
        assert explanation.bucket_names == ["module.0.bias", "module.0.weight"]
        assert explanation.slot == 8 + 1 * checks.FEATURES + 2  # after the bias, row 1, col 2
        lines = study["text"].splitlines()
        assert lines[0] == f"module.0.weight[1, 2] across {world_size} ranks (backward pass 1)"
        assert f"g = (1/{world_size}) (g_0 + g_1" in lines[-1]
        assert "all-reduced" in study["heading"] and len(study["rows"]) == 2
        assert study["json bucket"]["names"][0] == "module.4.bias"


def test_the_example_script_prints_what_this_page_shows():
    """docs/examples/data_parallel.py on 2 ranks prints (on rank 0) what docs/data-parallel.md
    shows after "Output (rank 0;"."""
    page = (REPOSITORY / "docs" / "data-parallel.md").read_text()
    shown = page.split("Output (rank 0;", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    script = REPOSITORY / "docs" / "examples" / "data_parallel.py"
    printed = run_ranks(
        checks.run_script, 2, args=(str(script),), init=False, preload=checks.PRELOAD
    )
    assert printed[0] == shown
    assert printed[1] == ""  # rank 1 prints nothing


@pytest.fixture(scope="module")
def explored(tmp_path_factory):
    """mt.study.explore on both ranks of a DDP model; rank 0's page and each rank's own
    gradients (computed alone, without DDP, on its share)."""
    path = tmp_path_factory.mktemp("explorer") / "ddp.html"
    ranks = run_ranks(checks.explore_ranks, 2, args=(str(path),), preload=checks.PRELOAD)
    return path, read_trace(path), [result["local"] for result in ranks]


def test_the_explorer_page_records_each_all_reduce_with_every_ranks_gradients(explored):
    _, trace, local = explored
    timeline = trace["timeline"]
    reduces = [entry for entry in timeline if entry["phase"] == "all-reduce"]
    assert [entry["node"] for entry in reduces] == ["bucket 0", "bucket 1"]
    backwards = [entry["index"] for entry in timeline if entry["phase"] == "backward"]
    assert reduces[0]["index"] < backwards[-1]  # sent while backward still runs
    step = trace["training_steps"][0]
    for name, record in step["all_reduce"].items():
        gradients = [decode_tensor(trace, number) for number in record["local"]]
        for rank, gradient in enumerate(gradients):
            assert torch.equal(gradient, local[rank][name])  # each rank's own, exactly
        average = decode_tensor(trace, record["average"])
        assert torch.allclose(average, sum(gradients) / 2, rtol=1e-12, atol=0)
        update = next(u for u in step["updates"] if u["parameter"] == name)
        assert torch.equal(decode_tensor(trace, update["grad"]), average)  # what SGD used


def test_the_explorer_page_shows_a_clicked_element_on_every_rank(browser, explored):
    path, trace, local = explored
    entry = [e for e in trace["timeline"] if e["phase"] == "all-reduce"][-1]
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(path.as_uri())
        page.wait_for_selector("html[data-ready]", timeout=30_000)
        page.click(f'#timeline .row[data-index="{entry["index"]}"]')
        canvas = page.locator('#step .tensor[data-name="dmodule.0.weight on rank 1"] canvas')
        canvas.click(position=canvas.evaluate("(c, index) => c.pointOf(index)", [1, 2]))
        assert page.locator("#element h2").inner_text() == "module.0.weight[1, 2]"
        shown = [
            float(cell.get_attribute("data-value"))
            for cell in page.locator("#element .ranks td").all()
        ]
        text = page.locator("#element .ranks").inner_text()
    finally:
        page.close()
    expected = [local[rank]["module.0.weight"][1, 2].item() for rank in range(2)]
    assert shown[:2] == expected
    assert math.isclose(shown[2], sum(expected) / 2, rel_tol=1e-12)
    assert "rode in bucket 1 of 2 (module.0.bias, module.0.weight), at slot 15" in text
    assert errors == []


# ---------------------------------------------------------------------- faults
@pytest.mark.parametrize(
    "how, timeout, ends",
    [
        ("dies", 20, "the process ended (exit code 7) without a result"),
        ("hangs", 3, "did not finish in time (killed)"),
    ],
)
def test_a_rank_that_stops_makes_the_others_stop_with_a_clear_error_in_bounded_time(
    how, timeout, ends
):
    with pytest.raises(RanksFailed) as failed:
        run_ranks(checks.one_rank_stops, 2, args=(how, 2), timeout=timeout, preload=checks.PRELOAD)
    assert failed.value.failures == {1: ends}
    # rank 0 did not hang: its third step raised, at once or at the group's timeout
    survivor = failed.value.results[0]
    assert survivor["step"] == 2
    assert survivor["seconds"] < (5 if how == "dies" else timeout + 5)
    assert survivor["error"].startswith("rank 0 of 2: all-reduce of gradient bucket 0")
    assert "another process of the group probably stopped" in survivor["error"]


@pytest.mark.parametrize("world_size", [0, -1, 2.0, True])
def test_a_bad_world_size_is_refused_before_anything_starts(world_size):
    with pytest.raises(ValueError, match="world_size must be a positive integer"):
        run_ranks(checks.one_rank_stops, world_size)


def test_without_a_process_group_ddp_and_zero_say_how_to_start_one():
    with pytest.raises(RuntimeError, match="init_process_group.*torchrun"):
        DistributedDataParallel(mt.nn.Linear(2, 2))
    with pytest.raises(RuntimeError, match="init_process_group"):
        mt.optim.ZeroRedundancyOptimizer(mt.nn.Linear(2, 2).parameters(), mt.optim.Adam)


# ---------------------------------------------------------------------- buckets
def test_bucket_layout_is_torchs_with_a_small_first_bucket():
    """Reverse order, one bucket per dtype, a bucket closes at its cap, the first cap 1 MiB:
    torch's own assignment for gradients arriving in reverse order (meta tensors: no memory)."""
    sizes = [300_000, 40_000, 200_000, 1_000, 5_000_000, 70_000, 8_000_000, 10]
    dtypes = [torch.float32, torch.float32, torch.float64] + [torch.float32] * 5
    params = [
        mt.tensor(torch.empty(size, dtype=dtype, device="meta"))
        for size, dtype in zip(sizes, dtypes)
    ]
    ours = assign_buckets(params, FIRST_BUCKET_BYTES, 25 * MIB)
    ready_order = list(reversed(range(len(params))))
    theirs, _ = dist._compute_bucket_assignment_by_size(
        [params[i].data for i in ready_order],
        [FIRST_BUCKET_BYTES, 25 * MIB],
        [False] * len(params),
        ready_order,
    )
    assert ours == theirs  # indices of the parameters, bucket by bucket, in sending order
    assert ours[0] == [7, 6]  # 8M floats: past the 1 MiB first cap at once
