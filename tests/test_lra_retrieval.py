"""Retrieval (AAN): headerless 5-column TSVs, two documents and a label per example, byte and
char tokenisation, quotes as plain characters, and bad rows."""

from __future__ import annotations

from collections import Counter

import pytest

from helpers.lra_files import AAN_ROWS, write_aan
from lra.data import MalformedDataError, MissingDataError, RetrievalDataModule


def test_two_documents_label_and_batches(tmp_path):
    write_aan(tmp_path)
    dm = RetrievalDataModule(tmp_path, batch_size=3, max_length=10)
    assert (dm.vocab_size, dm.pad_index, dm.num_classes, dm.max_length) == (257, 0, 2, 10)
    dm.setup()
    assert dm.summary()["sizes"] == {"train": 3, "val": 1, "test": 2}
    ids1, ids2, y = dm.dataset("train")[0]
    assert ids1.tolist() == [b + 1 for b in b'The "first" paper'[:10]]  # quotes are plain bytes
    assert ids2.tolist() == [b + 1 for b in b"cites it"]
    assert y == 1
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"x1", "x2", "lengths1", "lengths2", "y"}
    assert sorted(batch["y"].tolist()) == [0, 1, 1]  # "1.0" is read as 1
    assert batch["x1"].shape == (3, int(batch["lengths1"].max()))
    assert batch["x2"].shape == (3, int(batch["lengths2"].max()))
    assert int(batch["lengths2"].max()) == 10  # the long second document is cut to max_length


def test_char_vocabulary_from_both_training_documents(tmp_path):
    write_aan(tmp_path)
    dm = RetrievalDataModule(tmp_path, tokenizer="char", max_length=50)
    chars = Counter()
    for r in AAN_ROWS["train"]:
        chars.update(r[3] + r[4])
    assert dm.vocab_size == 3 + len(chars)
    ids1, _, _ = dm.dataset("test")[0]
    assert ids1[-1].item() == dm.vocab.eos_index and len(ids1) == len("test one") + 1


@pytest.mark.parametrize("row, message", [
    (("1", "a", "b", "only four"), r"new_aan_pairs\.train\.tsv:2: expected 5 tab-separated fields"),
    (("2", "a", "b", "t1", "t2"), r"new_aan_pairs\.train\.tsv:2: label '2' is not 0 or 1"),
    (("yes", "a", "b", "t1", "t2"), r"new_aan_pairs\.train\.tsv:2: label 'yes' is not a number"),
])
def test_bad_rows_report_file_and_line(tmp_path, row, message):
    write_aan(tmp_path, {"train": [AAN_ROWS["train"][0], row]})
    with pytest.raises(MalformedDataError, match=message):
        RetrievalDataModule(tmp_path).dataset("train")


def test_missing_files_name_the_command(tmp_path):
    write_aan(tmp_path, {"train": AAN_ROWS["train"]})
    with pytest.raises(MissingDataError, match=r"new_aan_pairs\.eval\.tsv.*python -m lra\.prepare retrieval"):
        RetrievalDataModule(tmp_path).setup("fit")


def test_pair_with_an_empty_document_is_skipped_and_counted(tmp_path):
    from lra.data import DataSkipWarning

    write_aan(tmp_path, {"train": AAN_ROWS["train"] + [("1", "a", "b", "   ", "text")]})
    dm = RetrievalDataModule(tmp_path)
    with pytest.warns(DataSkipWarning, match="1 pair with an empty document"):
        ds = dm.dataset("train")
    assert len(ds) == 3 and dm.skipped["train"] == {"pair with an empty document": 1}
