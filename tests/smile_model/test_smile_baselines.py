"""Baselines: shapes, one-batch overfitting, the DeepMarkerNet loss, checkpoint round trip, parameter counts."""
import pytest
import torch
import torch.nn.functional as F
from smile_model_data import micro_backbone, random_batch

from common.checkpoints import load_checkpoint, save_checkpoint
from common.smile.baselines import BASELINES, DeepMarkerNet
from common.smile.deepmarkernet_target import DMN_TARGET_DIM
from common.smile.models import (
    build_from_spec,
    build_model,
    count_parameters,
    is_handcrafted,
    model_from_checkpoint,
    model_spec,
)
from common.smile.run import parameter_comparison, resolve_config

DEEP = ["meshsmilenet", "deepmarkernet", "dmarker_mlp"]


def test_registry_and_kinds():
    assert set(BASELINES.list()) == {"meshsmilenet", "deepmarkernet", "dmarker_mlp", "dmarker_svm", "dmarker_logreg"}
    assert [is_handcrafted(n) for n in ("dmarker_svm", "dmarker_logreg", "meshsmilenet")] == [True, True, False]
    with pytest.raises(TypeError, match="scikit-learn"):
        BASELINES.create("dmarker_svm")


@pytest.mark.parametrize("name", DEEP)
def test_baseline_shape_and_one_batch_overfit(name):
    torch.manual_seed(0)
    model = BASELINES.create(name, backbone=micro_backbone(), dropout=0.0)
    clip, dm, y = random_batch()
    if name == "deepmarkernet":  # its auxiliary target is its own 216-d feature vector, in the dmarker key
        dm = dm[:, :DMN_TARGET_DIM]
    assert model(clip, dm).shape == (8,)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(80):
        opt.zero_grad()
        loss, logits = model.loss(clip, dm, y)
        loss.backward()
        opt.step()
    assert torch.equal((logits > 0).float(), y)
    assert F.binary_cross_entropy_with_logits(model(clip, dm), y).item() < 0.1


def test_deepmarkernet_loss_is_weighted_bce_plus_sigmoid_mse():
    torch.manual_seed(0)
    model = DeepMarkerNet(micro_backbone(), dropout=0.0).eval()
    clip, dm, y = random_batch(b=4)
    target = dm[:, :DMN_TARGET_DIM]
    loss, logits = model.loss(clip, target, y)
    h = model.backbone(clip)[0]
    expected = 0.2 * F.binary_cross_entropy_with_logits(logits, y) + 0.8 * torch.sigmoid(F.mse_loss(model.aux(h),
                                                                                                    target))
    torch.testing.assert_close(loss, expected)
    assert model.aux[-1].out_features == DMN_TARGET_DIM == 216
    with pytest.raises(ValueError, match="216"):
        model.loss(clip, dm, y)


def test_checkpoint_rebuilds_the_model_alone(tmp_path):
    cfg = resolve_config({"dataset": "BBC", "variant": "film", "fusion_impl": "released"})
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    path = save_checkpoint(tmp_path / "fold1.pt", study="smile", config=dict(cfg), model_state=model.state_dict(),
                           provenance={}, model_spec=model_spec(cfg))
    rebuilt, cfg_back = model_from_checkpoint(load_checkpoint(path, study="smile"))
    clip, dm, _ = random_batch(b=2, t=8)
    torch.testing.assert_close(rebuilt(clip, dm), model(clip, dm))
    assert cfg_back["variant"] == "film"


def test_bilinear_family_uses_the_narrow_backbone_and_counts_are_computed():
    for impl in ("paper", "released"):
        spec = model_spec(resolve_config({"dataset": "BBC", "variant": "bilinear", "fusion_impl": impl}))
        assert spec["backbone"]["spatial_dim"] == 8
    hadamard = model_spec(resolve_config({"dataset": "BBC", "variant": "hadamard"}))
    assert hadamard["backbone"]["spatial_dim"] == hadamard["backbone"]["point_width"]
    cmp = parameter_comparison(resolve_config({"dataset": "BBC", "variant": "hadamard"}))
    had = count_parameters(build_from_spec(model_spec(resolve_config({"dataset": "BBC", "variant": "hadamard"}))))
    assert cmp["hadamard"] == had["params_total"]
    assert cmp["reduction_vs_deepmarkernet"] == pytest.approx(1 - cmp["hadamard"] / cmp["deepmarkernet"])
