"""docs/tutorial.ipynb is docs/tutorial.md as a notebook (jupytext pairs them): the two hold
the same cells, and the notebook runs in a real Jupyter kernel, each cell printing what the
page shows after it (the `Output:` blocks that tests/test_docs.py checks for the page).
"""

import shutil
from pathlib import Path

import pytest

jupytext = pytest.importorskip(
    "jupytext", reason="jupytext is not installed (pip install -e .[dev])"
)
nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed")
nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed")
pytest.importorskip("ipykernel", reason="ipykernel (the Python kernel) is not installed")

from test_docs import FLAGS, matches, parse  # noqa: E402 - after the skips above

ROOT = Path(__file__).resolve().parent.parent
MARKDOWN = ROOT / "docs" / "tutorial.md"
NOTEBOOK = ROOT / "docs" / "tutorial.ipynb"
SYNC = "run `jupytext --sync docs/tutorial.md` (or save the notebook with jupytext installed)"


def test_the_notebook_holds_the_pages_cells():
    page = jupytext.read(MARKDOWN)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    ours = [(cell.cell_type, cell.source) for cell in notebook.cells]
    assert ours == [(cell.cell_type, cell.source) for cell in page.cells], SYNC
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    assert notebook.metadata["jupytext"]["formats"] == "ipynb,md"
    # the page's `Output:` blocks are folded in the notebook, under the cell's real output
    shown = [c for c in notebook.cells if c.cell_type == "markdown" and "Output:" in c.source]
    assert shown and all(c.source.startswith("Output:") for c in shown)
    assert all(c.metadata.get("jupyter", {}).get("source_hidden") for c in shown)


def test_the_notebook_runs_in_a_kernel_and_prints_what_the_page_shows(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    blocks = parse(MARKDOWN).blocks
    assert [cell.source.strip() for cell in code] == [b.code.strip() for b in blocks], SYNC
    skipped = []
    for cell, block in zip(code, blocks):
        missing = [FLAGS[flag][1] for flag in block.flags if not FLAGS[flag][0]()]
        if missing:  # e.g. no Graphviz: the page's test skips this block too
            cell.source = ""
            skipped.append(block.line)
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    client.execute()
    for cell, block in zip(code, blocks):
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, f"the cell of line {block.line} raised {errors[0]['ename']}"
        printed = "".join(
            o.get("text", "")
            for o in cell.outputs
            if o.output_type == "stream" and o.name == "stdout"
        )
        if block.expected is not None and block.line not in skipped:
            assert matches(block.expected, printed), (
                f"the cell of line {block.line} printed\n{printed}\nbut the page shows\n"
                f"{block.expected}"
            )
    # a study result at the end of a cell shows itself as HTML (explain_gradient's table)
    shown = next(cell for cell in code if cell.source.strip() == "explanation")
    (result,) = [o for o in shown.outputs if o.output_type == "execute_result"]
    html = result["data"]["text/html"]
    assert '<div class="mte">' in html and "d(loss)/d(0.weight[3, 2])" in html
    assert "<details" in html and "x[0, 2]" in html
    assert shutil.which("dot") is None or (tmp_path / "training_step.png").exists()
