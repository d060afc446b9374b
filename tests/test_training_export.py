"""Export to TorchScript and ONNX, and the parity gate (through ``interpret``)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from training import export, gates, publish, release
from training.digit.model import build_model
from training.errors import ParityGateError
from training.metadata import base_metadata
from training.passing.model import PassProbability
from training.passing.release import INPUT_SPEC, LABELS, OUTPUT_SPEC, TASK


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("seed").eval()
    folder = tmp_path_factory.mktemp("export")
    inputs = torch.randn(300, 784)
    export.export_torchscript(model, folder / "model.pt")
    export.export_onnx(
        model, inputs[:2], folder / "model.onnx", input_name="image", output_name="logits"
    )
    return model, folder, inputs


def test_onnx_file_is_self_contained_named_and_dynamic(digit_files):
    _, folder, _ = digit_files
    assert sorted(p.name for p in folder.iterdir()) == ["model.onnx", "model.pt"]
    proto = onnx.load(str(folder / "model.onnx"))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert [i.name for i in proto.graph.input] == ["image"]
    assert [o.name for o in proto.graph.output] == ["logits"]
    batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.dim_value


@pytest.mark.parametrize("batch", [1, 64, 300])
def test_onnx_runs_any_batch_size_like_eager(digit_files, batch):
    model, folder, inputs = digit_files
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    (out,) = session.run(["logits"], {"image": inputs[:batch].numpy()})
    assert out.shape == (batch, 10)
    with torch.no_grad():
        np.testing.assert_allclose(out, model(inputs[:batch]).numpy(), atol=1e-4)


def test_parity_gate_passes_on_faithful_exports(digit_files):
    model, folder, inputs = digit_files
    worst = gates.check_parity(
        model,
        folder / "model.pt",
        folder / "model.onnx",
        inputs,
        input_name="image",
        output_kind="logits",
    )
    assert 0.0 <= worst <= gates.PARITY_TOLERANCE


def test_parity_gate_catches_a_mismatched_file(digit_files, tmp_path):
    model, folder, inputs = digit_files
    other = build_model("seed").eval()  # different random weights
    export.export_torchscript(other, tmp_path / "other.pt")
    with pytest.raises(ParityGateError, match="TorchScript differs from eager") as caught:
        gates.check_parity(
            model,
            tmp_path / "other.pt",
            folder / "model.onnx",
            inputs,
            input_name="image",
            output_kind="logits",
        )
    assert caught.value.exit_code != 0


def test_parity_gate_fails_when_a_file_does_not_load(digit_files, tmp_path):
    model, folder, inputs = digit_files
    (tmp_path / "broken.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(ParityGateError, match="cannot load"):
        gates.check_parity(
            model,
            folder / "model.pt",
            tmp_path / "broken.onnx",
            inputs,
            input_name="image",
            output_kind="logits",
        )


def _pass_release(perturb: float = 0.0) -> release.Release:
    layer = nn.Linear(1, 1)
    with torch.no_grad():
        layer.weight.fill_(3.0)
        layer.bias.fill_(-7.5)
    return release.Release(
        name="pass",
        model=PassProbability(layer),
        input_name="hours",
        output_name="probability",
        output_kind="probabilities",
        parity_inputs=torch.linspace(0, 10, 256).unsqueeze(1),
        metadata=base_metadata(
            name="pass",
            task=TASK,
            onnx_opset=export.ONNX_OPSET,
            training={},
            dataset={},
            metrics={},
            input_spec=INPUT_SPEC,
            output_spec=OUTPUT_SPEC,
            labels=LABELS,
        ),
    )


def test_release_publishes_when_parity_holds(tmp_path):
    folder = release.release(_pass_release(), tmp_path)
    assert folder == tmp_path / "pass" / "1"
    assert {"model.onnx", "model.pt", "metadata.json"} <= {p.name for p in folder.iterdir()}


def test_release_publishes_nothing_when_parity_fails(tmp_path, monkeypatch):
    real_export = export.export_onnx

    def tampered(model, example, path, **kwargs):  # the ONNX file says 0.5 everywhere
        constant = nn.Linear(1, 1)
        _zero(constant)
        real_export(PassProbability(constant), example, path, **kwargs)

    monkeypatch.setattr(export, "export_onnx", tampered)
    with pytest.raises(ParityGateError, match="ONNX Runtime differs from eager"):
        release.release(_pass_release(), tmp_path)
    assert publish.list_versions(tmp_path / "pass") == []
    assert list((tmp_path / "pass").iterdir()) == [], "the staging folder was left behind"


def _zero(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.zeros_(module.weight)
        nn.init.zeros_(module.bias)
