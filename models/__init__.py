"""HGRN and its Transformer baseline: token mixers, channel mixers, backbones, embeddings, heads."""
from .classifier import RetrievalModel, SequenceClassifier
from .deit import hgrn_deit
from .embeddings import PatchEmbedding, PixelEmbedding, TokenEmbedding, sinusoidal_positions
from .glu import GLU
from .heads import ClassificationHead, RetrievalHead, pool
from .hgrn import HGRN
from .hgru import HGRU, MODES, forget_gate, set_recompute_projections
from .lower_bound import SCHEDULES, LowerBounds
from .norms import SimpleRMSNorm, make_norm
from .transformer import Transformer

__all__ = [
    "GLU", "HGRN", "HGRU", "MODES", "SCHEDULES", "ClassificationHead", "LowerBounds", "PatchEmbedding",
    "PixelEmbedding", "RetrievalHead", "RetrievalModel", "SequenceClassifier", "SimpleRMSNorm", "TokenEmbedding",
    "Transformer", "forget_gate", "hgrn_deit", "make_norm", "pool", "set_recompute_projections",
    "sinusoidal_positions",
]
