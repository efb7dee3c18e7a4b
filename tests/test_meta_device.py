"""Everything runs on the `meta` device: tensors with shapes and dtypes but no numbers.

That checks two things no CPU run can. A tensor made on the wrong device anywhere (an
`arange` or a `zeros` without `device=`) meets a meta tensor and fails. And reading a value
back to the host, `.item()`, `.tolist()`, `.cpu()`, `bool()`, a mask index whose size depends
on the values, fails too: on a GPU each of those would make the host wait for the device. So
a training step that runs here on meta is one that never synchronises on a GPU.
"""

import subprocess
import sys

import pytest
import torch

import minitorch_edu as mt
import minitorch_edu.nn.functional as F
from minitorch_edu import models, nn, optim

META = torch.device("meta")

OPTIMIZERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "sgd per parameter": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, foreach=False),
    "adagrad": lambda p: optim.Adagrad(p, lr=0.1, lr_decay=0.01, weight_decay=0.1),
    "rmsprop": lambda p: optim.RMSprop(p, momentum=0.9, centered=True, weight_decay=0.1),
    "adam": lambda p: optim.Adam(p, amsgrad=True, weight_decay=0.1, maximize=True),
    "adam per parameter": lambda p: optim.Adam(p, foreach=False),
    "adamw": lambda p: optim.AdamW(p, amsgrad=True),
}
MODELS = {  # name: (build, input shape)
    "mlp": (lambda: models.mlp(64, 10), (8, 1, 8, 8)),
    "lenet on 8x8": (lambda: models.lenet(1, 8, 10), (8, 1, 8, 8)),
    "lenet on 28x28": (lambda: models.lenet(1, 28, 10), (4, 1, 28, 28)),
}


def on_meta(tensor):
    return tensor.device == META


@pytest.mark.parametrize("optimizer_name", OPTIMIZERS)
@pytest.mark.parametrize("model_name", MODELS)
def test_every_model_trains_with_every_optimizer_on_meta(model_name, optimizer_name):
    build, input_shape = MODELS[model_name]
    mt.manual_seed(0)
    model = build().to(META)
    optimizer = OPTIMIZERS[optimizer_name](list(model.parameters()))
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    images = mt.randn(*input_shape, device=META)
    labels = torch.zeros(input_shape[0], dtype=torch.int64, device=META)
    loss_function = nn.CrossEntropyLoss()
    for _ in range(2):  # the second step finds the optimizer state made by the first
        optimizer.zero_grad()
        loss = loss_function(model(images), labels)
        loss.backward()
        optimizer.step()
        scheduler.step()
    assert on_meta(loss.data) and loss.shape == ()
    for parameter in model.parameters():
        assert on_meta(parameter.data) and on_meta(parameter.grad.data)
    for state in optimizer.state.values():
        for name, value in state.items():
            if isinstance(value, torch.Tensor) and name != "step":  # step counts on the CPU
                assert on_meta(value), name


def test_a_read_back_in_the_step_fails_on_meta():
    """The property the test above relies on: any read of a value fails here."""

    class Peeking(nn.Module):
        def forward(self, x):
            if x.sum() > 0:  # bool() of a device tensor: a synchronisation on a GPU
                return x
            return -x

    x = mt.randn(2, 3, device=META, requires_grad=True)
    for read in (lambda: x.item(), lambda: x.tolist(), lambda: x.cpu(), lambda: Peeking()(x)):
        with pytest.raises((RuntimeError, NotImplementedError)):
            read()


LOSSES = {
    "cross entropy": (nn.CrossEntropyLoss(), "classes"),
    "cross entropy, weighted, ignore_index, smoothing": (
        nn.CrossEntropyLoss(weight=torch.ones(5, device=META), ignore_index=1, label_smoothing=0.1),
        "classes",
    ),
    "cross entropy, summed per sample": (nn.CrossEntropyLoss(reduction="none"), "classes"),
    "cross entropy, probabilities": (nn.CrossEntropyLoss(label_smoothing=0.2), "probabilities"),
    "nll": (nn.NLLLoss(weight=torch.ones(5, device=META), ignore_index=0), "classes"),
    "mse": (nn.MSELoss(), "values"),
    "bce with logits": (nn.BCEWithLogitsLoss(pos_weight=torch.ones(5, 1, device=META)), "values"),
}


@pytest.mark.parametrize("name", LOSSES)
def test_every_loss_runs_forward_and_backward_on_meta(name):
    loss_function, target_kind = LOSSES[name]
    logits = mt.randn(4, 5, 3, device=META, requires_grad=True)  # (N, C, d1)
    target = {
        "classes": torch.zeros(4, 3, dtype=torch.int64, device=META),
        "probabilities": torch.empty(4, 5, 3, device=META),
        "values": torch.empty(4, 5, 3, device=META),
    }[target_kind]
    loss = loss_function(logits, target)
    loss.sum().backward() if loss.dim() else loss.backward()
    assert on_meta(loss.data) and on_meta(logits.grad.data)


LAYERS = {
    "linear": (lambda: nn.Linear(6, 4), (3, 6)),
    "conv1d": (lambda: nn.Conv1d(2, 4, 3, padding="same", padding_mode="reflect"), (3, 2, 9)),
    "conv2d": (lambda: nn.Conv2d(2, 4, 3, stride=2, padding=1, groups=2), (3, 2, 9, 9)),
    "conv2d, channels-last columns": (lambda: nn.Conv2d(8, 4, 3, padding=1), (3, 8, 9, 9)),
    "conv2d, circular": (
        lambda: nn.Conv2d(2, 4, 3, padding=2, padding_mode="circular"),
        (3, 2, 6, 6),
    ),
    "max pool": (lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), (3, 2, 9, 8)),
    "avg pool": (
        lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
        (3, 2, 9, 8),
    ),
    "dropout": (lambda: nn.Dropout(0.3), (3, 6)),
    "activations": (
        lambda: nn.Sequential(
            nn.LeakyReLU(0.1), nn.Sigmoid(), nn.Tanh(), nn.ReLU(), nn.Softmax(1), nn.LogSoftmax(1)
        ),
        (3, 6),
    ),
    "flatten": (lambda: nn.Flatten(), (3, 2, 4)),
}


@pytest.mark.parametrize("name", LAYERS)
def test_every_layer_runs_forward_and_backward_on_meta(name):
    build, shape = LAYERS[name]
    layer = build().to(META)
    x = mt.randn(*shape, device=META, requires_grad=True)
    out = layer(x)
    out.sum().backward()
    assert on_meta(out.data) and on_meta(x.grad.data)
    for parameter in layer.parameters():
        assert on_meta(parameter.grad.data)


def test_max_pool_indices_are_made_on_the_input_device():
    out, indices = F.max_pool2d(mt.randn(1, 2, 6, 6, device=META), 2, return_indices=True)
    assert on_meta(out.data) and on_meta(indices.data) and indices.dtype == torch.int64


def test_out_of_range_targets_still_name_the_problem_on_the_cpu():
    with pytest.raises(IndexError, match=r"Target 7 is out of bounds.*\[0, 5\)"):
        F.cross_entropy(mt.randn(2, 5), torch.tensor([1, 7]))


# ---------------------------------------------------------------------- on a CUDA GPU
@pytest.mark.cuda
@pytest.mark.parametrize("model_name", MODELS)
def test_a_training_step_does_not_synchronise_on_cuda(model_name):
    """torch's sync debug mode turns every host-device synchronisation into an error."""
    build, input_shape = MODELS[model_name]
    mt.manual_seed(0)
    model = build().to("cuda")
    optimizer = optim.Adam(list(model.parameters()))
    images = mt.randn(*input_shape, device="cuda")
    labels = torch.zeros(input_shape[0], dtype=torch.int64, device="cuda")
    loss_function = nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad()
        loss_function(model(images), labels).backward()
        optimizer.step()

    step()  # the first step makes the optimizer state
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step()
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.cuda
def test_an_out_of_range_target_stops_a_cuda_run():
    """The check queued on the device fires (in a process of its own: a failed device-side
    assertion leaves the CUDA context unusable)."""
    script = (
        "import torch, minitorch_edu as mt, minitorch_edu.nn.functional as F\n"
        "target = torch.tensor([1, 7], device='cuda')\n"
        "loss = F.cross_entropy(mt.randn(2, 5, device='cuda'), target)\n"
        "torch.cuda.synchronize()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode != 0
    assert "device-side assert" in done.stderr or "out of bounds" in done.stderr
