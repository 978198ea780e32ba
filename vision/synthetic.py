"""Small stand-ins for the real datasets, in their real on-disk formats, for the ``*-tiny`` configs and the
tests: an ImageFolder tree (``<root>/imagenet/{train,val}/<class>/*.png``) and CIFAR-10/100 pickles
(``<root>/cifar10/cifar-10-batches-py/``, ``<root>/cifar100/cifar-100-python/``).

Each class has its own colour and a bright square at its own place, plus noise, so a model can learn it.

    python -m vision.synthetic --root data-tiny   # then: --data.init_args.root data-tiny
"""
from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np
from PIL import Image


def class_images(label: int, count: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """(count, size, size, 3) uint8 images of class ``label``."""
    colour = np.array([(label * 97) % 256, (label * 57 + 80) % 256, (label * 31 + 160) % 256], dtype=np.float32)
    images = colour + rng.normal(0.0, 40.0, size=(count, size, size, 3))
    side = max(2, size // 4)
    row, col = ((label // 2) % 2) * (size - side), (label % 2) * (size - side)
    images[:, row:row + side, col:col + side] = 255.0
    return np.clip(images, 0, 255).astype(np.uint8)


def write_image_folder(root: str | Path, classes: int = 4, train_per_class: int = 12, val_per_class: int = 4,
                       size: int = 40, folder: str = "imagenet", seed: int = 0) -> Path:
    """Write ``<root>/<folder>/{train,val}/class<k>/<i>.png``; returns ``<root>/<folder>``."""
    rng = np.random.default_rng(seed)
    base = Path(root) / folder
    for split, per_class in (("train", train_per_class), ("val", val_per_class)):
        for k in range(classes):
            out = base / split / f"class{k:03d}"
            out.mkdir(parents=True, exist_ok=True)
            for i, image in enumerate(class_images(k, per_class, size, rng)):
                Image.fromarray(image).save(out / f"{i}.png")
    return base


def _planar(images: np.ndarray) -> np.ndarray:
    # CIFAR stores each image as 1024 R, then 1024 G, then 1024 B values
    return images.transpose(0, 3, 1, 2).reshape(len(images), 3072)


def _dump(path: Path, payload: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(payload, f)


def write_cifar(root: str | Path, num_classes: int = 10, train_images: int = 100, test_images: int = 20,
                seed: int = 0) -> Path:
    """Write CIFAR-10 (``num_classes`` 10: data_batch_1..5, test_batch, batches.meta) or CIFAR-100 (100:
    train, test, meta) pickles with bytes keys, as the released files load; returns their folder."""
    if num_classes not in (10, 100):
        raise ValueError(f"num_classes must be 10 or 100, got {num_classes}")
    rng = np.random.default_rng(seed)

    def make(n: int) -> tuple[np.ndarray, list[int]]:
        labels = [int(v) for v in rng.integers(0, num_classes, size=n)]
        images = np.concatenate([class_images(k, 1, 32, rng) for k in labels]) if n else np.zeros((0, 32, 32, 3), np.uint8)
        return _planar(images), labels

    if num_classes == 10:
        out = Path(root) / "cifar10" / "cifar-10-batches-py"
        out.mkdir(parents=True, exist_ok=True)
        per_batch = train_images // 5
        for b in range(1, 6):
            data, labels = make(per_batch)
            _dump(out / f"data_batch_{b}", {b"batch_label": f"training batch {b} of 5".encode(), b"labels": labels,
                                             b"data": data, b"filenames": [f"{b}_{i}.png".encode() for i in range(per_batch)]})
        data, labels = make(test_images)
        _dump(out / "test_batch", {b"batch_label": b"testing batch 1 of 1", b"labels": labels, b"data": data})
        _dump(out / "batches.meta", {b"label_names": [f"class{k}".encode() for k in range(10)],
                                     b"num_cases_per_batch": per_batch, b"num_vis": 3072})
        return out
    out = Path(root) / "cifar100" / "cifar-100-python"
    out.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", train_images), ("test", test_images)):
        data, labels = make(n)
        _dump(out / name, {b"filenames": [f"{i}.png".encode() for i in range(n)], b"fine_labels": labels,
                           b"coarse_labels": [k // 5 for k in labels], b"data": data})
    _dump(out / "meta", {b"fine_label_names": [f"fine{k}".encode() for k in range(100)],
                         b"coarse_label_names": [f"coarse{k}".encode() for k in range(20)]})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="data root to write into")
    args = parser.parse_args()
    print(write_image_folder(args.root))
    print(write_cifar(args.root, 10, train_images=500, test_images=100))
    print(write_cifar(args.root, 100, train_images=500, test_images=100))


if __name__ == "__main__":
    main()
