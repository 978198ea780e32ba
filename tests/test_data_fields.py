"""The data -> model hand-over: every DataModule's typed fields (harness.datasets.DataFields) on small fixture
data, the model built from them, the early refusal of a model that cannot read the data, and the DataModules'
keyword-only constructors as the command line sees them."""
from __future__ import annotations

import inspect
from collections import Counter
from pathlib import Path

import lightning as L
import pytest
from jsonargparse import ArgumentParser
from helpers.lra_files import AAN_ROWS, LISTOPS_ROWS, imdb_rows, write_aan, write_acl, write_listops, write_pathfinder
from helpers.lra_files import IMDB_TRAIN as TRAIN
from helpers.lra_files import write_cifar as write_lra_cifar

from harness.checks import OptionError
from harness.datasets import DataFields
from lra.__main__ import main as lra_main
from lra.data import (
    ImageDataModule, LRADataModule, ListOpsDataModule, PathfinderDataModule, PathXDataModule, RetrievalDataModule,
    TextDataModule,
)
from lra.task import RetrievalTask, SequenceClassificationTask
from vision.datamodules import CIFAR10DataModule
from vision.synthetic import write_cifar as write_vision_cifar
from vision.task import ImageClassificationTask

CONFIGS = Path(__file__).resolve().parent.parent / "lra" / "configs"
LRA_MODULES = (ListOpsDataModule, TextDataModule, RetrievalDataModule, ImageDataModule, PathfinderDataModule,
               PathXDataModule)


def declared(module: type) -> dict[str, object]:
    """Every constructor argument of ``module`` and its bases up to LRADataModule -> its default (the most
    derived class's)."""
    out: dict[str, object] = {}
    for cls in module.__mro__[: module.__mro__.index(LRADataModule) + 1]:
        if "__init__" in vars(cls):
            for name, param in inspect.signature(cls.__init__).parameters.items():
                if name not in ("self", "kwargs"):
                    out.setdefault(name, param.default)
    return out


def char_vocab_size(texts: list[str], max_length: int, min_freq: int) -> int:
    """S4's char vocabulary size, counted here: specials plus characters kept by truncation and min_freq."""
    counts = Counter(c for t in texts for c in t[: max_length - 1])
    return 3 + sum(n >= min_freq for n in counts.values())


# -- each DataModule's fields ---------------------------------------------------------------------------
def test_token_tasks_hand_over_classes_vocabulary_and_pad_index(tmp_path: Path) -> None:
    write_listops(tmp_path, {s: LISTOPS_ROWS for s in ("train", "val", "test")})
    write_acl(tmp_path)
    write_aan(tmp_path)
    assert ListOpsDataModule(tmp_path).model_fields() == DataFields("tokens", 10, vocab_size=18, pad_index=0)
    assert TextDataModule(tmp_path).model_fields() == DataFields("tokens", 2, vocab_size=257, pad_index=0)
    assert RetrievalDataModule(tmp_path).model_fields() == DataFields("tokens", 2, vocab_size=257, pad_index=0)
    text = TextDataModule(tmp_path, tokenizer="char", max_length=10, min_freq=2)
    texts = [t for t, _ in imdb_rows(TRAIN)]
    assert text.model_fields().vocab_size == char_vocab_size(texts, 10, 2)
    aan = RetrievalDataModule(tmp_path, tokenizer="char", max_length=8)
    documents = [doc for row in AAN_ROWS["train"] for doc in row[3:]]
    assert aan.model_fields() == DataFields("tokens", 2, vocab_size=char_vocab_size(documents, 8, 1), pad_index=0)


def test_image_tasks_hand_over_channels_and_grid_or_pixel_tokens(tmp_path: Path) -> None:
    write_lra_cifar(tmp_path)
    write_pathfinder(tmp_path, 32, 5, batches=1)
    assert ImageDataModule(tmp_path).model_fields() == DataFields("pixels", 10, in_channels=1, grid=(32, 32))
    assert ImageDataModule(tmp_path, grayscale=False).model_fields().in_channels == 3
    # grey values as ids: 256 of them and no padding (every image is a full-length sequence)
    assert ImageDataModule(tmp_path, pixel_scale="tokens").model_fields() == DataFields(
        "tokens", 10, vocab_size=256, pad_index=None, grid=(32, 32))
    assert PathfinderDataModule(tmp_path).model_fields() == DataFields("pixels", 2, in_channels=1, grid=(32, 32))
    assert PathXDataModule(tmp_path, pixel_scale="tokens").model_fields() == DataFields(
        "tokens", 2, vocab_size=256, grid=(128, 128))
    assert CIFAR10DataModule(root=tmp_path, image_size=32).model_fields() == DataFields(
        "images", 10, in_channels=3, grid=(32, 32))


def test_data_fields_refuse_an_incomplete_record() -> None:
    with pytest.raises(ValueError, match="token data has a vocab_size"):
        DataFields("tokens", 2, in_channels=1)
    with pytest.raises(ValueError, match="pixels data has in_channels"):
        DataFields("pixels", 2, vocab_size=256)
    with pytest.raises(ValueError, match="kind must be tokens, pixels or images"):
        DataFields("audio", 2, in_channels=1)  # type: ignore[arg-type]


# -- the model built from them --------------------------------------------------------------------------
def fit_one_step(model: L.LightningModule, dm: L.LightningDataModule, tmp_path: Path) -> None:
    L.Trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, default_root_dir=tmp_path, accelerator="cpu").fit(model, datamodule=dm)


def test_the_task_builds_its_network_from_the_fields(tmp_path: Path) -> None:
    write_pathfinder(tmp_path, 32, 10, batches=1)
    dm = PathfinderDataModule(tmp_path, pixel_scale="tokens", batch_size=4, decode_workers=1)
    model = SequenceClassificationTask(encoder="token", d_model=8, n_layers=1, mode="2d")
    fit_one_step(model, dm, tmp_path)
    hp = model.hparams
    assert (hp.num_classes, hp.vocab_size, hp.pad_index, tuple(hp.grid)) == (2, 256, None, (32, 32))
    assert model.net.embedding.embed.num_embeddings == 256 and model.net.embedding.embed.padding_idx is None
    write_aan(tmp_path)
    retrieval = RetrievalTask(d_model=8, n_layers=1)
    fit_one_step(retrieval, RetrievalDataModule(tmp_path, batch_size=2, max_length=16), tmp_path)
    assert (retrieval.hparams.vocab_size, retrieval.hparams.pad_index, retrieval.hparams.grid) == (257, 0, None)


# -- a model that cannot read the data is refused, naming both ------------------------------------------
@pytest.mark.parametrize("encoder, data, message", [
    ("token", lambda r: ImageDataModule(r), r"model.encoder is 'token', which reads tokens, but ImageDataModule "
                                            r"gives pixels: set --model.init_args.encoder pixel"),
    ("token", lambda r: PathfinderDataModule(r), r"but PathfinderDataModule gives pixels"),
    ("pixel", lambda r: PathfinderDataModule(r, pixel_scale="tokens"),
     r"model.encoder is 'pixel', which reads pixels, but PathfinderDataModule gives tokens: set "
     r"--model.init_args.encoder token"),
    ("pixel", lambda r: ListOpsDataModule(r), r"but ListOpsDataModule gives tokens"),
    ("token", lambda r: CIFAR10DataModule(root=r), r"but CIFAR10DataModule gives images"),
])
def test_an_encoder_that_cannot_read_the_data_is_refused(tmp_path: Path, encoder, data, message) -> None:
    model = SequenceClassificationTask(encoder=encoder)
    with pytest.raises(OptionError, match=message):
        model.check_data(data(tmp_path / "nowhere"))  # nothing is read: the folder does not exist


def test_the_image_classifier_refuses_lra_data_and_untileable_images(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="reads images .* but ImageDataModule gives pixels"):
        ImageClassificationTask(patch_size=4).check_data(ImageDataModule(tmp_path))
    with pytest.raises(OptionError, match="data.image_size 32 is not divisible by model.patch_size 14"):
        ImageClassificationTask(patch_size=14).check_data(CIFAR10DataModule(root=tmp_path, image_size=32))
    write_vision_cifar(tmp_path, 10, train_images=20, test_images=4)
    model = ImageClassificationTask(width=8, depth=1, patch_size=8, n_heads=1)
    fit_one_step(model, CIFAR10DataModule(root=tmp_path, batch_size=4, num_workers=0), tmp_path)
    assert (model.hparams.num_classes, model.hparams.in_channels, model.hparams.image_size) == (10, 3, 32)


def test_the_command_line_refuses_the_mismatch_before_reading_data(tmp_path: Path) -> None:
    # the data root does not exist: reading anything would raise MissingDataError instead
    with pytest.raises(OptionError, match="model.encoder is 'token'.* but PathfinderDataModule gives pixels"):
        lra_main(["fit", "--config", str(CONFIGS / "pathfinder-tiny.yaml"), "--model.init_args.encoder", "token",
                  "--data.init_args.root", str(tmp_path / "nowhere"), "--run.dir", str(tmp_path / "run")])
    assert not (tmp_path / "run").exists()


# -- constructors: keywords forwarded to the base, all of them visible to the command line ---------------
@pytest.mark.parametrize("module", LRA_MODULES)
def test_every_base_argument_reaches_the_parser_with_its_type_and_default(module) -> None:
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(module, "data")
    defaults = parser.get_defaults().data
    assert dict(defaults) == declared(module)
    with pytest.raises(Exception, match="batch_size"):
        parser.parse_args(["--data.batch_size", "many"])
    if module is PathXDataModule:
        assert defaults["resolution"] == 128


@pytest.mark.parametrize("module", LRA_MODULES)
def test_only_root_is_positional_and_every_argument_is_recorded(tmp_path: Path, module) -> None:
    with pytest.raises(TypeError):
        module(tmp_path, 4)  # a second positional could silently land in the wrong argument
    dm = module(tmp_path, batch_size=3, seed=7, limit_val=2, drop_last=True)
    assert (dm.batch_size, dm.seed, dm.limits["val"], dm.drop_last) == (3, 7, 2, True)
    assert set(dm.hparams) == set(declared(module))  # saved once by the base class, the subclasses' included
