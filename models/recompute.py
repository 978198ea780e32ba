"""When the layers recompute their input projections in the backward by default: on CPU tensors of long
sequences, where memory is what runs short (docs/performance.md, seventh pass).

- The HGRU's p, z and g from 1024 tokens per sequence. Shorter sequences keep them: there the extra matrix
  products cost more than the memory is worth (HGRN-DeiT-Tiny at 256 tokens: 1.06x DeiT-Tiny's step time
  with them kept against 1.16x recomputed).
- The GLU's W1 x and W2 x from 8192 tokens, where the HGRU runs in pieces of time and these two are the
  largest activations left at the peak of a step. At 4096 tokens recomputing them cost 4% of a d 64 step for
  memory that was not short.
"""
from __future__ import annotations

import torch

RECOMPUTE_MIN_TOKENS = 1024  # tokens per sequence from which the HGRU's projections are recomputed
GLU_RECOMPUTE_MIN_TOKENS = 8192  # ... and the GLU's


def recompute_by_default(x: torch.Tensor, min_tokens: int = RECOMPUTE_MIN_TOKENS) -> bool:
    """Whether a layer with input x (B, T, d) recomputes its projections when not told: CPU, T >= min_tokens."""
    return x.device.type == "cpu" and x.dim() == 3 and x.shape[1] >= min_tokens
