"""Image (CIFAR-10 in torchvision's pickled format): grey and RGB sequences, the seeded 90/10
split, pixel scaling, augmentation, and damaged batches."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.lra_files import CIFAR_PER_BATCH, rgb_images, write_cifar
from lra.data import ImageDataModule, MalformedDataError, MissingDataError


def test_grey_sequence_split_and_normalisation(tmp_path):
    raw = write_cifar(tmp_path)
    dm = ImageDataModule(tmp_path, batch_size=7)
    assert (dm.num_classes, dm.in_channels, dm.grid, dm.max_length) == (10, 1, (32, 32), 1024)
    dm.setup()
    n = 5 * CIFAR_PER_BATCH
    assert dm.summary()["sizes"] == {"train": 90, "val": 10, "test": CIFAR_PER_BATCH}
    # The split is torch's random_split with seed 42 (what S4 does).
    train_idx, val_idx = torch.utils.data.random_split(range(n), [90, 10], generator=torch.Generator().manual_seed(42))
    train_data = np.concatenate([raw[f"data_batch_{i}"][0] for i in range(1, 6)])
    train_labels = np.concatenate([raw[f"data_batch_{i}"][1] for i in range(1, 6)])
    for k in (0, 5):
        pixels, y = dm.dataset("val")[k]
        j = val_idx.indices[k]
        grey = np.asarray(Image.fromarray(rgb_images(train_data[j:j + 1])[0]).convert("L"))  # PIL's luma
        assert pixels.shape == (1024, 1) and pixels.dtype == torch.uint8
        assert np.array_equal(pixels[:, 0].numpy(), grey.reshape(-1))  # row-major
        assert y == train_labels[j]
    assert dm.dataset("train").indices.tolist() == list(train_idx.indices)
    batch = next(iter(dm.test_dataloader()))
    assert batch["x"].shape == (7, 1024, 1) and batch["x"].dtype == torch.float32
    assert batch["lengths"].tolist() == [1024] * 7
    # Normalised with S4's mean 122.6/255 and std 61/255.
    test_grey = np.asarray([np.asarray(Image.fromarray(im).convert("L")) for im in rgb_images(raw["test_batch"][0][:7])])
    expected = (torch.tensor(test_grey.reshape(7, 1024, 1), dtype=torch.float32) / 255 - 122.6 / 255) / (61.0 / 255)
    assert torch.allclose(batch["x"], expected, atol=1e-5)
    assert batch["y"].tolist() == raw["test_batch"][1][:7].tolist()


def test_rgb_unit_scale_and_tokens(tmp_path):
    raw = write_cifar(tmp_path)
    rgb = ImageDataModule(tmp_path, grayscale=False, pixel_scale="unit", batch_size=4)
    assert rgb.in_channels == 3
    batch = next(iter(rgb.test_dataloader()))
    expected = torch.tensor(rgb_images(raw["test_batch"][0][:4]).reshape(4, 1024, 3), dtype=torch.float32) / 255
    assert torch.allclose(batch["x"], expected)
    tok = ImageDataModule(tmp_path, pixel_scale="tokens", batch_size=4)
    assert tok.vocab_size == 256
    batch = next(iter(tok.test_dataloader()))
    assert batch["x"].dtype == torch.long and batch["x"].shape == (4, 1024)
    assert 0 <= int(batch["x"].min()) and int(batch["x"].max()) <= 255
    with pytest.raises(ValueError, match="grayscale"):
        ImageDataModule(tmp_path, grayscale=False, pixel_scale="tokens")


def test_augmentation_crops_and_flips_training_images_only(tmp_path):
    write_cifar(tmp_path)
    torch.manual_seed(0)
    dm = ImageDataModule(tmp_path, grayscale=False, augment=True, pixel_scale="unit")
    train = dm.dataset("train")
    plain = ImageDataModule(tmp_path, grayscale=False, augment=False).dataset("train")
    changed = 0
    for i in range(10):
        aug, y = train[i]
        orig, y0 = plain[i]
        assert y == y0 and aug.shape == (1024, 3)
        # Symmetric padding only repeats existing pixels: every augmented pixel occurs in the original.
        orig_px = {tuple(p) for p in orig.tolist()}
        assert all(tuple(p) in orig_px for p in aug.tolist())
        changed += int(not torch.equal(aug, orig))
    assert changed >= 7  # the chance of no crop and no flip is 1/162 per image
    val = dm.dataset("val")
    assert torch.equal(val[0][0], val[0][0])  # deterministic outside training


def test_missing_and_damaged_batches(tmp_path):
    with pytest.raises(MissingDataError, match="python -m lra.prepare image --root"):
        ImageDataModule(tmp_path).setup("fit")
    write_cifar(tmp_path)
    d = tmp_path / "cifar10" / "cifar-10-batches-py"
    (d / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(MalformedDataError, match="data_batch_3"):
        ImageDataModule(tmp_path).setup("fit")
    with open(d / "data_batch_3", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [3, 10]}, f)
    with pytest.raises(MalformedDataError, match=r"data_batch_3: label 10 of image 1 outside 0\.\.9"):
        ImageDataModule(tmp_path).setup("fit")
