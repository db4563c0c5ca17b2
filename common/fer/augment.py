"""HAFEM's seven training augmentations (paper, "Preprocessing"), seeded, and the deterministic eval transform.

Per image, in this order (probability; range):

1. horizontal flip (0.5)
2. random crop (0.8) of the input size after zero-padding 10 px on each side
3. colour jitter (0.5): brightness +-0.3, contrast +-0.3, saturation +-0.2, hue +-0.05, in a random order
4. rotation (0.3) by an angle uniform in +-15 deg
5. Gaussian noise (0.2), sigma uniform in [0.01, 0.05] on the [0, 1] pixel scale, then clipped
6. Cutout (0.3): one 32x32 square (centre anywhere, clipped at the border) set to 0 after ImageNet normalisation,
   i.e. to the mean colour

and per batch:

7. Mixup (0.4) with lambda ~ Beta(0.4, 0.4): ``x = lam x + (1 - lam) x[perm]``, ``y = lam y + (1 - lam) y[perm]``.

Every random draw comes from the ``torch.Generator`` passed in, so the same seed gives the same tensors. The pixel
sizes (padding 10, cutout 32) are the paper's at 224 px; ``scale_with_size=True`` scales them to a smaller demo input.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import InterpolationMode

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PAPER_SIZE = 224


def to_float_tensor(image: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """uint8 HxWx3 (or HxW gray) array -> float 3 x size x size in [0, 1], bicubic (antialiased) resize."""
    if isinstance(image, torch.Tensor):
        x = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
    else:
        a = np.asarray(image)
        if a.ndim == 2:
            a = np.repeat(a[:, :, None], 3, axis=2)
        if a.ndim != 3 or a.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 RGB image, got shape {a.shape}")
        x = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float() / 255.0
    if x.shape[-2:] != (size, size):
        x = TF.resize(x, [size, size], interpolation=InterpolationMode.BICUBIC, antialias=True)
    return x.clamp_(0.0, 1.0)


def normalize(x: torch.Tensor) -> torch.Tensor:
    return TF.normalize(x, list(IMAGENET_MEAN), list(IMAGENET_STD))


def _uniform(g: torch.Generator | None, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=g))


def _happens(g: torch.Generator | None, p: float) -> bool:
    return float(torch.rand((), generator=g)) < p


@dataclass(frozen=True)
class EvalTransform:
    """Deterministic: bicubic resize to ``size``, then ImageNet normalisation."""

    size: int = PAPER_SIZE

    def __call__(self, image, generator: torch.Generator | None = None) -> torch.Tensor:
        return normalize(to_float_tensor(image, self.size))


@dataclass(frozen=True)
class TrainTransform:
    """The six per-image augmentations of HAFEM (mixup is batch-level: :func:`mixup`)."""

    size: int = PAPER_SIZE
    p_flip: float = 0.5
    p_crop: float = 0.8
    crop_padding: int = 10
    p_jitter: float = 0.5
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.2
    hue: float = 0.05
    p_rotate: float = 0.3
    degrees: float = 15.0
    p_noise: float = 0.2
    noise_sigma: tuple[float, float] = (0.01, 0.05)
    p_cutout: float = 0.3
    cutout_size: int = 32

    def __call__(self, image, generator: torch.Generator | None = None) -> torch.Tensor:
        g = generator
        x = to_float_tensor(image, self.size)
        if _happens(g, self.p_flip):
            x = TF.horizontal_flip(x)
        if _happens(g, self.p_crop) and self.crop_padding > 0:
            pad = self.crop_padding
            x = TF.pad(x, [pad, pad, pad, pad], fill=0.0)
            top, left = (int(torch.randint(0, 2 * pad + 1, (), generator=g)) for _ in range(2))
            x = x[:, top:top + self.size, left:left + self.size]
        if _happens(g, self.p_jitter):
            x = self._jitter(x, g)
        if _happens(g, self.p_rotate):
            angle = _uniform(g, -self.degrees, self.degrees)
            x = TF.rotate(x, angle, interpolation=InterpolationMode.BILINEAR, fill=0.0)
        if _happens(g, self.p_noise):
            sigma = _uniform(g, *self.noise_sigma)
            x = (x + sigma * torch.randn(x.shape, generator=g)).clamp_(0.0, 1.0)
        x = normalize(x)
        if _happens(g, self.p_cutout) and self.cutout_size > 0:
            cy, cx = (int(torch.randint(0, self.size, (), generator=g)) for _ in range(2))
            half = self.cutout_size // 2
            x = x.clone()
            x[:, max(cy - half, 0):cy + self.cutout_size - half, max(cx - half, 0):cx + self.cutout_size - half] = 0.0
        return x

    def _jitter(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        ops = [
            lambda t: TF.adjust_brightness(t, _uniform(g, 1 - self.brightness, 1 + self.brightness)),
            lambda t: TF.adjust_contrast(t, _uniform(g, 1 - self.contrast, 1 + self.contrast)),
            lambda t: TF.adjust_saturation(t, _uniform(g, 1 - self.saturation, 1 + self.saturation)),
            lambda t: TF.adjust_hue(t, _uniform(g, -self.hue, self.hue)),
        ]
        for k in torch.randperm(len(ops), generator=g).tolist():
            x = ops[k](x)
        return x.clamp_(0.0, 1.0)


def train_transform(size: int = PAPER_SIZE, scale_with_size: bool = False, **overrides) -> TrainTransform:
    """The paper's per-image augmentations at input ``size``; ``scale_with_size`` shrinks padding and cutout by
    ``size / 224`` (for small demo inputs); ``overrides`` replace any field of :class:`TrainTransform`."""
    if size < 8:
        raise ValueError(f"image size must be >= 8 px, got {size}")
    params = {}
    if scale_with_size:
        params = {"crop_padding": max(1, round(10 * size / PAPER_SIZE)),
                  "cutout_size": max(1, round(32 * size / PAPER_SIZE))}
    params.update(overrides)
    return TrainTransform(size=size, **params)


def eval_transform(size: int = PAPER_SIZE) -> EvalTransform:
    if size < 8:
        raise ValueError(f"image size must be >= 8 px, got {size}")
    return EvalTransform(size)


class MixupResult(NamedTuple):
    x: torch.Tensor          # (N, C, H, W) mixed inputs
    y: torch.Tensor          # (N, K) mixed soft targets
    lam: float               # weight of the original sample (1.0 when mixup was not applied)
    index: torch.Tensor      # (N,) partner of each sample (identity when not applied)


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float = 0.4, p: float = 0.4,
          generator: torch.Generator | None = None, n_classes: int | None = None) -> MixupResult:
    """Batch-level Mixup (Zhang et al., 2018) applied with probability ``p``.

    lam ~ Beta(alpha, alpha); x' = lam x + (1 - lam) x[perm]; y' = lam y + (1 - lam) y[perm]. Hard labels (N,) are
    one-hot encoded first (``n_classes`` required); soft labels (N, K) are mixed as they are. ``lam`` and ``index``
    are returned so a loss that needs hard labels (e.g. centre loss) can weight both partners.
    """
    if y.ndim == 1:
        if n_classes is None:
            raise ValueError("mixup needs n_classes to one-hot encode hard labels")
        y = torch.nn.functional.one_hot(y.long(), n_classes).to(x.dtype)
    else:
        y = y.to(x.dtype)
    n = x.shape[0]
    if alpha <= 0 or not _happens(generator, p):
        return MixupResult(x, y, 1.0, torch.arange(n))
    # Beta draw from a seed taken off the torch generator (torch's Beta sampler does not accept a generator)
    seed = int(torch.randint(0, 2**62, (), generator=generator))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    index = torch.randperm(n, generator=generator)
    return MixupResult(lam * x + (1 - lam) * x[index], lam * y + (1 - lam) * y[index], lam, index)
