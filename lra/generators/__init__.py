"""Offline generators writing the LRA release's on-disk formats (ListOps, Pathfinder, Path-X)."""

from lra.generators.listops import ListOpsConfig, generate_listops, sample_rows
from lra.generators.pathfinder import PathfinderSampler, Sample
from lra.generators.pathfinder_config import PathfinderConfig, lra_config
from lra.generators.pathfinder_dataset import generate_pathfinder

__all__ = [
    "ListOpsConfig",
    "PathfinderConfig",
    "PathfinderSampler",
    "Sample",
    "generate_listops",
    "generate_pathfinder",
    "lra_config",
    "sample_rows",
]
