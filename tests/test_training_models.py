"""Output shapes and the no-activation-on-logits rule of both models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from training.digit.model import (
    ARCHS,
    DEFAULT_ARCHS,
    build_model,
    describe_archs,
    member_archs,
    parse_archs,
)
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
    assert "seed" not in DEFAULT_ARCHS


def test_pass_model_outputs_one_probability_per_row():
    layer = nn.Linear(1, 1)
    with torch.no_grad():
        layer.weight.fill_(2.0)
        layer.bias.fill_(-5.0)
    out = PassProbability(layer)(torch.tensor([[0.0], [2.5], [10.0]]))
    assert out.shape == (3, 1)
    assert out[1, 0].item() == pytest.approx(0.5)
    assert 0.0 < out[0, 0].item() < 0.01 and 0.99 < out[2, 0].item() < 1.0


def test_arch_lists_parse_and_cycle_over_members():
    assert parse_archs("wider,wider-deskew") == ("wider", "wider-deskew")
    assert parse_archs(" seed ") == ("seed",)
    assert member_archs(("wider", "wider-deskew"), 3) == ["wider", "wider-deskew", "wider"]
    assert member_archs(("wide",), 2) == ["wide", "wide"]
    with pytest.raises(ValueError, match="unknown arch nope"):
        parse_archs("wider,nope")
    with pytest.raises(ValueError):
        parse_archs("")


def test_mixed_archs_are_described_member_by_member():
    assert describe_archs(["wide", "wide"]) == ARCHS["wide"].description
    mixed = describe_archs(["wider", "wider-deskew"])
    assert mixed == f"({ARCHS['wider'].description}) + ({ARCHS['wider-deskew'].description})"
    assert all(name in ARCHS for name in DEFAULT_ARCHS)


def test_cli_rejects_an_unknown_arch_with_a_usage_error(capsys):
    from training.cli import build_parser

    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["digit", "--arch", "wider,bogus"])
    assert exit_info.value.code == 2
    assert "unknown arch bogus" in capsys.readouterr().err
