"""Shared data pieces: epoch-seeded shuffling (resumable), padding collate, seeded splits,
vocabulary order, and the data root default."""

from __future__ import annotations

from collections import Counter
import torch

from harness.datasets import holdout_lengths, resolve_root, seeded_split
from helpers.lra_files import write_listops
from lra.data.collate import ImageCollate, PairCollate, SequenceCollate
from lra.data.samplers import EpochShuffleSampler
from lra.data.vocab import Vocabulary


def test_epoch_shuffle_depends_only_on_seed_and_epoch():
    a, b = EpochShuffleSampler(50, seed=7), EpochShuffleSampler(50, seed=7)
    first = list(a)
    assert sorted(first) == list(range(50))
    second = list(a)  # without set_epoch it moves on to the next epoch by itself
    assert second != first
    b.set_epoch(1)  # what Lightning does, e.g. after resuming at epoch 1
    assert list(b) == second
    b.set_epoch(0)
    assert list(b) == first
    assert list(EpochShuffleSampler(50, seed=8)) != first


def test_training_loader_order_follows_the_run_seed(tmp_path):
    from lra.data import ListOpsDataModule

    write_listops(tmp_path, dict.fromkeys(("train", "val", "test"), [(str(d), d) for d in list(range(10)) * 4]))

    def order(seed: int) -> list[int]:
        torch.manual_seed(seed)
        dm = ListOpsDataModule(tmp_path, batch_size=40)
        return next(iter(dm.train_dataloader()))["y"].tolist()

    assert order(3) == order(3) and order(3) != order(4)
    dm = ListOpsDataModule(tmp_path, batch_size=40)
    assert next(iter(dm.val_dataloader()))["y"].tolist() == list(range(10)) * 4  # evaluation is not shuffled


def test_padding_collates_keep_true_lengths():
    batch = SequenceCollate(0)([(torch.tensor([5, 6, 7]), 1), (torch.tensor([8]), 0)])
    assert batch["x"].tolist() == [[5, 6, 7], [8, 0, 0]] and batch["lengths"].tolist() == [3, 1]
    pair = PairCollate(0)([(torch.tensor([1]), torch.tensor([2, 3]), 1), (torch.tensor([4, 5]), torch.tensor([6]), 0)])
    assert pair["x1"].tolist() == [[1, 0], [4, 5]] and pair["x2"].tolist() == [[2, 3], [6, 0]]
    assert pair["lengths1"].tolist() == [1, 2] and pair["lengths2"].tolist() == [2, 1]
    img = [(torch.tensor([[0], [255]], dtype=torch.uint8), 1)]
    assert ImageCollate("unit")(img)["x"].flatten().tolist() == [0.0, 1.0]
    assert ImageCollate("center")(img)["x"].flatten().tolist() == [-1.0, 1.0]
    assert ImageCollate("tokens")(img)["x"].tolist() == [[0, 255]]


def test_seeded_split_equals_torch_random_split():
    parts = seeded_split(103, list(holdout_lengths(103, 0.1, 0.1)), seed=42)
    ref = torch.utils.data.random_split(range(103), [83, 10, 10], generator=torch.Generator().manual_seed(42))
    assert [p.tolist() for p in parts] == [list(r.indices) for r in ref]
    assert holdout_lengths(50_000, 0.1) == (45_000, 5_000, 0)


def test_vocabulary_order_and_round_trip(tmp_path):
    vocab = Vocabulary.build(Counter("bbbaac"), min_freq=2)
    assert vocab.tokens == ["<pad>", "<unk>", "<eos>", "b", "a"]  # by count, then by token
    assert vocab.id("c") == vocab.unk_index
    vocab.save(tmp_path / "v.json")
    assert Vocabulary.load(tmp_path / "v.json") == vocab


def test_data_root_default(monkeypatch, tmp_path):
    monkeypatch.delenv("HGRN_DATA", raising=False)
    assert str(resolve_root(None)) == "data"
    monkeypatch.setenv("HGRN_DATA", str(tmp_path))
    assert resolve_root(None) == tmp_path
    assert resolve_root("elsewhere").name == "elsewhere"
