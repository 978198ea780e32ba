"""``python -m lra.prepare``: synthetic tasks, placed archives (md5-checked), fast and clear
failure without network, and copying folders out of a local LRA release tarball."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
import time
from dataclasses import replace

import numpy as np
import pytest

import lra.prepare as prepare
from lra.data import ImageDataModule, ListOpsDataModule, RetrievalDataModule, TextDataModule
from lra.data.download import IMDB

UNREACHABLE = "http://127.0.0.1:9/nothing.tar.gz"  # discard port: refused at once, never downloads


def add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_listops_generation_with_demo_lengths(tmp_path, capsys):
    code = prepare.main(["listops", "--root", str(tmp_path), "--size", "200", "--min-length", "5",
                         "--max-length", "50", "--max-depth", "4", "--quiet", "--workers", "1"])
    assert code == 0
    assert "listops: generated" in capsys.readouterr().out
    dm = ListOpsDataModule(tmp_path)
    dm.setup()
    assert sum(len(d) for d in dm.datasets.values()) == 200
    # A second run keeps the data (no --force).
    assert prepare.main(["listops", "--root", str(tmp_path), "--quiet"]) == 0
    assert "already exists" in capsys.readouterr().out


def test_download_fails_fast_and_says_where_to_put_the_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(prepare, "IMDB", replace(IMDB, url=UNREACHABLE))
    start = time.perf_counter()
    code = prepare.main(["text", "--root", str(tmp_path), "--quiet", "--timeout", "5"])
    assert time.perf_counter() - start < 5
    out = capsys.readouterr().out
    assert code == 2
    assert f"place it at {tmp_path / 'imdb' / 'aclImdb_v1.tar.gz'}" in out and IMDB.md5 in out


def test_placed_archive_is_verified_and_unpacked(tmp_path, monkeypatch, capsys):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for split in ("train", "test"):
            for label, text in (("pos", b"lovely"), ("neg", b"dreadful")):
                add_file(tar, f"aclImdb/{split}/{label}/0_5.txt", text)
    archive = tmp_path / "imdb" / "aclImdb_v1.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(b"wrong bytes")
    monkeypatch.setattr(prepare, "IMDB", replace(IMDB, url=UNREACHABLE, md5=hashlib.md5(buf.getvalue()).hexdigest()))
    assert prepare.main(["text", "--root", str(tmp_path), "--quiet"]) == 2
    assert "has md5" in capsys.readouterr().out  # a bad archive is moved aside, not unpacked
    archive.write_bytes(buf.getvalue())
    assert prepare.main(["text", "--root", str(tmp_path), "--quiet"]) == 0
    dm = TextDataModule(tmp_path)
    assert [dm.dataset("train")[i][1] for i in range(2)] == [0, 1]


def test_cifar_archive_round_trip(tmp_path, monkeypatch):
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            blob = pickle.dumps({b"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8), b"labels": [1] * 10})
            add_file(tar, f"cifar-10-batches-py/{name}", blob)
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "cifar-10-python.tar.gz").write_bytes(buf.getvalue())
    monkeypatch.setattr(prepare, "CIFAR10", replace(prepare.CIFAR10, url=UNREACHABLE,
                                                    md5=hashlib.md5(buf.getvalue()).hexdigest()))
    assert prepare.main(["image", "--root", str(tmp_path), "--quiet"]) == 0
    assert len(ImageDataModule(tmp_path).dataset("train")) == 45


def test_retrieval_from_a_local_release(tmp_path, capsys):
    assert prepare.main(["retrieval", "--root", str(tmp_path / "data"), "--quiet"]) == 2
    assert "new_aan_pairs.train.tsv" in capsys.readouterr().out
    release = tmp_path / "lra_release.gz"
    with tarfile.open(release, "w:gz") as tar:
        for split in ("train", "eval", "test"):
            add_file(tar, f"lra_release/lra_release/tsv_data/new_aan_pairs.{split}.tsv", b"1\ta\tb\tdoc one\tdoc two\n")
        add_file(tar, "lra_release/lra_release/listops-1000/basic_train.tsv", b"Source\tTarget\n3\t3\n")
    root = tmp_path / "data"
    assert prepare.main(["retrieval", "--root", str(root), "--release", str(release), "--quiet"]) == 0
    assert not (root / "listops-1000").exists()  # only what was asked for
    assert RetrievalDataModule(root).dataset("test")[0][2] == 1


def test_unknown_task_is_rejected():
    with pytest.raises(SystemExit):
        prepare.main(["cifar"])
