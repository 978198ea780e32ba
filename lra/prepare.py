"""Make LRA data ready under the data root.

    python -m lra.prepare <listops|text|retrieval|image|pathfinder|pathx|all> [--root DIR] [--size N] ...

- listops, pathfinder, pathx: generated offline (or copied from a local LRA release with
  ``--release lra_release.gz``); ``--size`` sets the number of rows/images.
- text (IMDB) and image (CIFAR-10): downloaded and md5-checked where a network exists; an archive
  placed by hand at the printed path is verified and unpacked instead.
- retrieval (AAN): only distributed inside the LRA release; use ``--release`` or place the files.
Exit status: 0 ready, 1 a task failed, 2 data has to be placed by hand (the message says where).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from harness.datasets import ENV_VAR, MissingDataError, resolve_root
from lra.data.download import CIFAR10, IMDB, DownloadError, fetch_archive
from lra.data.release import extract_from_release

TASKS = ("listops", "text", "retrieval", "image", "pathfinder", "pathx")
RELEASE_URL = "https://storage.googleapis.com/long-range-arena/lra_release.gz"
AAN_FILES = ("new_aan_pairs.train.tsv", "new_aan_pairs.eval.tsv", "new_aan_pairs.test.tsv")


class NeedsManualStep(RuntimeError):
    """Data that cannot be made here; the message says what to place where."""


def _log(msg: str) -> None:
    print(f"[lra.prepare] {msg}", flush=True)


def prepare_listops(args: argparse.Namespace, root: Path) -> str:
    from lra.generators.listops import ListOpsConfig, generate_listops

    target = root / "listops-1000"
    if args.release:
        extract_from_release(Path(args.release), root, ["listops-1000"], progress=not args.quiet)
        return f"copied {target} from {args.release}"
    if (target / "basic_train.tsv").exists() and not args.force:
        return f"{target} already exists (use --force to regenerate)"
    cfg = ListOpsConfig(max_depth=args.max_depth, max_args=args.max_args, min_length=args.min_length,
                        max_length=args.max_length)
    size = args.size or 100_000
    out = generate_listops(root, size, config=cfg, seed=args.seed, workers=args.workers,
                           fractions=_listops_fractions(args, size), progress=not args.quiet, overwrite=args.force)
    return f"generated {target}: {out['rows']} in {out['seconds']:.0f} s"


def _listops_fractions(args: argparse.Namespace, size: int) -> tuple[float, float, float]:
    """Train/val/test fractions: the official 96/2/2, or exact --val-size/--test-size rows (mini tiers need
    test sets of 2,000+ rows from small files)."""
    val = args.val_size if args.val_size is not None else round(size * 0.02)
    test = args.test_size if args.test_size is not None else round(size * 0.02)
    if val < 1 or test < 1 or val + test >= size:
        raise ValueError(f"--val-size {val} and --test-size {test} must be >= 1 and leave training rows out of --size {size}")
    return (size - val - test) / size, val / size, test / size


def _pathfinder(args: argparse.Namespace, root: Path, resolution: int) -> str:
    from lra.generators.pathfinder_dataset import difficulty_dir, generate_pathfinder

    target = difficulty_dir(root, resolution, args.difficulty)
    if args.release:
        extract_from_release(Path(args.release), root, [f"pathfinder{resolution}/{args.difficulty}"],
                             progress=not args.quiet)
        return f"copied {target} from {args.release}"
    if (target / "metadata").is_dir() and any((target / "metadata").iterdir()) and not args.force:
        return f"{target} already exists (use --force to regenerate)"
    size = args.size or 200_000
    out = generate_pathfinder(root, resolution, args.difficulty, size, seed=args.seed, workers=args.workers,
                              images_per_batch=args.images_per_batch, progress=not args.quiet, overwrite=args.force)
    return (f"generated {target}: {size} images in {out['seconds']:.0f} s "
            f"({out['positive_fraction']:.3f} positive)")


def prepare_pathfinder(args: argparse.Namespace, root: Path) -> str:
    return _pathfinder(args, root, args.resolution or 32)


def prepare_pathx(args: argparse.Namespace, root: Path) -> str:
    return _pathfinder(args, root, args.resolution or 128)


def _archive(archive, task: str) -> Callable[[argparse.Namespace, Path], str]:
    def run(args: argparse.Namespace, root: Path) -> str:
        try:
            folder = fetch_archive(archive, root, task, timeout=args.timeout, progress=not args.quiet)
        except DownloadError as err:
            raise NeedsManualStep(str(err)) from None
        return f"{archive.name} ready in {folder}"

    return run


def prepare_text(args: argparse.Namespace, root: Path) -> str:
    from lra.data.text import find_imdb

    try:
        kind, _ = find_imdb(root)
        return f"IMDB already present under {root / 'imdb'} ({kind} layout)"
    except MissingDataError:
        return _archive(IMDB, "text")(args, root)


def prepare_retrieval(args: argparse.Namespace, root: Path) -> str:
    target = root / "tsv_data"
    if args.release:
        extract_from_release(Path(args.release), root, ["tsv_data"], progress=not args.quiet)
        return f"copied {target} from {args.release}"
    if all((target / f).is_file() for f in AAN_FILES):
        return f"AAN already present in {target}"
    raise NeedsManualStep(
        f"the AAN pairs ship only inside the LRA release ({RELEASE_URL}, about 8 GB, reported to answer HTTP 403 "
        f"lately). Place {', '.join(AAN_FILES)} in {target}/, or run "
        f"`python -m lra.prepare retrieval --root {root} --release /path/to/lra_release.gz`"
    )


def prepare_image(args: argparse.Namespace, root: Path) -> str:
    return _archive(CIFAR10, "image")(args, root)


PREPARERS: dict[str, Callable[[argparse.Namespace, Path], str]] = {
    "listops": prepare_listops,
    "text": prepare_text,
    "retrieval": prepare_retrieval,
    "image": prepare_image,
    "pathfinder": prepare_pathfinder,
    "pathx": prepare_pathx,
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lra.prepare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", choices=TASKS + ("all",))
    p.add_argument("--root", default=None, help=f"data root (default ${ENV_VAR} or ./data)")
    p.add_argument("--size", type=int, default=None,
                   help="rows (listops, default 100000) or images (pathfinder/pathx, default 200000)")
    p.add_argument("--workers", type=int, default=None, help="processes for generation (default: all cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="regenerate synthetic data that already exists")
    p.add_argument("--release", default=None, help="a local lra_release.gz to copy listops/pathfinder/AAN from")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds before a download attempt gives up")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    g = p.add_argument_group("pathfinder / pathx")
    g.add_argument("--resolution", type=int, default=None, help="image size (default 32 for pathfinder, 128 for pathx)")
    g.add_argument("--difficulty", default="curv_contour_length_14",
                   choices=("curv_baseline", "curv_contour_length_9", "curv_contour_length_14"))
    g.add_argument("--images-per-batch", type=int, default=1000, help="images per imgs/<k> folder and metadata file")
    g = p.add_argument_group("listops (official values by default; smaller for demos)")
    g.add_argument("--min-length", type=int, default=500, help="keep trees longer than this (tokens)")
    g.add_argument("--max-length", type=int, default=2000, help="keep trees shorter than this (tokens)")
    g.add_argument("--max-depth", type=int, default=10)
    g.add_argument("--max-args", type=int, default=10)
    g.add_argument("--val-size", type=int, default=None, help="validation rows (default 2%% of --size)")
    g.add_argument("--test-size", type=int, default=None, help="test rows (default 2%% of --size)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = resolve_root(args.root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        _log(f"FAILED: cannot create the data root {root} ({err.strerror or err}); choose a writable folder with "
             f"--root or ${ENV_VAR}")
        return 1
    tasks = list(TASKS) if args.task == "all" else [args.task]
    status: dict[str, str] = {}
    code = 0
    for task in tasks:
        try:
            msg = PREPARERS[task](args, root)
            status[task] = "ready"
            _log(f"{task}: {msg}")
        except NeedsManualStep as err:
            status[task] = "needs manual step"
            code = max(code, 2) if code != 1 else 1
            _log(f"{task}: NOT READY: {err}")
        except PermissionError as err:
            status[task] = f"failed: {err}"
            code = 1
            where = err.filename or root
            _log(f"{task}: FAILED: cannot write {where} ({err.strerror or err}): the data root {root} is read-only "
                 f"here; choose a writable folder with --root or ${ENV_VAR} (data already there is used as it is)")
        except (OSError, ValueError, RuntimeError) as err:
            status[task] = f"failed: {err}"
            code = 1
            _log(f"{task}: FAILED: {type(err).__name__}: {err}")
    if len(tasks) > 1:
        _log("summary " + json.dumps(status))
    return code


if __name__ == "__main__":
    sys.exit(main())
