"""The straightforward reference of benchmarks/bench_backbone.py (written the way the release computes, release
module names): it reproduces the release fixtures too, so the benchmark's ratio is against the release's function;
and our optimised model equals it in train mode (forward, every gradient, running statistics) on small sizes."""
import importlib.util
from pathlib import Path

import pytest
import torch
from release_fixtures import FRAMES_KEPT, assert_choices_equal, fixture, float_keys, max_abs_diffs
from smile_model_data import random_batch

from common.smile.backbone_config import BackboneConfig

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_backbone.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_backbone", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_reference_reproduces_the_release_fixtures():
    torch.set_num_threads(1)
    release = fixture("hadamard_intermediates.pt")
    ref = _bench().ReferenceHadamard(BackboneConfig.paper())
    ref.load_state_dict(fixture("hadamard_state_dict.pt"), strict=True)
    ref.eval()
    record = {}
    with torch.no_grad():
        ref(release["input.x"], release["input.dmarker"], record)
    trace = {k: (v[FRAMES_KEPT] if k.startswith("enc.") else v) for k, v in record.items()}
    assert_choices_equal(trace, release)
    diffs = max_abs_diffs(trace, release, float_keys(release))
    assert len(diffs) == 48
    assert diffs["prob"] <= 1e-5 and max(diffs.values()) <= 1e-4, diffs


def _micro(**overrides) -> BackboneConfig:
    base = {"n_points": 40, "k": 5, "lpfa_width": 8, "cic": ((8, 8, 2), (8, 16, 4), (16, 16, 2), (16, 24, 2)),
            "n_curves": 7, "curve_length": 3, "point_width": 24, "n_tokens": 4, "dim": 24, "spatial_dim": 24,
            "spatial_depth": 2, "temporal_depth": 1, "heads": 2, "dim_head": 12, "mlp_dim": 32, "dropout": 0.0}
    return BackboneConfig(**(base | overrides))


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_optimised_model_equals_reference_forward_gradients_and_statistics(mode):
    """Same weights (ours -> release names -> reference): logits, every parameter gradient and (train) every BN
    running statistic agree. BN affine parameters are randomised (negative scales exercise the max trick)."""
    torch.set_num_threads(1)
    bench = _bench()
    torch.manual_seed(0)
    ours, _ = bench.paired_models(_micro())
    with torch.no_grad():
        for name, p in ours.named_parameters():
            if p.ndim == 1 and "bn" in name or ".1.weight" in name:
                p.uniform_(-1.0, 1.5)
    ref = bench.ReferenceHadamard(_micro(), dropout=0.0)
    from common.smile.release_weights import to_release_state_dict

    ref.load_state_dict(to_release_state_dict(ours, "hadamard"), strict=True)
    getattr(ours, mode)()
    getattr(ref, mode)()
    clip, dm, y = random_batch(b=3, t=4, seed=2)
    outs, grads = [], []
    for model in (ours, ref):
        logit = model(clip, dm)
        torch.nn.functional.binary_cross_entropy_with_logits(logit, y).backward()
        outs.append(logit.detach())
        grads.append(to_release_state_dict_grads(model, ours is model))
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-4, atol=1e-5)
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-3, atol=1e-5, msg=name)
    if mode == "train":
        from common.smile.release_weights import to_release_state_dict as to_release

        mine, theirs = to_release(ours, "hadamard"), ref.state_dict()
        for key in mine:
            if "running" in key:
                torch.testing.assert_close(mine[key], theirs[key], rtol=1e-4, atol=1e-6, msg=key)


def to_release_state_dict_grads(model, is_ours: bool) -> dict:
    """Parameter gradients under the release's names and shapes."""
    from common.smile.release_weights import key_map

    if not is_ours:
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    out = {}
    for release, (mine, kind) in key_map(model, "hadamard").items():
        if mine in grads:
            out[release] = grads[mine].reshape(*grads[mine].shape, *([1] * kind))
    return out
