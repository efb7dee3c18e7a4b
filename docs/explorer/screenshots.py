"""Take the pictures of docs/explorer.md from the real page.

    .venv/bin/python docs/explorer/screenshots.py

Writes the page `minitorch-edu explore` writes by default (LeNet, Adam, batch 8, 3 steps)
and photographs it in headless Chromium (the system's, driven by Playwright) at the moments
the docs page describes; and, for docs/data-parallel.md, the page of a DistributedDataParallel
model recorded on two local ranks (tests/distributed_checks.py::explore_ranks).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from minitorch_edu import cli

HERE = Path(__file__).parent


def step_of(trace: dict, phase: str, node: str, number: int = 1) -> int:
    return next(
        e["index"]
        for e in trace["timeline"]
        if e["phase"] == phase and e["node"] == node and e["training_step"] == number
    )


def click_cell(page, tensor: str, index: list[int]) -> None:
    canvas = page.locator(f'#step .tensor[data-name="{tensor}"] canvas')
    canvas.click(position=canvas.evaluate("(c, i) => c.pointOf(i)", index))


def explained_element(page, trace: dict, step: tuple[str, str], tensor: str) -> None:
    """At `step` (phase, node), click the first element explained term by term of the
    node's tensor, open its first group and scroll the element panel to its chain rule."""
    phase, node = step
    page.click(f'#timeline .row[data-index="{step_of(trace, phase, node)}"]')
    explained = trace["training_steps"][0]["gradients"][node]["explained"][0]
    click_cell(page, tensor, explained["index"])
    page.evaluate(
        "document.querySelector('#element .terms details').open = true;"
        "document.querySelector('#element .chain .use').scrollIntoView()"
    )


def data_parallel_page(path: Path) -> None:
    """The explorer page of rank 0 of two gloo processes training a DDP model."""
    import sys

    sys.path.insert(0, str(HERE.parents[1] / "tests"))
    import distributed_checks

    from minitorch_edu.testing.distributed import run_ranks

    run_ranks(distributed_checks.explore_ranks, 2, args=(str(path),))


def main() -> None:
    from minitorch_edu.study.exploration import read_trace

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "explorer.html"
        cli.main(["explore", "--output", str(path)])
        trace = read_trace(path)
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        with sync_playwright() as driver:
            browser = driver.chromium.launch(
                executable_path=chromium,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(path.as_uri())
            page.wait_for_selector("html[data-ready]")

            # 1. A backward step through conv2, one gradient element followed.
            page.click(f'#timeline .row[data-index="{step_of(trace, "backward", "convolution2")}"]')
            click_cell(page, "dconv2.weight", [7, 2, 1, 3])
            page.evaluate("document.querySelector('#step').scrollTop = 0")
            page.screenshot(path=HERE / "overview.png")

            # 2. The chain rule of an element explained term by term, groups opened.
            page.set_viewport_size({"width": 1440, "height": 1500})
            explained_element(page, trace, ("update", "conv1.weight"), "conv1.weight.grad")
            page.locator("#element").screenshot(path=HERE / "chain-rule.png")

            # 3. An activation's element: maxpool2d1 feeds conv2, so its share is split by
            # conv2's output channel, and (one of the largest) term by term.
            explained_element(page, trace, ("forward", "maxpool2d1"), "maxpool2d1")
            page.locator("#element").screenshot(path=HERE / "activation.png")

            # 4. The update of an element at step 3, and its state across the steps.
            page.click(f'#timeline .row[data-index="{step_of(trace, "update", "fc1.weight", 3)}"]')
            click_cell(page, "fc1.weight (after)", [17, 40])
            page.evaluate("[...document.querySelectorAll('#element h3')].at(-2).scrollIntoView()")
            page.locator("#element").screenshot(path=HERE / "update.png")

            # 5. conv1 collapsed into one box.
            page.set_viewport_size({"width": 1440, "height": 900})
            page.click(f'#timeline .row[data-index="{step_of(trace, "forward", "relu1")}"]')
            page.click('#modules button[data-module="conv1"]')
            page.evaluate("document.querySelector('#graph').scrollTop = 0")
            page.locator("#graph-panel").screenshot(path=HERE / "collapsed.png")

            # 6. Data parallelism: bucket 1's all-reduce, one element on both ranks.
            ddp = Path(directory) / "data-parallel.html"
            data_parallel_page(ddp)
            trace = read_trace(ddp)
            page = browser.new_page(viewport={"width": 1500, "height": 950})
            page.goto(ddp.as_uri())
            page.wait_for_selector("html[data-ready]")
            page.click(f'#timeline .row[data-index="{step_of(trace, "all-reduce", "bucket 1")}"]')
            click_cell(page, "dmodule.0.weight on rank 1", [1, 2])
            page.screenshot(path=HERE / "data-parallel.png")
            browser.close()
    print(json.dumps(sorted(p.name for p in HERE.glob("*.png"))))


if __name__ == "__main__":
    main()
