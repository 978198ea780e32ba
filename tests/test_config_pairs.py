"""Each HGRN config and its Transformer sibling differ only in the network: the same data pipeline, trainer,
run section and seed (lra/configs/<task>.yaml and <task>-transformer.yaml for every task and tier; in vision/configs the
name with "transformer" in place of "hgrn"), so a comparison between the two measures the architecture alone.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
LRA, VISION = REPO / "lra" / "configs", REPO / "vision" / "configs"

# HGRN configs without a Transformer sibling, each with its reason (checked below to stay true).
UNPAIRED = {
    "vision/configs/cifar100-hgrn.yaml": "no suite runs it (results/suites/*.yaml), so nothing compares it",
    "vision/configs/cifar100-hgrn-tiny.yaml": "no suite runs it (results/suites/*.yaml), so nothing compares it",
}
# Deliberate differences between siblings, as {(hgrn config, dotted key): reason}; none today.
DELIBERATE: dict[tuple[str, str], str] = {}


def lra_sibling(path: Path) -> Path:
    task, _, tier = path.stem.partition("-")  # listops, listops-tiny, listops-mini
    return path.with_name(f"{task}-transformer{'-' + tier if tier else ''}.yaml")


def vision_sibling(path: Path) -> Path:
    return path.with_name(path.name.replace("hgrn", "transformer"))


def hgrn_configs() -> list[Path]:
    lra = [p for p in LRA.glob("*.yaml") if "transformer" not in p.name]
    vision = [p for p in VISION.glob("*.yaml") if "hgrn" in p.name]
    return sorted(lra + vision)


def sibling(path: Path) -> Path:
    return lra_sibling(path) if path.parent == LRA else vision_sibling(path)


def name(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def differences(a: object, b: object, key: str = "") -> list[str]:
    """Dotted keys at which two parsed YAML documents differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str) for d in differences(a.get(k), b.get(k), f"{key}.{k}".lstrip("."))]
    return [] if a == b else [key]


PAIRS = [p for p in hgrn_configs() if name(p) not in UNPAIRED]


def test_every_config_has_its_sibling_or_a_reason():
    missing = [name(p) for p in PAIRS if not sibling(p).exists()]
    assert not missing, f"HGRN configs without a Transformer sibling: {missing}; add one, or list it in UNPAIRED with why"
    paired = {sibling(p) for p in PAIRS}
    orphans = [name(p) for p in sorted(LRA.glob("*transformer*.yaml")) + sorted(VISION.glob("*transformer*.yaml"))
               if p not in paired]
    assert not orphans, f"Transformer configs without an HGRN sibling: {orphans}"
    suites = "\n".join(p.read_text() for p in (REPO / "results" / "suites").glob("*.yaml"))
    for unpaired in UNPAIRED:
        assert (REPO / unpaired).exists() and not sibling(REPO / unpaired).exists(), f"{unpaired}: UNPAIRED is stale"
        assert unpaired not in suites, f"{unpaired} is run by a suite now: give it a Transformer sibling"


@pytest.mark.parametrize("hgrn", PAIRS, ids=name)
def test_siblings_share_data_trainer_run_and_seed(hgrn: Path):
    a, b = yaml.safe_load(hgrn.read_text()), yaml.safe_load(sibling(hgrn).read_text())
    assert a["model"]["init_args"]["backbone"] == "hgrn" and b["model"]["init_args"]["backbone"] == "transformer"
    assert set(a) == set(b), (sorted(a), sorted(b))
    shared = {k: v for k, v in a.items() if k != "model"}
    shared["model.class_path"] = a["model"]["class_path"]
    other = {k: v for k, v in b.items() if k != "model"}
    other["model.class_path"] = b["model"]["class_path"]
    unexplained = [k for k in differences(shared, other) if (name(hgrn), k) not in DELIBERATE]
    assert not unexplained, (f"{name(hgrn)} and {name(sibling(hgrn))} differ at {unexplained}; make them equal, or list "
                             f"a deliberate difference in DELIBERATE with its reason")
    assert "data" in shared and "trainer" in shared


def test_a_difference_is_found_and_named():
    # the comparison itself: nested keys, keys on one side only, lists
    a = {"data": {"init_args": {"batch_size": 32, "root": "x"}}, "trainer": {"max_steps": 10, "plugins": [1]}}
    b = {"data": {"init_args": {"batch_size": 16}}, "trainer": {"max_steps": 10, "plugins": [2]}}
    assert differences(a, b) == ["data.init_args.batch_size", "data.init_args.root", "trainer.plugins"]
    assert differences(a, a) == []
