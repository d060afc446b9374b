"""Output shapes and the no-activation-on-logits rule of both models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from training.digit.model import ARCHS, DEFAULT_ARCH, build_model
from training.passing.model import PassProbability


@pytest.mark.parametrize("arch", sorted(ARCHS))
@pytest.mark.parametrize("batch", [1, 64])
def test_digit_model_maps_784_to_10_logits(arch, batch):
    torch.manual_seed(0)
    model = build_model(arch).eval()
    out = model(torch.randn(batch, 784))
    assert out.shape == (batch, 10)
    assert out.dtype == torch.float32


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_digit_last_layer_is_linear_without_activation(arch):
    model = build_model(arch)
    assert isinstance(model[-1], nn.Linear)
    assert model[-1].out_features == 10
    torch.manual_seed(0)
    logits = model.eval()(torch.randn(256, 784))
    assert (logits < 0).any(), "negative logits must be possible (no ReLU on the output)"


def test_seed_arch_is_the_classic_784_200_200_10_leaky_relu():
    model = build_model("seed")
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 200), (200, 200), (200, 10)]
    assert sum(isinstance(m, nn.LeakyReLU) for m in model) == 2
    assert DEFAULT_ARCH != "seed"


def test_pass_model_outputs_one_probability_per_row():
    layer = nn.Linear(1, 1)
    with torch.no_grad():
        layer.weight.fill_(2.0)
        layer.bias.fill_(-5.0)
    out = PassProbability(layer)(torch.tensor([[0.0], [2.5], [10.0]]))
    assert out.shape == (3, 1)
    assert out[1, 0].item() == pytest.approx(0.5)
    assert 0.0 < out[0, 0].item() < 0.01 and 0.99 < out[2, 0].item() < 1.0
