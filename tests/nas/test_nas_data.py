"""Data for searches: digits upsampled to 32x32 RGB, generated images, and CIFAR-100's missing-data message."""

from __future__ import annotations

from pathlib import Path

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
