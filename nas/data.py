"""Image classification data for the search: CIFAR-100 from a local directory, digits, generated data.

Images are held as uint8 tensors (N, 3, 32, 32) and normalized per batch. Train, validation and test
splits are fixed (they do not depend on the search seed), so every run is scored on the same images.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

Split = Literal["train", "val", "test"]
SPLIT_SEED = 0


class DataError(ValueError):
    """The requested data set cannot be loaded."""


@dataclass
class ImageData:
    """Train, validation (for the distribution update) and test images with their labels."""

    name: str
    num_classes: int
    images: dict[str, torch.Tensor]
    labels: dict[str, torch.Tensor]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: bool = False

    def size(self, split: Split) -> int:
        return len(self.labels[split])

    def batches(
        self, split: Split, batch_size: int, *, shuffle: bool = False, generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass over ``split`` in batches of normalized float images (training batches augmented if set)."""
        n = self.size(split)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        mean = torch.tensor(self.mean, device=device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=device).view(1, 3, 1, 1)
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            x = self.images[split][index].to(device).float().div_(255)
            if self.augment and split == "train":
                x = flip_and_crop(x, generator)
            yield (x - mean) / std, self.labels[split][index].to(device)


def flip_and_crop(x: torch.Tensor, generator: torch.Generator | None, padding: int = 4) -> torch.Tensor:
    """Random horizontal flips and random crops after zero padding (the usual CIFAR augmentation)."""
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=generator) < 0.5
    x = torch.where(flip.view(n, 1, 1, 1).to(x.device), x.flip(3), x)
    padded = F.pad(x, (padding,) * 4)
    dy, dx = (torch.randint(0, 2 * padding + 1, (2, n), generator=generator)).tolist()
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])


def split_indices(labels: np.ndarray, fractions: tuple[float, float]) -> dict[str, np.ndarray]:
    """Stratified train / val / test indices; ``fractions`` are the validation and test shares."""
    from sklearn.model_selection import train_test_split

    everything = np.arange(len(labels))
    rest, test = train_test_split(everything, test_size=fractions[1], stratify=labels, random_state=SPLIT_SEED)
    share = fractions[0] / (1 - fractions[1])
    train, val = train_test_split(rest, test_size=share, stratify=labels[rest], random_state=SPLIT_SEED)
    return {"train": train, "val": val, "test": test}


def statistics(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    x = images.float().div(255)
    return tuple(x.mean(dim=(0, 2, 3)).tolist()), tuple(x.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist())


def from_arrays(name: str, images: torch.Tensor, labels: np.ndarray, num_classes: int) -> ImageData:
    parts = split_indices(labels, (0.2, 0.2))
    train_images = images[torch.from_numpy(parts["train"])]
    mean, std = statistics(train_images)
    return ImageData(
        name, num_classes,
        images={split: images[torch.from_numpy(i)] for split, i in parts.items()},
        labels={split: torch.from_numpy(labels[i]).long() for split, i in parts.items()},
        mean=mean, std=std,
    )


def load_digits_data() -> ImageData:
    """scikit-learn's 1797 handwritten digits (8x8 grey), upsampled to 32x32 RGB; 10 classes."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    grey = torch.from_numpy(digits.images).float().unsqueeze(1) / 16.0
    large = F.interpolate(grey, size=(32, 32), mode="bilinear", align_corners=False)
    images = (large.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    return from_arrays("digits", images, digits.target.astype(np.int64), 10)


def load_synthetic_data(n: int = 1000, num_classes: int = 10, seed: int = 0) -> ImageData:
    """Generated 32x32 RGB images: a smooth random pattern per class plus per-image noise and shifts."""
    rng = torch.Generator().manual_seed(seed)
    prototypes = F.interpolate(torch.rand(num_classes, 3, 4, 4, generator=rng), size=(32, 32), mode="bilinear")
    labels = torch.arange(n) % num_classes
    images = prototypes[labels] + 0.25 * torch.randn(n, 3, 32, 32, generator=rng)
    shifts = torch.randint(-2, 3, (n, 2), generator=rng)
    images = torch.stack([img.roll(tuple(s.tolist()), dims=(1, 2)) for img, s in zip(images, shifts, strict=True)])
    pixels = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    return from_arrays("synthetic", pixels, labels.numpy(), num_classes)


CIFAR_FOLDER = "cifar-100-python"


def read_cifar100_part(root: Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) uint8 and fine labels of ``train`` or ``test`` in torchvision's format.

    The pickles are read as ``torchvision.datasets.CIFAR100`` reads them, without its checksums of the
    official files (which take seconds per start, and refuse any other copy of the format).
    """
    path = root / CIFAR_FOLDER / part
    try:
        with path.open("rb") as handle:
            entry = pickle.load(handle, encoding="latin1")
        images = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        labels = np.asarray(entry["fine_labels"], dtype=np.int64)
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as exc:
        raise DataError(
            f"CIFAR-100 not found under {root}: expected torchvision's '{CIFAR_FOLDER}/' folder (train, test, "
            f"meta) there, could not read {path} ({type(exc).__name__}: {exc}). Nothing is downloaded at run "
            "time; put the data there, or use --data digits|synthetic"
        ) from exc
    if len(labels) != len(images) or not ((labels >= 0) & (labels < 100)).all():
        raise DataError(f"{path}: {len(images)} images but {len(labels)} labels, or labels outside 0..99")
    return images, labels


def load_cifar100(root: Path) -> ImageData:
    """CIFAR-100 in torchvision's format under ``root`` (``cifar-100-python/``); nothing is downloaded.

    A tenth of the official training set (5,000 images) is held out for validation; test is the official test set.
    """

    def tensor(images: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()

    train_images, labels = read_cifar100_part(root, "train")
    test_images, test_labels = read_cifar100_part(root, "test")
    order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
    held_out = len(labels) // 10
    train, val = order[: len(labels) - held_out], order[len(labels) - held_out :]
    images = tensor(train_images)
    mean, std = statistics(images[torch.from_numpy(train)])
    return ImageData(
        "cifar100", 100,
        images={"train": images[torch.from_numpy(train)], "val": images[torch.from_numpy(val)],
                "test": tensor(test_images)},
        labels={"train": torch.from_numpy(labels[train]), "val": torch.from_numpy(labels[val]),
                "test": torch.from_numpy(test_labels)},
        mean=mean, std=std, augment=True,
    )


def load_data(spec: str) -> ImageData:
    """``digits``, ``synthetic``, or a directory holding CIFAR-100 in torchvision's format."""
    if spec == "digits":
        return load_digits_data()
    if spec == "synthetic":
        return load_synthetic_data()
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise DataError(f"--data {spec!r} is neither 'digits', 'synthetic' nor a directory holding CIFAR-100")
    return load_cifar100(path)


def subset(data: ImageData, limit: int | None) -> ImageData:
    """At most ``limit`` images per split (the first ones; splits are already shuffled and stratified)."""
    if limit is None:
        return data
    return ImageData(
        data.name, data.num_classes,
        images={k: v[:limit] for k, v in data.images.items()}, labels={k: v[:limit] for k, v in data.labels.items()},
        mean=data.mean, std=data.std, augment=data.augment,
    )
