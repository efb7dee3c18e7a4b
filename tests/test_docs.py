"""The documentation runs: every ```python block of every docs/*.md page, and every reference.

Conventions (stated for readers at the top of docs/index.md; README.md follows them too):

- The ```python blocks of one page run in order, in one fresh namespace, in a temporary
  working directory. Other fences (```text, ```bash, ...) are not run.
- A line `Output:` followed by a fenced block states what the ```python block just before
  it prints. The printed text must match it exactly, except that trailing spaces are
  ignored and `...` stands for any text (doctest's ELLIPSIS).
- Flags after the language name mark blocks that need something not every machine has:
  ```python needs-dot (Graphviz's `dot` program) and ```python needs-cuda (a GPU). Such a
  block is skipped where that is missing; the rest of its page still runs, and the page is
  then reported as skipped with the reason. Such blocks must not define names that later
  blocks use.
- References in backticks, `minitorch_edu/ops/arithmetic.py::Mul` or
  `tests/test_engine.py::test_random_graphs_match_torch[...]`, must name an existing file and
  a name defined in it; links between pages must resolve, anchors included; every page must
  be linked from docs/index.md.
"""

from __future__ import annotations

import contextlib
import doctest
import functools
import importlib.util
import io
import re
import shutil
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = sorted(DOCS.rglob("*.md")) + [README]  # the README's examples run too
FLAGS = {
    "needs-dot": (lambda: shutil.which("dot") is not None, "Graphviz's `dot` is not installed"),
    "needs-cuda": (torch.cuda.is_available, "no CUDA GPU on this machine"),
}
PYTHON = {"python", "py"}


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    language: str
    flags: list[str]
    code: str
    expected: str | None = None  # what it prints, from an `Output:` block after it
    output_line: int | None = None


@dataclass
class Page:
    path: Path
    blocks: list[Block] = field(default_factory=list)  # the python blocks
    problems: list[str] = field(default_factory=list)  # malformed conventions


FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
HTML_COMMENT = re.compile(r"<!--.*-->")


def parse(path: Path) -> Page:
    """The page's python blocks, each with the output it is shown to print."""
    page = Page(path)
    lines = path.read_text().splitlines()
    previous_block: Block | None = None  # the last fenced block, python or not
    previous_was_python = False
    prose_since_block: list[str] = []  # non-blank lines since the last fenced block
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            # (an HTML comment is no prose: jupytext's cell markers in the tutorial are ones)
            if lines[i].strip() and not HTML_COMMENT.fullmatch(lines[i].strip()):
                prose_since_block.append(lines[i].strip())
            i += 1
            continue
        fence, info = match["fence"], match["info"].strip()
        start = i
        body = []
        i += 1
        while i < len(lines):
            closing = lines[i].strip()
            if closing.startswith(fence[0] * len(fence)) and not closing.strip(fence[0]):
                break
            body.append(lines[i][len(match["indent"]) :])
            i += 1
        else:
            page.problems.append(f"line {start + 1}: fence never closed")
        i += 1
        words = info.split()
        language = words[0].lower() if words else ""
        code = "\n".join(body) + "\n"
        if prose_since_block == ["Output:"]:
            if previous_block is None or not previous_was_python:
                page.problems.append(f"line {start + 1}: `Output:` does not follow a python block")
            elif previous_block.expected is not None:
                page.problems.append(f"line {start + 1}: a second `Output:` for one block")
            else:
                previous_block.expected = code
                previous_block.output_line = start + 1
            previous_was_python = False
        elif "Output:" in prose_since_block:
            page.problems.append(
                f"line {start + 1}: `Output:` must be followed directly by the output block"
            )
        else:
            block = Block(start + 1, language, words[1:], code)
            previous_block = block
            previous_was_python = language in PYTHON
            if previous_was_python:
                for flag in block.flags:
                    if flag not in FLAGS:
                        page.problems.append(f"line {start + 1}: unknown flag {flag!r}")
                page.blocks.append(block)
        prose_since_block = []
    if prose_since_block and prose_since_block[-1] == "Output:":
        page.problems.append("the page ends with `Output:` and no output block")
    return page


def normalised(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()) + "\n"


def matches(expected: str, got: str) -> bool:
    checker = doctest.OutputChecker()
    return checker.check_output(normalised(expected), normalised(got), doctest.ELLIPSIS)


def page_id(path: Path) -> str:
    return str(path.relative_to(DOCS if path.is_relative_to(DOCS) else ROOT))


@contextlib.contextmanager
def isolated_globals():
    """Whatever a page changes in torch's global state is put back afterwards."""
    from minitorch_edu.autograd import grad_mode

    dtype = torch.get_default_dtype()
    grad_enabled = grad_mode.is_grad_enabled()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            torch.set_default_dtype(dtype)
            torch.set_printoptions(profile="default")
            grad_mode._set(grad_enabled)


@pytest.mark.parametrize("path", PAGES, ids=page_id)
def test_page_examples_run_and_print_what_they_show(path, tmp_path, monkeypatch):
    page = parse(path)
    assert not page.problems, f"{page_id(path)}: " + "; ".join(page.problems)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    skipped: list[str] = []
    with isolated_globals():
        for block in page.blocks:
            missing = [FLAGS[f][1] for f in block.flags if not FLAGS[f][0]()]
            if missing:
                skipped.append(f"line {block.line} ({', '.join(missing)})")
                continue
            where = f"{page_id(path)}:{block.line}"
            printed = io.StringIO()
            error = None
            try:
                code = compile(block.code, where, "exec")
                with contextlib.redirect_stdout(printed):
                    exec(code, namespace)
            except Exception:
                error = traceback.format_exc(limit=-3)
            if error is not None:
                pytest.fail(
                    f"the example at {where} raised:\n{error}\n"
                    f"printed before that:\n{printed.getvalue()}",
                    pytrace=False,
                )
            if block.expected is not None and not matches(block.expected, printed.getvalue()):
                pytest.fail(
                    f"the example at {where} printed\n{printed.getvalue()}\n"
                    f"but the page shows (line {block.output_line})\n{block.expected}",
                    pytrace=False,
                )
    if skipped:
        ran = len(page.blocks) - len(skipped)
        pytest.skip(f"{ran} blocks ran and passed; skipped: {'; '.join(skipped)}")


# ---------------------------------------------------------------------------- references
CODE_REFERENCE = re.compile(
    r"`(?P<path>(?:minitorch_edu|tests|reference|benchmarks|docs)/[\w./-]*)"
    r"(?:::(?P<name>[\w.]+)(?:\[(?P<id>[^\]]*)\])?)?`"
)
LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def defines(source: str, dotted: str) -> bool:
    """Whether `source` defines `Class`, `function`, `Class.method` or a module-level name."""
    first, _, rest = dotted.partition(".")
    top = re.search(rf"^(?:class|def|async def) {first}\b|^{first}\s*[:=]", source, re.MULTILINE)
    if top is None:
        return False
    if not rest:
        return True
    return (
        re.search(rf"^\s+(?:def|async def) {rest}\b|^\s+{rest}\s*[:=]", source, re.MULTILINE)
        is not None
    )


@functools.cache
def case_ids(path: Path, name: str) -> frozenset[str]:
    """The ids a parametrized test's cases may have (`test_x[ids]`), read from its marks."""
    spec = importlib.util.spec_from_file_location(f"_docs_reference_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    ids: set[str] = set()
    for mark in getattr(getattr(module, name), "pytestmark", []):
        if mark.name != "parametrize":
            continue
        explicit = mark.kwargs.get("ids", mark.args[2] if len(mark.args) > 2 else None)
        if explicit is not None and not callable(explicit):
            ids.update(str(i) for i in explicit)
            continue
        for value in mark.args[1]:
            value = (
                value.values[0] if hasattr(value, "values") and len(value.values) == 1 else value
            )
            if isinstance(value, str | int | float | bool):
                ids.add(str(value))
    return frozenset(ids)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as dashes."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found = set()
    in_fence = False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and line.startswith("#"):
            found.add(slug(line.lstrip("#")))
    return found


def prose(path: Path) -> str:
    """The page without its fenced blocks (references are only checked in the text)."""
    kept, in_fence = [], False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            kept.append(line)
    return "\n".join(kept)


def reference_problems(path: Path) -> list[str]:
    """What is wrong with the code references and links of one page."""
    text = prose(path)
    problems = []
    for match in CODE_REFERENCE.finditer(text):
        target = ROOT / match["path"]
        if not target.exists():
            problems.append(f"{match['path']} does not exist")
            continue
        name, case = match["name"], match["id"]
        if name is None:
            continue
        source = target.read_text()
        if not defines(source, name):
            problems.append(f"{match['path']} does not define {name}")
        elif case is not None and case != "..." and case not in case_ids(target, name):
            problems.append(f"{match['path']}::{name} has no case named {case!r}")
    for match in LINK.finditer(text):
        target = match["target"]
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            problems.append(f"link to {target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            problems.append(f"link to {target}: no heading with that anchor")
    return problems


@pytest.mark.parametrize("path", PAGES, ids=page_id)
def test_references_name_files_and_definitions_that_exist(path):
    problems = reference_problems(path)
    assert not problems, f"{page_id(path)}: " + "; ".join(problems)


def test_index_links_every_page():
    index = DOCS / "index.md"
    linked = {
        (DOCS / m["target"].partition("#")[0]).resolve()
        for m in LINK.finditer(prose(index))
        if not re.match(r"[a-z]+:", m["target"])
    }
    unlinked = [page_id(p) for p in PAGES if p not in (index, README) and p.resolve() not in linked]
    assert not unlinked, f"docs/index.md does not link {unlinked}"


def test_the_parser_catches_malformed_pages(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nprint(1)\n```\n\nOutput:\n\n```text\n1\n```\n\n"
        "```python unknown-flag\npass\n```\n\nOutput:\n\nsome prose\n\n```text\nx\n```\n"
    )
    parsed = parse(page)
    assert [b.expected for b in parsed.blocks] == ["1\n", None]
    assert any("unknown flag" in p for p in parsed.problems)
    assert any("followed directly" in p for p in parsed.problems)
    assert matches("a ... c\n", "a b c\n") and not matches("a\n", "b\n")


def test_the_reference_check_catches_what_is_missing(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "`minitorch_edu/ops/arithmetic.py::Mul` and `minitorch_edu/ops/arithmetic.py::Mul.backward`"
        " and `tests/test_ops_elementwise.py::test_matches_torch[mul]` are fine;\n"
        "`minitorch_edu/nowhere.py`, `minitorch_edu/ops/arithmetic.py::Mull`,\n"
        "`tests/test_ops_elementwise.py::test_matches_torch[mull]`, [a](missing.md) and\n"
        "[b](#no-such-heading) are not.\n\n# A heading\n[c](#a-heading)\n"
    )
    problems = reference_problems(page)
    assert len(problems) == 5, problems
    assert any("nowhere.py does not exist" in p for p in problems)
    assert any("does not define Mull" in p for p in problems)
    assert any("no case named 'mull'" in p for p in problems)
