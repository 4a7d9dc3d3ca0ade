"""Locate the shared benchmark data: $TRL_CODEFEEDBACK_DATA, else <repo>/../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def find_data_dir() -> Path | None:
    env = os.environ.get("TRL_CODEFEEDBACK_DATA")
    if env:
        return Path(env)
    candidate = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = find_data_dir()
    if d is None or not d.is_dir():
        pytest.skip("benchmark data not found: set TRL_CODEFEEDBACK_DATA or put shared/data beside the repo")
    return d
