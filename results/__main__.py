"""Command line: python -m results --suite NAME [--runs DIR] [--out DIR] [--metric M] [--allow-unreadable]."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from harness.identity import ACCURACY_METRICS
from results.names import DEFAULT_METRIC
from results.records import RecordError

if TYPE_CHECKING:
    from results.report import BuildResult


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m results",
        description="Aggregate a suite's run records (record.json) into tables (Markdown, LaTeX, CSV), plots "
        "(PNG, PDF) and a README beside the published HGRN numbers.",
    )
    p.add_argument("--suite", required=True, help="suite name, e.g. demo, paper, lower-bound")
    p.add_argument("--runs", type=Path, default=None, help="folder searched recursively for record.json (default: runs/<suite>)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: results/<suite>); its tables/ and plots/ are regenerated")
    p.add_argument("--metric", choices=ACCURACY_METRICS, default=DEFAULT_METRIC, help=f"accuracy to report (default: {DEFAULT_METRIC})")
    p.add_argument("--report", choices=("paper", "mini"), default=None,
                   help="paper: beside the published numbers; mini: models compared with each other, with 95%% intervals "
                   "(default: the suite file's 'report:' entry in results/suites/, else paper)")
    p.add_argument("--allow-unreadable", action="store_true",
                   help="report malformed record files in the README and go on, instead of stopping at the first")
    return p.parse_args(argv)


def suite_spec(suite: str) -> dict:
    """The suite's file in results/suites/ (report kind, tasks left out, notes), or {} when there is none."""
    import yaml

    path = Path(__file__).with_name("suites") / f"{suite}.yaml"
    if not path.is_file():
        return {}
    spec = yaml.safe_load(path.read_text())
    if not isinstance(spec, dict):
        raise RecordError(f"{path}: a suite file must hold a mapping")
    if spec.get("report", "paper") not in ("paper", "mini"):
        raise RecordError(f"{path}: 'report' must be paper or mini, got {spec.get('report')!r}")
    left = spec.get("left_out") or {}
    if not isinstance(left, dict) or not all(isinstance(v, str) for v in left.values()):
        raise RecordError(f"{path}: 'left_out' must map task names to the reason they are left out")
    notes = spec.get("notes") or []
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise RecordError(f"{path}: 'notes' must be a list of sentences")
    return spec


def build_suite(suite: str, runs_root: Path, out: Path, metric: str = DEFAULT_METRIC, report: str | None = None,
                allow_unreadable: bool = False) -> BuildResult:
    """Tables, plots and README of one suite, with the report kind, left-out tasks and notes of its suite file
    (``report`` overrides the kind). Raises RecordError as results.report.build does."""
    # Imported here so that --help stays fast (pandas and matplotlib load slowly).
    from results.report import build

    spec = suite_spec(suite)
    kind = report or spec.get("report", "paper")
    return build(suite, runs_root, out, metric, allow_unreadable=allow_unreadable, kind=kind,
                 left_out=spec.get("left_out") or {}, notes=spec.get("notes") or [])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runs_root = args.runs if args.runs is not None else Path("runs") / args.suite
    out = args.out if args.out is not None else Path("results") / args.suite
    try:
        result = build_suite(args.suite, runs_root, out, args.metric, args.report, args.allow_unreadable)
    except RecordError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    n = len(result.runs)
    print(f"{n} run record(s) read from {runs_root}; {len(result.unreadable)} unreadable.")
    print(f"Wrote {len(result.tables)} table(s) and {len(result.plots.plots)} plot(s); see {result.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
