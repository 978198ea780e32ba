"""Keep a pre-norm sub-layer's input for the backward instead of its normalised copy.

In ``x + layer(norm(x))`` the layer's matrix products save ``norm(x)`` for their weight gradients, while the
norm's own backward already keeps ``x``: two (B, T, D) tensors per sub-layer where one would do. Inside
``keep_norm_input`` every tensor the layer saves that is (a view of) ``norm(x)`` is packed as a recipe
instead (``torch.autograd.graph.saved_tensors_hooks``) and rebuilt in the backward by running the norm
again, without side effects, on the kept ``x``: one elementwise pass per sub-layer for one (B, T, D) tensor
fewer per sub-layer at the peak. The rebuilt tensor is shared by every node of the sub-layer that saved it
and let go after the last of them has read it, so at most one sub-layer's copy is alive in the backward.

Norms it can rebuild: ``nn.LayerNorm``, ``SimpleRMSNorm`` and ``SequenceBatchNorm`` in training mode (batch
statistics, running statistics left alone). Any other norm (a ``SyncBatchNorm``, a BatchNorm in eval mode,
``Identity``) runs as before.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .norms import SequenceBatchNorm, SimpleRMSNorm


def rebuild_function(norm: nn.Module) -> Optional[Callable[[Tensor], Tensor]]:
    """norm(x) as a function without side effects, or None where the norm cannot be rebuilt that way."""
    if type(norm) is nn.LayerNorm:
        return lambda x: F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
    if type(norm) is SimpleRMSNorm:
        return norm.forward
    if type(norm) is SequenceBatchNorm and norm.training:
        return norm.batch_statistics_forward
    return None


class _Recipe:
    """The pack/unpack pair for one sub-layer: tensors sharing ``y``'s storage are saved as (self, view)."""

    def __init__(self, x: Tensor, y: Tensor, rebuild: Callable[[Tensor], Tensor]) -> None:
        self.x, self.rebuild = x, rebuild
        self.storage, self.dtype, self.shape = y.untyped_storage().data_ptr(), y.dtype, y.shape
        self.pending = 0  # packed views not yet unpacked: the rebuilt tensor is dropped when none are left
        self.rebuilt: Optional[Tensor] = None

    def pack(self, t: Tensor):
        if (t.layout is torch.strided and t.dtype == self.dtype and t.device == self.x.device
                and t.untyped_storage().data_ptr() == self.storage):
            self.pending += 1
            return (self, tuple(t.shape), t.stride(), t.storage_offset())
        return t

    @staticmethod
    def unpack(packed):
        if not isinstance(packed, tuple):
            return packed
        recipe, shape, stride, offset = packed
        return recipe.view(shape, stride, offset)

    def view(self, shape, stride, offset) -> Tensor:
        y = self.rebuilt
        if y is None:
            with torch.no_grad():
                y = self.rebuild(self.x).to(self.dtype)
            if y.shape != self.shape or not y.is_contiguous():
                raise RuntimeError(f"keep_norm_input: the rebuilt norm output is {tuple(y.shape)}, "
                                   f"contiguous={y.is_contiguous()}; the forward's was {tuple(self.shape)}, contiguous")
        self.pending -= 1
        self.rebuilt = y if self.pending > 0 else None
        return y.as_strided(shape, stride, offset)


@contextlib.contextmanager
def keep_norm_input(x: Tensor, y: Tensor, norm: nn.Module) -> Iterator[bool]:
    """Within the block, tensors saved for the backward that are views of ``y = norm(x)`` are rebuilt from
    ``x`` in the backward instead of being kept. Yields whether that is in effect (it is not for norms that
    ``rebuild_function`` cannot rebuild, or for a ``y`` that is not a fresh contiguous tensor). Not for use
    under torch.compile, which chooses what to recompute itself (PreNormResidual skips it there)."""
    rebuild = rebuild_function(norm)
    usable = (rebuild is not None and torch.is_grad_enabled() and y.is_contiguous() and y.storage_offset() == 0
              and y.untyped_storage().data_ptr() != x.untyped_storage().data_ptr())
    if not usable:
        yield False
        return
    recipe = _Recipe(x, y, rebuild)
    with torch.autograd.graph.saved_tensors_hooks(recipe.pack, _Recipe.unpack):
        yield True
