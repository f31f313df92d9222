"""Fixtures and options shared by the test files."""
from __future__ import annotations

import pytest


def pytest_addoption(parser):
    parser.addoption("--heavy", action="store_true",
                     help="also run the checks marked heavy (the zoo's biggest networks built and run: "
                          "bench/zoo_heavy.py runs them and records the result)")


def pytest_configure(config):
    config.addinivalue_line("markers", "heavy: a check that builds and runs one of the zoo's biggest "
                                       "networks; deselected unless --heavy (bench/zoo_heavy.py)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--heavy"):
        return
    heavy = [item for item in items if item.get_closest_marker("heavy")]
    if heavy:
        config.hook.pytest_deselected(items=heavy)
        items[:] = [item for item in items if not item.get_closest_marker("heavy")]


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module's tests: on two shared cores, with small inputs, more
    threads only contend."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
