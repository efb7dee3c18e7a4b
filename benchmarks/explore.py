"""What the explorer costs: `python -m benchmarks explore`.

For the run `minitorch-edu explore` records by default (LeNet on the 8x8 digits, Adam, batch
8), with 1 and with 3 training steps:

    record   seconds of `mt.study.explore` (forward, backward, the chain rule for every
             element, every update), median of `repeat` runs, each from fresh weights
    write    seconds of `Exploration.save_html`
    page     the page's size in MB
    ready    milliseconds from opening the page in headless Chromium until it is interactive
             (the page sets data-ready-ms once its numbers are inflated, the timeline drawn
             and the graph laid out); median of `repeat` loads; "-" without a browser

and, as the yardstick, one plain training step of the same model: ours and torch's (the
twin from reference/), so that recording can be read as a multiple of a step.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from minitorch_edu.study.exploration import digits_setup, explore
from minitorch_edu.train import CPU_THREADS, cpu_threads
from reference.models import torch_lenet
from reference.optim import torch_optimizer_like


def plain_steps(repeat: int = 30) -> tuple[float, float]:
    """Median milliseconds of one training step, ours and torch's, same model and batch."""
    setup = digits_setup("cnn", "adam", batch=8, steps=1)
    images, labels = setup.batches[0]
    twin = torch_lenet(1, 8, 10)
    twin.load_state_dict(setup.model.state_dict())
    twin_optimizer = torch_optimizer_like(setup.optimizer, list(twin.parameters()))

    def ours() -> None:
        setup.optimizer.zero_grad()
        setup.loss_fn(setup.model(images), labels).backward()
        setup.optimizer.step()

    def theirs() -> None:
        twin_optimizer.zero_grad()
        torch.nn.functional.cross_entropy(twin(images), labels).backward()
        twin_optimizer.step()

    times: dict[str, list[float]] = {"mt": [], "torch": []}
    with cpu_threads(CPU_THREADS):
        for _ in range(repeat):  # interleaved, so that both see the same machine
            for side, step in (("mt", ours), ("torch", theirs)):
                start = time.perf_counter()
                step()
                times[side].append(time.perf_counter() - start)
    return statistics.median(times["mt"]) * 1e3, statistics.median(times["torch"]) * 1e3


def record_and_write(steps: int, repeat: int, directory: Path) -> dict[str, float]:
    records, writes = [], []
    for _ in range(repeat):
        setup = digits_setup("cnn", "adam", batch=8, steps=steps)
        start = time.perf_counter()
        found = explore(
            setup.model, setup.loss_fn, setup.optimizer, batches=setup.batches, steps=steps
        )
        middle = time.perf_counter()
        path = found.save_html(directory / f"lenet-{steps}.html")
        writes.append(time.perf_counter() - start - (middle - start))
        records.append(middle - start)
    return {
        "steps": steps,
        "record_s": statistics.median(records),
        "write_s": statistics.median(writes),
        "page_mb": path.stat().st_size / 2**20,
        "path": str(path),
    }


def ready_milliseconds(path: str, repeat: int) -> float | None:
    """Median data-ready-ms of `repeat` loads in headless Chromium, or None without one."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if chromium is None:
        return None
    found = []
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        for _ in range(repeat):
            page = browser.new_page(viewport={"width": 1500, "height": 950})
            page.goto(Path(path).as_uri())
            page.wait_for_selector("html[data-ready]", timeout=60_000)
            found.append(float(page.get_attribute("html", "data-ready-ms")))
            page.close()
        browser.close()
    return statistics.median(found)


def report(repeat: int = 3, steps: tuple[int, ...] = (1, 3), browser: bool = True) -> str:
    mt_ms, torch_ms = plain_steps()
    lines = [
        "LeNet on the 8x8 digits, Adam, batch 8 (what `minitorch-edu explore` records); "
        f"{torch.get_num_threads()} torch threads outside the recording, 1 inside",
        f"a plain training step: mt {mt_ms:.2f} ms, torch {torch_ms:.2f} ms "
        f"(ratio {mt_ms / torch_ms:.2f})",
        "",
        f"{'steps':>5}  {'record s':>9}  {'write s':>8}  {'page MB':>8}  {'ready ms':>9}  "
        f"{'record / plain step':>20}",
    ]
    with tempfile.TemporaryDirectory() as directory:
        for count in steps:
            row = record_and_write(count, repeat, Path(directory))
            ready = ready_milliseconds(row["path"], repeat) if browser else None
            per_step = row["record_s"] * 1e3 / count / mt_ms
            lines.append(
                f"{count:>5}  {row['record_s']:>9.2f}  {row['write_s']:>8.2f}  "
                f"{row['page_mb']:>8.2f}  {'-' if ready is None else f'{ready:.0f}':>9}  "
                f"{per_step:>19.0f}x"
            )
    return "\n".join(lines)
