"""Run identity (harness/identity.py): every suite entry names the model and variant its command line builds, a
mismatch stops before any data or training with a message naming the entry, and a task module that does not
implement RecordedModel is refused. No data, no training: the command lines are parsed and models built alone."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import lightning as L
import pytest
import yaml

from harness.cli import HarnessCLI
from harness.identity import (
    VARIANT_LABELS,
    RecordedModel,
    RunIdentity,
    RunIdentityError,
    missing_members,
    variant_mismatch,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import run_all  # noqa: E402

SUITES = sorted((ROOT / "results" / "suites").glob("*.yaml"))
LISTOPS_TINY = "lra/configs/listops-tiny.yaml"


@pytest.fixture(scope="module")
def planner() -> run_all.IdentityPlanner:
    return run_all.IdentityPlanner()  # one parser per entry for the whole module


def planned(planner: run_all.IdentityPlanner, run: run_all.Run, runs_root: Path) -> tuple[RunIdentity, object]:
    """What the run's own command line builds (its identity) and the model it builds."""
    identity = planner.identity(run.entry, run.command(runs_root)[3:])
    return identity, planner.model(run.entry)


def lra_switches(model) -> list[tuple[str, tuple[str, str]]]:
    """The model's pipeline switches of lra/task.py (value 0: corrected, the class default; 1: published)."""
    from lra.task import SWITCHES

    return [(k, SWITCHES[k]) for k in model.pipeline if k in SWITCHES]


@pytest.mark.parametrize("suite", SUITES, ids=lambda p: p.stem)
def test_every_suite_entry_is_what_its_command_line_builds(suite, planner, tmp_path):
    _, runs = run_all.load_suite(str(suite))
    for run in {r.source: r for r in runs}.values():  # one run per entry; seeds do not change the model
        identity, model = planned(planner, run, tmp_path)
        assert identity == run.identity, run.source
        assert isinstance(model, RecordedModel)
        label = identity.variant[len(model.default_variant) + 1:]
        assert identity.variant == model.default_variant or label in VARIANT_LABELS, run.source
        if label == "corrected":  # the label promises the corrected pipeline: the model's switches at their defaults
            switches = lra_switches(model)
            assert switches and all(model.pipeline[k] == values[0] for k, values in switches), run.source


def test_paper_suite_runs_the_published_pipeline_unless_labelled(planner, tmp_path):
    _, runs = run_all.load_suite("paper")
    lra_runs = [r for r in {r.source: r for r in runs}.values() if r.entry == "lra"]
    plain = [r for r in lra_runs if not r.identity.variant.endswith("-corrected")]
    assert len(plain) == 6 and len(lra_runs) == 12
    for run in plain:
        _, model = planned(planner, run, tmp_path)
        assert all(model.pipeline[k] == values[1] for k, values in lra_switches(model)), (run.source, model.pipeline)


def _suite_file(tmp_path: Path, **entry) -> Path:
    marker = tmp_path / "prepared"
    suite = {"name": "mismatch", "seeds": [0],
             "prepare": [f"python -c \"open({str(marker)!r}, 'w')\""],
             "runs": [{"task": "listops", "entry": "lra", "config": LISTOPS_TINY, "model": "hgrn",
                       "args": ["--data.init_args.root", str(tmp_path / "no-data")], **entry}]}
    path = tmp_path / "mismatch.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


@pytest.mark.parametrize("entry,match", [
    ({"variant": "none"}, r"variant 'none' does not match what the command line builds, 'cumsoftmax'"),
    ({"variant": "cumsoftmax-corected"}, r"adds the label 'corected' .* declared labels are: corrected"),
    ({"variant": "none-corrected"}, r"does not match what the command line builds, 'cumsoftmax'"),
    ({"variant": "cumsoftmax", "model": "transformer"}, r"model 'transformer', but the command line builds 'hgrn'"),
    ({"variant": "cumsoftmax", "args": ["--model.init_args.lower_bownd", "none"]}, r"lower_bownd"),
], ids=["variant", "label", "variant-and-label", "model", "unknown-option"])
def test_a_mismatched_suite_entry_stops_before_anything_runs(tmp_path, capsys, entry, match):
    suite = _suite_file(tmp_path, **entry)
    runs_root = tmp_path / "runs"
    with pytest.raises(SystemExit) as info:
        run_all.main(["--suite", str(suite), "--runs-root", str(runs_root), "--results-root", str(tmp_path / "out")])
    message = str(info.value.code)
    assert message.startswith(f"error: {suite} runs[0] (task listops, variant {entry['variant']})"), message
    assert re.search(match, message), message
    assert not runs_root.exists() and not (tmp_path / "prepared").exists()  # no data prepared, no run started


def test_the_trainer_refuses_a_mismatched_variant_before_it_touches_data_or_folders(tmp_path):
    from lra.__main__ import main

    run_dir = tmp_path / "run"
    source = "results/suites/x.yaml runs[3] (task listops, variant none)"
    # the data root does not exist: an error about data would mean the check came too late
    with pytest.raises(RunIdentityError, match=r"^results/suites/x\.yaml runs\[3\] \(task listops, variant none\): "
                                               r"variant 'none' does not match .* 'cumsoftmax'"):
        main(["fit", "--config", LISTOPS_TINY, "--data.init_args.root", str(tmp_path / "no-data"),
              "--run.variant", "none", "--run.source", source, "--run.dir", str(run_dir)])
    assert not run_dir.exists()


def test_the_variant_defaults_to_the_model_and_a_label_is_kept(planner):
    base = ["fit", "--config", LISTOPS_TINY, "--run.suite", "s"]
    assert planner.identity("lra", base) == RunIdentity("s", "listops", "hgrn", "cumsoftmax", 0)
    ident = planner.identity("lra", [*base, "--model.init_args.lower_bound", "linear", "--model.init_args.forget_mode",
                                     "bound", "--run.variant", "linear-gate-bound-corrected", "--seed_everything", "4"])
    assert ident == RunIdentity("s", "listops", "hgrn", "linear-gate-bound-corrected", 4)
    assert ident.run_dir("runs") == Path("runs/s/listops/hgrn-linear-gate-bound-corrected/seed4")
    assert ident.name == "listops/hgrn-linear-gate-bound-corrected/seed4"
    vision = planner.identity("vision", ["fit", "--config", "vision/configs/cifar10-hgrn-tiny.yaml"])
    assert vision.task == "cifar10" and vision.model == "hgrn"
    assert vision.variant == planner.model("vision").default_variant


def test_variant_rule():
    assert variant_mismatch("cumsoftmax", "cumsoftmax") is None
    assert variant_mismatch("cumsoftmax-corrected", "cumsoftmax") is None
    assert variant_mismatch("default-corrected", "default") is None
    assert "declared labels" in variant_mismatch("cumsoftmax-gate-none", "cumsoftmax")
    assert "does not match" in variant_mismatch("none", "cumsoftmax")
    assert "does not match" in variant_mismatch("cumsoftmax", "cumsoftmax-gate-none")
    assert "does not match" in variant_mismatch("corrected", "cumsoftmax")


class BareModule(L.LightningModule):
    """A LightningModule that says nothing about its identity."""

    def __init__(self, width: int = 4) -> None:
        super().__init__()


def test_a_model_without_recorded_model_is_refused_by_name():
    assert missing_members(BareModule()) == ["model_name", "default_variant", "lower_bounds"]
    assert not isinstance(BareModule(), RecordedModel)
    with pytest.raises(TypeError, match="BareModule lacks model_name, default_variant, lower_bounds: .*RecordedModel"):
        HarnessCLI(BareModule, ("listops",), plan_only=True, subclass_mode_model=False,
                   args=["fit", "--run.task", "listops", "--data.class_path", "lra.data.ListOpsDataModule"])


def test_both_task_families_implement_recorded_model():
    from lra.task import RetrievalTask, SequenceClassificationTask
    from vision.task import ImageClassificationTask

    for model, name, variant in [
        (SequenceClassificationTask(backbone="transformer"), "transformer", "default"),
        (SequenceClassificationTask(lower_bound="none", complex=False), "hgrn", "none-real"),
        (RetrievalTask(), "hgrn", "cumsoftmax"),
        (ImageClassificationTask(size="small"), "hgrn", "deit-small"),
    ]:
        assert isinstance(model, RecordedModel)
        assert (model.model_name, model.default_variant) == (name, variant)
        assert model.lower_bounds() is None  # no network yet: it is built from the data
