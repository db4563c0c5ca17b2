"""Load the released HadaSmileNet / MeshSmileNet weights (their PyTorch state-dict names) into our modules.

The key map, release name -> ours (prefix ``backbone.`` for a full model; C = planes of a CIC block):

==================================================================  ===================================================
release (``cicXY`` = cic11, cic12, cic21, cic22 = our blocks 0..3)  ours (channels-last Linear / BatchNorm)
==================================================================  ===================================================
encoder.lpfa.mlp.0.0.weight (32, 9, 1, 1), .mlp.0.1.* (BN)          encoder.lpfa.lin.weight (32, 9), encoder.lpfa.bn.*
encoder.cicXY.conv1.0.weight (C, in, 1), .conv1.1.*                 encoder.blocks.i.reduce.0.weight, .reduce.1.*
encoder.cicXY.curvegrouping.att.weight (1, C, 1)                    encoder.blocks.i.grouping.start_score.weight
encoder.cicXY.curvegrouping.walk.agent_mlp.0.weight (1, 2C, 1, 1)   encoder.blocks.i.grouping.step_score.weight
encoder.cicXY.curvegrouping.walk.agent_mlp.1.*                      encoder.blocks.i.grouping.step_bn.*
encoder.cicXY.curvegrouping.walk.momentum_mlp.0.weight (2, 2C, 1)   encoder.blocks.i.grouping.momentum.weight
encoder.cicXY.curvegrouping.walk.momentum_mlp.1.*                   encoder.blocks.i.grouping.momentum_bn.*
encoder.cicXY.curveaggregation.line_conv_att.weight (1, C, 1, 1)    encoder.blocks.i.aggregation.att.weight
encoder.cicXY.curveaggregation.conva / convb / convc                ...aggregation.k_inter / k_intra / q
encoder.cicXY.curveaggregation.convn / convl                        ...aggregation.v_inter / v_intra
encoder.cicXY.curveaggregation.convd.0.weight, .convd.1.*           ...aggregation.out.0.weight, .out.1.*
encoder.cicXY.lpfa.xyz2feature.0.weight (C, 9, 1, 1), .1.*          encoder.blocks.i.lpfa.pos.0.weight, .pos.1.*
encoder.cicXY.lpfa.mlp.0.0.weight (C, C, 1, 1), .mlp.0.1.*          encoder.blocks.i.lpfa.lin.weight, .lpfa.bn.*
encoder.cicXY.conv2.0.weight, .conv2.1.*                            encoder.blocks.i.expand.0.weight, .expand.1.*
encoder.cicXY.shortcut.0.weight, .shortcut.1.* (not cic11)          encoder.blocks.i.shortcut.0.weight, .shortcut.1.*
encoder.conv0.0.weight (256, 256, 1), .conv0.1.*                    encoder.head.0.weight, encoder.head.1.*
downsample.0.weight (32, 478, 1), downsample.1.*                    reduce.weight (32, 478), reduce_bn.*
feature_proj.{weight,bias} (dim-8 backbone only)                    to_spatial.{weight,bias} (same channel-major order)
transformer.layers.L.0.norm.*                                       spatial.layers.L.attn.norm.*
transformer.layers.L.0.fn.to_qkv.weight                             spatial.layers.L.attn.qkv.weight
transformer.layers.L.0.fn.to_out.0.*                                spatial.layers.L.attn.out.0.*
transformer.layers.L.0.fn.pos_embedding.pe (1, 128, D) buffer       checked equal to spatial.layers.L.attn.pe (128, D)
transformer.layers.L.1.norm.*, .1.fn.net.0.*, .1.fn.net.3.*         spatial.layers.L.ff.0.*, .ff.1.*, .ff.4.*
time.layers.L.…                                                     temporal.L.… (same pattern)
==================================================================  ===================================================

Heads: ``hadamard`` (Hadamard-multip notebook): dmarker_proj -> fusion.proj_d, x_proj -> fusion.proj_h,
fusion_mlp.0 / .3 -> fusion.mlp.0 / .3, smile_head.0 / .1 -> head.0 / .1. ``factorized_bilinear`` (dim-8 backbone):
the same projections and head, bilinear.projection1 / projection2 / fc -> fusion.p_h / p_d / out, fusion_mlp.0 (LN) /
.1 / .4 -> fusion.mlp.0 / .1 / .4. Conv weights lose their trailing 1 / 1x1 kernel axes; nothing else is transformed.

Loading is strict both ways: a release key that is missing, unexpected or of the wrong shape, and any tensor of ours
that the map does not fill, is an error naming the key and the expected shape. Nothing is skipped.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from common.smile.backbone import MeshSmileBackbone

RELEASE_BLOCKS = ("cic11", "cic12", "cic21", "cic22")
BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
HEAD_MAPS = {
    "hadamard": {"dmarker_proj": "fusion.proj_d", "x_proj": "fusion.proj_h", "fusion_mlp.0": "fusion.mlp.0",
                 "fusion_mlp.3": "fusion.mlp.3", "smile_head.0": "head.0", "smile_head.1": "head.1"},
    "factorized_bilinear": {"dmarker_proj": "fusion.proj_d", "x_proj": "fusion.proj_h",
                            "bilinear.projection1": "fusion.p_h", "bilinear.projection2": "fusion.p_d",
                            "bilinear.fc": "fusion.out", "fusion_mlp.0": "fusion.mlp.0",
                            "fusion_mlp.1": "fusion.mlp.1", "fusion_mlp.4": "fusion.mlp.4",
                            "smile_head.0": "head.0", "smile_head.1": "head.1"},
}


class ReleaseWeightsError(ValueError):
    """A release state dict that does not fit the model: the message names the key and the expected shape."""


def _linear(rows: dict, release: str, ours: str, kernel: int = 0, bias: bool = False) -> None:
    rows[f"{release}.weight"] = (f"{ours}.weight", kernel)
    if bias:
        rows[f"{release}.bias"] = (f"{ours}.bias", 0)


def _norm(rows: dict, release: str, ours: str, batch: bool = True) -> None:
    for key in BN_KEYS if batch else ("weight", "bias"):
        rows[f"{release}.{key}"] = (f"{ours}.{key}", 0)


def _layer(rows: dict, release: str, ours: str) -> None:
    _norm(rows, f"{release}.0.norm", f"{ours}.attn.norm", batch=False)
    _linear(rows, f"{release}.0.fn.to_qkv", f"{ours}.attn.qkv")
    _linear(rows, f"{release}.0.fn.to_out.0", f"{ours}.attn.out.0", bias=True)
    rows[f"{release}.0.fn.pos_embedding.pe"] = (f"{ours}.attn.pe", "pe")
    _norm(rows, f"{release}.1.norm", f"{ours}.ff.0", batch=False)
    _linear(rows, f"{release}.1.fn.net.0", f"{ours}.ff.1", bias=True)
    _linear(rows, f"{release}.1.fn.net.3", f"{ours}.ff.4", bias=True)


def backbone_key_map(backbone: MeshSmileBackbone, prefix: str = "") -> dict[str, tuple[str, int | str]]:
    """release key -> (our key, kernel axes the release adds: 0, 1 or 2; or "pe" for a checked PE buffer)."""
    if len(backbone.encoder.blocks) != len(RELEASE_BLOCKS):
        raise ReleaseWeightsError(f"the release has {len(RELEASE_BLOCKS)} CIC blocks, this backbone "
                                  f"{len(backbone.encoder.blocks)}")
    rows: dict = {}
    p = prefix
    _linear(rows, "encoder.lpfa.mlp.0.0", f"{p}encoder.lpfa.lin", 2)
    _norm(rows, "encoder.lpfa.mlp.0.1", f"{p}encoder.lpfa.bn")
    for i, (name, block) in enumerate(zip(RELEASE_BLOCKS, backbone.encoder.blocks)):
        r, o = f"encoder.{name}", f"{p}encoder.blocks.{i}"
        _linear(rows, f"{r}.conv1.0", f"{o}.reduce.0", 1)
        _norm(rows, f"{r}.conv1.1", f"{o}.reduce.1")
        _linear(rows, f"{r}.curvegrouping.att", f"{o}.grouping.start_score", 1)
        _linear(rows, f"{r}.curvegrouping.walk.agent_mlp.0", f"{o}.grouping.step_score", 2)
        _norm(rows, f"{r}.curvegrouping.walk.agent_mlp.1", f"{o}.grouping.step_bn")
        _linear(rows, f"{r}.curvegrouping.walk.momentum_mlp.0", f"{o}.grouping.momentum", 1)
        _norm(rows, f"{r}.curvegrouping.walk.momentum_mlp.1", f"{o}.grouping.momentum_bn")
        ra, oa = f"{r}.curveaggregation", f"{o}.aggregation"
        _linear(rows, f"{ra}.line_conv_att", f"{oa}.att", 2)
        for rel, ours in (("conva", "k_inter"), ("convb", "k_intra"), ("convc", "q"), ("convn", "v_inter"),
                          ("convl", "v_intra")):
            _linear(rows, f"{ra}.{rel}", f"{oa}.{ours}", 1)
        _linear(rows, f"{ra}.convd.0", f"{oa}.out.0", 1)
        _norm(rows, f"{ra}.convd.1", f"{oa}.out.1")
        _linear(rows, f"{r}.lpfa.xyz2feature.0", f"{o}.lpfa.pos.0", 2)
        _norm(rows, f"{r}.lpfa.xyz2feature.1", f"{o}.lpfa.pos.1")
        _linear(rows, f"{r}.lpfa.mlp.0.0", f"{o}.lpfa.lin", 2)
        _norm(rows, f"{r}.lpfa.mlp.0.1", f"{o}.lpfa.bn")
        _linear(rows, f"{r}.conv2.0", f"{o}.expand.0", 1)
        _norm(rows, f"{r}.conv2.1", f"{o}.expand.1")
        if not isinstance(block.shortcut, nn.Identity):
            _linear(rows, f"{r}.shortcut.0", f"{o}.shortcut.0", 1)
            _norm(rows, f"{r}.shortcut.1", f"{o}.shortcut.1")
    _linear(rows, "encoder.conv0.0", f"{p}encoder.head.0", 1)
    _norm(rows, "encoder.conv0.1", f"{p}encoder.head.1")
    _linear(rows, "downsample.0", f"{p}reduce", 1)
    _norm(rows, "downsample.1", f"{p}reduce_bn")
    if backbone.narrow:
        _linear(rows, "feature_proj", f"{p}to_spatial", bias=True)
    if not isinstance(backbone.to_temporal, nn.Identity):
        raise ReleaseWeightsError("this backbone has a to_temporal projection, which no released model has")
    for i in range(len(backbone.spatial.layers)):
        _layer(rows, f"transformer.layers.{i}", f"{p}spatial.layers.{i}")
    for i in range(len(backbone.temporal)):
        _layer(rows, f"time.layers.{i}", f"{p}temporal.{i}")
    return rows


def key_map(model: nn.Module, variant: str | None = None) -> dict[str, tuple[str, int | str]]:
    """The full map for a backbone alone (``variant=None``) or a model with ``.backbone`` whose fusion/head is
    ``variant`` (one of :data:`HEAD_MAPS`)."""
    if isinstance(model, MeshSmileBackbone):
        if variant is not None:
            raise ReleaseWeightsError("a bare backbone has no head; pass variant=None")
        return backbone_key_map(model)
    if variant not in HEAD_MAPS:
        raise ReleaseWeightsError(f"no release key map for variant {variant!r}; mapped: {', '.join(HEAD_MAPS)}")
    rows = backbone_key_map(model.backbone, prefix="backbone.")
    ours = model.state_dict()
    for release, mine in HEAD_MAPS[variant].items():
        is_ln = f"{mine}.weight" in ours and ours[f"{mine}.weight"].ndim == 1
        _linear(rows, release, mine, bias=True) if not is_ln else _norm(rows, release, mine, batch=False)
    return rows


def _release_shape(ours: torch.Tensor, kind: int | str) -> tuple[int, ...]:
    if kind == "pe":
        return (1, *ours.shape)
    return (*ours.shape, *([1] * kind))


def load_release_state_dict(model: nn.Module, release: Mapping[str, torch.Tensor], variant: str | None = None) -> None:
    """Copy a release state dict into ``model`` (strict; see the module docstring). PE tables are checked, not
    copied: ours are computed by the same formula."""
    rows = key_map(model, variant)
    ours = model.state_dict()
    every = {**dict(model.named_buffers()), **ours}
    missing = [k for k in rows if k not in release]
    if missing:
        k = missing[0]
        raise ReleaseWeightsError(f"release state dict lacks {k!r} (expected shape "
                                  f"{_release_shape(every[rows[k][0]], rows[k][1])}); {len(missing)} missing in all")
    extra = [k for k in release if k not in rows]
    if extra:
        raise ReleaseWeightsError(f"release state dict has unexpected key {extra[0]!r} (shape "
                                  f"{tuple(release[extra[0]].shape)}); {len(extra)} unexpected in all")
    filled = {}
    for key, (mine, kind) in rows.items():
        expected = _release_shape(every[mine], kind)
        value = release[key]
        if tuple(value.shape) != expected:
            raise ReleaseWeightsError(f"release tensor {key!r} has shape {tuple(value.shape)}, expected {expected} "
                                      f"(for our {mine!r})")
        if kind == "pe":
            # same formula, but float32 sin/cos of arguments up to ~length differ between CPUs' vector math by a few
            # ulps of the argument (3.8e-6 seen at p = 92 on an AMD EPYC); 1e-5 still rejects any other table
            if not torch.allclose(value.reshape(every[mine].shape).to(every[mine]), every[mine], atol=1e-5):
                raise ReleaseWeightsError(f"release positional table {key!r} differs from the sinusoid table")
            continue
        filled[mine] = value.reshape(ours[mine].shape).to(ours[mine].dtype)
    persistent = set(ours) - {mine for mine, kind in rows.values() if kind == "pe"}
    unfilled = sorted(persistent - set(filled))
    if unfilled:
        raise ReleaseWeightsError(f"the key map leaves our {unfilled[0]!r} (shape {tuple(ours[unfilled[0]].shape)}) "
                                  f"unfilled")
    model.load_state_dict(filled, strict=True)


def to_release_state_dict(model: nn.Module, variant: str | None = None) -> dict[str, torch.Tensor]:
    """The inverse map: our state dict under the release's names and shapes (PE tables included)."""
    ours = {**model.state_dict(), **dict(model.named_buffers())}
    return {key: ours[mine].reshape(_release_shape(ours[mine], kind)).clone()
            for key, (mine, kind) in key_map(model, variant).items()}
