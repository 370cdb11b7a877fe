"""Shared test setup: every test run keeps AssessIQ's data in a temporary directory, never in
the user's real data dir."""

from __future__ import annotations

import gc
import os
import sys
import tempfile
from collections.abc import Iterator

import pytest

_DATA_DIR = tempfile.mkdtemp(prefix="assessiq-test-data-")
os.environ["ASSESSIQ_DATA_DIR"] = _DATA_DIR


@pytest.fixture
def data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
             ) -> Iterator[str]:
    """A fresh, empty AssessIQ data dir for one test."""
    path = tmp_path_factory.mktemp("aiq-data")
    monkeypatch.setenv("ASSESSIQ_DATA_DIR", str(path))
    yield str(path)


@pytest.fixture(autouse=True)
def collect_garbage() -> Iterator[None]:
    """Finalise each test's objects before the next starts: on CPython 3.11 a finaliser that
    runs during a later compile() (pytest importing a plugin module) can trip "SystemError:
    AST constructor recursion depth mismatch"."""
    yield
    gc.collect()


@pytest.fixture(autouse=True)
def keep_assessiq_modules() -> Iterator[None]:
    """NiceGUI's user simulation (`nicegui.testing.general`), when it ends, removes from
    `sys.modules` the module of every page function not under `tests.`, and its parents:
    `assessiq.ui.host_pages`, `assessiq.ui`, `assessiq` itself. The next import then builds
    a second `assessiq` beside the modules still loaded ("cannot import name 'ui' from
    'assessiq'", or a function patched on one copy and called on the other). Put back what
    was there before the test."""
    before = {name: module for name, module in sys.modules.items()
              if name == "assessiq" or name.startswith("assessiq.")}
    yield
    for name, module in before.items():
        if sys.modules.get(name) is not module:
            sys.modules[name] = module
