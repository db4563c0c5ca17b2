"""Smile-model tests: one thread, D-Marker caches of the temporary datasets kept out of the repository."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    torch.set_num_threads(1)
    from common.smile import data

    monkeypatch.setattr(data, "DEFAULT_CACHE_DIR", tmp_path / "dmarker-cache")
    yield
