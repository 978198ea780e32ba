"""Vision data: CIFAR pickles and ImageFolder reading, splits, the DeiT transforms, MixUp/CutMix targets,
RandAugment, and the error for a missing dataset."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from vision.datamodules import CIFAR10DataModule, CIFAR100DataModule, ImageNetDataModule, MissingDataError
from vision.mixing import MixCollate
from vision.randaugment import BINS, SPACE, DeiTRandAugment
from vision.synthetic import write_cifar, write_image_folder


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vision-data")
    write_image_folder(root, classes=4, train_per_class=12, val_per_class=4, size=40)
    write_cifar(root, 10, train_images=100, test_images=20)
    write_cifar(root, 100, train_images=100, test_images=20)
    return root


def imagenet(root: Path, **kwargs) -> ImageNetDataModule:
    args = dict(root=root, num_classes=4, val_holdout=8, image_size=32, batch_size=8, num_workers=0)
    return ImageNetDataModule(**{**args, **kwargs})


# -- reading and splits -----------------------------------------------------------------------------------
def test_cifar_pickles_decode_channel_planar_pixels_and_labels(tmp_path: Path) -> None:
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    image = np.zeros((32, 32, 3), np.uint8)
    image[:, :, 0], image[0, :, 2] = 200, 50  # red everywhere, blue along the top row
    planar = image.transpose(2, 0, 1).reshape(1, 3072)
    for b in range(1, 6):
        with open(folder / f"data_batch_{b}", "wb") as f:
            pickle.dump({b"data": np.repeat(planar, 2, 0), b"labels": [b, 9 - b]}, f)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": planar, b"labels": [7]}, f)
    dm = CIFAR10DataModule(root=tmp_path, num_workers=0, batch_size=2)
    dm.setup("test")
    test = dm.datasets["test"]
    pil, label = test.base[0]
    assert label == 7
    assert np.array_equal(np.asarray(pil), image)
    dm.setup("fit")
    train, val = dm.datasets["train"], dm.datasets["val"]
    assert len(train) == 9 and len(val) == 1  # 10 % of 10
    labels = sorted(int(train.base.labels[i]) for i in train.indices + val.indices)
    assert labels == sorted([b for b in range(1, 6)] + [9 - b for b in range(1, 6)])


def test_cifar_split_is_disjoint_complete_and_seeded(root: Path) -> None:
    def split(seed: int) -> tuple[list[int], list[int]]:
        dm = CIFAR10DataModule(root=root, seed=seed, num_workers=0, batch_size=8)
        dm.setup("fit")
        return dm.datasets["train"].indices, dm.datasets["val"].indices

    train, val = split(0)
    assert len(train) == 90 and len(val) == 10
    assert sorted(train + val) == list(range(100))
    assert split(0) == (train, val)
    assert split(1)[1] != val


def test_cifar100_uses_the_fine_labels(root: Path) -> None:
    dm = CIFAR100DataModule(root=root, num_workers=0, batch_size=8)
    assert (dm.num_classes, dm.in_channels, dm.image_size) == (100, 3, 32)
    dm.setup("test")
    with open(root / "cifar100" / "cifar-100-python" / "test", "rb") as f:
        fine = pickle.load(f, encoding="bytes")[b"fine_labels"]
    assert [label for _, label in (dm.datasets["test"].base[i] for i in range(20))] == fine
    assert max(fine) >= 20  # not the 20 coarse labels


def test_image_folder_splits_hold_out_training_images_and_test_on_val(root: Path) -> None:
    dm = imagenet(root)
    assert (dm.num_classes, dm.in_channels, dm.image_size) == (4, 3, 32)
    dm.setup("fit")
    dm.setup("test")
    train, val, test = (dm.datasets[s] for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (40, 8, 16)
    assert set(train.indices).isdisjoint(val.indices) and train.base is val.base
    assert test.base.root.endswith("val")
    limited = imagenet(root, limit_train=12)
    limited.setup("fit")
    # limits take a random subset, not the first class folder
    assert len({limited.datasets["train"].base.targets[i] for i in limited.datasets["train"].indices}) > 1


def test_image_folder_class_count_is_checked(root: Path) -> None:
    dm = imagenet(root, num_classes=1000)
    with pytest.raises(ValueError, match="4 class folders but data.num_classes is 1000"):
        dm.setup("fit")


# -- batches --------------------------------------------------------------------------------------------
def test_training_batches_are_mixed_with_soft_targets_that_sum_to_one(root: Path) -> None:
    torch.manual_seed(0)
    dm = imagenet(root)
    dm.setup("fit")
    mixed = 0
    for images, targets in dm.train_dataloader():
        assert images.shape == (8, 3, 32, 32) and images.dtype == torch.float32
        assert targets.shape == (8, 4) and targets.dtype == torch.float32
        assert torch.allclose(targets.sum(dim=1), torch.ones(8), atol=1e-5) and targets.min() >= 0
        mixed += int((targets.max(dim=1).values < 1 - 1e-6).sum())
    assert mixed > 0


def test_evaluation_batches_are_deterministic_with_hard_labels(root: Path) -> None:
    dm = imagenet(root)
    dm.setup("fit")
    first = [b for b in dm.val_dataloader()]
    second = [b for b in dm.val_dataloader()]
    images, labels = first[0]
    assert images.shape == (8, 3, 32, 32) and labels.dtype == torch.int64 and labels.shape == (8,)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, second))


def test_mixing_off_gives_class_indices(root: Path) -> None:
    dm = CIFAR10DataModule(root=root, num_workers=0, batch_size=8, mixup_alpha=0.0, cutmix_alpha=0.0)
    dm.setup("fit")
    images, targets = next(iter(dm.train_dataloader()))
    assert images.shape == (8, 3, 32, 32) and targets.dtype == torch.int64 and targets.shape == (8,)


@pytest.mark.parametrize("mixup, cutmix", [(0.8, 0.0), (0.0, 1.0), (0.8, 1.0)])
def test_mixed_targets_match_the_mixed_pixels(mixup: float, cutmix: float) -> None:
    # image k is the constant k: a mixed image's mean is then sum_k target_k * k, for MixUp (blend) and CutMix
    # (pasted box, lambda corrected to the box area) alike, so the targets must describe the pixels
    torch.manual_seed(0)
    collate = MixCollate(6, mixup_alpha=mixup, cutmix_alpha=cutmix)
    samples = [(torch.full((3, 16, 16), float(k)), k) for k in range(6)]
    for _ in range(10):
        images, targets = collate(samples)
        assert targets.shape == (6, 6)
        expected = targets @ torch.arange(6.0)
        assert torch.allclose(images.mean(dim=(1, 2, 3)), expected, atol=1e-4)


def test_loader_pieces_survive_pickling_for_worker_processes(root: Path) -> None:
    dm = imagenet(root)
    dm.setup("fit")
    loader = dm.train_dataloader()
    dataset, collate = pickle.loads(pickle.dumps((loader.dataset, loader.collate_fn)))
    images, targets = collate([dataset[i] for i in range(4)])
    assert images.shape == (4, 3, 32, 32) and targets.shape == (4, 4)


def test_imagenet_eval_transform_resizes_to_256_then_crops_224(root: Path) -> None:
    dm = ImageNetDataModule(root=root)
    resize = next(t for t in dm.eval_tf.transforms if isinstance(t, v2.Resize))
    assert resize.size == [256]
    out = dm.eval_tf(Image.new("RGB", (400, 300)))
    assert out.shape == (3, 224, 224)
    assert dm.train_tf(Image.new("RGB", (400, 300))).shape == (3, 224, 224)


# -- RandAugment ----------------------------------------------------------------------------------------
def test_every_randaugment_op_runs_on_pil_and_tensor_images() -> None:
    ra = DeiTRandAugment(fill=[124, 116, 104])
    pil = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    tensor = v2.functional.pil_to_tensor(pil)
    assert "Invert" in SPACE and "Identity" not in SPACE
    for name, (magnitudes, _) in SPACE.items():
        values = magnitudes(BINS, 32, 32)
        magnitude = 0.0 if values is None else float(values[90])
        for image, interpolation in ((pil, v2.InterpolationMode.BICUBIC), (tensor, v2.InterpolationMode.BILINEAR)):
            out = ra._apply_image_or_video_transform(image, name, magnitude, interpolation=interpolation, fill=ra._fill)
            assert tuple(v2.functional.get_size(out)) == (32, 32), name


def test_randaugment_magnitude_noise_and_op_probability() -> None:
    torch.manual_seed(0)
    ra = DeiTRandAugment(num_ops=2, magnitude=9, magnitude_std=0.5, op_prob=0.5, interpolation="bilinear")
    bins = torch.tensor([ra.sample_magnitude() for _ in range(4000)], dtype=torch.float32)
    assert abs(bins.mean().item() - 90) < 0.5 and abs(bins.std().item() - 5) < 0.5
    assert bins.max() <= 100
    # each of the 2 ops is applied with probability 0.5: a quarter of the images pass unchanged (the pixel range
    # 60..180 makes every op, AutoContrast included, change the image)
    image = torch.from_numpy(np.random.default_rng(1).integers(60, 181, (3, 16, 16), dtype=np.uint8))
    unchanged = sum(torch.equal(ra(image), image) for _ in range(400)) / 400
    assert 0.18 < unchanged < 0.32


# -- missing data ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("module, missing, hint", [
    (CIFAR10DataModule, "cifar10/cifar-10-batches-py", "cifar-10-python.tar.gz"),
    (CIFAR100DataModule, "cifar100/cifar-100-python", "cifar-100-python.tar.gz"),
    (ImageNetDataModule, "imagenet/train", "ImageFolder layout"),
])
def test_a_missing_dataset_names_the_path_and_what_to_place_there(tmp_path: Path, module, missing: str, hint: str) -> None:
    dm = module(root=tmp_path / "nowhere", num_workers=0)
    with pytest.raises(FileNotFoundError) as err:
        dm.setup("fit")
    assert isinstance(err.value, MissingDataError)
    assert str(tmp_path / "nowhere" / missing) in str(err.value)
    assert hint in str(err.value)
