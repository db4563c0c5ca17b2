"""Helpers for the release-fixture tests: load the fixture files, and trace our model into the fixtures' key names
and layouts (channels-first encoder tensors of the kept frames, canonical (b, t, m, d) transformer tensors)."""
from __future__ import annotations

import pytest
import torch
from einops import rearrange

from common.paths import SHARED_FIXTURES_DIR

BLOCKS = ("cic11", "cic12", "cic21", "cic22")
FRAMES_KEPT = [0, 5, 18, 31]
CHOICES = ("start_idx", "walk_idx")


def fixture(name: str) -> dict:
    path = SHARED_FIXTURES_DIR / name
    if not path.is_file():
        pytest.skip(f"release fixtures not available ({path})")
    return torch.load(path, weights_only=True)


def fbp_state_dict() -> dict:
    """The full Factorized_Bilinear_Pooling state dict: the Hadamard model's encoder/downsample/time weights plus
    the FBP model's own tensors (the fixtures' documented merge)."""
    shared = {k: v for k, v in fixture("hadamard_state_dict.pt").items()
              if k.startswith(("encoder.", "downsample.", "time."))}
    return shared | fixture("fbp_state_dict_own.pt")


def encoder_record(record: dict) -> dict:
    """Our encoder record -> fixture names (channels-first (f, c, n), curves (f, c, s, l))."""
    out = {"enc.knn_idx": record["knn_idx"], "enc.lpfa0": record["lpfa0"].transpose(1, 2),
           "enc.conv0": record["conv0"].transpose(1, 2)}
    for i, name in enumerate(BLOCKS):
        r = record[f"cic{i}"]
        for key in ("conv1", "curveagg", "lpfa", "out"):
            out[f"enc.{name}.{key}"] = r[key].transpose(1, 2)
        out[f"enc.{name}.curves"] = r["curves"].permute(0, 3, 1, 2)
        for key in CHOICES:
            out[f"enc.{name}.{key}"] = r[key]
    return out


def _hook_layers(layers, prefix: str, spatial: bool, b: int, trace: dict) -> list:
    handles = []
    for i, layer in enumerate(layers):
        if spatial:
            back = "(b m) t d -> b t m d" if i % 2 == 0 else "(b t) m d -> b t m d"
            canon = lambda x, back=back: rearrange(x, back, b=b)  # noqa: E731
        else:
            canon = lambda x: x  # noqa: E731
        name = f"{prefix}.layer{i}"
        handles.append(layer.attn.qkv.register_forward_pre_hook(
            lambda m, args, name=name, canon=canon: trace.__setitem__(f"{name}.qkv_input", canon(args[0]))))
        handles.append(layer.attn.register_forward_hook(
            lambda m, args, out, name=name, canon=canon: trace.__setitem__(f"{name}.after_attn",
                                                                           canon(args[0] + out))))
        handles.append(layer.register_forward_hook(
            lambda m, args, out, name=name, canon=canon: trace.__setitem__(f"{name}.out", canon(out))))
    return handles


def trace_backbone_tail(backbone, tokens: torch.Tensor, b: int) -> dict:
    """Run ``from_tokens`` on the point-reduction output and record every transformer tensor and h."""
    trace: dict = {}
    handles = _hook_layers(backbone.spatial.layers, "spatial", True, b, trace)
    handles += _hook_layers(backbone.temporal, "temporal", False, b, trace)
    if backbone.narrow:
        handles.append(backbone.to_spatial.register_forward_hook(
            lambda m, args, out: trace.__setitem__("feature_proj", out.view(b, -1, out.shape[-1]))))
    try:
        trace["h"], _ = backbone.from_tokens(tokens, b)
    finally:
        for h in handles:
            h.remove()
    if not backbone.narrow:
        trace["spatial.token_mean"] = trace[f"spatial.layer{len(backbone.spatial.layers) - 1}.out"].mean(dim=2)
    return trace


def trace_head(model, h: torch.Tensor, dmarker: torch.Tensor) -> dict:
    """h, D-Marker -> x_proj, dmarker_embed, fused, fusion_mlp, logit, prob (Hadamard and FBP heads)."""
    fusion = model.fusion
    trace = {"x_proj": fusion.proj_h(h), "dmarker_embed": fusion.proj_d(dmarker)}
    captured = {}
    handle = fusion.mlp.register_forward_pre_hook(lambda m, args: captured.__setitem__("fused", args[0]))
    try:
        trace["fusion_mlp"] = fusion(h, dmarker)
    finally:
        handle.remove()
    trace["fused"] = captured["fused"]
    trace["logit"] = model.head(trace["fusion_mlp"])
    trace["prob"] = torch.sigmoid(trace["logit"])
    return trace


def trace_model(model, x: torch.Tensor, dmarker: torch.Tensor) -> dict:
    """End to end, eval mode: every fixture tensor our model produces (encoder tensors for the kept frames)."""
    b = x.shape[0]
    record: dict = {}
    tokens = model.backbone.tokens(x, record)
    trace = {k: (v[FRAMES_KEPT]) for k, v in encoder_record(record).items()}
    trace["downsample.out"] = tokens
    trace |= trace_backbone_tail(model.backbone, tokens, b)
    trace |= trace_head(model, trace["h"], dmarker)
    return trace


def max_abs_diffs(trace: dict, expected: dict, keys) -> dict[str, float]:
    """max |ours - release| per key (shapes must agree)."""
    diffs = {}
    for key in keys:
        ours, ref = trace[key], expected[key]
        assert tuple(ours.shape) == tuple(ref.shape), (key, tuple(ours.shape), tuple(ref.shape))
        diffs[key] = float((ours.float() - ref.float()).abs().max())
    return diffs


def assert_choices_equal(trace: dict, expected: dict) -> None:
    """k-NN table, start sets, start order and every walk step equal the release's (compared before floats)."""
    assert torch.equal(trace["enc.knn_idx"], expected["enc.knn_idx"]), "k-NN table differs"
    for name in BLOCKS:
        ours, ref = trace[f"enc.{name}.start_idx"], expected[f"enc.{name}.start_idx"]
        assert torch.equal(ours.sort(-1).values, ref.sort(-1).values), f"{name}: start set differs"
        assert torch.equal(ours, ref), f"{name}: start order differs"
        assert torch.equal(trace[f"enc.{name}.walk_idx"], expected[f"enc.{name}.walk_idx"]), f"{name}: walk differs"


def float_keys(expected: dict, prefix: str = "") -> list[str]:
    return sorted(k for k, v in expected.items() if k.startswith(prefix) and v.is_floating_point()
                  and not k.startswith("input.") and not k.endswith(".xyz_out") and k != "enc.input_xyz")
