"""Training through the real entry point (``python -m lra fit``) on generated data: run records, the best
checkpoint, resume, a real divergence, and configuration errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from harness.cli import HarnessCLI
from lra.__main__ import main
from lra.task import SequenceClassificationTask

CONFIGS = Path(__file__).resolve().parent.parent / "lra" / "configs"


def run_cli(*args: str) -> HarnessCLI:
    """``python -m lra <args>`` in this process (saves a Python start-up per run)."""
    return main(list(args))


@pytest.fixture(scope="module")
def listops_root(tmp_path_factory) -> Path:
    from lra.prepare import main as prepare

    root = tmp_path_factory.mktemp("data")
    prepare(["listops", "--root", str(root), "--size", "1200", "--min-length", "60", "--max-length", "200", "--quiet"])
    return root


def read_record(run_dir: Path) -> dict:
    return json.loads((run_dir / "record.json").read_text())


def assert_valid_record(record: dict, task: str, model: str) -> None:
    assert record["schema"] == 1 and record["status"] == "complete"
    assert record["task"] == task and record["model"] == model
    m = record["metrics"]
    for key in ("val_acc_best", "test_acc_at_best_val", "test_acc_last"):
        assert m[key] is not None and 0.0 <= m[key] <= 1.0, (key, m[key])
    assert m["params"] > 0 and m["steps"] > 0 and m["wall_time_s"] > 0
    assert record["versions"]["torch"] == torch.__version__


def test_listops_tiny_learns_above_majority_and_reports_the_best_checkpoint(listops_root, tmp_path):
    run_dir = tmp_path / "run"
    cli = run_cli("fit", "--config", str(CONFIGS / "listops-tiny.yaml"), "--data.init_args.root", str(listops_root),
                  "--data.init_args.max_length", "200", "--run.dir", str(run_dir), "--trainer.enable_progress_bar", "false")
    record = read_record(run_dir)
    assert_valid_record(record, "listops", "hgrn")
    assert record["variant"] == "cumsoftmax"
    assert len(record["lower_bounds"]) == 2 and record["lower_bounds"][0] == [0.0] * 32
    # ListOps' majority class is about 17%; a trained model must clearly beat it
    assert record["metrics"]["val_acc_best"] > 0.3
    # the number reported as test_acc_at_best_val is the best checkpoint's, recomputed here independently
    best = Path(record["checkpoints"]["best"])
    assert best.name.startswith("best-") and best.exists()
    model = SequenceClassificationTask.load_from_checkpoint(best, map_location="cpu").eval()
    dm = cli.datamodule
    correct = total = 0
    with torch.no_grad():
        for batch in dm.test_dataloader():
            correct += (model(batch).argmax(-1) == batch["y"]).sum().item()
            total += len(batch["y"])
    assert correct / total == pytest.approx(record["metrics"]["test_acc_at_best_val"], abs=1e-6)
    history = (run_dir / "metrics.csv").read_text().splitlines()
    assert "val_acc" in history[0] and len(history) > 3


@pytest.mark.parametrize("config", ["listops-tiny", "listops-transformer-tiny"])
def test_resume_after_one_epoch_equals_an_uninterrupted_run(listops_root, tmp_path, config):
    common = ["--config", str(CONFIGS / f"{config}.yaml"), "--data.init_args.root", str(listops_root),
              "--data.init_args.max_length", "200", "--data.init_args.limit_train", "256",
              "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run_cli("fit", *common, "--run.dir", str(straight), "--trainer.max_epochs", "2")
    run_cli("fit", *common, "--run.dir", str(resumed), "--trainer.max_epochs", "1")
    assert read_record(resumed)["metrics"]["epochs"] == 1
    run_cli("fit", *common, "--run.dir", str(resumed), "--trainer.max_epochs", "2", "--ckpt_path", "last")
    a, b = read_record(straight)["metrics"], read_record(resumed)["metrics"]
    for key in ("val_acc_best", "test_acc_at_best_val", "test_acc_last", "steps"):
        assert a[key] == pytest.approx(b[key], abs=1e-6), key
    wa = torch.load(straight / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    wb = torch.load(resumed / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    for name in wa:
        assert torch.allclose(wa[name].float(), wb[name].float(), atol=1e-5), name
    # the resumed run's history keeps the first epoch's rows
    assert "epoch" in (resumed / "metrics.csv").read_text().splitlines()[0]


def test_divergence_stops_with_a_clear_message_and_a_failed_record(listops_root, tmp_path):
    run_dir = tmp_path / "diverge"
    with pytest.raises(FloatingPointError, match="loss became nan"):
        run_cli("fit", "--config", str(CONFIGS / "listops-tiny.yaml"), "--data.init_args.root", str(listops_root),
                "--data.init_args.max_length", "200", "--data.init_args.limit_train", "32", "--data.init_args.batch_size", "32",
                "--model.init_args.lr", "1e9", "--model.init_args.warmup_steps", "0", "--trainer.max_epochs", "20",
                "--run.dir", str(run_dir), "--trainer.enable_progress_bar", "false")
    record = read_record(run_dir)
    assert record["status"] == "failed"
    assert "loss became" in record["failure"]
    # one batch per epoch: the first epoch ends (and checkpoints) before the loss blows up in the second
    last = run_dir / "checkpoints" / "last.ckpt"
    assert str(last) in record["failure"]
    state = torch.load(last, map_location="cpu", weights_only=False)["state_dict"]
    assert all(torch.isfinite(v.float()).all() for v in state.values())  # the last good state, not the NaN one


def test_misconfiguration_errors_are_clear(listops_root, tmp_path, capsys):
    base = ["fit", "--config", str(CONFIGS / "listops-tiny.yaml"), "--run.dir", str(tmp_path / "x")]
    with pytest.raises(SystemExit):
        run_cli(*base, "--run.task", "sudoku")
    assert "sudoku" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_cli(*base, "--model.init_args.num_layerz", "3")
    assert "num_layerz" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="lra.prepare listops"):
        run_cli(*base, "--data.init_args.root", str(tmp_path / "empty"), "--trainer.enable_progress_bar", "false")
