"""`Module`: the base class of every layer and model.

A Module keeps three ordered dicts, filled by plain attribute assignment:

    self.weight = Parameter(...)      ->  _parameters["weight"]   (learned)
    self.fc1 = Linear(...)            ->  _modules["fc1"]          (sub-modules)
    self.register_buffer("mean", t)   ->  _buffers["mean"]         (state that is not learned)

Everything else follows from walking those dicts recursively: `parameters()`, `train()`,
`to(dtype)`, `state_dict()` with dotted keys (`fc1.weight`, `0.bias`), `load_state_dict()`.
Calling a module, `module(x)`, runs its `forward(x)`.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import torch

from minitorch_edu.autograd import grad_mode
from minitorch_edu.autograd.tensor import Tensor, complex_gradients_refused
from minitorch_edu.autograd.torch_function import type_name
from minitorch_edu.nn.parameter import Parameter


class IncompatibleKeys(NamedTuple):
    """What `load_state_dict` returns: keys the module expected but did not get, and the reverse."""

    missing_keys: list[str]
    unexpected_keys: list[str]

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return (
            f"IncompatibleKeys(missing_keys={self.missing_keys}, "
            f"unexpected_keys={self.unexpected_keys})"
        )

    __str__ = __repr__


class Module:
    """Base class for layers and models: subclass it, assign parts in __init__, write forward."""

    training: bool

    def __init__(self) -> None:
        # object.__setattr__ because our own __setattr__ reads these dicts.
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function'
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name: str, value: Any) -> None:
        parameters = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if parameters is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._forget(name)
            self.register_parameter(name, value)
        elif parameters is not None and name in parameters:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type_name(value)}' as parameter '{name}' "
                    "(nn.Parameter or None expected)"
                )
            parameters[name] = None
        elif isinstance(value, Module):
            if "_modules" not in self.__dict__:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._forget(name)
            self._modules[name] = value
        elif "_modules" in self.__dict__ and name in self._modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type_name(value)}' as child module '{name}' "
                    "(nn.Module or None expected)"
                )
            self._modules[name] = None
        elif "_buffers" in self.__dict__ and name in self._buffers:
            self._buffers[name] = _as_buffer(name, value)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: the registered parts live in the dicts.
        for where in ("_parameters", "_buffers", "_modules"):
            found = self.__dict__.get(where)
            if found is not None and name in found:
                return found[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for where in ("_parameters", "_buffers", "_modules"):
            found = self.__dict__[where]
            if name in found:
                del found[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def _forget(self, name: str) -> None:
        """Remove `name` from wherever it was, so one name means one thing."""
        self.__dict__.pop(name, None)
        for where in ("_parameters", "_buffers", "_modules"):
            self.__dict__[where].pop(name, None)
        self._non_persistent_buffers.discard(name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or a None placeholder, like a Linear without bias) under `name`."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        _check_name(self, name, "parameter", "_parameters")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{type_name(param)}' object to parameter '{name}' "
                "(nn.Parameter or None required)"
            )
        if param is not None and param.grad_fn is not None:
            raise ValueError(
                f"Cannot assign non-leaf Tensor to parameter '{name}'. Model parameters must "
                "be created explicitly. To express '{name}' as a function of another Tensor, "
                "compute the value in the forward() method."
            )
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Any, persistent: bool = True) -> None:
        """Add state that is saved in state_dict and moved by to(), but not learned.

        `persistent=False` keeps it out of state_dict.
        """
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        _check_name(self, name, "buffer", "_buffers")
        self._buffers[name] = _as_buffer(name, tensor)
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a sub-module under `name` (what `self.name = module` does)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        if not isinstance(name, str):
            raise TypeError(f"module name should be a string. Got {type(name).__name__}")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        if "." in name:
            raise KeyError(f'module name can\'t contain ".", got: {name}')
        if name == "":
            raise KeyError('module name can\'t be empty string ""')
        self._modules[name] = module

    register_module = add_module

    # ------------------------------------------------------------------ walking the tree
    def named_modules(
        self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for this module and every module below it, each once."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if self in memo:
                return
            memo.add(self)
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            child_prefix = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, child_prefix, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """(name, module) for the direct sub-modules."""
        seen = set()
        for name, module in self._modules.items():
            if module is not None and module not in seen:
                seen.add(module)
                yield name, module

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def _named_members(
        self, where: str, prefix: str, recurse: bool, remove_duplicate: bool
    ) -> Iterator[tuple[str, Any]]:
        seen = set()
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in module.__dict__[where].items():
                if value is None or (remove_duplicate and value in seen):
                    continue
                seen.add(value)
                yield module_prefix + ("." if module_prefix else "") + name, value

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs; a parameter shared by two layers comes once."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, parameter in self.named_parameters(recurse=recurse):
            yield parameter

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def get_submodule(self, target: str) -> Module:
        """The module at a dotted path such as "features.0"."""
        module = self
        for part in target.split(".") if target else []:
            if part not in module._modules:
                raise AttributeError(f"{module._get_name()} has no attribute `{part}`")
            module = module._modules[part]
        return module

    def get_parameter(self, target: str) -> Parameter:
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if name not in module._parameters:
            raise AttributeError(f"{module._get_name()} has no parameter `{name}`")
        return module._parameters[name]

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call fn on every sub-module (children first), then on self; e.g. to re-initialise."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> Module:
        """Set training mode here and in every sub-module (Dropout reads it)."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode: train(False)."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for parameter in self.parameters():
            parameter.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: set `.grad` to None (default) or fill it with zeros."""
        for parameter in self.parameters():
            if parameter.grad is None:
                continue
            if set_to_none:
                parameter.grad = None
            elif parameter.grad.grad_fn is not None:  # a grad built with create_graph=True
                parameter.grad = parameter.grad.detach().new_zeros(parameter.shape)
            else:
                parameter.grad.data.zero_()

    # ------------------------------------------------------------------ dtype and device
    def _apply_to_tensors(self, convert: Callable[[torch.Tensor], torch.Tensor]) -> Module:
        """Replace the numbers of every parameter, gradient and buffer, keeping each object.

        Optimizers hold the Parameter objects, so these must stay the same objects.
        """
        for module in self.modules():
            for parameter in module._parameters.values():
                if parameter is None:
                    continue
                parameter.data = convert(parameter.data)
                if parameter.grad is not None:
                    parameter.grad.data = convert(parameter.grad.data)
            for buffer in module._buffers.values():
                if buffer is not None:
                    buffer.data = convert(buffer.data)
        return self

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """`to(device)`, `to(dtype)`, `to(device, dtype)`, `to(tensor)`: convert in place.

        A dtype applies to floating-point tensors only (integer buffers keep theirs).
        """
        device, dtype = _parse_to(args, kwargs)
        if (
            dtype is not None
            and dtype.is_complex
            and any(p.requires_grad for p in self.parameters())
        ):
            raise RuntimeError(complex_gradients_refused(dtype))  # before anything changes

        def convert(t: torch.Tensor) -> torch.Tensor:
            floating = t.is_floating_point() or t.is_complex()
            return t.to(device=device, dtype=dtype if floating else None)

        return self._apply_to_tensors(convert)

    def cpu(self) -> Module:
        return self.to(torch.device("cpu"))

    def cuda(self, device: Any = None) -> Module:
        index = device.index if isinstance(device, torch.device) else device
        return self.to(torch.device("cuda") if index is None else torch.device("cuda", index))

    def double(self) -> Module:
        return self.to(torch.float64)

    def float(self) -> Module:
        return self.to(torch.float32)

    def half(self) -> Module:
        return self.to(torch.float16)

    # ------------------------------------------------------------------ saving and loading
    def state_dict(
        self, destination: dict | None = None, prefix: str = "", keep_vars: bool = False
    ) -> OrderedDict[str, Any]:
        """Every parameter and persistent buffer under its dotted name, in registration order.

        Values are plain torch.Tensors sharing memory with the module (keep_vars=True gives
        the Parameter and buffer objects themselves), so a torch model loads them directly.
        """
        if destination is None:
            destination = OrderedDict()
        for name, parameter in self._parameters.items():
            if parameter is not None:
                destination[prefix + name] = parameter if keep_vars else parameter.data
        for name, buffer in self._buffers.items():
            if buffer is not None and name not in self._non_persistent_buffers:
                destination[prefix + name] = buffer if keep_vars else buffer.data
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination, prefix + name + ".", keep_vars)
        return destination

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> IncompatibleKeys:
        """Copy values from `state_dict` (ours or a torch model's) into this module.

        Shape mismatches are always errors; with strict=True missing and unexpected keys are
        too. Values are copied into the existing tensors (converted to their dtype and
        device), so Parameters keep their identity. Returns (missing_keys, unexpected_keys).
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        missing: list[str] = []
        unexpected: list[str] = []
        errors: list[str] = []

        def load(module: Module, local: dict, prefix: str) -> None:
            module._load_own_state(local, prefix, missing, unexpected, errors)
            for name, child in module._modules.items():
                if child is not None:
                    child_prefix = prefix + name + "."
                    subset = {k: v for k, v in local.items() if k.startswith(child_prefix)}
                    load(child, subset, child_prefix)

        load(self, dict(state_dict), "")
        if strict:
            if unexpected:
                keys = ", ".join(f'"{k}"' for k in unexpected)
                errors.insert(0, f"Unexpected key(s) in state_dict: {keys}. ")
            if missing:
                keys = ", ".join(f'"{k}"' for k in missing)
                errors.insert(0, f"Missing key(s) in state_dict: {keys}. ")
        if errors:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                + "\n\t".join(errors)
            )
        return IncompatibleKeys(missing, unexpected)

    def _load_own_state(
        self, state_dict: dict, prefix: str, missing: list, unexpected: list, errors: list
    ) -> None:
        """Load this module's own parameters and buffers (not its children's), as torch does."""
        own = {
            name: value
            for name, value in itertools.chain(self._parameters.items(), self._buffers.items())
            if value is not None and name not in self._non_persistent_buffers
        }
        for name, tensor in own.items():
            key = prefix + name
            if key not in state_dict:
                missing.append(key)
                continue
            value = state_dict[key]
            if isinstance(value, Tensor):
                value = value.data
            if not isinstance(value, torch.Tensor):
                errors.append(
                    f'While copying the parameter named "{key}", expected torch.Tensor or '
                    f"Tensor-like object from checkpoint but received {type(value)}"
                )
                continue
            if tensor.dim() == 0 and value.shape == (1,):
                value = value[0]
            if value.shape != tensor.shape:
                errors.append(
                    f"size mismatch for {key}: copying a param with shape {value.shape} from "
                    f"checkpoint, the shape in current model is {tensor.shape}."
                )
                continue
            with grad_mode.no_grad():
                tensor.data.copy_(value)
        for key in state_dict:
            if not key.startswith(prefix):
                continue
            first, *rest = key[len(prefix) :].split(".", 1)
            if (rest and first not in self._modules) or (not rest and first not in own):
                unexpected.append(key)

    # ------------------------------------------------------------------ display
    def _get_name(self) -> str:
        return type(self).__name__

    def extra_repr(self) -> str:
        """The settings shown inside the parentheses, e.g. `in_features=3, out_features=2`."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [
            f"({name}): " + _add_indent(repr(module), 2) for name, module in self._modules.items()
        ]
        lines = extra_lines + child_lines
        text = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                text += extra_lines[0]
            else:
                text += "\n  " + "\n  ".join(lines) + "\n"
        return text + ")"

    def __dir__(self) -> list[str]:
        names = list(object.__dir__(self))
        names += list(self._parameters) + list(self._buffers) + list(self._modules)
        return sorted(set(names))


def _add_indent(text: str, spaces: int) -> str:
    """Indent every line but the first of a nested repr."""
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    rest = [(" " * spaces + line) if line.strip() else "" for line in lines[1:]]
    return "\n".join([lines[0], *rest])


def _check_name(module: Module, name: str, kind: str, where: str) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{kind} name should be a string. Got {type(name).__name__}")
    if "." in name:
        raise KeyError(f'{kind} name can\'t contain "."')
    if name == "":
        raise KeyError(f'{kind} name can\'t be empty string ""')
    if hasattr(module, name) and name not in module.__dict__[where]:
        raise KeyError(f"attribute '{name}' already exists")


def _as_buffer(name: str, value: Any) -> Tensor | None:
    """Buffers are our Tensors (no gradient); a torch.Tensor is wrapped without copying."""
    if value is None:
        return None
    if isinstance(value, Parameter):
        raise TypeError(f"cannot assign Parameter as buffer '{name}' (use register_parameter)")
    if isinstance(value, Tensor):
        return value
    if isinstance(value, torch.Tensor):
        return Tensor(value)
    raise TypeError(
        f"cannot assign '{type(value).__name__}' object to buffer '{name}' "
        "(Tensor or None required)"
    )


def _parse_to(args: tuple, kwargs: dict) -> tuple[Any, torch.dtype | None]:
    device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    for arg in args:
        if isinstance(arg, torch.dtype):
            dtype = arg
        elif isinstance(arg, Tensor | torch.Tensor):
            device, dtype = arg.device, arg.dtype
        elif isinstance(arg, str | torch.device | int):
            device = torch.device(arg)
        else:
            raise TypeError(f"to() received an invalid argument {arg!r}")
    if dtype is not None and not (dtype.is_floating_point or dtype.is_complex):
        raise TypeError(
            "nn.Module.to only accepts floating point or complex dtypes, but got desired "
            f"dtype={dtype}"
        )
    return device, dtype
