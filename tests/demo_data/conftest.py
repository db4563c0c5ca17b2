"""One full demo generation per test session (into a temporary folder), shared by every test of this folder."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory):
    """Every demo set at its default size and seed, generated once into a session temporary folder."""
    from datasets.demo import generate

    root = tmp_path_factory.mktemp("demo")
    generate(out=root, progress=False)
    return root
