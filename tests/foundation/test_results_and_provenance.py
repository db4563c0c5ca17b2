import csv
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from common import io as atomic
from common.config import get_study
from common.provenance import collect, fingerprint_files, fingerprint_folder
from common.results import COLUMNS, is_complete, open_run, read_rows, run_dir


def test_atomic_write_leaves_old_file_when_writer_fails(tmp_path):
    target = tmp_path / "a.txt"
    atomic.write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_write_survives_sigkill_mid_write(tmp_path):
    """A process killed while writing leaves the previous complete file (the temporary is cleaned later)."""
    target = tmp_path / "rows.csv"
    atomic.write_text(target, "complete\n")
    code = textwrap.dedent(f"""
        import os, time
        from common import io
        with io.atomic_path({str(target)!r}) as tmp:
            with open(tmp, "w") as fh:
                fh.write("partial"); fh.flush()
                print("writing", flush=True)
                time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert target.read_text() == "complete\n"
    assert atomic.remove_stale_temporaries(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["rows.csv"]


def test_run_writer_rows_schema_and_completion(tmp_path):
    cfg = get_study("smile").resolve({"dataset": "BBC", "seed": 3})
    writer = open_run(cfg, data_fingerprint="abc", root=tmp_path)
    assert writer.folder == run_dir(cfg, tmp_path)
    assert not is_complete(writer.folder)
    assert list(read_rows(tmp_path)) == []  # an unfinished run is not read
    writer.add(1, {"accuracy": 0.75, "f1": 0.5}, n_train=18, n_test=2, selection="val")
    writer.add(2, {"accuracy": 1.0}, n_train=18, n_test=2, selection="test")
    writer.finish()
    assert is_complete(writer.folder)
    rows = list(read_rows(tmp_path))
    assert len(rows) == 3
    assert set(COLUMNS) <= set(rows[0])
    assert rows[0]["dataset"] == "BBC" and rows[0]["seed"] == "3" and rows[0]["metric"] == "accuracy"
    run = json.loads((writer.folder / "run.json").read_text())
    assert run["status"] == "complete" and run["data_fingerprint"] == "abc" and run["n_rows"] == 3
    assert run["config"]["dataset"] == "BBC" and "numpy" in run["versions"] and "git_sha" in run
    if os.path.isfile("/proc/self/status"):  # the kernel's own figures, in KiB: now <= peak <= high-water mark
        status = {ln.split(":")[0]: int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("Vm")}
        assert status["VmRSS"] / 1024 - 1 <= run["peak_rss_mib"] <= status["VmHWM"] / 1024 + 0.1
    # Re-opening the same config starts afresh: no duplicated rows from an earlier attempt.
    again = open_run(cfg, root=tmp_path)
    again.add(1, {"accuracy": 0.5}, 18, 2)
    again.finish()
    with open(again.folder / "rows.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 1


def test_fingerprints_depend_on_content_and_names(tmp_path):
    (tmp_path / "a.npy").write_bytes(b"1234")
    (tmp_path / "b.npy").write_bytes(b"5678")
    f1 = fingerprint_folder(tmp_path)
    assert f1 == fingerprint_files([tmp_path / "b.npy", tmp_path / "a.npy"], root=tmp_path)
    (tmp_path / "b.npy").write_bytes(b"5679")
    assert fingerprint_folder(tmp_path) != f1
    (tmp_path / "b.npy").write_bytes(b"5678")
    (tmp_path / "b.npy").rename(tmp_path / "c.npy")
    assert fingerprint_folder(tmp_path) != f1


def test_provenance_records_config_versions_and_git(tmp_path):
    cfg = get_study("hafem").resolve({})
    prov = collect(cfg, "fp")
    assert prov["config"] == dict(cfg) and prov["data_fingerprint"] == "fp"
    assert len(prov["config_hash"]) == 12
    assert prov["versions"]["python"].startswith("3.")
    assert set(prov) >= {"git_sha", "git_dirty", "machine", "started_utc"}
