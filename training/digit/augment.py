"""Light, batched augmentation on tensors: random small shifts, rotations and scales.

One ``affine_grid`` + ``grid_sample`` call transforms a whole batch, so augmentation
costs a fraction of an MLP training step on CPU. Random parameters come from the
CPU ``generator`` given, which keeps runs reproducible on any device.
"""

from __future__ import annotations

import functools
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


def _uniform(low: float, high: float, n: int, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def _gaussian_kernels(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """One normalized 1-D Gaussian per ``sigma`` [n] -> [n, 2 * radius + 1]; sigma 0 = identity."""
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    sigma = sigma.clamp_min(1e-3).unsqueeze(1)
    weights = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return weights / weights.sum(1, keepdim=True)


def blur(pixels: torch.Tensor, sigma: torch.Tensor, radius: int = 2) -> torch.Tensor:
    """Gaussian blur of each image [n, 1, h, w] with its own ``sigma`` [n] (pixels), separable."""
    n, _, height, width = pixels.shape
    kernels = _gaussian_kernels(sigma, radius).to(pixels.device, pixels.dtype)
    flat = pixels.reshape(1, n, height, width)
    flat = F.conv2d(flat, kernels.view(n, 1, 1, -1), padding=(0, radius), groups=n)
    flat = F.conv2d(flat, kernels.view(n, 1, -1, 1), padding=(radius, 0), groups=n)
    return flat.reshape(n, 1, height, width)


def _max3(pixels: torch.Tensor, dim: int) -> torch.Tensor:
    """The maximum over each pixel and its two neighbours along ``dim`` (edges: the
    pixels that exist), as three shifted views: far cheaper than a one-channel
    ``max_pool2d`` on the CPU, and the same values."""
    size = pixels.shape[dim]
    out = pixels.clone()
    inner = out.narrow(dim, 1, size - 1)
    torch.maximum(inner, pixels.narrow(dim, 0, size - 1), out=inner)
    inner = out.narrow(dim, 0, size - 1)
    torch.maximum(inner, pixels.narrow(dim, 1, size - 1), out=inner)
    return out


def dilate(pixels: torch.Tensor) -> torch.Tensor:
    """Grey-level dilation with a 3x3 square: strokes about 2 px thicker."""
    return _max3(_max3(pixels, -1), -2)


def erode(pixels: torch.Tensor) -> torch.Tensor:
    """Grey-level erosion with a 3x3 square: strokes about 2 px thinner."""
    return -dilate(-pixels)


@functools.lru_cache(maxsize=8)
def _bicubic_matrix(coarse: int, fine: int) -> torch.Tensor:
    """[fine, coarse]: ``F.interpolate(..., mode="bicubic", align_corners=True)`` along one
    axis, as a matrix (bicubic interpolation is separable and linear), so upsampling a
    batch of coarse fields is two small matrix products."""
    basis = torch.eye(coarse).view(coarse, 1, 1, coarse)
    rows = F.interpolate(basis, size=(1, fine), mode="bicubic", align_corners=True)
    return rows.view(coarse, fine).t().contiguous()


def upsample_bicubic(coarse: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[n, c, g, g] -> [n, c, height, width], as ``F.interpolate`` bicubic with
    ``align_corners=True`` gives it."""
    rows = _bicubic_matrix(coarse.shape[-2], height)
    columns = _bicubic_matrix(coarse.shape[-1], width)
    return rows @ coarse @ columns.t()


@dataclass(frozen=True)
class WildAugment:
    """Deformations beyond MNIST's scans, all batched on tensors, in this order:

    1. one ``grid_sample`` per batch for an affine transform (shift, rotation, scale,
       shear) combined with an elastic distortion (Simard et al. 2003): a random coarse
       displacement field per image, upsampled bicubically to a smooth field whose RMS
       displacement is ``elastic_px`` pixels;
    2. stroke-width jitter: a random ``stroke_p`` of the images moves part of the way
       (uniform in 0.3-1) towards their dilation or, as often, 0.6 of that towards their
       erosion;
    3. blur: a random ``blur_p`` of the images gets a Gaussian blur, sigma up to
       ``max_blur_sigma`` pixels;
    4. low resolution: a random ``lowres_p`` of the images is shrunk so that the digit
       (20 px in MNIST's canvas) is ``lowres_min``-``lowres_max`` px tall, then scaled
       back up (bilinear or nearest, one size and mode per batch).
    """

    max_shift: float = 2.0
    max_rotation: float = 12.0
    min_scale: float = 0.85
    max_scale: float = 1.15
    max_shear: float = 0.15
    elastic_px: float = 1.0
    elastic_grid: int = 5
    stroke_p: float = 0.3
    blur_p: float = 0.15
    max_blur_sigma: float = 1.0
    lowres_p: float = 0.15
    lowres_min: int = 8
    lowres_max: int = 16

    def __call__(self, pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``pixels`` [n, 1, h, w] in [0, 1], background 0 -> a deformed copy, same shape."""
        n, _, height, width = pixels.shape
        out = self._warp(pixels, generator)
        out = self._strokes(out, generator)
        if self.blur_p > 0:
            chosen = torch.rand(n, generator=generator) < self.blur_p
            sigma = _uniform(0.3, self.max_blur_sigma, n, generator) * chosen
            if chosen.any():
                out = blur(out, sigma)
        if self.lowres_p > 0:
            chosen = torch.nonzero(torch.rand(n, generator=generator) < self.lowres_p)[:, 0]
            digit_px = int(
                torch.randint(self.lowres_min, self.lowres_max + 1, (1,), generator=generator)
            )
            nearest = bool(torch.rand(1, generator=generator) < 0.5)
            if len(chosen):
                side = (round(height * digit_px / 20), round(width * digit_px / 20))
                small = F.interpolate(out[chosen.to(out.device)], size=side, mode="area")
                mode = "nearest" if nearest else "bilinear"
                big = F.interpolate(
                    small,
                    size=(height, width),
                    mode=mode,
                    **({} if nearest else {"align_corners": False}),
                )
                out = out.index_copy(0, chosen.to(out.device), big)
        return out.clamp(0.0, 1.0)

    def _warp(self, pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, _, height, width = pixels.shape
        angle = _uniform(-1.0, 1.0, n, generator) * math.radians(self.max_rotation)
        scale = _uniform(self.min_scale, self.max_scale, n, generator)
        shear = _uniform(-self.max_shear, self.max_shear, n, generator)
        shift_x = _uniform(-1.0, 1.0, n, generator) * self.max_shift * 2.0 / width
        shift_y = _uniform(-1.0, 1.0, n, generator) * self.max_shift * 2.0 / height
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        # output -> input coordinates: rotation and scale, then a horizontal shear (slant)
        theta = torch.stack(
            [
                torch.stack([cos + shear * sin, -sin + shear * cos, shift_x], 1),
                torch.stack([sin, cos, shift_y], 1),
            ],
            1,
        ).to(pixels.device, pixels.dtype)
        grid = F.affine_grid(theta, list(pixels.shape), align_corners=False)
        if self.elastic_px > 0:
            coarse = torch.randn(n, 2, self.elastic_grid, self.elastic_grid, generator=generator)
            field = upsample_bicubic(coarse, height, width)
            # pixels -> normalized coordinates (2 units span the image)
            field = (
                field * self.elastic_px * torch.tensor([2.0 / width, 2.0 / height]).view(1, 2, 1, 1)
            )
            grid = grid + field.permute(0, 2, 3, 1).to(pixels.device, pixels.dtype)
        return F.grid_sample(
            pixels, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )

    def _strokes(self, pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.stroke_p <= 0:
            return pixels
        n = pixels.shape[0]
        draw = torch.rand(n, generator=generator)
        amount = _uniform(0.3, 1.0, n, generator)
        # erosion wipes out thin strokes: thin them at most 0.6 of the way
        amount = torch.where(draw < self.stroke_p / 2, amount, amount * 0.6)
        amount = amount.view(n, 1, 1, 1).to(pixels.device)
        thicker = (draw < self.stroke_p / 2).view(n, 1, 1, 1).to(pixels.device)
        thinner = ((draw >= self.stroke_p / 2) & (draw < self.stroke_p)).view(n, 1, 1, 1)
        thinner = thinner.to(pixels.device)
        if not bool(thicker.any() or thinner.any()):
            return pixels
        target = torch.where(thicker, dilate(pixels), torch.where(thinner, erode(pixels), pixels))
        return pixels + amount * (target - pixels)
