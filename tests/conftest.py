"""Shared test set-up: hypothesis profiles and the device fixture.

Profiles: `dev` (default) for local runs; `ci` (set by `make test`) is derandomized, so
every run draws the same examples, with a bounded count and no deadline.
"""

import os
import shutil

import pytest
import torch
from hypothesis import HealthCheck, settings

SUPPRESSED = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.function_scoped_fixture,
]

settings.register_profile(
    "ci",
    max_examples=40,
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=SUPPRESSED,
)
settings.register_profile(
    "dev",
    max_examples=40,
    deadline=None,
    suppress_health_check=SUPPRESSED,
)
settings.register_profile(
    "thorough",
    max_examples=500,
    deadline=None,
    suppress_health_check=SUPPRESSED,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: needs a CUDA GPU (skipped without one)")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA GPU on this machine")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=DEVICES)
def device(request):
    """Every test that takes `device` runs on CPU, and on CUDA when a GPU is present."""
    return torch.device(request.param)


# One intra-op thread: the tests run many tiny ops, for which threads only add contention
# (badly so when several test processes share the cores).
torch.set_num_threads(1)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium driven by Playwright (the system's browser, no download); the
    tests that use it skip, saying why, where either cannot be had."""
    playwright = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium)")
    with playwright.sync_playwright() as driver:
        try:
            launched = driver.chromium.launch(
                executable_path=CHROMIUM,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                ],
            )
        except Exception as problem:  # a browser that will not start on this machine
            pytest.skip(f"Chromium at {CHROMIUM} did not start: {str(problem).splitlines()[0]}")
        yield launched
        launched.close()
