"""The training loop: our run and its torch twin take the same steps (float64: to rounding,
float32: within a stated tolerance), the twin leaves our run untouched, learning curves are
written as PNGs, and the run leaves torch's global settings as it found them."""

import io
import sys
from contextlib import redirect_stdout

import pytest
import torch

from minitorch_edu import cli, train
from minitorch_edu.data import TensorDataset, load_digits

# float64 leaves only rounding differences (about 1e-16 per operation) between the two
# libraries; over a few epochs they stay far below this.
FLOAT64_RELATIVE_DIFFERENCE = 1e-10
# float32 rounding differences grow as training goes on (nearby trajectories drift apart); over
# the first epochs of these runs they stay below this.
FLOAT32_RELATIVE_DIFFERENCE = 1e-4


def config(*arguments, device="cpu"):
    return cli.parse_train_config([*arguments, "--device", str(device)])


def train_quietly(configuration, train_set=None, test_set=None):
    """run_training on the digits (or the datasets given), its printed lines returned too."""
    if train_set is None:
        train_set = load_digits("train", normalize=True)
        test_set = load_digits("test", normalize=True)
    output = io.StringIO()
    with redirect_stdout(output):
        result = train.run_training(configuration, train_set, test_set)
    return result, output.getvalue()


@pytest.mark.parametrize(
    "arguments",
    [
        ["--model", "mlp", "--optimizer", "sgd", "--epochs", "3"],
        ["--model", "mlp", "--optimizer", "adam", "--epochs", "2"],
        ["--model", "mlp", "--optimizer", "rmsprop", "--momentum", "0.5", "--epochs", "2"],
        ["--model", "mlp", "--optimizer", "adagrad", "--epochs", "2"],
        ["--model", "cnn", "--optimizer", "sgd", "--epochs", "2", "--batch-size", "128"],
    ],
    ids=lambda arguments: "-".join(arguments[1:4:2]),
)
def test_in_float64_every_step_agrees_with_torch_to_rounding(arguments):
    result, output = train_quietly(config(*arguments, "--dtype", "float64"))
    history = result.history
    assert len(history.step_loss) == len(history.torch_step_loss) == result.step > 0
    assert result.largest_relative_difference < FLOAT64_RELATIVE_DIFFERENCE
    assert history.test_accuracy == history.torch_test_accuracy
    for name, value in result.twin.model.state_dict().items():
        torch.testing.assert_close(result.model.state_dict()[name], value, rtol=1e-9, atol=1e-12)
    assert "in float64" in output
    printed = float(output.split("over all")[1].split(":")[1].split()[0])
    assert printed == pytest.approx(result.largest_relative_difference, rel=0.01)


def test_in_float32_the_first_epochs_agree_with_torch():
    result, output = train_quietly(config("--epochs", "3"))
    assert result.largest_relative_difference < FLOAT32_RELATIVE_DIFFERENCE
    assert result.history.test_accuracy == result.history.torch_test_accuracy
    assert result.model.state_dict()["fc1.weight"].dtype == torch.float32
    assert "in float32" in output and "cpu (1 thread)" in output


def test_the_twin_does_not_change_our_run():
    """Building and stepping the torch twin draws no random numbers from our streams."""
    with_twin, _ = train_quietly(config("--model", "cnn", "--epochs", "1", "--batch-size", "256"))
    alone, output = train_quietly(
        config("--model", "cnn", "--epochs", "1", "--batch-size", "256", "--no-compare-torch")
    )
    assert alone.twin is None and alone.largest_relative_difference is None
    assert alone.history.step_loss == with_twin.history.step_loss
    assert alone.history.torch_step_loss == [] and alone.torch_seconds_per_step == []
    for name, value in alone.model.state_dict().items():
        assert torch.equal(value, with_twin.model.state_dict()[name]), name
    assert "compared with" not in output and "torch:" not in output and ", torch" not in output


def test_plot_writes_a_png_with_curves(tmp_path):
    paths = {}
    for compare in ("--compare-torch", "--no-compare-torch"):
        paths[compare] = tmp_path / f"curves{compare}.png"
        train_quietly(config("--epochs", "2", "--plot", str(paths[compare]), compare))
    from matplotlib.image import imread

    for path in paths.values():
        content = path.read_bytes()
        assert content.startswith(b"\x89PNG\r\n\x1a\n") and len(content) > 20_000
        pixels = imread(path)
        assert pixels.shape[0] >= 400 and pixels.std() > 0.05  # drawn on, not a blank canvas
    # Comparing adds a third panel (the relative differences): a wider picture.
    assert imread(paths["--compare-torch"]).shape[1] > imread(paths["--no-compare-torch"]).shape[1]


def test_a_run_restores_the_cpu_thread_count():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen = []
        original = train.train_one_epoch

        def spy(*arguments, **keywords):
            seen.append(torch.get_num_threads())
            return original(*arguments, **keywords)

        train.train_one_epoch, restore = spy, original
        try:
            train_quietly(config("--epochs", "1", "--no-compare-torch"))
        finally:
            train.train_one_epoch = restore
        assert seen == [train.CPU_THREADS] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_without_the_reference_package_comparing_says_what_to_do(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "reference.training", None)  # import now fails
    assert cli.main(["train", "--device", "cpu", "--epochs", "1"]) == 1
    error = capsys.readouterr().err
    assert "comparing with torch needs the torch oracle in the repository's reference/" in error
    assert "pass --no-compare-torch" in error and error.count("\n") == 1


def test_relative_differences():
    assert train.relative_differences([1.0, 2.0, 0.0, 1.0], [1.0, 2.5, 0.0, 0.0]) == [
        0.0,
        0.2,
        0.0,
        float("inf"),
    ]


def test_history_round_trips_as_plain_lists():
    history = train.History(step_loss=[1.0, 0.5], train_loss=[0.75], test_accuracy=[0.5])
    plain = history.to_dict()
    assert plain["torch_step_loss"] == [] and train.History.from_dict(plain) == history


@pytest.mark.cuda
def test_on_a_gpu_the_run_agrees_with_torch_on_the_gpu():
    device = torch.device("cuda")
    small = load_digits("train", normalize=True)
    subset = TensorDataset(*(column[:512] for column in small.tensors))
    test_set = load_digits("test", normalize=True)
    for dtype, tolerance in (("float64", FLOAT64_RELATIVE_DIFFERENCE), ("float32", 1e-4)):
        for model in ("mlp", "cnn"):
            arguments = ["--model", model, "--dtype", dtype, "--epochs", "2"]
            result, output = train_quietly(config(*arguments, device=device), subset, test_set)
            assert "on cuda" in output
            assert next(iter(result.model.parameters())).device.type == "cuda"
            assert next(iter(result.twin.model.parameters())).device.type == "cuda"
            assert result.largest_relative_difference < tolerance, (model, dtype)
