"""common.engine on a tiny model: devices, 1-based set_epoch on every loader, selection / patience / time cap,
gradient clipping, and resume (bit-identical after an exit signal, refused for another config / code, corrupt file)."""
import os
import platform
import signal
import sys
import threading

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from common import engine
from common.engine import FitSettings, StateError, StateMismatchError, Task, TrainingInterrupted, fit


class Points(Dataset):
    """Items drawn from (seed, epoch, index): a noisy linear rule; records every set_epoch call."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch, self.calls = n, seed, 0, []

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.calls.append(epoch)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch * 1009 + i)
        x = torch.randn(4, generator=g)
        return x, (x[0] + 0.5 * x[1] > 0).float()


def accuracy_and_loss(model, loader, device):
    correct, total, loss = 0, 0, 0.0
    for x, y in loader:
        logit = model(x.to(device)).squeeze(-1)
        loss += nn.functional.binary_cross_entropy_with_logits(logit, y.to(device), reduction="sum").item()
        correct += int(((logit > 0).float() == y.to(device)).sum())
        total += len(y)
    return {"accuracy": correct / total, "loss": loss / total}


def bce_step(model, batch):
    x, y = batch
    logit = model(x).squeeze(-1)
    return engine.StepOutput(nn.functional.binary_cross_entropy_with_logits(logit, y), len(y),
                             {"accuracy": ((logit.detach() > 0).float() == y).sum()})


TASK = Task(loss=bce_step, evaluate=accuracy_and_loss,
            select={"val": lambda m: (m["accuracy"], -m["loss"]), "test": lambda m: m["accuracy"]},
            curve_metrics=("loss", "accuracy"))


def setup(seed=0, lr=0.05):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, 2, 0.5)
    train = DataLoader(Points(24, 1), batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(3))
    evals = {"val": DataLoader(Points(16, 2), batch_size=8), "test": DataLoader(Points(16, 3), batch_size=8)}
    return model, opt, sched, train, evals


def run(epochs=5, task=TASK, **kw):
    model, opt, sched, train, evals = setup(lr=kw.pop("lr", 0.05))
    settings = FitSettings(epochs=epochs, device="cpu", **kw)
    return fit(model, opt, train, evals, task, settings, scheduler=sched), (train, evals)


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_epochs_are_1_based_and_every_loader_gets_set_epoch_before_its_pass():
    out, (train, evals) = run(epochs=3)
    assert out.curves["epoch"] == [1, 2, 3] and out.epochs_run == 3 and out.stop_reason == "epochs"
    assert train.dataset.calls == [1, 2, 3]
    assert evals["val"].dataset.calls == [1, 2, 3] and evals["test"].dataset.calls == [1, 2, 3]
    assert set(out.selections) == {"val", "test", "last"} and out.selections["last"].epoch == 3
    assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy",
            "lr"} <= set(out.curves)
    assert out.curves["lr"] == [0.05, 0.05, 0.025]  # the scheduler steps once per epoch


def test_selection_records_the_best_epoch_of_each_split_and_keeps_its_weights():
    out, _ = run(epochs=6, keep="val")
    val = out.curves["val_accuracy"]
    best = max(range(6), key=lambda i: (val[i], -out.curves["val_loss"][i], -i))  # ties: the earlier epoch
    assert out.selections["val"].epoch == best + 1 and out.kept == "val"
    assert out.selections["val"].metrics["test"]["accuracy"] == out.curves["test_accuracy"][best]
    test = out.curves["test_accuracy"]
    assert out.selections["test"].epoch == test.index(max(test)) + 1
    last, _ = run(epochs=6, keep="last")
    assert last.kept == "last" and last.selections["last"].epoch == 6
    missing, _ = run(epochs=2, keep="val", task=Task(**{**TASK.__dict__, "select": {"test": TASK.select["test"]}}))
    assert missing.kept == "last"  # no validation ranking: the last epoch's weights


def test_patience_stops_after_that_many_epochs_without_validation_improvement():
    out, _ = run(epochs=20, patience=2, lr=1e-9)
    assert out.stop_reason == "patience"
    assert out.epochs_run == out.selections["val"].epoch + 2


def test_time_cap_stops_and_says_so():
    out, _ = run(epochs=5, time_cap_minutes=1e-12)
    assert out.epochs_run == 1 and out.stop_reason == "time_cap"


def test_gradient_clipping_bounds_the_update():
    def step_norm(clip):
        torch.manual_seed(0)
        model = nn.Linear(4, 1)
        before = [p.detach().clone() for p in model.parameters()]
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        fit(model, opt, DataLoader(Points(8, 1), batch_size=8), {}, TASK,
            FitSettings(epochs=1, device="cpu", grad_clip=clip))
        return float(torch.sqrt(sum(((p.detach() - b) ** 2).sum() for p, b in zip(model.parameters(), before))))

    assert step_norm(0.0) > 0.05  # SGD lr 1: the update is the gradient
    assert step_norm(1e-3) == pytest.approx(1e-3, rel=1e-3)


def test_devices_and_precision_on_cpu():
    assert engine.resolve_device("cpu").type == "cpu"
    assert engine.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(engine.DeviceError, match="accepted are auto, cpu, cuda, mps"):
        engine.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(engine.DeviceError, match="device='cuda' requested but torch sees no CUDA device"):
            engine.resolve_device("cuda")
    cpu = engine.Precision.choose(torch.device("cpu"), amp=True)
    assert cpu.name == "fp32" and cpu.make_scaler() is None
    assert engine.loader_options("cpu", 0) == {"num_workers": 0, "pin_memory": False}
    assert engine.loader_options("cuda", 2)["pin_memory"] and engine.loader_options("cuda", 2)["worker_init_fn"]


def test_precision_picks_bf16_where_supported_else_fp16_with_a_scaler(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert engine.Precision.choose(torch.device("cuda"), amp=True).name == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    fp16 = engine.Precision.choose(torch.device("cuda"), amp=True)
    assert fp16.name == "fp16" and fp16.dtype == torch.float16
    assert engine.Precision.choose(torch.device("cuda"), amp=False).name == "fp32"


def interrupting_task(at_epoch: int):
    """TASK, but the first batch of ``at_epoch`` sends this process SIGUSR1 (as Slurm does before preempting)."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers can only be installed from the main thread")
    seen = set()

    def step(model, batch):
        epoch = _current_epoch[0]
        if epoch == at_epoch and epoch not in seen:
            seen.add(epoch)
            os.kill(os.getpid(), signal.SIGUSR1)
        return bce_step(model, batch)

    def before(optimizer, epoch, step_, steps):
        _current_epoch[0] = epoch

    return Task(**{**TASK.__dict__, "loss": step, "before_step": before})


_current_epoch = [0]


def test_exit_signal_saves_after_the_epoch_and_the_resumed_fit_is_bit_identical(tmp_path):
    path = tmp_path / "state.pt"
    reference, _ = run(epochs=5, keep="val")
    with pytest.raises(TrainingInterrupted, match="SIGUSR1 received: training state after epoch 3 saved to"):
        run(epochs=5, keep="val", state_path=path, task=interrupting_task(3))
    assert torch.load(path, weights_only=False)["tracker"]["epoch"] == 3
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL  # the previous handler is back
    resumed, _ = run(epochs=5, keep="val", state_path=path)
    assert resumed.resumed_after == 3
    assert resumed.curves == reference.curves
    assert same_weights(resumed.state, reference.state)
    assert resumed.selections == reference.selections
    # finished: the small final state replays the result without training
    never = Task(**{**TASK.__dict__, "loss": lambda m, b: pytest.fail("trained again")})
    replay, _ = run(epochs=5, keep="val", state_path=path, task=never)
    assert replay.curves == reference.curves and same_weights(replay.state, reference.state)
    assert "optimizer" not in torch.load(path, weights_only=False)


def test_periodic_saves_follow_save_every(tmp_path):
    path = tmp_path / "state.pt"
    with pytest.raises(TrainingInterrupted):
        run(epochs=6, state_path=path, save_every=2, task=interrupting_task(5))
    payload = torch.load(path, weights_only=False)
    assert payload["tracker"]["epoch"] == 5 and not payload["finished"]  # the signal saves whatever the period


def test_a_state_of_another_config_or_code_version_is_refused_and_left_untouched(tmp_path, monkeypatch):
    path = tmp_path / "state.pt"
    with pytest.raises(TrainingInterrupted):
        run(epochs=4, state_path=path, identity={"config": {"lr": 0.05, "seed": 0}}, task=interrupting_task(2))
    before = path.read_bytes()
    with pytest.raises(StateMismatchError, match=r"written for config.lr=0.05, this run has config.lr=0.01; refusing"):
        run(epochs=4, state_path=path, identity={"config": {"lr": 0.01, "seed": 0}})
    with pytest.raises(StateMismatchError, match="engine.epochs=4, this run has engine.epochs=6"):
        run(epochs=6, state_path=path, identity={"config": {"lr": 0.05, "seed": 0}})
    monkeypatch.setattr(engine.loop, "code_version", lambda: "0123456789abcdef")  # what fit calls
    with pytest.raises(StateMismatchError, match="engine.code_version="):
        run(epochs=4, state_path=path, identity={"config": {"lr": 0.05, "seed": 0}})
    assert path.read_bytes() == before


def test_a_corrupt_state_file_is_a_clear_error_and_is_left_untouched(tmp_path):
    path = tmp_path / "state.pt"
    path.write_bytes(b"\x80\x04 half a pickle")
    with pytest.raises(StateError, match="state.pt: training state cannot be read .* corrupt"):
        run(epochs=2, state_path=path)
    assert path.read_bytes() == b"\x80\x04 half a pickle"
    torch.save({"format": "something/else"}, path)
    with pytest.raises(StateError, match="not a training state of format 'repro-train-state/1'"):
        run(epochs=2, state_path=path)


def test_worker_processes_do_not_change_the_result():
    def once(workers):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))
        opt = torch.optim.AdamW(model.parameters(), lr=0.05)
        kw = engine.loader_options("cpu", workers)
        train = DataLoader(Points(24, 1), batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(3), **kw)
        val = DataLoader(Points(16, 2), batch_size=8, **kw)
        return fit(model, opt, train, {"val": val}, TASK, FitSettings(epochs=2, device="cpu"))

    a, b = once(0), once(2)
    assert a.curves == b.curves and same_weights(a.state, b.state)


@pytest.mark.skipif(not (sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"),
                    reason="malloc_trim is glibc's")
def test_release_free_memory_returns_freed_heap_pages_to_the_system():
    import numpy as np

    def resident_mb() -> float:
        return int(next(ln.split()[1] for ln in open("/proc/self/status") if ln.startswith("VmRSS"))) / 1024

    arrays = [np.ones(12_000) for _ in range(4000)]  # 96 KB each: below glibc's mmap threshold, so from the heap
    survivors = arrays[::50]                          # pins the heap top: free() alone cannot shrink it
    del arrays
    before = resident_mb()
    engine.release_free_memory()
    assert resident_mb() < before - 200, "about 370 MB freed in the heap's middle should have been given back"
    assert len(survivors) == 80 and float(survivors[-1].sum()) == 12_000.0
