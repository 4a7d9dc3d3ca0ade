"""Shared pytest fixtures. Keep this file small; add fixtures below the existing ones."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Benchmark data dir: ``$TRL_CODEFEEDBACK_DATA``, else ``<repo>/../shared/data``. Skips when absent."""
    path = Path(os.environ.get("TRL_CODEFEEDBACK_DATA") or REPO_ROOT.parent / "shared" / "data")
    if not path.is_dir():
        pytest.skip(f"benchmark data dir {path} not found (set TRL_CODEFEEDBACK_DATA)")
    return path


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """Directory of a tiny local Qwen2 model + BPE tokenizer with a chat template (see tests/tiny_models.py)."""
    from tiny_models import build_tiny_model

    env = os.environ.get("TRL_CODEFEEDBACK_DATA")
    data = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"), data_dir=data if data.is_dir() else None)


@pytest.fixture(scope="session")
def tiny_classifier_path(tmp_path_factory) -> Path:
    """Directory of a tiny local Qwen2 sequence-classification model + tokenizer (see tests/tiny_models.py)."""
    from tiny_models import build_tiny_classifier

    env = os.environ.get("TRL_CODEFEEDBACK_DATA")
    data = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    return build_tiny_classifier(tmp_path_factory.mktemp("tiny_classifier"), data_dir=data if data.is_dir() else None)
