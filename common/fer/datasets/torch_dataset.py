"""The torch ``Dataset`` over a :class:`~common.fer.datasets.split.FerSplit`: transformed images and hard, soft or
sampled targets, each item's randomness seeded by (seed, epoch, index)."""
from __future__ import annotations

import inspect
from typing import Callable

import numpy as np
from torch.utils.data import Dataset

from common.fer.datasets.split import FerSplit


class FerTorchDataset(Dataset):
    """A torch ``Dataset`` over a :class:`FerSplit`: ``(float tensor 3xHxW, ImageNet-normalised; target)``.

    The target is an int64 class index for hard labels, or a float (C,) distribution for soft FER+ modes;
    ``label_mode == "probability"`` samples a one-hot target from the distribution at each access, as FER+ does.
    ``transform(image_uint8_hwc, generator) -> tensor`` (``augment.train_transform`` / ``eval_transform``); its
    randomness and the probability sampling come from a generator seeded by (seed, epoch, index), so a run is
    reproducible whatever the DataLoader worker order. Call :meth:`set_epoch` each epoch.
    """

    def __init__(self, split: FerSplit, transform: Callable | None = None, image_size: int = 224,
                 seed: int = 0, target: str = "auto"):
        from common.fer.augment import eval_transform

        if target not in ("auto", "hard", "soft"):
            raise ValueError(f"target must be 'auto', 'hard' or 'soft', got {target!r}")
        self.split = split
        self.transform = transform if transform is not None else eval_transform(image_size)
        self.seed, self.epoch, self.target = int(seed), 0, target
        self._pass_generator = _takes_two_arguments(self.transform)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.split)

    def _generator(self, index: int):
        import torch

        g = torch.Generator()
        # distinct, order-free stream per (seed, epoch, index)
        g.manual_seed(int(np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1, np.uint64)[0]
                          & 0x7FFF_FFFF_FFFF_FFFF))
        return g

    def __getitem__(self, index: int):
        import torch

        g = self._generator(index)
        image = self.split.images[index]
        image = self.transform(image, g) if self._pass_generator else self.transform(image)
        soft = self.split.soft_labels
        if self.target == "hard" or soft is None:
            if self.target == "soft":
                return image, torch.nn.functional.one_hot(torch.tensor(int(self.split.labels[index])),
                                                          self.split.n_classes).float()
            return image, torch.tensor(int(self.split.labels[index]), dtype=torch.int64)
        dist = torch.from_numpy(np.asarray(soft[index], dtype=np.float32))
        if self.split.label_mode == "probability":
            k = int(torch.multinomial(dist, 1, generator=g))
            return image, torch.nn.functional.one_hot(torch.tensor(k), len(dist)).float()
        return image, dist


def _takes_two_arguments(fn: Callable) -> bool:
    """Whether ``fn(image, generator)`` is accepted (our transforms) or only ``fn(image)`` (e.g. torchvision's)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)
