"""Deskewing inside the model: each image sheared upright about its centre of mass.

A classic MNIST normalization (LeCun et al. 1998; Ghosh's "deskewing"): from an
image's second moments, the slant ``alpha = cov(x, y) / var(y)`` of its ink, and a
shear ``x -> x + alpha * (y - cy)`` that makes it upright, with the centre of mass
moved to the middle. An MLP then no longer spends capacity on slant.

It is the model's first layer, so it is in the published ONNX and TorchScript
graphs: the service's preprocessing and a client sending raw tensors see the same
``[n, 784] -> [n, 10]`` model as before. It is written with plain tensor operations
and ``grid_sample`` (ONNX ``GridSample``, opset 16 and later), and costs a few
percent of a wide MLP's arithmetic.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

SIDE = 28
# an image with (almost) no ink keeps its slant at 0 rather than dividing by ~0
MIN_MASS = 1e-3
MIN_VARIANCE = 1e-3
# |alpha| above 1 is a 45-degree slant: past that, the moments describe a blob
MAX_SLANT = 1.0


class Deskew(nn.Module):
    """``[n, 784]`` normalized images -> the same images sheared upright and centred.

    ``mean`` and ``std`` are the normalization the model's inputs carry; the moments
    are taken of the ink (``x * std + mean``, clipped at 0), and the resampled ink is
    normalized again, so the background stays the background.
    """

    def __init__(self, mean: float, std: float, side: int = SIDE) -> None:
        super().__init__()
        self.mean = float(mean)
        self.std = float(std)
        self.side = side
        self.min_mass = MIN_MASS
        self.min_variance = MIN_VARIANCE
        self.max_slant = MAX_SLANT
        coords = torch.arange(side, dtype=torch.float32)
        rows, cols = torch.meshgrid(coords, coords, indexing="ij")
        self.register_buffer("rows", rows.reshape(1, -1), persistent=False)
        self.register_buffer("cols", cols.reshape(1, -1), persistent=False)

    def slant_and_centre(
        self, ink: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each image's slant and centre of mass (row, col), each ``[n, 1]``."""
        mass = ink.sum(1, keepdim=True).clamp(min=self.min_mass)
        centre_row = (ink * self.rows).sum(1, keepdim=True) / mass
        centre_col = (ink * self.cols).sum(1, keepdim=True) / mass
        d_row = self.rows - centre_row
        d_col = self.cols - centre_col
        var_row = (ink * d_row * d_row).sum(1, keepdim=True) / mass
        cov = (ink * d_row * d_col).sum(1, keepdim=True) / mass
        slant = (cov / var_row.clamp(min=self.min_variance)).clamp(-self.max_slant, self.max_slant)
        return slant, centre_row, centre_col

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        ink = (inputs * self.std + self.mean).clamp(min=0.0)
        slant, centre_row, centre_col = self.slant_and_centre(ink)
        middle = (self.side - 1) / 2.0
        # output pixel (r, c) samples the input at row r - middle + cy and
        # column c - middle + cx + slant * (r - middle)
        source_row = self.rows - middle + centre_row
        source_col = self.cols - middle + centre_col + slant * (self.rows - middle)
        # grid_sample's coordinates, align_corners=False: pixel i -> (2i + 1) / side - 1
        grid_x = (2.0 * source_col + 1.0) / self.side - 1.0
        grid_y = (2.0 * source_row + 1.0) / self.side - 1.0
        grid = torch.stack((grid_x, grid_y), dim=-1).reshape(-1, self.side, self.side, 2)
        images = ink.reshape(-1, 1, self.side, self.side)
        upright = functional.grid_sample(
            images, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        return (upright.reshape(inputs.shape[0], -1) - self.mean) / self.std
