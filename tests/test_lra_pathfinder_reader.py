"""Pathfinder / Path-X reader: text metadata (label = 4th field), S4's 80/10/10 split, uint8
storage, counted skips of bad PNGs, and bad metadata."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.lra_files import PATHFINDER_DIFFICULTY, write_pathfinder
from lra.data import DataSkipWarning, MalformedDataError, MissingDataError, PathfinderDataModule, PathXDataModule
from lra.data.pixels import ImageRows


def test_labels_split_and_uint8_storage(tmp_path):
    truth = write_pathfinder(tmp_path, 32, 25, batches=4)
    dm = PathfinderDataModule(tmp_path, batch_size=5)
    assert (dm.num_classes, dm.in_channels, dm.grid, dm.max_length) == (2, 1, (32, 32), 1024)
    dm.setup()
    assert dm.summary()["sizes"] == {"train": 80, "val": 10, "test": 10}
    # Metadata order: files by number, lines in order; then torch's random_split with seed 42.
    order = [(b, i) for b in range(4) for i in range(25)]
    parts = torch.utils.data.random_split(range(100), [80, 10, 10], generator=torch.Generator().manual_seed(42))
    by_key = {(img[0, 0], img[0, 1]): (label, img) for label, img in truth.values()}
    for split, part in zip(("train", "val", "test"), parts):
        ds = dm.dataset(split)
        # Read as uint8 rows of a file (never floats in RAM); pickles as the file name.
        assert isinstance(ds.pixels, ImageRows) and ds.pixels.dtype == np.uint8
        assert len(pickle.dumps(ds)) < 20_000
        for k in range(len(ds)):
            pixels, y = ds[k]
            label, img = by_key[order[part.indices[k]]]
            assert y == label  # the 4th field, not the decoy 3rd
            assert np.array_equal(pixels[:, 0].numpy(), img.reshape(-1))
    batch = next(iter(dm.test_dataloader()))
    assert batch["x"].shape == (5, 1024, 1) and batch["lengths"].tolist() == [1024] * 5
    assert 0.0 <= float(batch["x"].min()) and float(batch["x"].max()) <= 1.0  # "unit" scaling


def test_bad_pngs_are_skipped_and_counted(tmp_path):
    truth = write_pathfinder(tmp_path, 32, 10, batches=2)
    paths = sorted(truth)
    Path(paths[0]).write_bytes(b"")  # empty, like the release's baseline sample_172.png
    Path(paths[1]).write_bytes(b"\x89PNG garbage")  # corrupt
    Path(paths[2]).unlink()  # listed but absent
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(paths[3])  # wrong size
    dm = PathfinderDataModule(tmp_path)
    with pytest.warns(DataSkipWarning, match="skipped 4 example"):
        dm.setup()
    assert dm.skipped["all"] == {"empty PNG": 1, "unreadable PNG": 1, "missing PNG": 1, "image not 32x32": 1}
    assert sum(len(dm.dataset(s)) for s in ("train", "val", "test")) == 16
    # The cache remembers the skips: a second start reports them again without decoding.
    again = PathfinderDataModule(tmp_path)
    with pytest.warns(DataSkipWarning, match="skipped 4 example"):
        again.setup()
    assert again.skipped == dm.skipped


@pytest.mark.parametrize("line, message", [
    ("imgs/0 sample_0.png 0", r"0\.npy:2: metadata line has 3 field\(s\), needs at least 4"),
    ("imgs/0 sample_0.png 0 2 1.0", r"0\.npy:2: label '2' is not 0 or 1"),
    ("imgs/0 sample_0.png 0 x 1.0", r"0\.npy:2: label 'x' is not a number"),
])
def test_bad_metadata_lines_report_file_and_line(tmp_path, line, message):
    write_pathfinder(tmp_path, 32, 3, batches=1)
    meta = tmp_path / "pathfinder32" / PATHFINDER_DIFFICULTY / "metadata" / "0.npy"
    lines = meta.read_text().splitlines()
    meta.write_text("\n".join([lines[0], line] + lines[1:]) + "\n")
    with pytest.raises(MalformedDataError, match=message):
        PathfinderDataModule(tmp_path).setup()


def test_binary_numpy_metadata_is_read_too(tmp_path):
    truth = write_pathfinder(tmp_path, 32, 10, batches=1)
    meta = tmp_path / "pathfinder32" / PATHFINDER_DIFFICULTY / "metadata" / "0.npy"
    rows = np.array([line.split() for line in meta.read_text().splitlines()])
    with open(meta, "wb") as f:  # what the original generator's np.save wrote
        np.save(f, rows)
    dm = PathfinderDataModule(tmp_path, val_fraction=0.0, test_fraction=0.0)
    ds = dm.dataset("train")
    assert len(ds) == 10
    labels = sorted(truth.values(), key=lambda t: int(t[1][0, 1]))
    assert sorted(ds[k][1] for k in range(10)) == sorted(label for label, _ in labels)


def test_path_x_reader_and_scales(tmp_path):
    write_pathfinder(tmp_path, 128, 10, batches=1)
    dm = PathXDataModule(tmp_path, batch_size=2, pixel_scale="center")
    assert (dm.grid, dm.max_length) == ((128, 128), 16384)
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape == (2, 16384, 1)
    assert float(batch["x"].min()) >= -1.0 and float(batch["x"].max()) <= 1.0 and float(batch["x"].min()) < -0.9
    tok = PathfinderDataModule(tmp_path, resolution=128, pixel_scale="tokens", batch_size=2)
    assert tok.vocab_size == 256
    assert next(iter(tok.test_dataloader()))["x"].dtype == torch.long


def test_missing_folders_name_the_right_command(tmp_path):
    tmp_path.joinpath("pathfinder32").mkdir()
    with pytest.raises(MissingDataError, match=r"pathfinder32/curv_contour_length_14/metadata.*lra\.prepare pathfinder --root"):
        PathfinderDataModule(tmp_path).setup()
    with pytest.raises(MissingDataError, match=r"lra\.prepare pathx --root"):
        PathXDataModule(tmp_path).setup()
    with pytest.raises(MissingDataError, match=r"lra\.prepare pathfinder --root \S+ --difficulty curv_baseline"):
        PathfinderDataModule(tmp_path, difficulty="curv_baseline").setup()
