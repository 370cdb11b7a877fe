"""Where AssessIQ keeps its files: the platform's user data dir, overridable for tests."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["data_dir", "sessions_dir"]

ENV_DATA_DIR = "ASSESSIQ_DATA_DIR"


def data_dir() -> Path:
    """The user data dir (`$ASSESSIQ_DATA_DIR` wins), created with mode 0700 on first use."""
    override = os.environ.get(ENV_DATA_DIR)
    path = Path(override) if override else Path(platformdirs.user_data_dir("assessiq", "AssessIQ"))
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def sessions_dir() -> Path:
    """Where session files live."""
    path = data_dir() / "sessions"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path
