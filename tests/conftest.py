"""Shared test setup: every test run keeps AssessIQ's data in a temporary directory, never in
the user's real data dir."""

from __future__ import annotations

import os
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
