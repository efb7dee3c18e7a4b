"""Porting by changing imports: torch programs run on minitorch_edu and compute the same numbers.

- the seed MLP program of PyTorch's classic tutorials (Quickstart, Build the Neural Network,
  Optimizing Model Parameters), run once with `import torch` and once with
  `import minitorch_edu as torch`: same printed text, same numbers;
- torch's grad modes (`torch.no_grad()`, `inference_mode`, `set_grad_enabled`) are honoured;
- torch's functions called on our Tensors run our ops (`__torch_function__`);
- `mt.save` / `mt.load`, `mt.cuda`, `mt.utils.data`, and the DataLoader's torch arguments
  (worker processes, batch samplers, `batch_size=None`, iterable datasets).
"""

from __future__ import annotations

import contextlib
import io
import math
import pickle
import re

import pytest
import torch

import minitorch_edu as mt
import minitorch_edu.nn.functional as F

# ---------------------------------------------------------------------- the tutorial program
# The Quickstart's program, with "Build the Neural Network" and "Optimizing Model Parameters"
# folded in. Only the data differ: FashionMNIST is replaced by small random tensors in which
# each class has its own pattern (nothing is downloaded), and the learning rate is raised so
# that a few epochs over 512 images show the network learning.
TUTORIAL = """
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
patterns = torch.rand(10, 1, 28, 28)
train_labels = torch.randint(0, 10, (512,))
test_labels = torch.randint(0, 10, (128,))
training_data = TensorDataset(
    patterns[train_labels] + 0.5 * torch.randn(512, 1, 28, 28), train_labels
)
test_data = TensorDataset(patterns[test_labels] + 0.5 * torch.randn(128, 1, 28, 28), test_labels)

batch_size = 64
train_dataloader = DataLoader(training_data, batch_size=batch_size, shuffle=True)
test_dataloader = DataLoader(test_data, batch_size=batch_size)

for X, y in test_dataloader:
    print(f"Shape of X [N, C, H, W]: {X.shape}")
    print(f"Shape of y: {y.shape} {y.dtype}")
    break

device = "cuda" if torch.cuda.is_available() else "cpu"
print(f"Using {device} device")


class NeuralNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28 * 28, 512),
            nn.ReLU(),
            nn.Linear(512, 512),
            nn.ReLU(),
            nn.Linear(512, 10),
        )

    def forward(self, x):
        x = self.flatten(x)
        logits = self.linear_relu_stack(x)
        return logits


model = NeuralNetwork().to(device)
print(model)

X = torch.rand(1, 28, 28, device=device)
logits = model(X)
pred_probab = nn.Softmax(dim=1)(logits)
y_pred = pred_probab.argmax(1)
print(f"Predicted class: {y_pred}")
for name, param in model.named_parameters():
    print(f"Layer: {name} | Size: {param.size()} | Values : {param[:2].flatten()[:3].tolist()}")

learning_rate = 5e-2
epochs = 4
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)


def train(dataloader, model, loss_fn, optimizer):
    size = len(dataloader.dataset)
    model.train()
    for batch, (X, y) in enumerate(dataloader):
        X, y = X.to(device), y.to(device)

        # Compute prediction error
        pred = model(X)
        loss = loss_fn(pred, y)

        # Backpropagation
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

        if batch % 4 == 0:
            loss, current = loss.item(), (batch + 1) * len(X)
            print(f"loss: {loss:>7f}  [{current:>5d}/{size:>5d}]")


def test(dataloader, model, loss_fn):
    size = len(dataloader.dataset)
    num_batches = len(dataloader)
    model.eval()
    test_loss, correct = 0, 0
    with torch.no_grad():
        for X, y in dataloader:
            X, y = X.to(device), y.to(device)
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()
            assert pred.grad_fn is None  # nothing recorded under no_grad
    test_loss /= num_batches
    correct /= size
    print(f"Test Error: \\n Accuracy: {(100*correct):>0.1f}%, Avg loss: {test_loss:>8f} \\n")
    return correct


for t in range(epochs):
    print(f"Epoch {t+1}\\n-------------------------------")
    train(train_dataloader, model, loss_fn, optimizer)
    accuracy = test(test_dataloader, model, loss_fn)
print("Done!")

torch.save(model.state_dict(), "model.pth")
print("Saved PyTorch Model State to model.pth")

model = NeuralNetwork().to(device)
model.load_state_dict(torch.load("model.pth", weights_only=True))

classes = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
model.eval()
correct = 0
for x, y in test_data:
    with torch.no_grad():
        x = x.to(device)
        pred = model(x)
        predicted, actual = classes[pred[0].argmax(0)], classes[y]
        correct += predicted == actual
print(f'Predicted: "{predicted}", Actual: "{actual}"; reloaded model: {correct}/{len(test_data)}')
print(f"top classes of the first test images: {torch.argmax(model(test_data[:4][0]), 1).tolist()}")
"""

PORTED_IMPORTS = {
    "import torch\n": "import minitorch_edu as torch\n",
    "from torch import nn\n": "from minitorch_edu import nn\n",
    "from torch.utils.data import": "from minitorch_edu.utils.data import",
}
NUMBER = re.compile(r"-?\d+\.\d+(?:e[-+]\d+)?")


def run_program(source: str, directory) -> str:
    printed = io.StringIO()
    with contextlib.chdir(directory), contextlib.redirect_stdout(printed):
        exec(compile(source, "<tutorial>", "exec"), {"__name__": "__tutorial__"})
    return printed.getvalue()


def test_the_tutorial_mlp_program_runs_with_minitorch_edu_imported_as_torch(tmp_path):
    ported = TUTORIAL
    for theirs, ours in PORTED_IMPORTS.items():
        assert theirs in ported
        ported = ported.replace(theirs, ours)
    (tmp_path / "torch").mkdir()
    (tmp_path / "ours").mkdir()
    expected = run_program(TUTORIAL, tmp_path / "torch")
    printed = run_program(ported, tmp_path / "ours")

    # The same text, line for line, once our tensors' repr is read as torch's...
    ours_as_torch = printed.replace("minitorch_edu.tensor(", "tensor(")
    assert NUMBER.sub("#", ours_as_torch) == NUMBER.sub("#", expected)
    # ... and the same numbers: losses and accuracies to float32 rounding.
    for mine, theirs in zip(NUMBER.findall(printed), NUMBER.findall(expected), strict=True):
        assert math.isclose(float(mine), float(theirs), rel_tol=2e-4, abs_tol=2e-6), (mine, theirs)
    # It trains: the test accuracy climbs well above chance (10%).
    accuracies = [float(a) for a in re.findall(r"Accuracy: ([\d.]+)%", printed)]
    assert accuracies[-1] > 60 and accuracies[-1] > accuracies[0]
    assert "reloaded model" in printed and (tmp_path / "ours" / "model.pth").exists()


# ---------------------------------------------------------------------- torch's grad mode
GRAD_MODES = {
    "torch.no_grad()": lambda: torch.no_grad(),
    "torch.inference_mode()": lambda: torch.inference_mode(),
    "torch.set_grad_enabled(False)": lambda: torch.set_grad_enabled(False),
    "mt.no_grad()": lambda: mt.no_grad(),
    "mt.inference_mode()": lambda: mt.inference_mode(),
}


@pytest.mark.parametrize("mode", GRAD_MODES, ids=list(GRAD_MODES))
def test_nothing_is_recorded_under_torchs_grad_modes_or_ours(mode):
    x = mt.ones(3, requires_grad=True)
    with GRAD_MODES[mode]():
        y = (x * 2).exp().sum()
        assert y.grad_fn is None and not y.requires_grad and not mt.is_grad_enabled()
        with mt.enable_grad():  # switched back on inside, as torch.enable_grad() would be
            z = (x * 2).sum()
        assert z.grad_fn is not None
    assert torch.is_grad_enabled() and mt.is_grad_enabled()
    assert (x * 2).grad_fn is not None


def test_a_hand_written_update_under_torch_no_grad():
    """`with torch.no_grad(): w -= lr * w.grad`, the update of torch's autograd tutorials."""
    w = mt.tensor([1.0, -2.0], requires_grad=True)
    (w * w).sum().backward()
    with torch.no_grad():
        w -= 0.25 * w.grad
    assert w.tolist() == [0.5, -1.0] and w.is_leaf and w.grad_fn is None


def test_mt_no_grad_leaves_torchs_own_mode_alone():
    """Torch code run inside our no_grad (a torch oracle, say) keeps recording."""
    a = torch.ones(2, requires_grad=True)
    with mt.no_grad():
        assert (a * 2).requires_grad

    @torch.inference_mode()
    def predict(x):
        return x * 2

    assert predict(mt.ones(2, requires_grad=True)).grad_fn is None


# ---------------------------------------------------------------------- __torch_function__
TORCH_CALLS = {
    "torch.argmax(out, 1)": (lambda t, x: t.argmax(x, 1), lambda x: mt.argmax(x, 1)),
    "torch.max(out, 1)": (lambda t, x: t.max(x, 1).values, lambda x: mt.max(x, 1).values),
    "torch.softmax(out, 1)": (lambda t, x: t.softmax(x, 1), lambda x: F.softmax(x, 1)),
    "torch.log_softmax(out, dim=1)": (
        lambda t, x: t.log_softmax(x, dim=1),
        lambda x: F.log_softmax(x, dim=1),
    ),
    "torch.cat([out, out])": (lambda t, x: t.cat([x, x * 2]), lambda x: mt.cat([x, x * 2])),
    "torch.stack((out, out), 1)": (
        lambda t, x: t.stack((x, x), 1),
        lambda x: mt.stack((x, x), 1),
    ),
    "torch.exp(out)": (lambda t, x: t.exp(x), lambda x: mt.exp(x)),
    "torch.sum(out, dim=0)": (lambda t, x: t.sum(x, dim=0), lambda x: mt.sum(x, dim=0)),
    "torch.matmul(out, out.T)": (lambda t, x: t.matmul(x, x.T), lambda x: mt.matmul(x, x.T)),
    "torch.flatten(out)": (lambda t, x: t.flatten(x), lambda x: mt.flatten(x)),
    "F.relu(out)": (lambda t, x: t.nn.functional.relu(x), lambda x: F.relu(x)),
    "F.cross_entropy(out, target)": (
        lambda t, x: t.nn.functional.cross_entropy(x, t.tensor([0, 2, 1])),
        lambda x: F.cross_entropy(x, mt.tensor([0, 2, 1])),
    ),
    "torch_tensor + out": (lambda t, x: t.ones(3) + x, lambda x: x + 1),
    "torch_tensor * out": (lambda t, x: t.full((3,), 2.0) * x, lambda x: x * 2),
    "torch_tensor == out": (lambda t, x: t.zeros(3, 3) == x, lambda x: x == 0),
}


@pytest.mark.parametrize("call", TORCH_CALLS, ids=list(TORCH_CALLS))
def test_torch_functions_on_our_tensors_run_our_ops_and_keep_the_graph(call):
    torch_side, ours = TORCH_CALLS[call]
    values = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5], [-2.0, 1.0, 0.25]])
    x = mt.tensor(values, requires_grad=True)
    result = torch_side(torch, x)
    assert isinstance(result, mt.Tensor), type(result)
    expected = ours(mt.tensor(values))
    assert torch.equal(result.data, expected.data)
    reference = torch_side(torch, values.clone().requires_grad_())  # torch, all the way
    assert torch.allclose(result.data.to(reference.dtype), reference.detach())
    if reference.requires_grad:  # the graph is ours, and its gradient torch's
        assert result.grad_fn is not None
        result.float().sum().backward()
        leaf = values.clone().requires_grad_()
        torch_side(torch, leaf).float().sum().backward()
        assert torch.allclose(x.grad.data, leaf.grad)


def test_a_torch_function_we_lack_is_named():
    x = mt.ones(3, requires_grad=True)
    with pytest.raises(NotImplementedError, match=r"torch\.cumsum was called with a minitorch_edu"):
        torch.cumsum(x, 0)
    with pytest.raises(NotImplementedError, match=r"torch\.fft\.fft was called .* no op 'fft_fft'"):
        torch.fft.fft(x)


def test_torch_layers_on_our_tensors_say_gradients_cannot_cross():
    with pytest.raises(
        TypeError, match=r"torch\.nn\.functional\.linear got a minitorch_edu Tensor"
    ):
        torch.nn.Linear(3, 2)(mt.ones(1, 3))


def test_answers_without_a_gradient_are_computed_by_torch():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    assert torch.allclose(x, torch.tensor([1.0, 2.0])) and torch.equal(x, x.detach())
    assert torch.isnan(x).tolist() == [False, False]


def test_repr_and_errors_say_which_library_a_tensor_belongs_to():
    assert repr(mt.tensor([1.0, 2.0])) == "minitorch_edu.tensor([1., 2.])"
    with pytest.raises(NotImplementedError, match="minitorch_edu Tensor"):
        torch.cumsum(mt.ones(2), 0)
    layer = mt.nn.Linear(2, 2)
    with pytest.raises(TypeError, match="cannot assign 'torch.Tensor' as parameter 'weight'"):
        layer.weight = torch.ones(2, 2)
    with pytest.raises(
        TypeError, match="expected minitorch_edu Tensors as inputs, got torch.Tensor"
    ):
        mt.autograd.grad(layer.weight.sum(), [torch.ones(1)])


# ---------------------------------------------------------------------- save, load, cuda
def test_save_and_load_move_state_dicts_to_and_from_torch(tmp_path):
    model = mt.nn.Sequential(mt.nn.Linear(3, 4), mt.nn.ReLU(), mt.nn.Linear(4, 2))
    optimizer = mt.optim.Adam(model.parameters())
    model(mt.ones(1, 3)).sum().backward()
    optimizer.step()
    mt.save(model.state_dict(), tmp_path / "model.pth")
    mt.save(optimizer.state_dict(), tmp_path / "optimizer.pth")
    twin = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    twin.load_state_dict(torch.load(tmp_path / "model.pth", weights_only=True))
    assert torch.equal(twin(torch.ones(1, 3)), model(mt.ones(1, 3)).data)
    torch.save(twin.state_dict(), tmp_path / "twin.pth")
    again = mt.nn.Sequential(mt.nn.Linear(3, 4), mt.nn.ReLU(), mt.nn.Linear(4, 2))
    again.load_state_dict(mt.load(tmp_path / "twin.pth", weights_only=True))
    assert torch.equal(again(mt.ones(1, 3)).data, model(mt.ones(1, 3)).data)
    loaded = mt.load(tmp_path / "optimizer.pth")
    assert loaded["param_groups"] == optimizer.state_dict()["param_groups"]
    buffer = io.BytesIO()
    mt.save({"w": mt.ones(2)}, buffer)
    assert torch.equal(mt.load(io.BytesIO(buffer.getvalue()))["w"], torch.ones(2))


def test_save_and_load_refuse_what_is_not_weights(tmp_path):
    model = mt.nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"obj is a minitorch_edu.nn.linear.Linear \(save its "):
        mt.save(model, tmp_path / "model.pth")
    with pytest.raises(TypeError, match=r"obj\['optimizer'\] is a .*SGD"):
        mt.save({"optimizer": mt.optim.SGD(model.parameters(), lr=0.1)}, tmp_path / "x.pth")
    assert not list(tmp_path.iterdir())
    torch.save(torch.nn.Linear(2, 2), tmp_path / "whole.pth")  # a pickled torch model
    with pytest.raises(pickle.UnpicklingError, match="whole.pth holds objects other than"):
        mt.load(tmp_path / "whole.pth")
    with pytest.raises(ValueError, match="loads weights only"):
        mt.load(tmp_path / "whole.pth", weights_only=False)
    (tmp_path / "text.pth").write_text("not a torch file")
    with pytest.raises((RuntimeError, pickle.UnpicklingError), match="text.pth is not a loadable"):
        mt.load(tmp_path / "text.pth")


def test_what_the_tutorials_ask_of_torch_cuda_and_friends():
    assert mt.cuda.is_available() == torch.cuda.is_available()
    assert mt.cuda.device_count() == torch.cuda.device_count()
    assert mt.backends.mps.is_available() == torch.backends.mps.is_available()
    assert mt.accelerator.is_available() == torch.accelerator.is_available()
    assert mt.ones(2).type() == "torch.FloatTensor"
    assert mt.ones(2).type(torch.float64).dtype == torch.float64
    from minitorch_edu.utils.data import DataLoader, Dataset, TensorDataset, random_split

    assert DataLoader is mt.data.DataLoader and Dataset is mt.data.Dataset
    assert TensorDataset is mt.data.TensorDataset
    train, test = random_split(TensorDataset(torch.arange(10)), [8, 2])
    assert len(list(DataLoader(train, batch_size=3))) == 3


# ---------------------------------------------------------------------- DataLoader arguments
def batches_equal(ours, theirs):
    assert len(ours) == len(theirs)
    for mine, their in zip(ours, theirs):
        assert all(isinstance(t, mt.Tensor) for t in mine)
        assert all(torch.equal(a.data, b) for a, b in zip(mine, their, strict=True))


def test_worker_processes_give_torchs_batches_as_our_tensors():
    images, labels = torch.randn(20, 2), torch.arange(20)
    options = {"batch_size": 6, "shuffle": True, "num_workers": 2}
    ours = mt.data.DataLoader(
        mt.data.TensorDataset(images, labels),
        generator=torch.Generator().manual_seed(3),
        worker_init_fn=lambda worker: torch.manual_seed(worker),
        **options,
    )
    theirs = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(images, labels),
        generator=torch.Generator().manual_seed(3),
        **options,
    )
    assert len(ours) == len(theirs) == 4
    torch_epochs = [list(theirs) for _ in range(2)]
    for epoch in torch_epochs:
        batches_equal(list(ours), epoch)
    single = mt.data.DataLoader(  # our own loader, in this process, draws the same order
        mt.data.TensorDataset(images, labels),
        batch_size=6,
        shuffle=True,
        generator=torch.Generator().manual_seed(3),
    )
    for epoch in torch_epochs:
        batches_equal(list(single), epoch)
    with pytest.raises(NotImplementedError, match="hands its work to torch's DataLoader"):
        ours.state_dict()


def test_batch_samplers_unbatched_loading_and_iterable_datasets():
    dataset = mt.data.TensorDataset(torch.arange(10.0), torch.arange(10))
    loader = mt.data.DataLoader(dataset, batch_sampler=[[0, 1, 2], [7, 9]])
    assert [batch[1].tolist() for batch in loader] == [[0, 1, 2], [7, 9]]
    samples = list(mt.data.DataLoader(dataset, batch_size=None))
    assert len(samples) == 10 and samples[3][0].item() == 3.0
    assert isinstance(samples[3][0], mt.Tensor)

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(torch.arange(5.0))

    assert [b.tolist() for b in mt.data.DataLoader(Stream(), batch_size=2)] == [
        [0.0, 1.0],
        [2.0, 3.0],
        [4.0],
    ]
    collated = mt.data.DataLoader(dataset, batch_size=4, num_workers=1, collate_fn=len)
    assert list(collated) == [4, 4, 2]  # a collate_fn's result is handed out unchanged


def test_torch_checks_the_arguments_it_implements():
    dataset = mt.data.TensorDataset(torch.arange(4))
    with pytest.raises(ValueError, match="num_workers option should be non-negative"):
        mt.data.DataLoader(dataset, num_workers=-1)
    with pytest.raises(ValueError, match="prefetch_factor option could only be specified"):
        mt.data.DataLoader(dataset, prefetch_factor=2)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
        mt.data.DataLoader(dataset, batch_size=2, batch_sampler=[[0]])
