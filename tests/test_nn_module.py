"""The module system against torch.nn's: registration, names, modes, dtype moves, state_dict.

Most checks build the same architecture in both libraries and compare what torch reports
(names, reprs, state_dict keys, error messages) with what ours reports.
"""

import copy
from collections import OrderedDict

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minitorch_edu as mt
from reference.nn import minitorch_twin, torch_twin


def make_net(nn):
    """The same small custom model in either library (same class name, same layout)."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()
            )
            self.fc1 = nn.Linear(16, 8)
            self.heads = nn.ModuleList([nn.Linear(8, 3), nn.Linear(8, 3), nn.Linear(8, 2)])
            self.extra = nn.ModuleDict({"drop": nn.Dropout(0.1), "act": nn.Tanh()})
            self.register_buffer("scale", torch.tensor([2.0, 3.0]))
            self.register_buffer("steps", torch.tensor(0), persistent=False)

        def forward(self, x):
            return self.heads[0](self.extra["act"](self.fc1(self.features(x))))

    return Net()


def copy_weights(source, target):
    target.load_state_dict(source.state_dict())
    return target


# ---------------------------------------------------------------------------- registration
def test_names_and_order_match_torch():
    ours, theirs = make_net(mt.nn), make_net(torch.nn)
    for method in ("named_parameters", "named_buffers", "named_children", "named_modules"):
        names = [name for name, _ in getattr(ours, method)()]
        assert names == [name for name, _ in getattr(theirs, method)()], method
    assert [p.shape for p in ours.parameters()] == [p.shape for p in theirs.parameters()]
    assert len(list(ours.modules())) == len(list(theirs.modules()))
    assert len(list(ours.children())) == len(list(theirs.children()))
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_registration_by_assignment():
    module = mt.nn.Module()
    module.weight = mt.nn.Parameter(torch.ones(2))
    module.child = mt.nn.Linear(2, 2)
    module.register_buffer("running", torch.zeros(2))
    module.plain = mt.ones(2)  # a plain Tensor attribute is not registered, as in torch
    assert [n for n, _ in module.named_parameters()] == ["weight", "child.weight", "child.bias"]
    assert [n for n, _ in module.named_buffers()] == ["running"]
    assert list(module.state_dict()) == ["weight", "running", "child.weight", "child.bias"]
    assert isinstance(module.running, mt.Tensor) and not module.running.requires_grad
    module.running = torch.ones(2)  # assigning to a buffer's name replaces the buffer
    assert torch.equal(module.state_dict()["running"], torch.ones(2))
    del module.child
    assert [n for n, _ in module.named_parameters()] == ["weight"]
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'child'"):
        _ = module.child


def test_registration_errors():
    module = mt.nn.Linear(2, 2)
    with pytest.raises(TypeError, match="assign 'minitorch_edu.Tensor' as parameter 'weight'"):
        module.weight = mt.ones(2, 2)
    module.bias = None  # None is allowed in a parameter's place
    assert module.bias is None and [n for n, _ in module.named_parameters()] == ["weight"]
    with pytest.raises(KeyError, match="contain"):
        module.register_buffer("a.b", torch.zeros(1))
    with pytest.raises(KeyError, match="attribute 'weight' already exists"):
        module.register_buffer("weight", torch.zeros(1))
    with pytest.raises(TypeError, match="buffer 'x'"):
        module.register_buffer("x", [1, 2])
    with pytest.raises(TypeError, match="assign 'minitorch_edu.Tensor' object to parameter 'p'"):
        module.register_parameter("p", mt.nn.Parameter(torch.ones(1)) * 2)

    class Early(mt.nn.Module):
        def __init__(self):
            self.weight = mt.nn.Parameter(torch.ones(1))

    with pytest.raises(AttributeError, match=r"before Module.__init__\(\) call"):
        Early()
    with pytest.raises(NotImplementedError, match='missing the required "forward"'):
        mt.nn.Module()(1)


def test_shared_parameters_are_listed_once():
    shared = mt.nn.Linear(3, 3)
    model = mt.nn.Sequential(shared, mt.nn.ReLU(), shared)
    twin = torch.nn.Sequential((t := torch.nn.Linear(3, 3)), torch.nn.ReLU(), t)
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in twin.named_parameters()]
    assert len(list(model.modules())) == len(list(twin.modules()))
    assert list(model.state_dict()) == list(twin.state_dict())


def test_parameter_is_a_leaf_tensor_with_torchs_repr_and_our_name():
    data = torch.tensor([1.0, 2.0])
    parameter = mt.nn.Parameter(data)
    assert isinstance(parameter, mt.Tensor) and parameter.is_leaf and parameter.requires_grad
    heading, named = "Parameter containing:\n", "Parameter containing:\nminitorch_edu."
    assert repr(parameter) == repr(torch.nn.Parameter(data)).replace(heading, named)
    frozen = mt.nn.Parameter(data, requires_grad=False)
    assert repr(frozen) == repr(torch.nn.Parameter(data, requires_grad=False)).replace(
        heading, named
    )
    assert type(parameter * 2) is mt.Tensor  # results of ops are plain Tensors
    with pytest.raises(RuntimeError, match="floating point"):
        mt.nn.Parameter(torch.tensor([1, 2]))


# ---------------------------------------------------------------------------- modes
def test_train_and_eval_reach_every_module():
    model = make_net(mt.nn)
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    assert model.train() is model
    assert all(m.training for m in model.modules())
    model.extra.eval()
    theirs = make_net(torch.nn)
    theirs.extra.eval()
    assert [m.training for m in model.modules()] == [m.training for m in theirs.modules()]
    with pytest.raises(ValueError, match="boolean"):
        model.train("yes")


def test_requires_grad_and_zero_grad():
    model = mt.nn.Sequential(mt.nn.Linear(3, 2), mt.nn.Linear(2, 1))
    model(mt.randn(4, 3)).sum().backward()
    weight = model[0].weight
    grad = weight.grad
    model.zero_grad(set_to_none=False)
    assert weight.grad is grad and not weight.grad.data.any()
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    model.requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())


# ---------------------------------------------------------------------------- dtype and device
def test_to_converts_in_place_and_keeps_parameter_identity():
    model = make_net(mt.nn)
    parameters = list(model.parameters())
    model(mt.randn(2, 1, 4, 4)).sum().backward()
    assert model.double() is model
    assert [id(p) for p in model.parameters()] == [id(p) for p in parameters]
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert all(p.grad.dtype == torch.float64 for p in parameters if p.grad is not None)
    assert model.scale.dtype == torch.float64
    assert model.steps.dtype == torch.int64  # integer buffers keep their dtype
    model(mt.randn(2, 1, 4, 4, dtype=torch.float64))  # usable after the move
    model.to(torch.float32)
    assert all(p.dtype == torch.float32 for p in parameters)
    model.to("cpu", dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in parameters)
    with pytest.raises(TypeError, match="floating point or complex dtypes"):
        model.to(torch.int64)


def test_to_device(device):
    model = mt.nn.Linear(3, 2).to(device)
    assert model.weight.device.type == device.type
    assert model(mt.randn(4, 3, device=device)).device.type == device.type
    assert model.cpu().weight.device.type == "cpu"


# ---------------------------------------------------------------------------- state_dict
@given(seed=st.integers(0, 2**16))
def test_state_dict_round_trips_are_bit_identical(seed):
    torch.manual_seed(seed)
    theirs = make_net(torch.nn)
    ours = copy_weights(theirs, make_net(mt.nn))
    back = copy_weights(ours, make_net(torch.nn))
    for key, value in theirs.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key
    mt.manual_seed(seed + 1)
    ours = make_net(mt.nn)
    again = copy_weights(copy_weights(ours, make_net(torch.nn)), make_net(mt.nn))
    for key, value in ours.state_dict().items():
        assert type(value) is torch.Tensor
        assert torch.equal(again.state_dict()[key], value), key


def test_state_dict_values_share_memory_and_loading_keeps_identity():
    model = mt.nn.Linear(3, 2)
    state = model.state_dict()
    assert state["weight"].data_ptr() == model.weight.data.data_ptr()
    weight = model.weight
    result = model.load_state_dict({"weight": torch.ones(2, 3), "bias": torch.zeros(2)})
    assert model.weight is weight and torch.equal(weight.data, torch.ones(2, 3))
    assert repr(result) == repr(torch.nn.Linear(3, 2).load_state_dict(model.state_dict()))
    kept = model.state_dict(keep_vars=True)
    assert kept["weight"] is weight


def test_loading_converts_dtype_and_accepts_our_tensors():
    model = mt.nn.Linear(3, 2).double()
    model.load_state_dict({"weight": mt.ones(2, 3), "bias": torch.zeros(2)})
    assert model.weight.dtype == torch.float64 and torch.equal(
        model.weight.data, torch.ones(2, 3, dtype=torch.float64)
    )


@pytest.mark.parametrize(
    "change",
    ["missing", "unexpected", "unexpected_child", "shape", "everything", "not_a_tensor"],
)
@pytest.mark.parametrize("strict", [True, False])
def test_loading_errors_are_torchs(change, strict):
    torch.manual_seed(0)
    theirs = make_net(torch.nn)
    ours = copy_weights(theirs, make_net(mt.nn))
    state = OrderedDict(theirs.state_dict())
    if change in ("missing", "everything"):
        del state["fc1.bias"], state["heads.2.weight"]
    if change in ("unexpected", "everything"):
        state["fc1.extra"] = torch.zeros(1)
        state["banana"] = torch.zeros(1)
    if change == "unexpected_child":
        state["features.7.weight"] = torch.zeros(1)
    if change in ("shape", "everything"):
        state["features.0.weight"] = torch.zeros(4, 1, 2, 2)
    if change == "not_a_tensor":
        state["fc1.weight"] = [1.0]

    def attempt(model):
        try:
            return model.load_state_dict(state, strict=strict), None
        except RuntimeError as error:
            return None, str(error)

    (torch_result, torch_error), (our_result, our_error) = attempt(theirs), attempt(ours)
    assert our_error == torch_error
    if torch_result is not None:
        assert tuple(our_result) == tuple(torch_result)
        assert repr(our_result).replace("_Incompat", "Incompat") == repr(torch_result).replace(
            "_Incompat", "Incompat"
        )


def test_deepcopy_copies_parameters():
    model = make_net(mt.nn)
    clone = copy.deepcopy(model)
    assert repr(clone) == repr(model)
    for (name, p), (_, q) in zip(model.named_parameters(), clone.named_parameters()):
        assert p is not q and torch.equal(p.data, q.data), name
        assert q.requires_grad and isinstance(q, mt.nn.Parameter)
    clone.fc1.weight.data.zero_()
    assert model.fc1.weight.data.any()


# ---------------------------------------------------------------------------- repr
def test_reprs_match_torch():
    builders = [
        make_net,
        lambda nn: nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, 256),
            nn.ReLU(),
            nn.Linear(256, 128),
            nn.ReLU(),
            nn.Linear(128, 64),
            nn.ReLU(),
            nn.Linear(64, 10),
        ),
        lambda nn: nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(3, 8, 3, stride=2, bias=False),
                block=nn.Sequential(nn.LeakyReLU(0.1), nn.Dropout(0.2)),
                empty=nn.Sequential(),
            )
        ),
        lambda nn: nn.ModuleList([nn.Linear(2, 2)] * 3 + [nn.ReLU(), nn.ReLU(), nn.Linear(2, 2)]),
        lambda nn: nn.ModuleList(),
        lambda nn: nn.ModuleDict({"a": nn.Identity(), "b": nn.Softmax(dim=1)}),
    ]
    for build in builders:
        assert repr(build(mt.nn)) == repr(build(torch.nn))


# ---------------------------------------------------------------------------- containers
def test_sequential_behaves_like_torchs():
    ours = mt.nn.Sequential(mt.nn.Linear(2, 3), mt.nn.ReLU(), mt.nn.Linear(3, 1))
    theirs = torch_twin(ours)
    assert len(ours) == len(theirs) == 3
    assert isinstance(ours[-1], mt.nn.Linear) and ours[-1] is list(ours)[2]
    part = ours[1:]
    assert type(part) is mt.nn.Sequential and repr(part) == repr(theirs[1:])
    ours.append(mt.nn.Tanh())
    theirs.append(torch.nn.Tanh())
    ours.insert(0, mt.nn.Identity())
    theirs.insert(0, torch.nn.Identity())
    del ours[2]
    del theirs[2]
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    with pytest.raises(IndexError, match="index 9 is out of range"):
        ours[9]
    x = torch.randn(5, 2)
    theirs.load_state_dict(ours.state_dict())
    torch.testing.assert_close(ours(x).data, theirs(x).detach())


def test_module_list_and_dict_behave_like_torchs():
    ours = mt.nn.ModuleList([mt.nn.Linear(1, 1)])
    theirs = torch.nn.ModuleList([torch.nn.Linear(1, 1)])
    for target, nn in ((ours, mt.nn), (theirs, torch.nn)):
        target.extend([nn.ReLU(), nn.Tanh()])
        target.insert(1, nn.Sigmoid())
        target += [nn.Identity()]
        del target[0]
    assert repr(ours) == repr(theirs)
    assert [type(m).__name__ for m in ours[1:3]] == ["ReLU", "Tanh"]
    ours_dict = mt.nn.ModuleDict({"a": mt.nn.ReLU()})
    ours_dict["b"] = mt.nn.Linear(2, 2)
    assert list(ours_dict) == ["a", "b"] and "b" in ours_dict and len(ours_dict) == 2
    assert [k for k, _ in ours_dict.items()] == ["a", "b"]
    assert list(ours_dict.state_dict()) == ["b.weight", "b.bias"]
    ours_dict.pop("b")
    assert list(ours_dict.keys()) == ["a"]


def test_twins_copy_configuration_and_weights():
    model = make_net(mt.nn).features
    twin = torch_twin(model)
    assert repr(twin) == repr(model)
    for key, value in model.state_dict().items():
        assert torch.equal(twin.state_dict()[key], value)
    back = minitorch_twin(twin)
    assert repr(back) == repr(model)
    with pytest.raises(TypeError, match="no twin is known for Net"):
        torch_twin(make_net(mt.nn))


def test_nn_source_follows_the_rule():
    """No torch.nn / optim / autograd inside minitorch_edu/nn, and no fused kernels it teaches."""
    import re
    from pathlib import Path

    forbidden = re.compile(
        r"torch\.(nn|optim|autograd)\b|"
        r"torch\.(softmax|log_softmax|relu|conv\w*|max_pool\w*|avg_pool\w*|dropout|addmm|"
        r"cross_entropy|nll_loss|binary_cross_entropy\w*|sigmoid|tanh)\b|"
        r"(?<!pointwise)\.(softmax|log_softmax|addmm|sigmoid|tanh|relu)\("
    )
    root = Path(mt.__file__).parent / "nn"
    for path in sorted(root.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if code.strip().startswith(('"', "'")):
                continue
            assert not forbidden.search(code), f"{path.name}:{number}: {line.strip()}"
