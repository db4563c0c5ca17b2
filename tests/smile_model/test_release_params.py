"""Parameter counts equal the released models' (all 15 fusion notebooks, MeshSmileNet, DeepMarkerNet, paper size),
and the release-weight loader is strict: a missing, unexpected or mis-shaped tensor is an error naming the key."""
import re

import pytest
import torch
from smile_model_data import random_batch

from common.smile.backbone_config import BackboneConfig
from common.smile.models import FusionNet, build_model, count_parameters
from common.smile.release_weights import ReleaseWeightsError, load_release_state_dict, to_release_state_dict

# Counted by instantiating each release notebook's model (trainable parameters, BN buffers excluded).
RELEASED_COUNTS = {
    "concat": 5_151_313, "gated_concat": 5_217_105, "additive": 5_285_459, "hadamard": 5_151_569,
    "hadamard_gated_concat": 5_282_897, "attention": 5_348_945, "cross_attention": 5_348_945,
    "mh_attention": 5_413_969, "mh_cross_attention": 5_216_593, "film": 5_545_809, "film_hadamard": 5_546_321,
    "bilinear": 20_874_033, "bilinear_hadamard": 20_939_825, "factorized_bilinear": 4_491_057,
    "factorized_bilinear_hadamard": 4_556_849, "meshsmilenet": 4_896_337, "deepmarkernet": 4_952_361,
}


@pytest.mark.parametrize("variant", sorted(RELEASED_COUNTS))
def test_parameter_count_equals_the_release(variant):
    model = build_model({"variant": variant, "fusion_impl": "released", "backbone_size": "paper"})
    assert count_parameters(model)["params_total"] == RELEASED_COUNTS[variant]


def test_deep_branch_parts_have_the_released_sizes():
    bb = build_model({"variant": "meshsmilenet", "backbone_size": "paper"}).backbone
    parts = {name: sum(p.numel() for p in getattr(bb, name).parameters())
             for name in ("encoder", "spatial", "temporal")}
    parts["reduction"] = sum(p.numel() for p in bb.reduce.parameters()) + sum(p.numel() for p in
                                                                             bb.reduce_bn.parameters())
    assert parts == {"encoder": 143_184, "spatial": 3_158_016, "temporal": 1_579_008, "reduction": 15_360}
    curve_modules = sum(p.numel() for blk in bb.encoder.blocks for m in (blk.grouping, blk.aggregation)
                        for p in m.parameters())
    assert curve_modules == 8_008


@pytest.mark.parametrize("variant,backbone", [("hadamard", BackboneConfig.demo()),
                                              ("factorized_bilinear", BackboneConfig.demo(n_tokens=3).released_dim8())])
def test_release_names_round_trip(variant, backbone):
    torch.manual_seed(0)
    source = FusionNet(variant, backbone, impl="released").eval()
    torch.manual_seed(1)
    target = FusionNet(variant, backbone, impl="released").eval()
    release = to_release_state_dict(source, variant)
    assert all(k.startswith(("encoder.", "downsample.", "transformer.", "time.", "feature_proj", "dmarker_proj",
                             "x_proj", "fusion_mlp", "smile_head", "bilinear.")) for k in release)
    load_release_state_dict(target, release, variant)
    clip, dm, _ = random_batch(b=2, t=4)
    with torch.no_grad():
        torch.testing.assert_close(target(clip, dm), source(clip, dm), rtol=0, atol=0)


def test_loader_names_missing_extra_and_misshaped_keys():
    model = FusionNet("hadamard", BackboneConfig.demo(), impl="released")
    good = to_release_state_dict(model, "hadamard")
    key = "encoder.cic21.curvegrouping.walk.agent_mlp.0.weight"
    shape = tuple(good[key].shape)
    with pytest.raises(ReleaseWeightsError, match=rf"lacks '{key}' \(expected shape \(1, 16, 1, 1\)\)"):
        load_release_state_dict(model, {k: v for k, v in good.items() if k != key}, "hadamard")
    with pytest.raises(ReleaseWeightsError, match="unexpected key 'encoder.cic31.conv1.0.weight'"):
        load_release_state_dict(model, {**good, "encoder.cic31.conv1.0.weight": torch.zeros(1)}, "hadamard")
    with pytest.raises(ReleaseWeightsError, match=re.escape(f"'{key}' has shape (1, 16), expected {shape}")):
        load_release_state_dict(model, {**good, key: good[key].view(1, 16)}, "hadamard")
    bad_pe = "transformer.layers.0.0.fn.pos_embedding.pe"
    with pytest.raises(ReleaseWeightsError, match="positional table"):
        load_release_state_dict(model, {**good, bad_pe: good[bad_pe] + 1}, "hadamard")
    with pytest.raises(ReleaseWeightsError, match="no release key map for variant 'film'"):
        load_release_state_dict(model, good, "film")
