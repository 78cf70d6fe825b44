from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Smoke models are built once per test session in a private cache; nothing goes online."""
    cache = os.environ.get("TDLIB_TEST_CACHE") or str(tmp_path_factory.mktemp("tdlib-cache"))
    old = os.environ.get("TDLIB_CACHE")
    os.environ["TDLIB_CACHE"] = cache
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    yield
    if old is None:
        os.environ.pop("TDLIB_CACHE", None)
    else:
        os.environ["TDLIB_CACHE"] = old


@pytest.fixture
def tiny() -> Path:
    """A six-document collection in four languages, in the project's file formats."""
    return FIXTURES / "tiny"


@pytest.fixture(scope="session")
def smoke_cfg():
    from tdlib.config import load_config

    return load_config("smoke")
