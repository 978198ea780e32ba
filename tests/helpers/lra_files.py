"""Small LRA data sets written in each release's own file layout, for the tests that read them back.

Each writer puts its files under ``root`` exactly where ``lra.prepare`` would (``root`` is the data root the
DataModules take) and returns what a test needs to check the reader independently.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

# -- Image: CIFAR-10 in torchvision's pickled format ---------------------------------------------------------
CIFAR_PER_BATCH = 20


def write_cifar(root: Path, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Five training batches and a test batch of CIFAR_PER_BATCH images each; returns {batch name:
    ((N, 3072) channel-planar uint8 data, labels)}."""
    rng = np.random.default_rng(seed)
    d = root / "cifar10" / "cifar-10-batches-py"
    d.mkdir(parents=True)
    out = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (CIFAR_PER_BATCH, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, CIFAR_PER_BATCH).tolist()
        with open(d / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": name.encode()}, f)
        out[name] = (data, np.array(labels))
    return out


def rgb_images(data: np.ndarray) -> np.ndarray:
    """CIFAR's channel-planar (N, 3072) rows as (N, 32, 32, 3) images."""
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


# -- Text: IMDB in the aclImdb layout ----------------------------------------------------------------------
IMDB_TRAIN = {"pos": ["A great film!", "Loved it <br /> wonderful", "Ünïcödé is fine"],
              "neg": ["Terrible.", "Boring \"plot\", bad acting"]}
IMDB_TEST = {"pos": ["Superb", "zzz qqq"], "neg": ["Awful awful", "meh"]}


def imdb_rows(reviews: dict[str, list[str]]) -> list[tuple[str, int]]:
    """(text, label) in the order the reader yields them: neg (0) first, then pos (1), each in file order."""
    return [(t, 0) for t in reviews["neg"]] + [(t, 1) for t in reviews["pos"]]


def write_acl(root: Path, train: dict[str, list[str]] = IMDB_TRAIN, test: dict[str, list[str]] = IMDB_TEST) -> None:
    """One review per file, ``aclImdb/{split}/{pos,neg}/{i}_{stars}.txt``, in UTF-8."""
    for split, reviews in (("train", train), ("test", test)):
        for label, texts in reviews.items():
            d = root / "imdb" / "aclImdb" / split / label
            d.mkdir(parents=True, exist_ok=True)
            for i, text in enumerate(texts):
                (d / f"{i}_{7 if label == 'pos' else 2}.txt").write_text(text, encoding="utf-8")


# -- Retrieval: AAN as the release's headerless TSVs ------------------------------------------------------------
AAN_ROWS = {
    "train": [("1", "a1", "b1", 'The "first" paper', "cites it"), ("0", "a2", "b2", "unrelated text here", "x"),
              ("1.0", "a3", "b3", "third", "fourth doc with a longer body")],
    "eval": [("0", "c1", "d1", "val one", "val two")],
    "test": [("1", "e1", "f1", "test one", "test two"), ("0", "e2", "f2", "t", "u")],
}


def write_aan(root: Path, rows: dict[str, list[tuple[str, ...]]] = AAN_ROWS) -> None:
    """``tsv_data/new_aan_pairs.{split}.tsv``: label, two ids, two documents per row (an empty list writes an
    empty file)."""
    d = root / "tsv_data"
    d.mkdir(parents=True, exist_ok=True)
    for split, lines in rows.items():
        (d / f"new_aan_pairs.{split}.tsv").write_text("".join("\t".join(r) + "\n" for r in lines))


# -- Pathfinder / Path-X: PNGs and per-batch metadata -------------------------------------------------------------
PATHFINDER_DIFFICULTY = "curv_contour_length_14"


def write_pathfinder(root: Path, res: int, n_per_batch: int, batches: int = 2, seed: int = 0) -> dict:
    """PNGs whose first pixel encodes (batch, index), metadata lines whose 3rd field is a decoy
    and whose 4th field is the label. Returns {path: (label, image)}."""
    rng = np.random.default_rng(seed)
    folder = root / f"pathfinder{res}" / PATHFINDER_DIFFICULTY
    truth = {}
    for b in range(batches):
        (folder / "imgs" / str(b)).mkdir(parents=True)
        (folder / "metadata").mkdir(parents=True, exist_ok=True)
        lines = []
        for i in range(n_per_batch):
            img = rng.integers(0, 256, (res, res), dtype=np.uint8)
            img[0, 0], img[0, 1] = b, i
            label = int(rng.integers(0, 2))
            p = folder / "imgs" / str(b) / f"sample_{i}.png"
            Image.fromarray(img).save(p)
            truth[str(p)] = (label, img)
            lines.append(f"imgs/{b} sample_{i}.png {1 - label} {label} 1.0 14 4 2 0.5 1 1")
        (folder / "metadata" / f"{b}.npy").write_text("\n".join(lines) + "\n")
    return truth


# -- ListOps: the release's TSVs ------------------------------------------------------------------------------
# ListOps rows in the released string form, with their values worked out by hand
LISTOPS_ROWS = [
    ("( ( ( ( [MAX 1 ) 7 ) 2 ) ] )", 7),
    ("( ( ( [MIN 4 ) ( ( ( [SM 5 ) 9 ) ] ) ) ] )", 4),
    ("( ( ( ( ( [MED 1 ) 2 ) 8 ) 9 ) ] )", 5),
    ("3", 3),
]


def write_listops(root: Path, rows_by_split: dict[str, list[tuple[str, int]]], header: bool = True) -> None:
    """``listops-1000/basic_{split}.tsv`` with a ``Source\\tTarget`` header (as released) unless ``header`` is
    False."""
    folder = root / "listops-1000"
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in rows_by_split.items():
        lines = (["Source\tTarget"] if header else []) + [f"{s}\t{y}" for s, y in rows]
        (folder / f"basic_{split}.tsv").write_text("\n".join(lines) + "\n")
