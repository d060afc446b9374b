"""The naive baseline, written the way tutorials write it.

A FastAPI endpoint taking an ``UploadFile``, PIL + torchvision transforms, and an
eager PyTorch model called once per request under ``no_grad``: no batching, no
thread pool, inference on the event loop. The eager modules are rebuilt from their
definitions (``training.digit.model`` for the digit MLP) and their weights are
loaded from the committed TorchScript files' ``state_dict``.
"""

from __future__ import annotations

import io
import json
import warnings
from typing import Annotated

import torch
from fastapi import FastAPI, File, Query, UploadFile
from PIL import Image
from torch import nn
from torchvision import transforms

from bench import newest_version
from training.digit.ensemble import MeanLogits
from training.digit.model import ARCHS, IN_FEATURES, NUM_CLASSES, build_model, member_archs


class PassModel(nn.Module):
    """Logistic regression: hours [n, 1] -> P(pass) [n, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, hours: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.linear(hours))


def committed_weights(folder_name: str) -> dict[str, torch.Tensor]:
    """The state_dict of the newest committed TorchScript file of a model."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated
        scripted = torch.jit.load(str(newest_version(folder_name) / "model.pt"), map_location="cpu")
    return scripted.state_dict()


def eager_digit_model(arch: str, state: dict[str, torch.Tensor]) -> nn.Module:
    """``training.digit.model.build_model(arch)``, with the hidden widths of ``state``.

    The committed version may predate a change of the architecture's widths, so the
    widths come from the weights; activation, BatchNorm and dropout from ``ARCHS``.
    """
    spec = ARCHS[arch]
    linear = [v for k, v in state.items() if k.endswith("weight") and v.dim() == 2]
    widths = tuple(int(w.shape[0]) for w in linear[:-1])
    if widths == tuple(spec.hidden):
        return build_model(arch)
    layers: list[nn.Module] = []
    width = IN_FEATURES
    for hidden in widths:  # the same layer order as build_model
        layers.append(nn.Linear(width, hidden, bias=not spec.batch_norm))
        if spec.batch_norm:
            layers.append(nn.BatchNorm1d(hidden))
        layers.append(spec.activation())
        if spec.dropout:
            layers.append(nn.Dropout(spec.dropout))
        width = hidden
    layers.append(nn.Linear(width, NUM_CLASSES))
    return nn.Sequential(*layers)


def eager_digit_ensemble(config: dict, state: dict[str, torch.Tensor]) -> nn.Module:
    """The committed digit model rebuilt eagerly: one MLP, or ``MeanLogits`` of its
    members (``config["arch"]``: one name, or one per member, cycling)."""
    archs = config["arch"]
    archs = [archs] if isinstance(archs, str) else list(archs)
    members = int(config.get("members") or 1)
    if members == 1 and not any(key.startswith("members.") for key in state):
        model = eager_digit_model(archs[0], state)
        model.load_state_dict(state)
        return model
    built = []
    for index, arch in enumerate(member_archs(archs, members)):
        prefix = f"members.{index}."
        own = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        own = {k: v for k, v in own.items() if not k.endswith((".rows", ".cols"))}
        member = eager_digit_model(arch, own)
        member.load_state_dict(own)
        built.append(member)
    return MeanLogits(built)


digit_meta = json.loads((newest_version("digit") / "metadata.json").read_text())
digit_model = eager_digit_ensemble(digit_meta["training"]["config"], committed_weights("digit"))
digit_model.eval()
pass_model = PassModel()
pass_model.load_state_dict(committed_weights("pass"))
pass_model.eval()

transform = transforms.Compose(
    [
        transforms.Grayscale(),
        transforms.Resize(28),
        transforms.ToTensor(),
        transforms.Normalize((0.1307,), (0.3081,)),
    ]
)

app = FastAPI(title="naive digit classifier")


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/predict/pass")
async def predict_pass(hours: Annotated[float, Query(ge=0, le=10_000)]) -> dict[str, object]:
    with torch.no_grad():
        probability = pass_model(torch.tensor([[hours]])).item()
    return {"hours": hours, "probability": probability, "passed": probability >= 0.5}


@app.post("/predict/digit")
async def predict_digit(image: UploadFile = File(...)) -> dict[str, object]:  # noqa: B008
    contents = await image.read()
    pil_image = Image.open(io.BytesIO(contents))
    tensor = transform(pil_image).view(1, -1)
    with torch.no_grad():
        probabilities = torch.softmax(digit_model(tensor), dim=1)[0]
    digit = int(probabilities.argmax())
    return {
        "digit": digit,
        "confidence": float(probabilities[digit]),
        "probabilities": probabilities.tolist(),
    }
