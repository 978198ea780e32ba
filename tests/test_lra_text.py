"""Text (IMDB): aclImdb / CSV / parquet layouts, byte and char tokenisation, validation = test,
vocabulary cached, and bad input."""

from __future__ import annotations

from collections import Counter

import pytest

from helpers.lra_files import IMDB_TEST, IMDB_TRAIN, imdb_rows, write_acl
from lra.data import DataSkipWarning, MalformedDataError, MissingDataError, TextDataModule


def test_byte_level_ids_labels_and_validation_is_test(tmp_path):
    write_acl(tmp_path)
    dm = TextDataModule(tmp_path, batch_size=8, tokenizer="byte", max_length=12)
    assert (dm.vocab_size, dm.pad_index, dm.num_classes) == (257, 0, 2)
    dm.setup("fit")
    train = dm.dataset("train")
    for i, (text, label) in enumerate(imdb_rows(IMDB_TRAIN)):
        ids, y = train[i]
        assert ids.tolist() == [b + 1 for b in text.encode("utf-8")[:12]]
        assert y == label
    assert dm.dataset("val") is dm.dataset("test")  # IMDB has no validation split
    assert len(dm.dataset("val")) == 4
    batch = next(iter(dm.val_dataloader()))
    assert batch["y"].tolist() == [0, 0, 1, 1]
    assert batch["lengths"].tolist() == [min(12, len(t.encode())) for t, _ in imdb_rows(IMDB_TEST)]
    assert batch["x"].shape[1] == int(batch["lengths"].max())


def test_char_level_vocab_eos_truncation_and_unknowns(tmp_path):
    write_acl(tmp_path)
    max_len = 10
    dm = TextDataModule(tmp_path, tokenizer="char", max_length=max_len, min_freq=2)
    # The vocabulary, counted independently: characters of the truncated training texts.
    counts = Counter()
    for text, _ in imdb_rows(IMDB_TRAIN):
        counts.update(text[: max_len - 1])
    kept = {c for c, n in counts.items() if n >= 2}
    assert dm.vocab_size == 3 + len(kept)
    assert set(dm.vocab.tokens[3:]) == kept
    ids, _ = dm.dataset("train")[0]  # "Terrible."
    assert len(ids) == max_len and ids[-1].item() == dm.vocab.eos_index
    decoded = [dm.vocab.tokens[i] for i in ids[:-1].tolist()]
    assert decoded == [c if c in kept else "<unk>" for c in "Terrible."]
    ids, _ = dm.dataset("test")[3]  # "zzz qqq": z and q never occur in training
    assert ids.tolist()[:3] == [dm.vocab.unk_index] * 3


def test_char_vocabulary_is_cached(tmp_path, monkeypatch):
    write_acl(tmp_path)
    first = TextDataModule(tmp_path, tokenizer="char", min_freq=1)
    size = first.vocab_size
    assert list((tmp_path / ".cache" / "text").glob("*/vocab.json"))
    import lra.data.text as mod

    monkeypatch.setattr(mod, "iter_reviews", lambda *a, **k: pytest.fail("texts re-read despite the cache"))
    second = TextDataModule(tmp_path, tokenizer="char", min_freq=1)
    assert second.vocab_size == size and second.vocab == first.vocab
    assert second.dataset("train")[1][0].tolist() == first.dataset("train")[1][0].tolist()


@pytest.mark.parametrize("columns", [("text", "label", "1", "0"), ("review", "sentiment", "positive", "negative")])
def test_csv_layout(tmp_path, columns):
    text_col, label_col, pos, neg = columns
    d = tmp_path / "imdb"
    d.mkdir()
    for split in ("train", "test"):
        (d / f"{split}.csv").write_text(f'{text_col},{label_col}\n"good, really",{pos}\nbad,{neg}\n')
    dm = TextDataModule(tmp_path)
    ds = dm.dataset("train")
    assert len(ds) == 2
    assert ds[0][0].tolist() == [b + 1 for b in b"good, really"] and ds[0][1] == 1 and ds[1][1] == 0


def test_parquet_layout(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    d = tmp_path / "imdb" / "plain_text"
    d.mkdir(parents=True)
    for split in ("train", "test"):
        pd.DataFrame({"text": ["fine", "poor"], "label": [1, 0]}).to_parquet(d / f"{split}-00000-of-00001.parquet")
    dm = TextDataModule(tmp_path)
    assert [dm.dataset("test")[i][1] for i in range(2)] == [1, 0]


def test_missing_data_names_paths_and_command(tmp_path):
    with pytest.raises(MissingDataError) as err:
        TextDataModule(tmp_path).setup("fit")
    msg = str(err.value)
    assert "python -m lra.prepare text --root" in msg and "aclImdb" in msg


def test_bad_csv_label_reports_file_and_line(tmp_path):
    d = tmp_path / "imdb"
    d.mkdir()
    (d / "train.csv").write_text("text,label\nok,1\nodd,7\n")
    (d / "test.csv").write_text("text,label\nok,1\n")
    with pytest.raises(MalformedDataError, match=r"train\.csv:3: label '7'"):
        TextDataModule(tmp_path).setup("fit")


def test_empty_review_is_skipped_and_counted(tmp_path):
    train = {"pos": ["good", "   "], "neg": ["bad"]}
    write_acl(tmp_path, train=train)
    dm = TextDataModule(tmp_path)
    with pytest.warns(DataSkipWarning, match="1 empty review"):
        dm.setup("fit")
    assert len(dm.dataset("train")) == 2
    assert dm.skipped["train"] == {"empty review": 1}
