"""Run one smile study on a tiny dataset in this process (a child of the resume tests).

    python tests/engine/smile_child.py DATA_ROOT RESULTS_ROOT [BLOCK_FOLD_EPOCH]

``BLOCK_FOLD_EPOCH`` = ``<n>:<epoch>``: at the first training item of ``epoch`` in the n-th fold trained, print
``BLOCKED`` and wait there (mid-epoch, after the previous epoch's state was saved) until an exit signal reaches the
engine, then go on; the parent kills or signals the process at that point.
"""
import sys
import time

from common import engine
from common.smile.clip_dataset import SmileClips
from common.smile import run as smile_run

PARAMS = {"dataset": "BBC", "variant": "hadamard", "profile": "demo", "epochs": 4, "folds": "1,2", "n_eval_clips": 2,
          "batch_size": 4, "save_state_every": 1}


def block_at(fold_number: int, epoch: int) -> None:
    original = SmileClips.__getitem__
    folds_seen: list[int] = []

    def getitem(self, index):
        if self.mode == "train" and self.epoch == epoch and id(self) not in folds_seen:
            folds_seen.append(id(self))  # the training sets that reached ``epoch``, in fold order
        if (self.mode == "train" and self.epoch == epoch and len(folds_seen) == fold_number
                and not getattr(self, "_blocked", False)):
            self._blocked = True
            print("BLOCKED", flush=True)
            deadline = time.monotonic() + 120
            while engine.exit_signal_received() is None and time.monotonic() < deadline:
                time.sleep(0.02)
        return original(self, index)

    SmileClips.__getitem__ = getitem


if __name__ == "__main__":
    data_root, results_root = sys.argv[1], sys.argv[2]
    if len(sys.argv) > 3:
        n, e = sys.argv[3].split(":")
        block_at(int(n), int(e))
    run = smile_run.run_study({**PARAMS, "data_root": data_root}, progress=False, results_root=results_root)
    print("DONE", run.folder, flush=True)
