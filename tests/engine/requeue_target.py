"""A job function for the submitit requeue test: train a tiny smile study; on the first attempt wait mid-fold (after
the first epoch's state was saved) until the test preempts the job."""
from __future__ import annotations

import os
import time
from pathlib import Path


def train_smile(data_root: str, results_root: str, attempts_file: str, block_first_attempt: bool = True) -> str:
    from common.smile.clip_dataset import SmileClips
    from common.smile import run as smile_run

    attempts = Path(attempts_file)
    attempts.write_text(attempts.read_text() + "start\n" if attempts.exists() else "start\n")
    if block_first_attempt and attempts.read_text().count("start") == 1:
        original = SmileClips.__getitem__

        def getitem(self, index):
            if self.mode == "train" and self.epoch == 2 and not getattr(self, "_blocked", False):
                self._blocked = True
                print(f"BLOCKED {os.getpid()}", flush=True)
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:  # submitit's preemption handler exits from here
                    time.sleep(0.02)
            return original(self, index)

        SmileClips.__getitem__ = getitem
    params = {"dataset": "BBC", "variant": "hadamard", "profile": "demo", "epochs": 3, "folds": "1",
              "n_eval_clips": 2, "batch_size": 4, "data_root": data_root}
    return str(smile_run.run_study(params, progress=False, results_root=Path(results_root)).folder)
