"""Tests of results/: on hand-written run records, the tables hold the right numbers and marks, the
Markdown/LaTeX/CSV render, the plots are real images of the expected size, and bad records fail loudly.

Expected numbers are computed here with the statistics module from the values written into the
records, not with results' own code.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from results.history import read_history
from results.published import PUBLISHED_CSV, load_published
from results.records import RecordError, load_runs
from results.render import latex_escape
from results.report import build

REPO = Path(__file__).resolve().parents[1]
SUITE = "testsuite"
LRA = ["listops", "text", "retrieval", "image", "pathfinder", "pathx"]
PUBLISHED_HGRN = {"listops": 59.95, "text": 88.14, "retrieval": 94.23, "image": 88.69, "pathfinder": 92.92, "pathx": 97.50}

# (task, model, variant) -> list of (seed, status, test_acc_at_best_val or None)
RUNS = {
    ("listops", "hgrn", "cumsoftmax"): [(0, "complete", 0.6012), (1, "complete", 0.6154), (2, "complete", 0.5931)],
    ("text", "hgrn", "cumsoftmax"): [(0, "complete", 0.8801), (1, "complete", 0.8850), (2, "failed", None)],
    ("retrieval", "hgrn", "cumsoftmax"): [(0, "running", None)],
    ("image", "hgrn", "cumsoftmax"): [(0, "failed", None), (1, "failed", None)],
    ("pathfinder", "hgrn", "cumsoftmax"): [(0, "complete", 0.9100)],
    # pathx: no record at all -> "missing"
    ("listops", "hgrn", "none"): [(0, "complete", 0.5500), (1, "complete", 0.5700)],
    ("pathfinder", "hgrn", "none"): [(0, "complete", 0.8500), (1, "running", None)],
    ("listops", "transformer", "default"): [(0, "complete", 0.3700), (1, "complete", 0.3900)],
    ("imagenet", "hgrn", "deit-tiny"): [(0, "complete", 0.7420)],
    ("imagenet", "hgrn", "deit-small"): [(0, "complete", 0.8001), (1, "complete", 0.8033)],
    ("cifar10", "hgrn", "default"): [(0, "complete", 0.9050)],
}
LAYERS, CHANNELS = 4, 6


def lower_bounds(variant: str, seed: int) -> list[list[float]]:
    if variant == "none":
        return [[0.0] * CHANNELS for _ in range(LAYERS)]
    # Rising with depth, different per channel and seed.
    return [[min(0.95, k / LAYERS + 0.02 * c + 0.01 * seed) for c in range(CHANNELS)] for k in range(LAYERS)]


def write_history(path: Path, final_acc: float) -> None:
    # Sparse rows as Lightning's CSVLogger writes them: train rows and val rows interleaved.
    rows = ["epoch,step,train_loss,train_acc,val_loss,val_acc"]
    for epoch in range(3):
        step = (epoch + 1) * 10
        rows.append(f"{epoch},{step - 5},{2.0 - 0.4 * epoch},{0.3 + 0.1 * epoch},,")
        rows.append(f"{epoch},{step},,,{2.1 - 0.4 * epoch},{final_acc - 0.1 * (2 - epoch)}")
    path.write_text("\n".join(rows) + "\n")


def make_runs(root: Path) -> Path:
    for (task, model, variant), seeds in RUNS.items():
        for seed, status, acc in seeds:
            run_dir = root / "lra" / task / f"{model}-{variant}" / f"seed{seed}"
            run_dir.mkdir(parents=True)
            record = {
                "schema": 1, "suite": SUITE, "task": task, "model": model, "variant": variant, "seed": seed,
                "status": status, "config": {"model": {"n_layers": LAYERS}},
                "metrics": {"val_acc_best": acc, "test_acc_at_best_val": acc,
                            "test_acc_last": None if acc is None else acc - 0.01,
                            "epochs": 3, "steps": 30, "params": 6.1e6 if variant == "deit-tiny" else 23.7e6,
                            "wall_time_s": 12.5},
                "history": "metrics.csv",
                "versions": {"torch": "2.14.1", "lightning": "2.6.6", "git": "abc1234"},
            }
            if status == "failed":
                record["failure"] = "CUDA out of memory at step 120"
            if model == "hgrn" and task in ("listops", "pathfinder") and status == "complete":
                record["lower_bounds"] = lower_bounds(variant, seed)
            if task == "listops" or (task == "pathfinder" and status == "complete"):
                write_history(run_dir / "metrics.csv", acc if acc is not None else 0.5)
            (run_dir / "record.json").write_text(json.dumps(record, indent=1))
    return root


def expected(task: str, model: str, variant: str) -> tuple[float, float, int]:
    """Mean, sample std (NaN for one seed) and count of the complete runs, in percent."""
    vals = [acc * 100 for _, status, acc in RUNS.get((task, model, variant), []) if status == "complete"]
    if not vals:
        return math.nan, math.nan, 0
    return statistics.mean(vals), (statistics.stdev(vals) if len(vals) > 1 else math.nan), len(vals)


def ms(task: str, model: str, variant: str) -> str:
    mean, std, _ = expected(task, model, variant)
    return f"{mean:.2f}" if math.isnan(std) else f"{mean:.2f} ± {std:.2f}"


def md_rows(markdown: str) -> dict[str, list[str]]:
    """First cell -> the other cells, for every body row of the first table in a Markdown text."""
    out = {}
    for line in markdown.splitlines():
        if line.startswith("| ") and not line.startswith("|:"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            out.setdefault(cells[0], cells[1:])
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("results")
    runs = make_runs(base / "runs")
    return build(SUITE, runs, base / "out", "test_acc_at_best_val")


# ---------------------------------------------------------------- records and aggregation


def test_long_table_has_one_row_per_record(built):
    n_records = sum(len(v) for v in RUNS.values())
    assert len(built.runs) == n_records
    assert sorted(built.runs["status"].value_counts().items()) == [("complete", 15), ("failed", 3), ("running", 2)]


def test_aggregate_means_stds_counts(built):
    agg = built.aggregate
    for (task, model, variant) in RUNS:
        mean, std, n = expected(task, model, variant)
        row = agg[(agg.task == task) & (agg.model == model) & (agg.variant == variant)].iloc[0]
        assert row["n_complete"] == n
        if n:
            assert row["mean"] == pytest.approx(mean, abs=1e-9)
        if n >= 2:
            assert row["std"] == pytest.approx(std, abs=1e-9)
        else:
            assert math.isnan(row["std"])  # sample std is undefined for one seed: blank, not 0
    text = agg[(agg.task == "text") & (agg.variant == "cumsoftmax")].iloc[0]
    assert (text["n_failed"], text["n_running"]) == (1, 0)


def test_aggregate_csv_blank_std_for_one_seed(built):
    rows = list(csv.DictReader(io.StringIO((built.out / "aggregate.csv").read_text())))
    pf = next(r for r in rows if r["task"] == "pathfinder" and r["variant"] == "cumsoftmax")
    assert pf["std"] == "" and float(pf["mean"]) == pytest.approx(91.0)


# ---------------------------------------------------------------- LRA table


def test_lra_table_ours_row(built):
    rows = md_rows((built.out / "tables" / "lra.md").read_text())
    ours = dict(zip(LRA + ["Avg", "Seeds"], rows["HGRN (cumsoftmax), ours"]))
    assert ours["listops"] == ms("listops", "hgrn", "cumsoftmax")
    assert ours["text"] == ms("text", "hgrn", "cumsoftmax") + " (+1 failed)"
    assert ours["retrieval"] == "running"
    assert ours["image"] == "failed (2)"
    assert ours["pathfinder"] == ms("pathfinder", "hgrn", "cumsoftmax")
    assert "±" not in ours["pathfinder"]
    assert ours["pathx"] == "missing"
    done = [expected(t, "hgrn", "cumsoftmax")[0] for t in ("listops", "text", "pathfinder")]
    assert ours["Avg"] == f"{statistics.mean(done):.2f} (3/6 tasks)"
    assert ours["Seeds"] == "1–3"


def test_lra_table_published_and_difference(built):
    rows = md_rows((built.out / "tables" / "lra.md").read_text())
    assert rows["HGRN (published)"][:7] == ["59.95", "88.14", "94.23", "88.69", "92.92", "97.50", "86.91"]
    diff = dict(zip(LRA + ["Avg"], rows["HGRN (cumsoftmax) ours − published"]))
    diffs = []
    for t in LRA:
        mean = expected(t, "hgrn", "cumsoftmax")[0]
        if math.isnan(mean):
            assert diff[t] == "–"
        else:
            diffs.append(mean - PUBLISHED_HGRN[t])
            assert diff[t] == f"{mean - PUBLISHED_HGRN[t]:+.2f}"
    assert diff["pathfinder"].startswith("-")  # 91.00 - 92.92
    assert diff["Avg"] == f"{statistics.mean(diffs):+.2f} (3/6 tasks)"
    # Only the paper's schedule is compared with the published HGRN row.
    assert "HGRN (none) ours − published" not in rows
    tr = rows["Transformer (default) ours − published"]
    assert tr[0] == f"{expected('listops', 'transformer', 'default')[0] - 38.37:+.2f}"
    assert rows["Transformer (published)"][:7] == ["38.37", "61.95", "80.69", "40.57", "65.26", "–", "47.81"]


def test_lra_table_baselines_as_published(built):
    rows = md_rows((built.out / "tables" / "lra.md").read_text())
    assert rows["S5"][:7] == ["62.15", "89.31", "91.4", "88.00", "95.33", "98.56", "87.46"]
    assert rows["Mamba†"][:7] == ["38.02", "82.98", "72.14", "69.82", "69.26", "67.32", "66.59"]
    assert rows["HGRN2"][6] == "87.66"
    for name in ("cosFormer", "FLASH", "S4", "DSS_softmax", "DSSEXP", "DSSEXP-NO-SCALE", "TNN", "Mega", "SGConv", "LRU", "Griffin†"):
        assert name in rows
    assert "HGRN" not in rows  # shown once, as "HGRN (published)", not again among baselines


def test_lra_csv_matches_markdown(built):
    md = md_rows((built.out / "tables" / "lra.md").read_text())
    grid = list(csv.reader(io.StringIO((built.out / "tables" / "lra.csv").read_text(encoding="utf-8"))))
    assert grid[0] == ["Model", "ListOps", "Text", "Retrieval", "Image", "Pathfinder", "Path-X", "Avg", "Seeds"]
    assert {r[0]: r[1:] for r in grid[1:]} == {k: v for k, v in md.items() if k != "Model"}


# ---------------------------------------------------------------- other tables


def test_imagenet_table(built):
    md = (built.out / "tables" / "imagenet.md").read_text()
    rows = md_rows(md)
    small = rows["HGRN (deit-small), ours"]
    assert small[0] == ms("imagenet", "hgrn", "deit-small")
    assert small[1] == "23.7"
    assert small[3] == f"{expected('imagenet', 'hgrn', 'deit-small')[0] - 80.09:+.2f}"
    assert rows["HGRN (deit-tiny), ours"][0] == ms("imagenet", "hgrn", "deit-tiny")
    assert rows["HGRN (published, model size not stated)"][0] == "80.09"
    assert "does not say which variant" in md


def test_ablation_table(built):
    md = (built.out / "tables" / "ablation.md").read_text()
    rows = md_rows(md)
    header = rows["Schedule"]
    assert header == ["ListOps", "Text", "Retrieval", "Image", "Pathfinder", "Avg", "Avg − cumsoftmax", "Seeds"]
    none = dict(zip(header, rows["none"]))
    assert none["ListOps"] == ms("listops", "hgrn", "none")
    assert none["Pathfinder"] == ms("pathfinder", "hgrn", "none") + " (+1 running)"
    assert none["Text"] == "missing"
    shared = [expected(t, "hgrn", "none")[0] - expected(t, "hgrn", "cumsoftmax")[0] for t in ("listops", "pathfinder")]
    assert none["Avg − cumsoftmax"] == f"{statistics.mean(shared):+.2f} (2/5 tasks)"
    assert rows["cumsoftmax (paper)"][0] == ms("listops", "hgrn", "cumsoftmax")
    assert "Table 10" in md


def test_other_tasks_table_keeps_cifar(built):
    rows = md_rows((built.out / "tables" / "other.md").read_text())
    assert rows["HGRN (default), ours"][0] == ms("cifar10", "hgrn", "default")


# ---------------------------------------------------------------- LaTeX


def _strip_escaped(tex: str) -> str:
    return re.sub(r"\\[{}&%$#_]", "", tex)


@pytest.mark.parametrize("name", ["lra", "imagenet", "ablation", "other"])
def test_latex_is_well_formed(built, name):
    tex = (built.out / "tables" / f"{name}.tex").read_text()
    table = next(t for t in built.tables if t.name == name)
    body = _strip_escaped(tex)
    assert body.count("{") == body.count("}")
    assert tex.count(r"\begin{tabular}") == 1 and tex.count(r"\end{tabular}") == 1
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert rule in tex
    inner = tex.split(r"\begin{tabular}")[1].split(r"\end{tabular}")[0]
    lines = [l for l in inner.splitlines() if l.endswith(r"\\")]
    assert len(lines) == len(table.rows) + 1  # header + body
    for line in lines:
        assert _strip_escaped(line).count("&") == len(table.header) - 1, line
    # No raw Unicode that pdflatex without inputenc tricks would choke on.
    assert not set("±−–†") & set(tex)


def test_latex_escape():
    assert latex_escape("a_b & 50% ± 1 − 2") == r"a\_b \& 50\% $\pm$ 1 $-$ 2"


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not on PATH; structure is checked instead")
def test_latex_compiles(built, tmp_path):
    doc = tmp_path / "doc.tex"
    inputs = "\n".join(rf"\input{{{(built.out / 'tables' / f'{t.name}.tex').as_posix()}}}" for t in built.tables)
    doc.write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage[margin=1cm,landscape]{geometry}\n"
                   f"\\begin{{document}}\n{inputs}\n\\end{{document}}\n")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]


# ---------------------------------------------------------------- plots

EXPECTED_PLOTS = {
    "ours_vs_published": (1200, 500),
    "ablation_schedules": (1000, 500),
    "curves_listops": (1200, 450),
    "curves_pathfinder": (1200, 450),
    "lower_bound_layers_listops": (800, 450),
    "lower_bound_layers_pathfinder": (800, 450),
    "lower_bound_heatmap_listops_hgrn-cumsoftmax": (1000, 400),
    "lower_bound_heatmap_listops_hgrn-none": (1000, 400),
    "lower_bound_heatmap_pathfinder_hgrn-cumsoftmax": (1000, 400),
    "lower_bound_heatmap_pathfinder_hgrn-none": (1000, 400),
}


@pytest.mark.parametrize("stem,size", sorted(EXPECTED_PLOTS.items()))
def test_plot_written_with_size_and_content(built, stem, size):
    png = built.out / "plots" / f"{stem}.png"
    pdf = built.out / "plots" / f"{stem}.pdf"
    assert png.is_file() and pdf.is_file()
    assert pdf.read_bytes()[:5] == b"%PDF-"
    with Image.open(png) as im:
        assert im.size == size
        pixels = np.asarray(im.convert("L"), dtype=float)
    # Drawn, not blank: many pixels differ from the white background.
    assert (pixels < 250).mean() > 0.02 and pixels.std() > 10


def test_no_curves_for_tasks_without_history(built):
    assert not (built.out / "plots" / "curves_imagenet.png").exists()
    assert not (built.out / "plots" / "lower_bound_layers_imagenet.png").exists()


def test_heatmap_shows_rising_bound(built):
    # Rows of the heat map are layers with layer 1 at the bottom: the top rows must be brighter (viridis:
    # higher bound -> more yellow -> higher luminance) than the bottom rows for the rising bound written.
    with Image.open(built.out / "plots" / "lower_bound_heatmap_listops_hgrn-cumsoftmax.png") as im:
        pixels = np.asarray(im.convert("L"), dtype=float)
    h, w = pixels.shape
    column = pixels[int(0.15 * h): int(0.85 * h), int(0.4 * w)]
    assert column[: len(column) // 4].mean() > column[-len(column) // 4:].mean() + 40


def test_history_reader_on_sparse_csv(tmp_path):
    write_history(tmp_path / "metrics.csv", 0.8)
    hist = read_history(tmp_path / "metrics.csv")
    assert hist.x_name == "step"
    assert list(hist.series["val_acc"]["x"]) == [10, 20, 30]
    assert list(hist.series["val_acc"]["value"]) == pytest.approx([0.6, 0.7, 0.8])
    assert list(hist.series["train_loss"]["x"]) == [5, 15, 25]


# ---------------------------------------------------------------- README


def test_readme_shows_tables_and_embeds_existing_plots(built):
    readme = built.readme.read_text()
    for title in ("Long Range Arena", "ImageNet-1k", "Lower-bound schedule ablation", "Other tasks"):
        assert title in readme
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert len(links) == len(EXPECTED_PLOTS)
    for link in links:
        assert not Path(link).is_absolute() and (built.out / link).is_file()
    assert "CUDA out of memory at step 120" in readme  # failure reasons are shown
    assert "| failed | 3 |" in readme and "| running | 2 |" in readme


def test_rebuild_removes_stale_outputs(tmp_path):
    _one_record(tmp_path / "runs")
    imagenet = _one_record(tmp_path / "runs", task="imagenet", variant="deit-small")
    build(SUITE, tmp_path / "runs", tmp_path / "out", "test_acc_at_best_val")
    assert (tmp_path / "out" / "tables" / "imagenet.md").is_file()
    stale = tmp_path / "out" / "plots" / "curves_old.png"
    stale.write_bytes(b"old")
    shutil.rmtree(imagenet.parent)
    result = build(SUITE, tmp_path / "runs", tmp_path / "out", "test_acc_at_best_val")
    assert not stale.exists()
    assert not (tmp_path / "out" / "tables" / "imagenet.md").exists()
    assert "imagenet table (no imagenet run in the records)" in result.readme.read_text()


# ---------------------------------------------------------------- bad records


def _one_record(root: Path, **overrides) -> Path:
    rec = {"schema": 1, "suite": SUITE, "task": "listops", "model": "hgrn", "variant": "cumsoftmax", "seed": 0,
           "status": "complete", "config": {}, "metrics": {"val_acc_best": 0.5, "test_acc_at_best_val": 0.5,
           "test_acc_last": 0.5, "epochs": 1, "steps": 1, "params": 1, "wall_time_s": 1.0}, "history": "metrics.csv",
           "versions": {}}
    for k, v in overrides.items():
        if v is None:
            rec.pop(k)
        else:
            rec[k] = v
    path = root / f"run{len(list(root.rglob('record.json')))}" / "record.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(rec))
    return path


def test_malformed_json_names_the_file(tmp_path):
    _one_record(tmp_path)
    bad = tmp_path / "deep" / "er" / "record.json"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"schema": 1, "task": ')
    with pytest.raises(RecordError, match=re.escape(str(bad))):
        load_runs(tmp_path)
    loaded = load_runs(tmp_path, allow_unreadable=True)
    assert len(loaded.runs) == 1 and [p for p, _ in loaded.unreadable] == [bad]


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"seed": None}, "field 'seed' is missing"),
        ({"status": "done"}, "status 'done'"),
        ({"schema": 2}, "schema 2"),
        ({"metrics": {"test_acc_at_best_val": 88.7}}, r"outside \[0, 1\]"),
        ({"lower_bounds": [[0.1, 0.2], [0.3]]}, "layer 1 has 1 channels"),
        ({"seed": "0"}, "field 'seed' is '0'"),
    ],
)
def test_invalid_record_fields_name_file_and_field(tmp_path, overrides, match):
    path = _one_record(tmp_path, **overrides)
    with pytest.raises(RecordError, match=match) as info:
        load_runs(tmp_path)
    assert str(path) in str(info.value)


def test_duplicate_run_is_an_error(tmp_path):
    _one_record(tmp_path)
    _one_record(tmp_path)
    with pytest.raises(RecordError, match="counted twice"):
        load_runs(tmp_path)


def test_metric_choice_and_foreign_suite_warning(tmp_path):
    _one_record(tmp_path / "runs", suite="other-suite",
                metrics={"val_acc_best": 0.7, "test_acc_at_best_val": 0.6, "test_acc_last": 0.5})
    last = build(SUITE, tmp_path / "runs", tmp_path / "a", "test_acc_last")
    assert md_rows((tmp_path / "a" / "tables" / "lra.md").read_text())["HGRN (cumsoftmax), ours"][0] == "50.00"
    assert "other-suite" in last.readme.read_text()
    build(SUITE, tmp_path / "runs", tmp_path / "b", "val_acc_best")
    assert md_rows((tmp_path / "b" / "tables" / "lra.md").read_text())["HGRN (cumsoftmax), ours"][0] == "70.00"


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "results", *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"})


def test_cli_malformed_record_exit_code_and_allow_unreadable(tmp_path):
    _one_record(tmp_path / "runs")
    bad = tmp_path / "runs" / "x" / "record.json"
    bad.parent.mkdir()
    bad.write_text("not json")
    proc = _cli("--suite", SUITE, "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and str(bad) in proc.stderr and "not valid JSON" in proc.stderr
    assert not (tmp_path / "out" / "README.md").exists()
    proc = _cli("--suite", SUITE, "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--allow-unreadable")
    assert proc.returncode == 0, proc.stderr
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "| unreadable record files | 1 |" in readme and str(bad) in readme


def test_cli_defaults_and_empty_runs(tmp_path):
    proc = _cli("--suite", "nothing-here", cwd=tmp_path)
    assert proc.returncode == 2 and "runs/nothing-here" in proc.stderr
    _one_record(tmp_path / "runs" / "mini")
    proc = _cli("--suite", "mini", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "results" / "mini" / "README.md").is_file()
    assert (tmp_path / "results" / "mini" / "tables" / "lra.tex").is_file()


# ---------------------------------------------------------------- published numbers and isolation


def test_published_file_has_a_source_per_row_and_documented_averages():
    pub = load_published()
    assert (pub.table["source"].str.len() > 0).all()
    lra = pub.table[pub.table["benchmark"] == "lra"]
    for key, g in lra.groupby("model_key"):
        v = dict(zip(g["task"], g["value"]))
        # Published averages count '–' as 0 over six tasks; the table note says so, so check it holds.
        six = sum(float(v[t]) if v[t] else 0.0 for t in LRA) / 6
        assert six == pytest.approx(float(v["avg"]), abs=0.006), key
    assert pub.text("imagenet", "hgrn", "imagenet") == "80.09"


def test_published_numbers_match_reference_dossier():
    ref = REPO.parent / "shared" / "reference" / "hgrn.md"
    if not ref.is_file():
        pytest.skip(f"{ref} not present")
    section = ref.read_text().split("### 5.1 LRA")[1].split("### 5.2")[0]
    pub = load_published()
    names = {name: key for key, name in pub.models("lra")}
    checked = 0
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith("| Model"):
            continue
        cells = [c.strip().replace("**", "") for c in line.strip().strip("|").split("|")]
        name = cells[0].replace(" (HGRN2 paper)", "").replace(" (HGRN1)", "")
        for task, text in zip(LRA + ["avg"], cells[1:]):
            assert pub.text("lra", names[name], task) == text, (name, task)
            checked += 1
    assert checked == 16 * 7
    assert "80.09" in ref.read_text().split("### 5.2")[1].split("### 5.3")[0]


def test_results_never_imports_training_code(tmp_path):
    _one_record(tmp_path / "runs")
    code = (
        "import sys; from results.report import build; import results.__main__; "
        f"build('s', {str(tmp_path / 'runs')!r}, {str(tmp_path / 'out')!r}, 'test_acc_at_best_val'); "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'lightning', 'pytorch_lightning', "
        "'kernels', 'models', 'lra', 'vision', 'triton')]; print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_published_csv_is_inside_results():
    assert PUBLISHED_CSV.parent == REPO / "results"
    with io.open(PUBLISHED_CSV, encoding="utf-8") as f:
        header = next(csv.reader(f))
    assert header == ["benchmark", "model_key", "model", "task", "value", "source", "note"]


def test_schedule_names_are_the_models():
    # results/ keeps its own copy (models/ pulls in torch); the ablation tables order and label by it
    from models.lower_bound import SCHEDULES as MODEL_SCHEDULES
    from results.names import SCHEDULES

    assert SCHEDULES == MODEL_SCHEDULES
