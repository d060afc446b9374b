"""Light, batched augmentation on tensors: random small shifts, rotations and scales.

One ``affine_grid`` + ``grid_sample`` call transforms a whole batch, so augmentation
costs a fraction of an MLP training step on CPU. Random parameters come from the
CPU ``generator`` given, which keeps runs reproducible on any device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812


@dataclass(frozen=True)
class AffineJitter:
    """Ranges, drawn uniformly per image: shift in pixels, rotation in degrees, scale."""

    max_shift: float = 2.0
    max_rotation: float = 10.0
    min_scale: float = 0.9
    max_scale: float = 1.1

    def __call__(self, pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``pixels`` [n, 1, h, w] with background 0 -> a jittered copy of the same shape."""
        n, _, height, width = pixels.shape

        def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
            return low + (high - low) * torch.rand(*shape, generator=generator)

        angle = uniform(-1.0, 1.0, n) * math.radians(self.max_rotation)
        scale = uniform(self.min_scale, self.max_scale, n)
        # Normalized coordinates span 2 units over the image: one pixel is 2 / size.
        shift_x = uniform(-1.0, 1.0, n) * self.max_shift * 2.0 / width
        shift_y = uniform(-1.0, 1.0, n) * self.max_shift * 2.0 / height
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        # theta maps output coordinates to input ones: the inverse of the wanted transform.
        theta = torch.stack(
            [torch.stack([cos, -sin, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1
        ).to(pixels.device, pixels.dtype)
        grid = F.affine_grid(theta, list(pixels.shape), align_corners=False)
        return F.grid_sample(
            pixels, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
