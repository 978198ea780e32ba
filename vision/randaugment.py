"""timm's RandAugment ``rand-m9-mstd0.5-inc1`` (the DeiT recipe) rebuilt on torchvision's v2.RandAugment.

What matches timm: 2 ops drawn uniformly with replacement, each applied with probability 0.5; magnitude on
timm's 0..10 scale drawn per op from N(m, mstd) and clipped to [0, 10]; the "increasing" op variants (signed
enhance factors 1 +- 0.09 m, solarize threshold falling with m, posterize keeping 4 -> 1 bits); rotate 30
degrees, shear 0.3, translate ~0.45 of the side at m = 10; Invert is in the op set; geometric ops fill with
the mean pixel when ``fill`` is given.
What differs: timm's SolarizeAdd op is missing (torchvision has no such op), so each op is drawn with
probability 1/14 instead of 1/15; the magnitude is quantised to 0.1 steps (101 bins); torchvision's
translate maximum is 150/331 = 0.453 of the side instead of 0.45; posterize keeps 1 bit, not 0, at m = 10
(Pillow >= 10 refuses 0 bits).
"""
from __future__ import annotations

from typing import Any

import torch
from torchvision.transforms import v2

MAX_LEVEL = 10.0  # timm's magnitude scale: m9 means 90 % of each op's maximum
BINS = 101  # magnitude resolution: 0.1 on timm's scale


def _posterize_increasing(num_bins: int, height: int, width: int) -> torch.Tensor:
    # timm's PosterizeIncreasing keeps 4 - int(4 m / 10) bits (torchvision's keeps 8 -> 4 bits); at least 1,
    # because Pillow >= 10 refuses 0 bits (m >= 10 only)
    return (4 - torch.floor(torch.linspace(0.0, 4.0, num_bins) + 1e-6)).clamp(min=1).int()


def _no_magnitude(num_bins: int, height: int, width: int) -> None:
    return None


_TORCHVISION_SPACE = v2.RandAugment._AUGMENTATION_SPACE
# Identity leaves (timm has none: the per-op probability 0.5 plays that role); Invert joins, as in timm.
SPACE = {name: spec for name, spec in _TORCHVISION_SPACE.items() if name not in ("Identity", "Posterize")}
SPACE["Posterize"] = (_posterize_increasing, False)
SPACE["Invert"] = (_no_magnitude, False)


class DeiTRandAugment(v2.RandAugment):
    """RandAugment with a noisy magnitude and a per-op probability, as timm's ``rand-m{m}-mstd{std}-inc1``.

    Args:
        num_ops: ops drawn per image (timm's n, 2). magnitude: mean magnitude on the 0..10 scale (9).
        magnitude_std: standard deviation of the per-op magnitude (0.5); 0 keeps it fixed.
        op_prob: probability that each drawn op is applied (timm: 0.5).
        interpolation: for the geometric ops. fill: pixel value outside a rotated/sheared/translated image.
    """

    _AUGMENTATION_SPACE = SPACE

    def __init__(
        self,
        num_ops: int = 2,
        magnitude: float = 9.0,
        magnitude_std: float = 0.5,
        op_prob: float = 0.5,
        interpolation: str = "bicubic",
        fill: Any = None,
    ) -> None:
        if not 0.0 <= magnitude <= MAX_LEVEL:
            raise ValueError(f"RandAugment magnitude must lie in [0, {MAX_LEVEL}], got {magnitude}")
        if magnitude_std < 0 or not 0.0 <= op_prob <= 1.0:
            raise ValueError(f"need magnitude_std >= 0 and op_prob in [0, 1], got {magnitude_std}, {op_prob}")
        # the parent applies exactly one op per call; this class decides how many calls and at what magnitude
        super().__init__(num_ops=1, magnitude=0, num_magnitude_bins=BINS, interpolation=interpolation, fill=fill)
        self.ops_per_image = int(num_ops)
        self.mean_magnitude = float(magnitude)
        self.magnitude_std = float(magnitude_std)
        self.op_prob = float(op_prob)

    def sample_magnitude(self) -> int:
        """A magnitude bin index (0..100) for one op."""
        m = self.mean_magnitude
        if self.magnitude_std > 0:
            m = m + self.magnitude_std * float(torch.randn(()))
        m = min(MAX_LEVEL, max(0.0, m))
        return int(round(m / MAX_LEVEL * (BINS - 1)))

    def forward(self, *inputs: Any) -> Any:
        sample = inputs if len(inputs) > 1 else inputs[0]
        for _ in range(self.ops_per_image):
            if float(torch.rand(())) >= self.op_prob:
                continue
            self.magnitude = self.sample_magnitude()
            sample = super().forward(sample)
        return sample
