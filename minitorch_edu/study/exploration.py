"""The explorer: record whole training steps and step through them in the browser.

    exploration = mt.study.explore(model, loss_fn, optimizer, images, labels, steps=3)
    exploration.save_html("step.html")   # one file: double-click it, no server, no network
    exploration                          # in Jupyter: the same page, inline

Each recorded training step is the five lines of any PyTorch loop,

    optimizer.zero_grad(); output = model(inputs); loss = loss_fn(output, targets)
    loss.backward(); optimizer.step()

run inside `mt.study.trace`, with every module's forward wrapped so that each op knows the
module it ran in (`conv1`, `fc2`, `loss`). What is kept, per training step:

    timeline   forward ops, the loss, every backward node, a gradient summed over a tensor's
               uses (accumulation), hooks, deliveries into .grad, one optimizer update per
               parameter: `Exploration.timeline`, in the order they happened
    values     every tensor those steps read or wrote (numbers, not summaries, up to
               `max_elements` each), and each parameter's value, gradient, optimizer state
               before and after the update
    chain rule for every element of every parameter: the gradient as a sum over the
               parameter's uses and, within a use, over the samples of the batch (from
               `gradient_by_sample`); for every element of an activation that feeds a
               layer (not an elementwise op), each use's share split by that layer's
               channel or output feature (`gradient_by_sample(..., dim=1)`); for chosen
               elements (the `top_elements` largest gradients of each parameter and of
               each such activation, and any named in `elements`) the terms upstream
               gradient x local derivative, grouped, from `explain_gradient`
    update     the optimizer's update rule, line by line as `explain_step` writes it, with
               each line's numbers kept for every element at once

The page embeds all of it as JSON in `<script type="application/json"
id="minitorch-edu-trace">`; docs/explorer.md documents the schema.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import math
import os
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from minitorch_edu.autograd import engine
from minitorch_edu.autograd.tensor import Tensor
from minitorch_edu.optim.optimizer import Optimizer
from minitorch_edu.study.chain import GradientExplanation, explain_gradient
from minitorch_edu.study.format import Snapshot
from minitorch_edu.study.optimizer_step import (
    STAGE,
    StepExplanation,
    _explainer_for,
    _Work,
    explain_step,
)
from minitorch_edu.study.samples import gradient_by_sample
from minitorch_edu.study.trace import Step, Tape

FORMAT = "minitorch_edu.explorer"
VERSION = 1
ASSETS = Path(__file__).parent / "explorer"
# Tensors with more elements than this are embedded as their first MAX_ELEMENTS elements (in
# row-major order: the first samples of a batch) plus a summary; parameters, their gradients
# and optimizer state are always embedded whole, so any element can be clicked.
MAX_ELEMENTS = 65_536
LOSS_SCOPE = "loss"
# A batch of up to MAX_SAMPLES keeps every sample's part of every parameter element's
# gradient; a bigger one keeps each element's TOP_SAMPLES largest parts and their rest.
MAX_SAMPLES = 16
TOP_SAMPLES = 8


class ExploreError(ValueError):
    """Bad input to `explore` (the message says what was wrong, on one line)."""


# ---------------------------------------------------------------------- the public entry
def explore(
    model: Any,
    loss_fn: Any,
    optimizer: Optimizer,
    inputs: Any = None,
    targets: Any = None,
    *,
    steps: int = 1,
    batches: Iterable[tuple[Any, Any]] | None = None,
    elements: dict[str, Iterable[tuple[int, ...]]] | None = None,
    top_elements: int = 3,
    max_terms: int = 6,
    max_elements: int = MAX_ELEMENTS,
    title: str | None = None,
) -> Exploration:
    """Record `steps` training steps of `model` and return them as an Exploration.

    model      any mt.nn.Module (its parameters are named from it)
    loss_fn    called as loss_fn(model(inputs), targets), or loss_fn(output) when targets
               is None; a Module (nn.CrossEntropyLoss()) or a function (F.cross_entropy)
    optimizer  an mt.optim SGD, Adagrad, RMSprop, Adam or AdamW over the model's parameters
    inputs, targets   one batch, used for every step (a tuple of inputs is unpacked into
               model(*inputs)); or give `batches`, an iterable of (inputs, targets), one per step
    elements   elements to explain term by term, besides the `top_elements` largest
               gradients of each parameter and of each activation that feeds a layer:
               parameters by name, activations as the page names them (the op's result:
               "relu1", "maxpool2d1", "linear2"): {"conv1.weight": [(0, 0, 2, 2)],
               "relu1": [(0, 2, 3, 3)]} (every element's gradient is split in any case)
    max_terms  terms listed per group in those explanations (the rest are summed)
    max_elements  activations with more elements are embedded in part (see MAX_ELEMENTS)
    """
    parameters = _check_model(model, optimizer)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ExploreError(f"explore: steps must be a positive integer, got {steps!r}")
    chosen, chosen_activations = _check_elements(elements, parameters)
    batch_list = _batches(inputs, targets, batches, steps)
    if isinstance(top_elements, bool) or not isinstance(top_elements, int) or top_elements < 0:
        raise ExploreError(f"explore: top_elements must be 0 or more, got {top_elements!r}")
    recorder = _Recorder(model, loss_fn, optimizer, parameters, chosen, max_terms, max_elements)
    recorder.top_elements = top_elements
    recorder.chosen_activations = chosen_activations
    from minitorch_edu.train import CPU_THREADS, cpu_threads  # the training loop's setting

    with cpu_threads(CPU_THREADS):  # small ops: threads cost more than they give (see train)
        for number, (batch_inputs, batch_targets) in enumerate(batch_list, start=1):
            recorder.record_step(number, batch_inputs, batch_targets)
    return recorder.finish(title or f"{type(model).__name__}, {type(optimizer).__name__}")


# ---------------------------------------------------------------------- what to record
@dataclass
class Setup:
    """What `explore` needs, gathered by `digits_setup` or `load_script`."""

    model: Any
    loss_fn: Any
    optimizer: Optimizer
    inputs: Any = None
    targets: Any = None
    batches: Any = None
    elements: dict[str, list[tuple[int, ...]]] = field(default_factory=dict)
    title: str | None = None


def digits_setup(
    model: str = "cnn",
    optimizer: str = "adam",
    *,
    batch: int = 8,
    steps: int = 3,
    seed: int = 0,
    lr: float | None = None,
    momentum: float | None = None,
) -> Setup:
    """The run `minitorch-edu explore` records: `model` ("cnn": LeNet, or "mlp") and
    `optimizer` as `minitorch-edu train` builds them (same default learning rates and
    momentum), weights from `seed`, and `steps` batches of `batch` normalised 8x8 digits
    from the training split, drawn without replacement in an order set by `seed`."""
    from minitorch_edu.cli import DEFAULT_LEARNING_RATES, DEFAULT_MOMENTUM, DIGITS_SPLIT_SEED
    from minitorch_edu.creation import manual_seed
    from minitorch_edu.data import load_digits
    from minitorch_edu.nn import CrossEntropyLoss
    from minitorch_edu.train import build_model, build_optimizer

    images, labels = load_digits("train", seed=DIGITS_SPLIT_SEED, normalize=True).tensors
    if steps * batch > len(images):
        raise ExploreError(
            f"explore: {steps} steps of {batch} samples need {steps * batch} digits; the "
            f"training split has {len(images)}"
        )
    manual_seed(seed)
    network = build_model(model, tuple(images.shape[1:]), int(labels.max().item()) + 1)
    rate = DEFAULT_LEARNING_RATES[optimizer] if lr is None else lr
    momentum = DEFAULT_MOMENTUM.get(optimizer, 0.0) if momentum is None else momentum
    chosen = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    batches = [
        (images[chosen[i * batch : (i + 1) * batch]], labels[chosen[i * batch : (i + 1) * batch]])
        for i in range(steps)
    ]
    return Setup(
        model=network,
        loss_fn=CrossEntropyLoss(),
        optimizer=build_optimizer(optimizer, list(network.parameters()), rate, momentum),
        batches=batches,
    )


def load_script(path: str | Path) -> Setup:
    """Run a user's FILE.py (as module `minitorch_edu_explore`) and take what it defines:
    model, optimizer, loss_fn, and inputs and targets or batches; elements and title if
    there."""
    import runpy

    names = runpy.run_path(str(path), run_name="minitorch_edu_explore")
    missing = [name for name in ("model", "optimizer", "loss_fn") if name not in names]
    if "batches" not in names and "inputs" not in names:
        missing.append("inputs and targets (or batches)")
    if missing:
        raise ExploreError(
            f"explore: {path} must define model, optimizer, loss_fn and inputs/targets (or "
            f"batches); it does not define {', '.join(missing)}"
        )
    return Setup(
        model=names["model"],
        loss_fn=names["loss_fn"],
        optimizer=names["optimizer"],
        inputs=names.get("inputs"),
        targets=names.get("targets"),
        batches=names.get("batches"),
        elements=dict(names.get("elements") or {}),
        title=names.get("title") or Path(path).name,
    )


# ---------------------------------------------------------------------- the result
@dataclass
class Exploration:
    """Recorded training steps: the page's data (`to_dict()`), and ways to show it.

    tapes          one Tape per training step (forward and backward, with the numbers)
    losses         the loss of each step, before its update
    updates        per step, {parameter name: StepExplanation of its largest-gradient element}
    explanations   per step, {parameter or activation: [GradientExplanation, ...]} for the
                   chosen elements
    """

    title: str
    data: dict[str, Any]
    tapes: list[Tape] = field(default_factory=list, repr=False)
    losses: list[float] = field(default_factory=list)
    updates: list[dict[str, StepExplanation]] = field(default_factory=list, repr=False)
    explanations: list[dict[str, list[GradientExplanation]]] = field(
        default_factory=list, repr=False
    )

    @property
    def timeline(self) -> list[dict[str, Any]]:
        """The page's steps, in order: dicts with index, training_step, phase, op, ..."""
        return self.data["timeline"]

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready recording the page embeds (schema: docs/explorer.md)."""
        return self.data

    def tensor(self, number: int) -> torch.Tensor:
        """Entry `number` of the recording's tensor table, as a torch.Tensor."""
        return decode_tensor(self.data, number)

    def to_json(self) -> str:
        return json.dumps(self.data, allow_nan=False, separators=(",", ":"))

    def html(self) -> str:
        """The page: one self-contained HTML document (styles, scripts and data inline)."""
        return render_page(self.title, self.to_json())

    def save_html(self, path: str | Path) -> Path:
        """Write the page to `path` (atomically: a failed write leaves no half page)."""
        return _write_atomically(Path(path), self.html(), "save_html")

    def save_json(self, path: str | Path) -> Path:
        """Write the recording alone, as JSON."""
        return _write_atomically(Path(path), self.to_json(), "save_json")

    def _repr_html_(self) -> str:
        """Jupyter: the page in an iframe (srcdoc), so it runs offline and on its own."""
        return (
            f'<iframe title="{html.escape(self.title)}" srcdoc="{html.escape(self.html())}" '
            'style="width: 100%; height: 760px; border: 1px solid #ddd; border-radius: 4px" '
            'sandbox="allow-scripts"></iframe>'
        )

    def __repr__(self) -> str:
        count = len(self.timeline)
        steps = len(self.losses)
        losses = ", ".join(f"{loss:.4g}" for loss in self.losses)
        return (
            f"<Exploration {self.title!r}: {steps} training step{'s' * (steps != 1)} "
            f"(loss {losses}), {count} steps on the timeline; .save_html(path) writes the page>"
        )


def read_trace(page: str | Path) -> dict[str, Any]:
    """The recording embedded in an explorer page (a path, or the page's HTML text)."""
    text = page if isinstance(page, str) and page.lstrip().startswith("<") else None
    if text is None:
        text = Path(page).read_text(encoding="utf-8")
    start_tag = '<script type="application/json" id="minitorch-edu-trace">'
    start = text.find(start_tag)
    if start < 0:
        raise ValueError('read_trace: no <script id="minitorch-edu-trace"> in this page')
    start += len(start_tag)
    return json.loads(text[start : text.index("</script>", start)])


def decode_tensor(trace: dict[str, Any], number: int) -> torch.Tensor:
    """Entry `number` of a recording's `tensors` as a torch.Tensor: shaped as recorded, or
    (when only its first `count` elements were embedded) those elements, flat."""
    entry = trace["tensors"][number]
    if "count" not in entry:
        raise ValueError(f"decode_tensor: tensor {number} was recorded as a summary only")
    buffer = _inflate(trace["blob"]["data"])
    dtype = {"float32": torch.float32, "float64": torch.float64, "int32": torch.int32}.get(
        entry["dtype"], torch.uint8
    )
    size = _ITEM_SIZES[entry["dtype"]]
    raw = buffer[entry["offset"] : entry["offset"] + entry["count"] * size]
    values = torch.frombuffer(bytearray(raw), dtype=dtype)
    if entry["count"] == math.prod(entry["shape"]):
        return values.reshape(entry["shape"])
    return values


@functools.lru_cache(maxsize=4)
def _inflate(data: str) -> bytes:
    return zlib.decompress(base64.b64decode(data))


def render_page(title: str, trace_json: str) -> str:
    """The page's HTML around a recording's JSON: every script and style inlined."""
    template = (ASSETS / "page.html").read_text(encoding="utf-8")
    styles = (ASSETS / "explorer.css").read_text(encoding="utf-8")
    scripts = "\n".join(
        _script((ASSETS / name).read_text(encoding="utf-8"))
        for name in ("tensors.js", "graph.js", "explorer.js")
    )
    # In a <script> element nothing may look like a closing tag: "<" only occurs inside JSON
    # strings, where "\u003c" means the same.
    data = trace_json.replace("<", "\\u003c")
    parts = {
        "{{TITLE}}": html.escape(title),
        "{{STYLES}}": styles,
        "{{TRACE}}": data,
        "{{GRAPHVIZ}}": _graphviz(),
        "{{SCRIPTS}}": scripts,
    }
    for key, value in parts.items():
        head, marker, tail = template.partition(key)
        template = head + value + tail
    return template


@functools.cache
def _graphviz() -> str:
    """vendor/viz-global.js (Graphviz compiled to WebAssembly), zlib-compressed, in base64:
    2.8 times smaller than the file itself; the page inflates it before running it."""
    source = (ASSETS / "vendor" / "viz-global.js").read_bytes()
    return base64.b64encode(zlib.compress(source, 9)).decode("ascii")


def _script(source: str) -> str:
    if "</script" in source.lower():
        raise ValueError("a page script contains '</script', which would end its element early")
    return f"<script>\n{source}\n</script>"


def _write_atomically(path: Path, text: str, what: str) -> Path:
    directory = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OSError(f"{what}: {path} is a directory; give a file name")
    if not directory.is_dir():
        raise OSError(f"{what}: cannot write {path}: directory {directory} does not exist")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    except OSError as error:
        raise OSError(f"{what}: cannot write {path}: {error.strerror}") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise OSError(f"{what}: cannot write {path}: {error.strerror or error}") from None
    return path


# ---------------------------------------------------------------------- checking input
def _check_model(model: Any, optimizer: Any) -> list[tuple[str, Tensor]]:
    if not hasattr(model, "named_parameters") or not callable(model):
        raise ExploreError(f"explore: model must be an mt.nn.Module, got {type(model).__name__}")
    if not isinstance(optimizer, Optimizer):
        raise ExploreError(
            f"explore: optimizer must be an mt.optim optimizer, got {type(optimizer).__name__}"
        )
    _explainer_for(optimizer)  # a TypeError naming the optimizers it knows, for others
    parameters = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if not parameters:
        what = "no parameters" if not list(model.parameters()) else "no parameter requiring grad"
        raise ExploreError(
            f"explore: the model ({type(model).__name__}) has {what}, so a training step "
            "changes nothing and there is no gradient to explain"
        )
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    missing = [name for name, p in parameters if id(p) not in in_optimizer]
    if len(missing) == len(parameters):
        raise ExploreError(
            "explore: the optimizer holds none of the model's parameters (build it from "
            "model.parameters())"
        )
    return parameters


Chosen = dict[str, list[tuple[int, ...]]]


def _check_elements(
    elements: dict[str, Iterable[tuple[int, ...]]] | None, parameters: list[tuple[str, Tensor]]
) -> tuple[Chosen, Chosen]:
    """The chosen parameter elements, checked; and the other names (activations, checked
    once the first forward pass has named them: `_check_activations`)."""
    shapes = {name: tuple(p.shape) for name, p in parameters}
    chosen: Chosen = {}
    others: Chosen = {}
    if elements is not None and not isinstance(elements, dict):
        raise ExploreError(
            "explore: elements must be a dict {name: [index, ...]}, got "
            f"{type(elements).__name__}"
        )
    for name, indices in (elements or {}).items():
        for index in indices:
            index = (index,) if isinstance(index, int) else tuple(index)
            if not all(isinstance(i, int) and not isinstance(i, bool) for i in index):
                raise ExploreError(
                    f"explore: element {name}{list(index)}: an index is a tuple of ints"
                )
            if name not in shapes:
                others.setdefault(name, []).append(index)
                continue
            _check_index(name, index, shapes[name], "parameter")
            chosen.setdefault(name, []).append(index)
    return chosen, others


def _check_index(name: str, index: tuple[int, ...], shape: tuple[int, ...], what: str) -> None:
    if len(index) != len(shape) or not all(0 <= i < s for i, s in zip(index, shape)):
        raise ExploreError(
            f"explore: element {name}{list(index)} is outside the {what}'s shape {list(shape)}"
        )


def _check_activations(
    chosen: Chosen, results: dict[str, Any], parameters: Any, names: Any, loss: Tensor, users: Any
) -> None:
    """Named elements that are not parameters must be activations of this forward pass, as
    the page names them (relu1, maxpool2d1, linear2): ops' results that the loss depends on,
    indexed in range."""
    activations = [n for n, t in results.items() if t is not loss and t.grad_fn is not None]
    for name, indices in chosen.items():
        tensor = results.get(name)
        if tensor is loss:
            raise ExploreError(
                f"explore: elements names {name!r}, the loss itself: its gradient is 1, where "
                "backward starts, with no chain rule to explain"
            )
        if tensor is None:
            leaves = set(names.values()) - {n for n, _ in parameters}
            if name in leaves:
                raise ExploreError(
                    f"explore: elements names {name!r}, which does not require grad: it has no "
                    "gradient to explain"
                )
            raise ExploreError(
                f"explore: elements names {name!r}, which is neither a parameter of the model "
                f"({', '.join(n for n, _ in parameters)}) nor an activation as the page names "
                f"it ({', '.join(activations) or 'none'})"
            )
        if tensor.grad_fn is None:
            raise ExploreError(
                f"explore: elements names {name!r}, which does not require grad: it has no "
                "gradient to explain"
            )
        if id(tensor.grad_fn) not in users:
            raise ExploreError(
                f"explore: elements names {name!r}, which the loss does not depend on: its "
                "gradient is 0, with no chain rule to explain"
            )
        for index in indices:
            _check_index(name, index, tuple(tensor.shape), "activation")


def _batches(inputs: Any, targets: Any, batches: Any, steps: int) -> list[tuple[Any, Any]]:
    if batches is not None:
        if inputs is not None or targets is not None:
            raise ExploreError("explore: give either inputs and targets, or batches, not both")
        taken = []
        for batch in batches:
            if len(taken) == steps:
                break
            if not isinstance(batch, tuple | list) or len(batch) != 2:
                raise ExploreError("explore: each item of batches must be (inputs, targets)")
            taken.append((batch[0], batch[1]))
        if len(taken) < steps:
            raise ExploreError(
                f"explore: batches ran out after {len(taken)} of the {steps} steps asked for"
            )
        return taken
    if inputs is None:
        raise ExploreError("explore: no inputs given (pass inputs and targets, or batches)")
    return [(inputs, targets)] * steps


def _as_tensor(x: Any) -> Any:
    """Our Tensor for a torch tensor or array (sharing its storage), so it can be named."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, torch.Tensor):
        return Tensor(x)
    if isinstance(x, tuple | list):
        return type(x)(_as_tensor(item) for item in x)
    return x


# ---------------------------------------------------------------------- module scopes
class _ScopedTape(Tape):
    """A Tape that also notes the module each forward op ran in (innermost, dotted path)."""

    def __init__(self, names: Any) -> None:
        super().__init__(names, store_limit=None, max_bytes=None)
        self.scopes: list[str] = [""]
        self.step_scopes: dict[int, str] = {}
        self.step_classes: dict[int, type] = {}
        self.step_results: dict[int, Any] = {}  # the op's result, for its chain rule

    def on_forward(self, cls: Any, node: Any, inputs: Any, options: Any, result: Any) -> None:
        count = len(self.steps)
        super().on_forward(cls, node, inputs, options, result)
        if len(self.steps) > count:
            self.step_scopes[count] = self.scopes[-1]
            self.step_classes[count] = cls
            self.step_results[count] = result

    @contextmanager
    def scope(self, path: str) -> Iterator[None]:
        self.scopes.append(path)
        try:
            yield
        finally:
            self.scopes.pop()


@contextmanager
def _module_scopes(model: Any, tape: _ScopedTape) -> Iterator[None]:
    """Wrap every module's forward (on the instance, until the block ends) in its scope."""
    wrapped = []
    for path, module in model.named_modules():
        if "forward" in module.__dict__:
            continue  # a forward set on the instance already: leave it alone
        original = module.forward

        def forward(*args: Any, _path: str = path, _original: Any = original, **kwargs: Any):
            with tape.scope(_path):
                return _original(*args, **kwargs)

        object.__setattr__(module, "forward", forward)
        wrapped.append(module)
    try:
        yield
    finally:
        for module in wrapped:
            del module.__dict__["forward"]


# ---------------------------------------------------------------------- tensors, embedded
class _TensorTable:
    """Every tensor the page shows, once each (equal contents share one entry).

    The numbers of all entries lie end to end in one buffer (each at an offset that is a
    multiple of 8 bytes, little-endian), compressed with zlib and written as base64: the
    page inflates it once and reads each entry as a typed array over it."""

    def __init__(self, max_elements: int) -> None:
        self.max_elements = max_elements
        self.entries: list[dict[str, Any]] = []
        self.buffer = bytearray()
        self.by_content: dict[tuple, int] = {}
        # (id, whole) -> (the object, kept alive so that its id stays its own; entry number)
        self.by_object: dict[tuple[int, bool], tuple[Any, int]] = {}

    def add(self, value: Any, whole: bool = False) -> int | None:
        """The entry number of a tensor (our Tensor, torch.Tensor or Snapshot); None for None."""
        if value is None:
            return None
        known = self.by_object.get((id(value), whole))
        if known is not None and known[0] is value:
            return known[1]
        number = self._add(value, whole)
        self.by_object[(id(value), whole)] = (value, number)
        return number

    def _add(self, value: Any, whole: bool) -> int:
        summary = None
        if isinstance(value, Snapshot):
            summary = _summary(value)
            if value.values is None:  # only the summary was kept
                entry = {"shape": list(value.shape), "dtype": value.dtype, "summary": summary}
                return self._entry((value.shape, value.dtype, "summary", str(summary)), entry)
            tensor = value.values
        else:
            tensor = value.data if isinstance(value, Tensor) else value
        tensor = tensor.detach().to("cpu")
        dtype, encoded = _encode(tensor, None if whole else self.max_elements)
        count = len(encoded) // _ITEM_SIZES[dtype]
        entry = {"shape": list(tensor.shape), "dtype": dtype, "offset": 0, "count": count}
        if count < tensor.numel():
            entry["summary"] = summary or _summary_of(tensor)
        key = (tuple(tensor.shape), dtype, hashlib.blake2b(encoded, digest_size=16).digest())
        return self._entry(key, entry, encoded)

    def _entry(self, key: tuple, entry: dict[str, Any], encoded: bytes | None = None) -> int:
        number = self.by_content.get(key)
        if number is None:
            number = len(self.entries)
            if encoded is not None:
                self.buffer.extend(bytes(-len(self.buffer) % 8))  # align to 8 bytes
                entry["offset"] = len(self.buffer)
                self.buffer.extend(encoded)
            self.entries.append(entry)
            self.by_content[key] = number
        return number

    def blob(self) -> dict[str, Any]:
        return {
            "encoding": "zlib+base64",
            "bytes": len(self.buffer),
            "data": base64.b64encode(zlib.compress(bytes(self.buffer), 6)).decode("ascii"),
        }


_ITEM_SIZES = {"float32": 4, "float64": 8, "int32": 4, "uint8": 1}


def _encode(tensor: torch.Tensor, limit: int | None) -> tuple[str, bytes]:
    """(dtype name, little-endian bytes) of a CPU tensor, at most `limit` elements of it."""
    flat = tensor.reshape(-1)
    if limit is not None and flat.numel() > limit:
        flat = flat[:limit]
    if flat.dtype == torch.float64:
        dtype = "float64"
    elif flat.is_floating_point():
        dtype, flat = "float32", flat.to(torch.float32)
    elif flat.dtype == torch.bool:
        dtype, flat = "uint8", flat.to(torch.uint8)
    else:
        dtype, flat = "int32", flat.to(torch.int32)
    array = flat.contiguous().numpy()
    return dtype, array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()


def _summary(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "min": _number(snapshot.min),
        "max": _number(snapshot.max),
        "mean": _number(snapshot.mean),
        "norm": _number(snapshot.norm),
    }


def _summary_of(tensor: torch.Tensor) -> dict[str, Any]:
    values = tensor.double()
    if values.numel() == 0:
        return {"min": None, "max": None, "mean": None, "norm": None}
    return {
        "min": _number(values.min().item()),
        "max": _number(values.max().item()),
        "mean": _number(values.mean().item()),
        "norm": _number(values.norm().item()),
    }


def _number(x: Any) -> Any:
    """A number for strict JSON: nan and the infinities as strings."""
    if isinstance(x, torch.Tensor):
        x = x.item()
    if isinstance(x, bool) or x is None or isinstance(x, int):
        return x
    x = float(x)
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


# ---------------------------------------------------------------------- recording
class _Recorder:
    """Runs and records training steps, building the page's data as it goes."""

    def __init__(self, model, loss_fn, optimizer, parameters, chosen, max_terms, max_elements):
        self.model = model
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.parameters = parameters  # [(name, parameter)] that require grad
        self.parameter_names = {id(p): name for name, p in parameters}
        self.chosen = chosen
        self.max_terms = max_terms
        self.tensors = _TensorTable(max_elements)
        self.timeline: list[dict[str, Any]] = []
        self.training_steps: list[dict[str, Any]] = []
        self.graphs: list[dict[str, Any]] = []
        self.ops: dict[str, dict[str, Any]] = {}  # op name -> its formula data
        self.result = Exploration(title="", data={})

    # ------------------------------------------------------------------ one training step
    def record_step(self, number: int, inputs: Any, targets: Any) -> None:
        inputs, targets = _as_tensor(inputs), _as_tensor(targets)
        names = {p: name for name, p in self.parameters}
        for value, name in ((inputs, "inputs"), (targets, "targets")):
            if isinstance(value, Tensor):
                names[value] = name
        self.names = names
        self.optimizer.zero_grad()
        tape = _ScopedTape(names)
        with tape, _module_scopes(self.model, tape):
            output = self.model(*inputs) if isinstance(inputs, tuple) else self.model(inputs)
            with tape.scope(LOSS_SCOPE):
                loss = self.loss_fn(output) if targets is None else self.loss_fn(output, targets)
            _check_loss(loss)
            loss.backward(retain_graph=True)  # keep saved tensors: the chain rule reads them
        begin = len(self.timeline)
        self.hooked: dict[str, dict[str, Any]] = {}
        self.all_reduced: dict[str, dict[str, Any]] = {}
        graph_number = self._graph(tape)
        gradients = self._explain_gradients(tape, loss)
        tape.step_results.clear()  # the ops' results: only the chain rule needed them
        _release_graph(loss)
        self._timeline_of_tape(number, tape)
        updates = self._update(number)
        self.result.tapes.append(tape)
        self.result.losses.append(loss.item())
        self.training_steps.append(
            {
                "number": number,
                "loss": _number(loss.item()),
                "first": begin,
                "end": len(self.timeline),
                "graph": graph_number,
                "gradients": gradients,
                "updates": updates,
                "values": self._values(tape),
                **({"all_reduce": self.all_reduced} if self.all_reduced else {}),
            }
        )

    def finish(self, title: str) -> Exploration:
        self.result.title = title
        self.result.data = {
            "format": FORMAT,
            "version": VERSION,
            "title": title,
            "model": {"type": type(self.model).__name__, "text": repr(self.model)},
            "modules": _describe_modules(self.model, self.loss_fn),
            "optimizer": {
                "type": type(self.optimizer).__name__,
                "groups": [
                    {k: _json_value(v) for k, v in group.items() if k != "params"}
                    for group in self.optimizer.param_groups
                ],
            },
            "parameters": [
                {
                    "name": name,
                    "shape": list(parameter.shape),
                    "dtype": str(parameter.dtype).removeprefix("torch."),
                    "module": name.rpartition(".")[0],
                }
                for name, parameter in self.parameters
            ],
            "max_elements": self.tensors.max_elements,
            "tensors": self.tensors.entries,
            "blob": self.tensors.blob(),
            "graphs": self.graphs,
            "ops": self.ops,
            "training_steps": self.training_steps,
            "timeline": self.timeline,
        }
        return self.result

    # ------------------------------------------------------------------ the graph
    def _graph(self, tape: _ScopedTape) -> int:
        """The forward graph of this step (ops, leaves, edges with shapes), numbered; a step
        with the same graph as an earlier one shares it."""
        produced: dict[int, str] = {}  # labeller number of a result -> its graph node
        nodes: list[dict[str, Any]] = []
        edges: list[dict[str, Any]] = []
        leaves: dict[str, dict[str, Any]] = {}
        for step in _forward_steps(tape):
            scope = tape.step_scopes.get(step.index, "")
            node_id = step.output_names[0]
            for position, (name, value, number) in enumerate(
                zip(step.input_names, step.inputs, step.input_ids)
            ):
                if not isinstance(value, Snapshot):
                    continue
                source = produced.get(number)
                if source is None:
                    source = name
                    if name not in leaves:
                        leaves[name] = self._leaf(name, value)
                shape = list(value.shape)
                edges.append({"from": source, "to": node_id, "position": position, "shape": shape})
            nodes.append(
                {
                    "id": node_id,
                    "kind": "op",
                    "op": step.op,
                    "formula": step.formula,
                    "module": scope,
                    "shape": list(step.outputs[0].shape),
                    "recorded": step.recorded,
                }
            )
            produced[step.output_ids[0]] = node_id
            cls = tape.step_classes.get(step.index)
            if cls is not None and step.op not in self.ops:
                self.ops[step.op] = _op_formulas(cls)
        graph = {"nodes": list(leaves.values()) + nodes, "edges": edges, "output": node_id}
        for number, known in enumerate(self.graphs):
            if known == graph:
                return number
        self.graphs.append(graph)
        return len(self.graphs) - 1

    def _leaf(self, name: str, value: Snapshot) -> dict[str, Any]:
        parameter = next((p for n, p in self.parameters if n == name), None)
        if parameter is not None:
            kind, module = "parameter", name.rpartition(".")[0]
        else:
            kind, module = ("input" if name in ("inputs", "targets") else "constant"), ""
        return {"id": name, "kind": kind, "module": module, "shape": list(value.shape)}

    # ------------------------------------------------------------------ the timeline
    def _timeline_of_tape(self, number: int, tape: _ScopedTape) -> None:
        received: dict[int, list[tuple[Step, int]]] = {}  # node or leaf id -> [(step, output)]
        leaf_shares: dict[int, list[tuple[Step, int]]] = {}
        scopes = {}
        for step in _forward_steps(tape):
            scopes[step.output_names[0]] = tape.step_scopes.get(step.index, "")
        for step in tape.steps:
            if step.direction == "forward" and step.backward_pass is not None:
                continue  # a hook's own arithmetic: its effect is the hook step
            if step.direction == "forward":
                scope = tape.step_scopes.get(step.index, "")
                phase = "loss" if scope.split(".")[0] == LOSS_SCOPE else "forward"
                self._add(number, phase, step, node=step.output_names[0], module=scope)
            elif step.direction == "backward":
                node = step.get_node()
                name = step.input_names[0][1:]
                arrived = received.get(id(node), [])
                if len(arrived) > 1:
                    self._accumulation(number, name, arrived, scopes.get(name, ""))
                if node is not None and node._grad_hooks:
                    self._hook(number, name, arrived, step.inputs[0], node._grad_hooks, scopes)
                self._add(number, "backward", step, node=name, module=scopes.get(name, ""))
                for position, parent in enumerate(node.parents if node is not None else ()):
                    if parent is None or step.outputs[position] is None:
                        continue
                    where = leaf_shares if isinstance(parent, Tensor) else received
                    where.setdefault(id(parent), []).append((step, position))
            elif step.direction == "deliver":
                name = step.input_names[-1][1:]
                parameter = self._parameter(name)
                shares = leaf_shares.get(id(parameter), []) if parameter is not None else []
                if parameter is not None and parameter._hooks and shares:
                    self._hook(number, name, shares, step.inputs[-1], parameter._hooks, scopes)
                module = name.rpartition(".")[0] if parameter is not None else ""
                self._add(number, "deliver", step, node=name, module=module)
            elif step.direction == "all-reduce":
                self._all_reduce(number, step)

    def _parameter(self, name: str) -> Tensor | None:
        return next((p for n, p in self.parameters if n == name), None)

    def _add(self, number: int, phase: str, step: Step, node: str, module: str) -> None:
        entry = {
            "index": len(self.timeline),
            "training_step": number,
            "phase": phase,
            "op": step.op,
            "formula": step.formula,
            "node": node,
            "module": module,
            "inputs": self._values_of(step.input_names, step.inputs),
            "outputs": self._values_of(step.output_names, step.outputs),
        }
        options = {k: v for k, v in step.options.items() if " object at 0x" not in v}
        if options:
            entry["options"] = options
        if any(shape is not None for shape in step.summed_to):
            entry["summed_to"] = [None if s is None else list(s) for s in step.summed_to]
        self.timeline.append(entry)

    def _values_of(self, names: list[str], values: list[Any]) -> list[dict[str, Any]]:
        shown = []
        for name, value in zip(names, values):
            if isinstance(value, Snapshot):
                shown.append({"name": name, "tensor": self.tensors.add(value)})
            elif value is None:
                shown.append({"name": name, "value": None})
            else:
                shown.append({"name": name, "value": _number(value) if _numeric(value) else value})
        return shown

    def _accumulation(self, number: int, name: str, arrived: list, module: str) -> None:
        """A gradient summed over a result's uses: what the engine's `pending` sum did."""
        parts, names = [], []
        repeated = len({id(step) for step, _ in arrived}) < len(arrived)
        for step, position in arrived:
            parts.append(step.outputs[position].values)
            user = step.input_names[0][1:]
            names.append(f"d{name} via {user}" + (f" (input {position})" if repeated else ""))
        total = parts[0]
        for part in parts[1:]:
            total = total + part  # in the order the engine added them, in their dtype
        self.timeline.append(
            {
                "index": len(self.timeline),
                "training_step": number,
                "phase": "accumulate",
                "op": "Accumulate",
                "formula": f"d{name} = " + " + ".join(names),
                "node": name,
                "module": module,
                "inputs": [
                    {"name": label, "tensor": self.tensors.add(part)}
                    for label, part in zip(names, parts)
                ],
                "outputs": [{"name": f"d{name}", "tensor": self.tensors.add(total)}],
            }
        )

    def _all_reduce(self, number: int, step: Step) -> None:
        """DistributedDataParallel averaged one bucket over the ranks: each rank's local
        gradients in, the average out, shown parameter by parameter."""
        bucket = step.bucket
        world_size = bucket["world_size"]
        inputs, outputs = [], []
        for name, shape, offset in zip(bucket["names"], bucket["shapes"], bucket["offsets"]):
            local = [
                self.tensors.add(_bucket_part(step.inputs[rank], offset, shape))
                for rank in range(world_size)
            ]
            average = self.tensors.add(_bucket_part(step.outputs[0], offset, shape))
            inputs += [
                {"name": f"d{name} on rank {rank}", "tensor": local[rank], "node": name}
                for rank in range(world_size)
            ]
            outputs.append({"name": f"d{name}, averaged", "tensor": average, "node": name})
            self.all_reduced[name] = {
                "bucket": bucket["bucket"],
                "buckets": bucket["buckets"],
                "bucket_names": list(bucket["names"]),
                "offset": offset,
                "rank": bucket["rank"],
                "world_size": world_size,
                "local": local,
                "average": average,
            }
        self.timeline.append(
            {
                "index": len(self.timeline),
                "training_step": number,
                "phase": "all-reduce",
                "op": step.op,
                "formula": step.formula,
                "node": f"bucket {bucket['bucket']}",
                "module": "",
                "inputs": inputs,
                "outputs": outputs,
                "bucket": {
                    key: bucket[key]
                    for key in ("bucket", "buckets", "world_size", "names", "offsets", "numel")
                },
            }
        )

    def _hook(self, number, name, arrived, received, hooks, scopes) -> None:
        """Hooks on a tensor ran between the summed gradient and the one passed on."""
        total = None
        for step, position in arrived:
            part = step.outputs[position].values
            total = part if total is None else total + part
        names = ", ".join(getattr(h, "__name__", type(h).__name__) for h in hooks)
        inputs = [] if total is None else [{"name": f"d{name}", "tensor": self.tensors.add(total)}]
        self.hooked[name] = {
            "hooks": names,
            "before_hooks": inputs[0]["tensor"] if inputs else None,
        }
        self.timeline.append(
            {
                "index": len(self.timeline),
                "training_step": number,
                "phase": "hook",
                "op": "Hook",
                "formula": f"d{name} ← hook(d{name})  (hooks: {names})",
                "node": name,
                "module": scopes.get(name, name.rpartition(".")[0]),
                "inputs": inputs,
                "outputs": [{"name": f"d{name} after hooks", "tensor": self.tensors.add(received)}],
            }
        )

    # ------------------------------------------------------------------ values per node
    def _values(self, tape: _ScopedTape) -> dict[str, Any]:
        """Per graph node: its value and gradient (tensor numbers), and each use's share."""
        values: dict[str, dict[str, Any]] = {}
        for step in tape.steps:
            if step.direction == "forward" and step.backward_pass is not None:
                continue
            if step.direction == "forward":
                for name, value in zip(step.input_names, step.inputs):
                    if isinstance(value, Snapshot) and name not in values:
                        values[name] = {"value": self.tensors.add(value), "uses": []}
                values.setdefault(step.output_names[0], {"uses": []})["value"] = self.tensors.add(
                    step.outputs[0]
                )
            elif step.direction == "backward":
                node = step.input_names[0][1:]
                values.setdefault(node, {"uses": []})["grad"] = self.tensors.add(step.inputs[0])
                for position, (name, value) in enumerate(zip(step.output_names, step.outputs)):
                    if value is None:
                        continue
                    share = value.values
                    shape = step.summed_to[position] if step.summed_to else None
                    if shape is not None:
                        share = engine.sum_to_shape(share, torch.Size(shape))
                    values.setdefault(name[1:], {"uses": []})["uses"].append(
                        {
                            "node": node,
                            "op": step.op.removesuffix("Backward"),
                            "position": position,
                            "share": self.tensors.add(share),
                        }
                    )
            elif step.direction == "deliver":
                name = step.output_names[0].removesuffix(".grad") if step.output_names else None
                if name and step.outputs:
                    values.setdefault(name, {"uses": []})["grad"] = self.tensors.add(
                        step.outputs[0]
                    )
        for name, hooked in self.hooked.items():
            values.setdefault(name, {"uses": []}).update(hooked)
        return values

    # ------------------------------------------------------------------ the chain rule
    def _explain_gradients(self, tape: _ScopedTape, loss: Tensor) -> dict[str, Any]:
        """Per parameter: every element's gradient split by sample (gradient_by_sample), and
        the chosen elements explained term by term (explain_gradient): the `top_elements`
        largest gradients and those named in `elements`. The same for every activation that
        feeds a layer (a use that is not elementwise), split by that layer's channel or
        output feature instead (an activation's element only reaches its own sample)."""
        results = self._results(tape)
        users = _users(loss)
        _check_activations(
            self.chosen_activations, results, self.parameters, self.names, loss, users
        )
        # the loss by its name on the page (explain_gradient would call it "loss")
        self.names[loss] = self.node_names.get(id(loss.grad_fn), "loss")
        result: dict[str, Any] = {}
        explained: dict[str, list[GradientExplanation]] = {}
        for name, parameter in self.parameters:
            if parameter.grad is None:
                continue
            split = gradient_by_sample(loss, parameter, tape=tape, names=self.names)
            found = self._explained(tape, loss, parameter, split.value, self.chosen.get(name))
            explained[name] = found
            result[name] = {
                "by_sample": [self._samples(use, parameter.dtype) for use in split.uses],
                "explained": [e.to_dict() for e in found],
            }
        for name, tensor in results.items():
            if tensor is loss or id(tensor.grad_fn) not in users:
                continue  # the loss's gradient is 1; a result it does not use has none
            layers = [
                (node, position)
                for node, position in users.get(id(tensor.grad_fn), [])
                if not _one_term(node, tensor)
            ]
            if not layers and name not in self.chosen_activations:
                continue  # only elementwise uses: the page shows each use's one term
            split = gradient_by_sample(loss, tensor, tape=tape, names=self.names, dim=1)
            found = self._explained(
                tape, loss, tensor, split.value, self.chosen_activations.get(name)
            )
            explained[name] = found
            kept = {(self.node_names.get(id(node)), position) for node, position in layers}
            result[name] = {
                "by_sample": [
                    self._samples(use, tensor.dtype)
                    for use in split.uses
                    if (use.node_label, use.input_position) in kept
                ],
                "explained": [e.to_dict() for e in found],
            }
        self.result.explanations.append(explained)
        return result

    def _results(self, tape: _ScopedTape) -> dict[str, Tensor]:
        """Every op's result in the forward pass, by its name on the page."""
        found = {}
        self.node_names: dict[int, str] = {}  # id(node) -> the name of its result
        for step in _forward_steps(tape):
            tensor = tape.step_results.get(step.index)
            if isinstance(tensor, Tensor):
                found[step.output_names[0]] = tensor
                if tensor.grad_fn is not None:
                    self.node_names[id(tensor.grad_fn)] = step.output_names[0]
        return found

    def _explained(self, tape, loss, tensor, gradient, named) -> list[GradientExplanation]:
        indices = _largest(gradient, self.top_elements)
        indices += [i for i in named or [] if i not in indices]
        return [
            explain_gradient(
                loss,
                tensor,
                index,
                tape=tape,
                names=self.names,
                max_terms=self.max_terms,
                max_depth=0,
            )
            for index in indices
        ]

    def _samples(self, use: Any, dtype: torch.dtype) -> dict[str, Any]:
        """One use's share split by sample (or, for an activation, by dim 1 of the user's
        output): every part of every element, or, with over MAX_SAMPLES parts, each
        element's TOP_SAMPLES largest parts and the rest's sum (so that what is kept still
        adds up to the share). An activation of over `max_elements` elements keeps the parts
        of its first `max_elements` elements only (those the page embeds), flat."""
        samples = use.samples
        entry = {
            "node": use.node_label,
            "op": use.op,
            "position": use.input_position,
            "input_name": use.input_name,
            "dim": use.dim,
            "count": samples.shape[0],
        }
        limit = self.tensors.max_elements
        if use.dim and samples[0].numel() > limit:
            samples = samples.reshape(samples.shape[0], -1)[:, :limit]
            entry["elements"] = limit
        if samples.shape[0] <= MAX_SAMPLES:
            entry["samples"] = self.tensors.add(samples.to(dtype), whole=True)
            return entry
        flat = samples.reshape(samples.shape[0], -1).double()
        chosen = flat.abs().topk(TOP_SAMPLES, dim=0).indices
        parts = flat.gather(0, chosen)
        shape = (TOP_SAMPLES, *samples.shape[1:])
        entry["top"] = {
            "samples": self.tensors.add(chosen.to(torch.int32).reshape(shape), whole=True),
            "values": self.tensors.add(parts.to(dtype).reshape(shape), whole=True),
            "rest": self.tensors.add(
                (flat.sum(0) - parts.sum(0)).to(dtype).reshape(samples.shape[1:]), whole=True
            ),
        }
        return entry

    # ------------------------------------------------------------------ the update
    def _update(self, number: int) -> list[dict[str, Any]]:
        """Run optimizer.step(), keeping each parameter's value, gradient and state before
        and after, and the update rule's lines with their numbers for every element."""
        before = {}
        for name, parameter in self.parameters:
            state = self.optimizer.state.get(parameter, {})
            before[name] = (
                parameter.data.detach().clone(),
                None if parameter.grad is None else parameter.grad.data.detach().clone(),
                {key: _copy(value) for key, value in state.items()},
                self._group_of(parameter),
            )
        # The real step, inside explain_step for each parameter's largest-gradient element:
        # the page's lines (every element) and explain_step's (one element) must agree.
        explained: dict[str, Any] = {}
        with ExitStack() as stack:
            for name, parameter in self.parameters:
                if parameter.grad is not None and self._group_of(parameter) >= 0:
                    (index,) = _largest(parameter.grad.data)
                    explained[name] = stack.enter_context(
                        explain_step(self.optimizer, parameter, index, names={parameter: name})
                    )
            self.optimizer.step()
        updates = []
        for name, parameter in self.parameters:
            theta, grad, state_before, group_number = before[name]
            group = self.optimizer.param_groups[group_number] if group_number >= 0 else {}
            state_after = {
                key: _copy(value) for key, value in self.optimizer.state.get(parameter, {}).items()
            }
            update = self._update_entry(
                name, parameter, theta, grad, state_before, state_after, group, group_number
            )
            if name in explained:
                update["explained"] = [explained[name].to_dict()]
            updates.append(update)
            self.timeline.append(
                {
                    "index": len(self.timeline),
                    "training_step": number,
                    "phase": "update",
                    "op": type(self.optimizer).__name__,
                    "formula": " ; ".join(line["formula"] for line in update["lines"]),
                    "node": name,
                    "module": name.rpartition(".")[0],
                    "parameter": name,
                    "update": len(updates) - 1,
                    "inputs": [
                        {"name": f"{name} (before)", "tensor": update["before"]},
                        {"name": f"{name}.grad", "tensor": update["grad"]},
                        *(
                            {"name": f"state['{key}'] (before)", **value}
                            for key, value in update["state_before"].items()
                        ),
                    ],
                    "outputs": [
                        {"name": f"{name} (after)", "tensor": update["after"]},
                        *(
                            {"name": f"state['{key}'] (after)", **value}
                            for key, value in update["state_after"].items()
                        ),
                    ],
                }
            )
        self.result.updates.append(explained)
        return updates

    def _group_of(self, parameter: Tensor) -> int:
        for number, group in enumerate(self.optimizer.param_groups):
            if any(p is parameter for p in group["params"]):
                return number
        return -1

    def _update_entry(
        self, name, parameter, theta, grad, state_before, state_after, group, group_number
    ) -> dict[str, Any]:
        add = self.tensors.add
        entry: dict[str, Any] = {
            "parameter": name,
            "group": group_number,
            "before": add(theta, whole=True),
            "grad": None if grad is None else add(grad, whole=True),
            "after": add(parameter.data.detach().clone(), whole=True),
            "state_before": {k: _state_ref(v, add) for k, v in state_before.items()},
            "state_after": {k: _state_ref(v, add) for k, v in state_after.items()},
            "lines": [],
            "not_taken": [],
            "hyperparameters": [],
        }
        if group_number < 0:
            entry["skipped"] = "not in the optimizer, so step() leaves it alone"
            return entry
        if grad is None:
            entry["skipped"] = "its .grad was None, so step() left it alone"
            return entry
        explanation = StepExplanation(
            optimizer=type(self.optimizer).__name__,
            label=name,
            index=(),
            group=group_number,
            step=None,
            dtype=str(theta.dtype).removeprefix("torch."),
            gradient=None,
            before=math.nan,
        )
        hyperparameters = {k: v for k, v in group.items() if k != "params"}
        work = _EveryElement(explanation, theta, grad, state_before, hyperparameters)
        _explainer_for(self.optimizer)(work)
        after = parameter.data
        entry["step"] = explanation.step
        entry["hyperparameters"] = [
            {
                "symbol": h.symbol,
                "name": h.name,
                "value": _number(h.value) if _numeric(h.value) else repr(h.value),
            }
            for h in explanation.hyperparameters
        ]
        entry["not_taken"] = list(explanation.not_taken)
        for formula, symbol, template, numbers, value, condition, state in work.rows:
            entry["lines"].append(
                {
                    "formula": formula,
                    "symbol": symbol,
                    "template": template,
                    "numbers": [_operand(x, add, theta.shape) for x in numbers],
                    "value": _operand(value, add, theta.shape),
                    "condition": condition,
                    "state": state,
                }
            )
        computed = work.theta
        entry["matches"] = _agrees(computed, after, theta)
        entry["stage"] = STAGE
        return entry


class _EveryElement(_Work):
    """explain_step's work sheet for all elements at once: θ, g and the state are whole
    tensors, so each line of the update rule is computed for every element in one go (the
    same formulas, in the same order and dtype, as explain_step uses for one element)."""

    def __init__(self, explanation, theta, grad, state, group) -> None:
        super().__init__(explanation, theta, grad, state, group)
        self.rows: list[tuple] = []

    def line(self, formula, symbol, template, numbers, value, condition="", state=None):
        self.rows.append((formula, symbol, template, tuple(numbers), value, condition, state))
        return value

    def entry(self, symbol: str, name: str, computed: Any) -> None:
        pass  # the real state after the step is read from the optimizer instead

    def step_count(self) -> int:
        before = self.state.get("step")
        t = 1 if before is None else int(before.item()) + 1
        self.explanation.step = t
        return t

    def gradient(self) -> torch.Tensor:
        return self.line("g_t ← ∇_θ f_t(θ_{t-1})", "g_t", "{0}", [self.grad], self.grad)


def _operand(x: Any, add: Any, shape: torch.Size) -> dict[str, Any]:
    """A number of an update line: one value for all elements, or a tensor (by entry)."""
    if isinstance(x, torch.Tensor) and x.dim() > 0:
        if tuple(x.shape) != tuple(shape):
            x = x.expand(shape)
        return {"tensor": add(x.detach().contiguous(), whole=True)}
    return {"value": _number(x)}


def _state_ref(value: Any, add: Any) -> dict[str, Any]:
    if isinstance(value, torch.Tensor) and value.dim() > 0:
        return {"tensor": add(value, whole=True)}
    return {"value": _number(value)}


def _copy(value: Any) -> Any:
    return value.detach().clone() if isinstance(value, torch.Tensor) else value


def _agrees(computed: torch.Tensor, actual: torch.Tensor, before: torch.Tensor) -> bool:
    """Whether the lines' θ_t is the real step's, element by element, up to rounding: the
    real step may fuse a multiply and an add that the lines round twice, so a few units in
    the last place of the numbers involved are allowed."""
    eps = torch.finfo(actual.dtype).eps if actual.is_floating_point() else 0.0
    computed, actual, before = computed.double(), actual.double(), before.double()
    scale = torch.maximum(torch.maximum(computed.abs(), actual.abs()), before.abs())
    close = (computed - actual).abs() <= 8 * eps * scale
    return bool((close | (computed.isnan() & actual.isnan())).all())


def _json_value(value: Any) -> Any:
    if _numeric(value):
        return _number(value)
    if isinstance(value, tuple | list):
        return [_json_value(v) for v in value]
    if value is None or isinstance(value, str):
        return value
    return repr(value)


def _numeric(x: Any) -> bool:
    return isinstance(x, int | float | bool | torch.Tensor)


def _largest(grad: torch.Tensor, count: int = 1) -> list[tuple[int, ...]]:
    """The indices of the `count` largest |grad| elements, largest first."""
    magnitudes = grad.abs().reshape(-1)
    flats = magnitudes.topk(min(count, magnitudes.numel())).indices.tolist()
    found = []
    for flat in flats:
        index = []
        for size in reversed(grad.shape):
            index.append(flat % size)
            flat //= size
        found.append(tuple(reversed(index)))
    return found


def _users(loss: Tensor) -> dict[int, list[tuple[Any, int]]]:
    """id(node or leaf) -> [(node, input position)] of every node in loss's graph using it."""
    users: dict[int, list[tuple[Any, int]]] = {}
    for node in engine.topological_order([loss.grad_fn]):
        for position, parent in enumerate(node.parents):
            if parent is not None:
                users.setdefault(id(parent), []).append((node, position))
    return users


def _one_term(node: Any, tensor: Tensor) -> bool:
    """Whether each element of `tensor` meets one term in `node`'s backward: an elementwise
    op whose output has the tensor's shape (no broadcasting), which the page shows as
    upstream x local without any recording."""
    formula = getattr(type(node), "derivatives", None)
    return (
        formula is not None
        and formula.elementwise
        and tuple(node.output_shape) == tuple(tensor.shape)
    )


def _check_loss(loss: Any) -> None:
    if not isinstance(loss, Tensor):
        raise ExploreError(f"explore: loss_fn returned {type(loss).__name__}, not an mt.Tensor")
    if not loss.requires_grad:
        raise ExploreError(
            "explore: the loss does not require grad (was it computed under no_grad, from "
            "detached tensors, or with every parameter frozen?), so backward has nothing to do"
        )
    if loss.numel() != 1:
        raise ExploreError(
            f"explore: the loss must be one number, got shape {list(loss.shape)} (reduce it "
            "with .mean() or .sum())"
        )


def _op_formulas(cls: type) -> dict[str, Any]:
    """What an op's formula data says (autograd/formula.py): its inputs' names, what it
    computes, its backward per input, and each local derivative."""
    data: dict[str, Any] = {"formula": cls.formula}
    formula = getattr(cls, "derivatives", None)
    if formula is not None:
        data["inputs"] = [name.strip() for name in formula.inputs.split(",") if name.strip()]
        data["forward"] = formula.forward
        data["backward"] = (
            formula.backward if isinstance(formula.backward, str) else dict(formula.backward)
        )
        data["local"] = dict(formula.local)
        data["elementwise"] = formula.elementwise
        data["indices"] = dict(formula.indices)
    return data


def _forward_steps(tape: Tape) -> list[Step]:
    """The forward pass's ops (not those a hook ran during backward)."""
    return [step for step in tape.forward_steps if step.backward_pass is None]


def _bucket_part(bucket: Snapshot, offset: int, shape: list[int]) -> torch.Tensor:
    """One parameter's gradient in a recorded gradient bucket (a flat tensor)."""
    return bucket.values.reshape(-1)[offset : offset + math.prod(shape)].reshape(shape)


def _release_graph(loss: Tensor) -> int:
    """Free what the graph saved for backward (kept with retain_graph for the chain rule)."""
    if loss.grad_fn is None:
        return 0
    order = engine.topological_order([loss.grad_fn])
    for node in order:
        node.release()
    return len(order)


def _describe_modules(model: Any, loss_fn: Any) -> list[dict[str, Any]]:
    modules = []
    for path, module in model.named_modules():
        if not path:
            continue
        modules.append({"path": path, "type": type(module).__name__, "text": _module_text(module)})
    modules.append(
        {
            "path": LOSS_SCOPE,
            "type": type(loss_fn).__name__
            if hasattr(loss_fn, "named_parameters")
            else getattr(loss_fn, "__name__", "loss"),
            "text": _module_text(loss_fn),
        }
    )
    return modules


def _module_text(module: Any) -> str:
    text = (
        repr(module)
        if hasattr(module, "named_parameters")
        else getattr(module, "__name__", type(module).__name__)
    )
    first = text.splitlines()[0] if text else ""
    return first if len(text.splitlines()) == 1 else first.rstrip("(") + "(...)"
