"""Comments and docstrings cite only what ships: every repository path they name exists, and none points at an
issue number (issues do not ship with the code; say what the target or the reason is instead).

Scanned: comments and docstrings of *.py, comments of *.yaml (git's file list, so .venv and caches stay out).
What counts as a citation of this repository:
- a path whose first folder is a top-level folder of the repository (``docs/FIDELITY.md``, ``harness/cli.py``,
  ``lra/configs/listops.yaml``, ``lra/data/``) or a folder beside the citing file (``data/text.py`` in lra/);
- any ``*.md`` name or path (a bare ``README.md`` must then lie beside the citing file or at the root);
- a bare ``*.yaml`` name (a config beside the citing file).
A path resolves against the repository root or the citing file's folder. Not citations:
- upstream files, written with their repository's name first: as a path prefix (``HGRN/script_lra.py``), as
  the word before the path (``google-research/long-range-arena lra_benchmarks/data/listops.py``, also when the
  path starts like one of ours: ``fla-org/flash-linear-attention tests/ops/test_hgrn.py``) or with a colon
  (``flash-linear-attention:tests/ops/test_hgrn.py``); upstream issues likewise (``owner/repo#12``);
- other bare file names (``metrics.csv``, ``record.json``, DeiT's ``main.py``), patterns with placeholders
  (``lra/configs/<task>.yaml``), and paths under the folders that runs and builds write (GENERATED).
"""
from __future__ import annotations

import ast
import io
import re
import subprocess
import tokenize
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Folders that runs, data preparation and report builds create: a path under them names an output.
GENERATED = ("runs/", "data/", "results/mini/", "results/demo/", "results/paper/", "results/scan_gpu.json")

# Files whose bad citations are being fixed on another branch (their owners edit them now); each entry must
# still have a bad citation, so the list shrinks as they are fixed and cannot go stale.
PENDING: set[str] = set()  # files whose citations another change is still fixing

_CANDIDATE = re.compile(r"[\w.\-/<>{}*]+")
_PLACEHOLDER = re.compile(r"[<>{}*]|\.\.\.")
_WORD_BEFORE = re.compile(r"([\w.-]+)/([\w.-]+)\s+$")  # "owner/repo " right before a path
_ISSUE = re.compile(r"\bissues?\s*#?\d+", re.IGNORECASE)


def repository_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "--", "*.py", "*.yaml"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    return [REPO / line for line in out.splitlines() if (REPO / line).is_file()]


def prose(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every comment and docstring of a Python file, or every comment of a YAML file."""
    source = path.read_text()
    if path.suffix == ".py":
        found = [(tok.start[0], tok.string) for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                 if tok.type == tokenize.COMMENT]
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=False)
                if doc:
                    found.append((node.body[0].lineno, doc))
        return found
    found = []
    for number, line in enumerate(source.splitlines(), 1):
        hash_at = re.search(r"(^|\s)#", line)
        if hash_at:
            found.append((number, line[hash_at.end() - 1:]))
    return found


def cited_paths(text: str, folder: Path, root: Path = REPO) -> list[str]:
    """The strings in `text` that cite a file or folder of the repository at `root` (see the module docstring)."""
    top = {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    beside = {p.name for p in folder.iterdir() if p.is_dir()}
    cited = []
    for match in _CANDIDATE.finditer(text):
        start = match.start()
        if start > 0 and (text[start - 1] in "/.:" or text[start - 1].isalnum()):
            continue  # the tail of a URL, of a module path or of an upstream "repo:path"
        before = _WORD_BEFORE.search(text[max(0, start - 100):start])
        if before and before.group(1) not in top | beside and not re.search(r"\.[a-z]+$", before.group(2)):
            continue  # after "owner/repo ": an upstream file
        token = match.group(0).rstrip(".-")
        if _PLACEHOLDER.search(token) or "//" in token or token.startswith("/"):
            continue
        if "/" in token:
            if token.split("/", 1)[0] not in top | beside and not token.endswith(".md"):
                continue  # an upstream path (its repository's name first) or a fraction such as 1/2
        elif not token.endswith((".md", ".yaml")):
            continue
        if token.startswith(GENERATED):
            continue
        cited.append(token)
    return cited


def bad_citations(files: list[Path], root: Path = REPO) -> dict[str, list[str]]:
    """Per file (relative to `root`): one line per cited path that resolves neither against `root` nor against
    the citing file's folder, and per issue number cited."""
    problems: dict[str, list[str]] = {}
    for path in files:
        name = path.relative_to(root).as_posix()
        for line, text in prose(path):
            for cited in cited_paths(text, path.parent, root):
                if not ((root / cited).exists() or (path.parent / cited).exists()):
                    problems.setdefault(name, []).append(
                        f"{name}:{line}: cites {cited}, which is not in the repository")
            for issue in _ISSUE.findall(text):
                problems.setdefault(name, []).append(f"{name}:{line}: cites '{issue}'; issues do not ship")
    return problems


def test_every_cited_repository_path_exists():
    problems = bad_citations(repository_files())
    new = [line for name, lines in problems.items() if name not in PENDING for line in lines]
    assert not new, ("cite files that ship (docs/..., harness/...), or upstream files with their repository's "
                     "name first:\n" + "\n".join(new))
    fixed = sorted(PENDING - set(problems))
    assert not fixed, f"these cite only what ships now; remove them from PENDING: {fixed}"


@pytest.mark.parametrize("text, expected", [
    ("see docs/FIDELITY.md and harness/cli.py.", ["docs/FIDELITY.md", "harness/cli.py"]),
    ("(ARCHITECTURE.md section 3)", ["ARCHITECTURE.md"]),
    ("shared/reference/hgrn.md section 2", ["shared/reference/hgrn.md"]),
    ("as in HGRN/script_lra.py and google-research/long-range-arena lra_benchmarks/data/listops.py", []),
    ("fla-org/flash-linear-attention tests/ops/test_hgrn.py and flash-linear-attention:tests/ops/x.py", []),
    ("writes metrics.csv and record.json; see lra/configs/<task>.yaml and runs/x/record.json", []),
    ("https://github.com/x/docs/y.md; 1/2 of the rate, MixUp/CutMix, fp32/bf16", []),
    ("lra/task.py vision/nope.py docs/nope.md", ["lra/task.py", "vision/nope.py", "docs/nope.md"]),
    ("the suite lower-bound-mini.yaml", ["lower-bound-mini.yaml"]),
])
def test_what_counts_as_a_citation(text, expected):
    assert cited_paths(text, REPO / "results" / "suites") == expected


def test_a_made_up_path_or_an_issue_number_is_reported(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "REAL.md").write_text("")
    (tmp_path / "harness").mkdir()
    code = tmp_path / "harness" / "probe.py"
    code.write_text('"""See docs/REAL.md and docs/NOT_THERE.md."""\n'
                    'x = 1  # as harness/probe.py, not harness/nope.py\n')
    config = tmp_path / "harness" / "probe.yaml"
    config.write_text("a: 1  # see reference/kernels.md and docs/REAL.md (targets of issue 3)\n")
    assert bad_citations([code, config], tmp_path) == {
        "harness/probe.py": ["harness/probe.py:2: cites harness/nope.py, which is not in the repository",
                             "harness/probe.py:1: cites docs/NOT_THERE.md, which is not in the repository"],
        "harness/probe.yaml": ["harness/probe.yaml:1: cites reference/kernels.md, which is not in the repository",
                               "harness/probe.yaml:1: cites 'issue 3'; issues do not ship"],
    }
