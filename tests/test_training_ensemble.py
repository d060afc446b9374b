"""Ensembles of digit MLPs (``training.digit.ensemble``) and the training precision
(``training.digit.precision``): one exported graph, temperatures folded into every
member, members trained side by side, bfloat16 only where the hardware has it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from training_support import digit_accuracies, train_digit

from training.digit import ensemble, precision
from training.digit.calibrate import fold_temperature
from training.digit.model import build_model
from training.errors import UsageError
from training.export import export_onnx, export_torchscript


def _members(count: int) -> list[torch.nn.Module]:
    models = []
    for seed in range(count):
        torch.manual_seed(seed)
        models.append(build_model("wide").eval())
    return models


def test_mean_logits_is_the_mean_of_its_members():
    members = _members(3)
    inputs = torch.randn(16, 784)
    with torch.no_grad():
        expected = torch.stack([m(inputs) for m in members]).mean(0)
        got = ensemble.MeanLogits(members).eval()(inputs)
    assert got.shape == (16, 10)
    torch.testing.assert_close(got, expected)
    with pytest.raises(ValueError):
        ensemble.MeanLogits([])


def test_a_temperature_folds_into_every_member():
    model = ensemble.MeanLogits(_members(2)).eval()
    folded = fold_temperature(model, 2.5).eval()
    inputs = torch.randn(8, 784)
    with torch.no_grad():
        torch.testing.assert_close(folded(inputs), model(inputs) / 2.5, rtol=1e-5, atol=1e-5)
    # every member changed, the original did not
    for before, after in zip(ensemble.members_of(model), ensemble.members_of(folded), strict=True):
        assert not torch.equal(before[-1].weight, after[-1].weight)


def test_an_ensemble_exports_as_one_onnx_and_one_torchscript_file(tmp_path):
    model = ensemble.MeanLogits(_members(2)).eval()
    inputs = torch.randn(5, 784)
    export_onnx(model, inputs, tmp_path / "m.onnx", input_name="image", output_name="logits")
    export_torchscript(model, tmp_path / "m.pt")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    (onnx_logits,) = session.run(["logits"], {"image": inputs.numpy()})
    with torch.no_grad():
        expected = model(inputs).numpy()
        scripted = torch.jit.load(str(tmp_path / "m.pt"))(inputs).numpy()
    np.testing.assert_allclose(onnx_logits, expected, atol=1e-5)
    np.testing.assert_allclose(scripted, expected, atol=1e-5)
    assert [i.shape for i in session.get_inputs()] == [["batch", 784]]


def test_assemble_gives_the_plain_mlp_for_one_member_and_mean_logits_for_more():
    def result(index: int) -> ensemble.MemberResult:
        model = _members(index + 1)[index]
        return ensemble.MemberResult(
            index, "wide", model.state_dict(), {"val_loss": [1.0]}, 1, 1, 0
        )

    single = ensemble.assemble([result(0)])
    assert isinstance(single, torch.nn.Sequential)
    pair = ensemble.assemble([result(0), result(1)])
    assert isinstance(pair, ensemble.MeanLogits) and len(pair.members) == 2
    assert ensemble.merged_history([result(0)]) == {"val_loss": [1.0]}
    assert set(ensemble.merged_history([result(0), result(1)])) == {
        "member 1 val_loss",
        "member 2 val_loss",
    }


def test_member_seeds_keep_the_first_member_the_single_model():
    assert ensemble.member_seeds(7, 1) == [7]
    assert ensemble.member_seeds(7, 3) == [7, 1007, 2007]


def test_parallel_jobs_one_per_core_on_the_cpu_one_at_a_time_on_a_gpu(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    cpu = torch.device("cpu")
    assert ensemble.parallel_jobs(cpu, members=2, threads=1) == 2
    assert ensemble.parallel_jobs(cpu, members=3, threads=1) == 3  # together, not 2 then 1
    assert ensemble.parallel_jobs(cpu, members=5, threads=1) == 4
    assert ensemble.parallel_jobs(cpu, members=3, threads=2) == 2
    assert ensemble.parallel_jobs(cpu, members=1, threads=1) == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0}, raising=False)
    assert ensemble.parallel_jobs(cpu, members=3, threads=4) == 1
    assert ensemble.parallel_jobs(torch.device("cuda"), members=3, threads=1) == 1


def test_train_members_in_this_process_keeps_job_order():
    def run(job: ensemble.MemberJob) -> ensemble.MemberResult:
        return ensemble.MemberResult(job.index, "wide", {}, {}, job.seed, 1, 0.0)

    jobs = [
        ensemble.MemberJob(i, seed, Path("."), 10, 0, None, 1, "cpu", Path("runs"))
        for i, seed in enumerate(ensemble.member_seeds(3, 3))
    ]
    results = ensemble.train_members(jobs, parallel=1, run=run)
    assert [r.best_epoch for r in results] == [3, 1003, 2003]


@pytest.mark.parametrize(
    ("name", "flags", "expected"),
    [
        ("auto", {"avx512f", "avx512_bf16"}, torch.bfloat16),
        ("auto", {"amx_bf16", "amx_tile"}, torch.bfloat16),
        ("auto", {"avx2", "avx512f", "avx512bw"}, None),  # emulated bf16 is slower: fp32
        ("auto", set(), None),
        ("fp32", {"avx512_bf16"}, None),
        ("bf16", set(), torch.bfloat16),  # asked for explicitly: honoured
    ],
)
def test_precision_on_the_cpu(name, flags, expected):
    assert precision.resolve_precision(name, torch.device("cpu"), frozenset(flags)) is expected


def test_precision_on_a_gpu_follows_native_bf16(monkeypatch):
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert precision.resolve_precision("auto", cuda) is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    assert precision.resolve_precision("auto", cuda) is None
    with pytest.raises(UsageError):
        precision.resolve_precision("bf16", torch.device("mps"))
    with pytest.raises(UsageError):
        precision.resolve_precision("fp16", cuda)


def test_cpu_flags_reads_proc_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu sse2 avx512_bf16\n\n")
    assert precision.cpu_flags(cpuinfo) == {"fpu", "sse2", "avx512_bf16"}
    assert precision.cpu_flags(tmp_path / "missing") == frozenset()
    assert precision.precision_name(torch.bfloat16) == "bf16"
    assert precision.precision_name(None) == "fp32"


def test_bf16_autocast_trains_in_float32_weights():
    from training.digit.train import train_one_epoch

    torch.manual_seed(0)
    model = build_model("seed")
    x = torch.rand(64, 28, 28)
    y = torch.randint(0, 10, (64,))

    class Splits:
        train_x, train_y = x, y

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0)
    losses = [
        train_one_epoch(
            model,
            Splits(),  # type: ignore[arg-type]
            optimizer,
            scheduler,
            batch_size=32,
            generator=torch.Generator().manual_seed(0),
            jitter=None,
            autocast_dtype=torch.bfloat16,
        )
        for _ in range(20)
    ]
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert losses[-1] < 0.5 * losses[0]  # it learns 64 images


@pytest.mark.e2e
@pytest.mark.slow
def test_two_members_train_side_by_side_and_publish_one_graph(tmp_path, mnist_dir):
    repository = tmp_path / "models"
    done = train_digit(tmp_path, mnist_dir, "--train-limit", "3000", "--members", "2", timeout=300)
    assert "member 1: epoch  1/1" in done.stdout and "member 2: epoch  1/1" in done.stdout
    folder = repository / "digit" / "1"
    meta = json.loads((folder / "metadata.json").read_text())
    config, metrics = meta["training"]["config"], meta["metrics"]
    assert config["members"] == 2 and config["member_seeds"] == [0, 1000]
    cores = len(os.sched_getaffinity(0))
    assert config["members_in_parallel"] == min(2, 2 * cores)
    assert config["recipe"].startswith("mean logits of 2 MLPs")
    assert metrics["member_best_epochs"] == [1, 1]
    assert len(metrics["member_test_accuracy"]) == 2
    assert len(list((tmp_path / "runs").glob("digit-*/events.out.tfevents.*"))) == 2
    # the one graph reproduces the reported (ensemble) accuracy, on its own
    onnx_accuracy, script_accuracy = digit_accuracies(folder, meta, mnist_dir)
    assert onnx_accuracy == pytest.approx(metrics["test_accuracy"], abs=2e-4)
    assert script_accuracy == pytest.approx(metrics["test_accuracy"], abs=2e-4)
    assert metrics["test_accuracy"] > min(metrics["member_test_accuracy"])


def test_fast_dilation_erosion_and_bicubic_upsampling_match_torch_reference():
    from torch.nn import functional as F  # noqa: N812

    from training.digit.augment import dilate, erode, upsample_bicubic

    pixels = torch.rand(7, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    assert torch.equal(dilate(pixels), F.max_pool2d(pixels, 3, stride=1, padding=1))
    assert torch.equal(erode(pixels), -F.max_pool2d(-pixels, 3, stride=1, padding=1))
    coarse = torch.randn(7, 2, 5, 5, generator=torch.Generator().manual_seed(2))
    reference = F.interpolate(coarse, size=(28, 28), mode="bicubic", align_corners=True)
    torch.testing.assert_close(upsample_bicubic(coarse, 28, 28), reference, atol=1e-5, rtol=1e-5)
