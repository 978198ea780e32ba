"""End-to-end ``python -m vision fit`` runs of the tiny configs on generated data (ImageFolder and CIFAR
pickles), with run records, the lr scaling rule, EMA weights, and clear errors for missing data or a task
that does not match the DataModule. Runs in-process through the entry point's ``main``."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from vision.__main__ import main
from vision.synthetic import write_cifar, write_image_folder
from vision.task import ImageClassificationTask

CONFIGS = Path(__file__).resolve().parent.parent / "vision" / "configs"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vision-data")
    write_image_folder(root, classes=4, train_per_class=12, val_per_class=4, size=40)
    write_cifar(root, 10, train_images=100, test_images=20)
    write_cifar(root, 100, train_images=100, test_images=20)
    return root


def fit(config: str, root: Path, runs: Path, *extra: str) -> Path:
    """Run ``python -m vision fit`` in-process; returns the run folder."""
    args = ["fit", "--config", str(CONFIGS / config), "--data.init_args.root", str(root), "--run.root", str(runs),
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", *extra]
    cli = main(args)
    return cli.run_dir


def complete_record(run_dir: Path) -> dict:
    record = json.loads((run_dir / "record.json").read_text())
    assert record["status"] == "complete", record.get("failure")
    m = record["metrics"]
    for key in ("val_acc_best", "test_acc_at_best_val", "test_acc_last"):
        assert 0.0 <= m[key] <= 1.0, key
    assert m["steps"] > 0 and m["params"] > 0 and m["wall_time_s"] > 0
    assert (run_dir / "metrics.csv").is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    return record


@pytest.mark.slow
@pytest.mark.parametrize("config, model", [("imagenet-hgrn-tiny.yaml", "hgrn"),
                                           ("imagenet-transformer-tiny.yaml", "transformer")])
def test_tiny_config_trains_on_a_generated_image_folder(root: Path, tmp_path: Path, config: str, model: str) -> None:
    run_dir = fit(config, root, tmp_path / "runs", "--trainer.max_epochs", "2")
    record = complete_record(run_dir)
    assert (record["task"], record["model"], record["variant"]) == ("imagenet", model, "w32-d2-p8")
    assert run_dir == tmp_path / "runs" / "adhoc" / "imagenet" / f"{model}-w32-d2-p8" / "seed0"
    assert record["metrics"]["steps"] == 2 * (40 // 8)  # 48 images - 8 held out, batch 8, drop_last
    if model == "hgrn":
        assert torch.tensor(record["lower_bounds"]).shape == (2, 32)
    else:
        assert "lower_bounds" not in record


@pytest.mark.slow
def test_tiny_cifar_run_scales_the_lr_and_tests_the_ema_weights(root: Path, tmp_path: Path) -> None:
    # batch 16 with lr 3e-3 given for 8 images: the peak must be 6e-3; EMA with a short memory so that the
    # averaged weights clearly differ from the raw ones
    run_dir = fit("cifar10-hgrn-tiny.yaml", root, tmp_path / "runs", "--trainer.max_epochs", "2",
                  "--data.init_args.limit_train", "64", "--model.init_args.lr_batch_size", "8",
                  "--trainer.callbacks+=vision.ema.EMAWeights", "--trainer.callbacks.decay", "0.5")
    record = complete_record(run_dir)
    lrs = [float(r["lr"]) for r in csv.DictReader(open(run_dir / "metrics.csv")) if r.get("lr")]
    assert len(lrs) == 8 and lrs[0] == pytest.approx(1e-4, rel=1e-4)
    assert 3e-3 < max(lrs) <= 6e-3 + 1e-9
    # the record's lower bounds (read after testing the last checkpoint) are the averaged weights' ones
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    hparams = {k: v for k, v in ckpt["hyper_parameters"].items() if not k.startswith("_")}  # minus the CLI's keys
    bounds = {}
    for which in ("state_dict", "current_model_state"):
        model = ImageClassificationTask(**hparams)
        model.load_state_dict(ckpt[which])
        bounds[which] = model.lower_bounds()
    assert not torch.equal(bounds["state_dict"], bounds["current_model_state"])
    assert torch.allclose(torch.tensor(record["lower_bounds"]), bounds["state_dict"])


@pytest.mark.slow
@pytest.mark.parametrize("config", ["cifar10-transformer-tiny.yaml", "cifar100-hgrn-tiny.yaml"])
def test_other_cifar_tiny_configs_complete_a_fast_dev_run(root: Path, tmp_path: Path, config: str) -> None:
    record = complete_record_fast(fit(config, root, tmp_path / "runs", "--trainer.fast_dev_run", "true"))
    assert record["task"] == ("cifar100" if "cifar100" in config else "cifar10")


def complete_record_fast(run_dir: Path) -> dict:
    # fast_dev_run writes no checkpoints; the harness tests the weights in memory and says so
    record = json.loads((run_dir / "record.json").read_text())
    assert record["status"] == "complete"
    assert 0.0 <= record["metrics"]["test_acc_last"] <= 1.0 and "no checkpoint" in record["note"]
    return record


def test_missing_data_fails_the_run_with_the_path_and_what_to_place_there(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="cifar-10-python.tar.gz"):
        fit("cifar10-hgrn-tiny.yaml", tmp_path / "empty", tmp_path / "runs")
    record = json.loads(next((tmp_path / "runs").rglob("record.json")).read_text())
    assert record["status"] == "failed"
    assert str(tmp_path / "empty" / "cifar10" / "cifar-10-batches-py") in record["failure"]


def test_a_task_that_does_not_match_the_data_module_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="run.task is 'cifar100' but vision.datamodules.CIFAR10DataModule reads 'cifar10'"):
        fit("cifar10-hgrn-tiny.yaml", tmp_path, tmp_path / "runs", "--run.task", "cifar100")
    assert not (tmp_path / "runs").exists()
