"""Data for searches: digits upsampled to 32x32 RGB, generated images, CIFAR-100 in torchvision's format."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from nas.data import DataError, load_data, load_digits_data, load_synthetic_data, subset


def test_digits_become_32x32_rgb_with_fixed_disjoint_splits() -> None:
    data = load_digits_data()
    assert data.num_classes == 10
    sizes = {split: data.size(split) for split in ("train", "val", "test")}
    assert sum(sizes.values()) == 1797 and min(sizes.values()) > 300
    for split in sizes:
        assert data.images[split].shape[1:] == (3, 32, 32) and data.images[split].dtype == torch.uint8
        assert set(data.labels[split].tolist()) == set(range(10))  # stratified
    x, y = next(data.batches("train", 64, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert x.shape == (64, 3, 32, 32) and x.dtype == torch.float32 and y.shape == (64,)
    assert abs(x.mean().item()) < 0.3 and 0.7 < x.std().item() < 1.3  # normalized with the train statistics
    assert torch.equal(x[:, 0], x[:, 1])  # grey replicated to three channels
    assert torch.equal(load_digits_data().images["test"], data.images["test"])  # splits do not depend on seeds


def test_generated_data_and_subsets() -> None:
    data = subset(load_synthetic_data(n=200), 16)
    assert all(data.size(split) == 16 for split in ("train", "val", "test"))
    batches = list(data.batches("val", 5))
    assert [len(y) for _, y in batches] == [5, 5, 5, 1]


def test_cifar100_is_read_locally_or_explained(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cifar-100-python.*Nothing is downloaded"):
        load_data(str(tmp_path))
    with pytest.raises(DataError, match="neither 'digits', 'synthetic' nor a directory"):
        load_data(str(tmp_path / "absent"))


def write_tiny_cifar100(root: Path, *, train: int = 40, test: int = 10) -> dict[str, tuple[np.ndarray, list[int]]]:
    """A ``cifar-100-python/`` folder as torchvision's CIFAR100 reads it: pickled dicts of rows of 3072 bytes."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    parts = {}
    for name, n in (("train", train), ("test", test)):
        data = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)  # planes R, G, B of 32x32, row-major
        fine = [int(i * 37 % 100) for i in range(n)]
        entry = {"filenames": [f"img{i}.png" for i in range(n)], "batch_label": name, "fine_labels": fine,
                 "coarse_labels": [label // 5 for label in fine], "data": data}
        (folder / name).write_bytes(pickle.dumps(entry))
        parts[name] = (data, fine)
    meta = {"fine_label_names": [f"class{i}" for i in range(100)],
            "coarse_label_names": [f"super{i}" for i in range(20)]}
    (folder / "meta").write_bytes(pickle.dumps(meta))
    return parts


def test_cifar100_in_torchvisions_format_is_loaded(tmp_path: Path) -> None:
    parts = write_tiny_cifar100(tmp_path)
    data = load_data(str(tmp_path))
    assert data.name == "cifar100" and data.num_classes == 100 and data.augment
    assert {split: data.size(split) for split in ("train", "val", "test")} == {"train": 36, "val": 4, "test": 10}
    assert all(data.images[split].shape[1:] == (3, 32, 32) and data.images[split].dtype == torch.uint8
               for split in ("train", "val", "test"))
    test_rows, test_labels = parts["test"]
    assert data.labels["test"].tolist() == test_labels  # the official test set, in its order
    # Pixel (y, x) of channel c is byte c * 1024 + y * 32 + x of its row.
    image = data.images["test"][3]
    assert image[1, 2, 5].item() == test_rows[3][1 * 1024 + 2 * 32 + 5]
    # Train and val are the training set, disjoint, every image once, labels with their images.
    train_rows, train_labels = parts["train"]
    by_pixels = {bytes(row): label for row, label in zip(train_rows, train_labels, strict=True)}
    seen = [bytes(img.numpy().reshape(-1)) for split in ("train", "val") for img in data.images[split]]
    assert sorted(seen) == sorted(by_pixels)
    for split in ("train", "val"):
        for img, label in zip(data.images[split], data.labels[split].tolist(), strict=True):
            assert by_pixels[bytes(img.numpy().reshape(-1))] == label
    x, y = next(data.batches("train", 8, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32 and y.shape == (8,)


def test_the_tiny_cifar100_is_what_torchvision_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.datasets import CIFAR100

    write_tiny_cifar100(tmp_path)
    # torchvision checks the official files' checksums, which a made-up folder cannot have: that check is set aside.
    monkeypatch.setattr(CIFAR100, "_check_integrity", lambda self: True)
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda path, md5=None: True)
    theirs = CIFAR100(str(tmp_path), train=False, download=False)
    ours = load_data(str(tmp_path))
    assert torch.equal(ours.images["test"], torch.from_numpy(theirs.data).permute(0, 3, 1, 2))
    assert ours.labels["test"].tolist() == theirs.targets and theirs.classes[:2] == ["class0", "class1"]


def test_a_broken_cifar100_folder_is_explained(tmp_path: Path) -> None:
    write_tiny_cifar100(tmp_path)
    (tmp_path / "cifar-100-python" / "test").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="could not read .*test.*Nothing is downloaded"):
        load_data(str(tmp_path))
