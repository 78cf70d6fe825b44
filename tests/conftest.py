from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"

# ir_datasets fixes its download paths when it is first imported, so its home is set before any test
# runs: a private folder that the ``upstream`` fixture fills with offline copies of the downloads.
os.environ["IR_DATASETS_HOME"] = tempfile.mkdtemp(prefix="tdlib-irds-")


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


@pytest.fixture(scope="session")
def upstream() -> Path:
    """``IR_DATASETS_HOME`` holding msmarco-passage, neumarco, neuclir, hc4 and tdist score files in
    their exact download formats (see ``tests/upstream_fixtures.py``)."""
    import upstream_fixtures

    home = Path(os.environ["IR_DATASETS_HOME"])
    if not (home / "neumarco" / "neuMSMARCO.tar.gz").is_file():
        upstream_fixtures.build(home)
    return home


@pytest.fixture(scope="session")
def hf_hub_cache(tmp_path_factory) -> Path:
    """A Hugging Face hub cache holding the published-scores file (``tests/upstream_fixtures.py``)."""
    import upstream_fixtures

    hub = tmp_path_factory.mktemp("hf-hub")
    upstream_fixtures.hf_cache(hub)
    return hub
