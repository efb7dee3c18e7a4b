"""Graph pictures: the DOT text says what the graph is, and rendering works or explains itself."""

import re
import shutil

import pytest

import minitorch_edu as mt
from minitorch_edu.autograd.engine import topological_order
from minitorch_edu.study import GraphPicture, GraphvizNotFoundError, draw, render, to_dot
from minitorch_edu.study import graph as graph_module

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BOX = re.compile(r'^  (\w+) \[label="((?:[^"\\]|\\.)*)"(.*)\];$', re.MULTILINE)
EDGE = re.compile(r'^  (\w+) -> (\w+)(?: \[label="([^"]*)"\])?;$', re.MULTILINE)


def parse(dot):
    """Boxes {id: (label lines, attributes)} and edges [(from, to, label)] of DOT text."""
    boxes = {m[1]: (m[2].split("\\n"), m[3]) for m in BOX.finditer(dot)}
    edges = [(m[1], m[2], m[3]) for m in EDGE.finditer(dot)]
    return boxes, edges


def box_named(boxes, first_line):
    found = [key for key, (lines, _) in boxes.items() if lines[0] == first_line]
    assert len(found) == 1, f"{first_line!r} found {len(found)} times in {boxes}"
    return found[0]


def small_model():
    x = mt.randn(4, 5, dtype=mt.float64)
    W = mt.randn(3, 5, dtype=mt.float64, requires_grad=True)
    b = mt.randn(3, dtype=mt.float64, requires_grad=True)
    loss = (x @ W.T + b).tanh().mean()
    return x, W, b, loss


def test_dot_has_one_box_per_op_and_leaf_with_names_and_shaped_edges():
    x, W, b, loss = small_model()
    dot = to_dot(loss, names={x: "x", W: "W", b: "b", loss: "loss"})
    assert dot.startswith("digraph minitorch_edu {") and dot.rstrip().endswith("}")
    boxes, edges = parse(dot)
    ops = [key for key, (lines, _) in boxes.items() if "  (" in lines[0]]
    assert len(ops) == len(topological_order([loss.grad_fn])) == 5
    W_box, b_box, x_box = box_named(boxes, "W"), box_named(boxes, "b"), box_named(boxes, "x")
    assert boxes[x_box][0] == ["x", "[4, 5]"] and "lightyellow" in boxes[x_box][1]  # a constant
    assert boxes[W_box][0] == ["W", "[3, 5]"] and "lightblue" in boxes[W_box][1]
    assert boxes[b_box][0] == ["b", "[3]"]
    permute = box_named(boxes, "Permute  (permute1)")
    matmul = box_named(boxes, "MatMul  (matmul1)")
    add = box_named(boxes, "Add  (add1)")
    tanh = box_named(boxes, "Tanh  (tanh1)")
    mean = box_named(boxes, "Mean  (loss)")  # the named output names its op too
    output = box_named(boxes, "loss")
    assert set(edges) == {
        (W_box, permute, "[3, 5]"),
        (permute, matmul, "1: [5, 3]"),
        (x_box, matmul, "0: [4, 5]"),
        (matmul, add, "0: [4, 3]"),
        (b_box, add, "1: [3]"),
        (add, tanh, "[4, 3]"),
        (tanh, mean, "[4, 3]"),
        (mean, output, None),
    }
    assert "palegreen" in boxes[output][1] and boxes[output][0] == ["loss", "[]"]
    # each op shows its formula; saved tensors are listed with their shapes
    assert "dA = grad @ B^T" in boxes[matmul][0] and "dB = A^T @ grad" in boxes[matmul][0]
    assert "saved: x [4, 5], permute1 [5, 3]" in boxes[matmul][0]
    assert "saved: output [4, 3]" in boxes[tanh][0]
    bare = to_dot(loss, show_saved=False, show_formula=False, legend=False)
    assert "saved" not in bare and "grad @" not in bare


def test_nodes_freed_by_backward_are_marked():
    _, W, _, loss = small_model()
    before = to_dot(loss, legend=False)
    assert "freed" not in before
    loss.backward()
    boxes, _ = parse(to_dot(loss))
    freed = {lines[0] for lines, attributes in boxes.values() if "dashed" in attributes}
    marked = {lines[0] for lines, _ in boxes.values() if "saved tensors freed by backward" in lines}
    # MatMul and Tanh saved tensors; Permute, Add and Mean saved none
    assert freed == marked == {"MatMul  (matmul1)", "Tanh  (tanh1)"}


def test_max_nodes_keeps_the_ops_nearest_the_output_and_says_so():
    x = mt.randn(3, dtype=mt.float64, requires_grad=True)
    y = x
    for _ in range(30):
        y = (y * 0.5).tanh()
    dot = to_dot(y, max_nodes=5)
    boxes, edges = parse(dot)
    ops = [lines[0] for lines, _ in boxes.values() if "  (" in lines[0]]
    assert ops == [
        "Tanh  (tanh30)",
        "Mul  (mul30)",
        "Tanh  (tanh29)",
        "Mul  (mul29)",
        "Tanh  (tanh28)",
    ]
    assert boxes["more"][0] == ["55 more ops", "(max_nodes=5)"]
    assert ("more", box_named(boxes, "Tanh  (tanh28)"), "[3]") in edges
    assert 'label="55 more ops not drawn (max_nodes=5)' in dot
    assert "leaf1" not in dot  # the leaf lies beyond the cut
    with pytest.raises(ValueError, match="max_nodes must be at least 1"):
        to_dot(y, max_nodes=0)


def test_hidden_ops_are_drawn_through():
    _, W, _, loss = small_model()
    boxes, edges = parse(to_dot(loss, names={W: "W"}, hide_ops={"Permute"}))
    assert not any(lines[0].startswith("Permute") for lines, _ in boxes.values())
    matmul = box_named(boxes, "MatMul  (matmul1)")
    assert (box_named(boxes, "W"), matmul, "1: [5, 3]") in edges


def test_names_from_a_module_like_object_several_outputs_and_a_lone_leaf():
    class Model:
        def __init__(self):
            self.weight = mt.randn(2, 2, requires_grad=True)

        def named_parameters(self):
            return [("layer.weight", self.weight)]

    model = Model()
    first = model.weight.exp()
    second = first.sum()
    boxes, edges = parse(to_dot([first, second], names=model))
    assert box_named(boxes, "layer.weight")
    outputs = [lines for lines, attributes in boxes.values() if "palegreen" in attributes]
    assert sorted(map(tuple, outputs)) == [("output", "[2, 2]"), ("output", "[]")]
    lone, _ = parse(to_dot(model.weight, names=model))
    assert [lines for lines, _ in lone.values()] == [["layer.weight", "[2, 2]"]]
    with pytest.raises(TypeError, match="expected minitorch_edu Tensors"):
        to_dot([first, "loss"])


def test_names_with_quotes_are_escaped():
    w = mt.randn(2, requires_grad=True)
    dot = to_dot(w.exp(), names={w: 'my "w" \\ 1'})
    assert '[label="my \\"w\\" \\\\ 1\\n[2]"' in dot
    if shutil.which("dot"):
        assert GraphPicture(dot)._repr_svg_().lstrip().startswith("<?xml")


def test_render_writes_png_svg_and_pdf_or_explains_what_to_install(tmp_path):
    _, W, _, loss = small_model()
    if shutil.which("dot") is None:  # then the error must say how to get Graphviz
        with pytest.raises(GraphvizNotFoundError, match="apt-get install graphviz"):
            render(loss, tmp_path / "graph.png")
        return
    png = render(loss, tmp_path / "graph.png", names={W: "W"})
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    svg = render(loss, tmp_path / "graph.svg", max_nodes=2)
    assert "<svg" in svg.read_text() and "more ops" in svg.read_text()
    assert render(loss, tmp_path / "graph.pdf").read_bytes().startswith(b"%PDF")
    picture = draw(loss, names={W: "W"})
    assert picture.save(tmp_path / "again.png").read_bytes().startswith(PNG_SIGNATURE)
    assert picture.save(tmp_path / "graph.dot").read_text() == picture.source == str(picture)
    assert "<svg" in picture._repr_svg_()
    assert repr(picture) == "<GraphPicture: 9 boxes; .source holds the DOT text>"
    with pytest.raises(RuntimeError, match="dot failed"):
        GraphPicture("digraph {").save(tmp_path / "broken.svg")


def test_missing_graphviz_gives_a_clear_error(tmp_path, monkeypatch):
    _, _, _, loss = small_model()
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` anywhere on PATH
    with pytest.raises(GraphvizNotFoundError) as error:
        render(loss, tmp_path / "graph.png")
    message = str(error.value)
    for advice in ("apt-get install graphviz", "brew install graphviz", "conda install graphviz"):
        assert advice in message
    assert "to_dot" in message and not (tmp_path / "graph.png").exists()
    assert draw(loss)._repr_svg_() is None  # a notebook falls back to the text form
    monkeypatch.setattr(graph_module.shutil, "which", lambda name: None)
    with pytest.raises(GraphvizNotFoundError, match="not found on PATH"):
        draw(loss).save(tmp_path / "graph.svg")


def test_unknown_picture_formats_are_refused(tmp_path):
    _, _, _, loss = small_model()
    with pytest.raises(ValueError, match=r"ending in \.svg, \.png, \.pdf"):
        render(loss, tmp_path / "graph.jpg")
    with pytest.raises(ValueError, match="unknown picture format"):
        draw(loss).save(tmp_path / "graph.bmp")


def test_values_gradients_options_and_a_legend_are_drawn():
    """micrograd-style numbers in every box (from the tape), options on conv and pool
    nodes, constants as boxes, the output by its name, and a legend for the colours."""
    conv = mt.nn.Conv2d(1, 2, kernel_size=3, padding=1).double()
    images = mt.randn(2, 1, 4, 4, dtype=mt.float64)
    with mt.study.trace() as tape:
        loss = mt.nn.functional.max_pool2d(conv(images), 2).relu().mean()
        loss.backward(retain_graph=True)
    names = {conv.weight: "weight", conv.bias: "bias", images: "images"}
    dot = to_dot(loss, names=names, show_values=True, tape=tape, print_limit=4)
    boxes, edges = parse(dot)
    convolution = boxes[box_named(boxes, "Convolution  (convolution1)")][0]
    assert "stride=(1, 1), padding=[(1, 1), (1, 1)]" in convolution
    assert any(line.startswith("value = float64[2, 2, 4, 4] min ") for line in convolution)
    assert any(line.startswith("grad = float64[2, 2, 4, 4] min ") for line in convolution)
    pool = boxes[box_named(boxes, "MaxPool2d  (maxpool2d1)")][0]
    assert any("PoolPlan(kernel_size=(2, 2), stride=(2, 2)" in line for line in pool)
    bias = boxes[box_named(boxes, "bias")][0]
    expected = [round(v, 4) for v in conv.bias.grad.data.tolist()]
    assert bias[2].startswith("value = [") and bias[3] == f"grad = {expected}".replace(".0,", ",")
    assert "lightyellow" in boxes[box_named(boxes, "images")][1]
    loss_box = boxes[box_named(boxes, "loss")][0]  # an unnamed scalar output is the loss
    assert loss_box[2] == f"value = {loss.item():.4g}" and loss_box[3] == "grad = 1"
    assert "subgraph cluster_legend" in dot and "(no gradient)" in dot
    assert "legend" not in to_dot(loss, legend=False)
