"""The benchmark code runs: a few seconds of serving and inference (no LitServe, no training).

With wrk installed the serving smoke uses it; without, bench's Python load generator,
which is also driven directly below, so the fallback is exercised on every machine.
"""

from __future__ import annotations

import json
import sys

import pytest

from bench.__main__ import main
from bench.loadgen import Target, run_load
from bench.payload import DIGIT_PATH, PASS_QUERY, mnist_png, multipart_body, multipart_content_type
from bench.promstats import BatchTotals, mean_batch, parse_batch_totals
from bench.report import render
from bench.servers import Server, ServerSpec
from bench.wrk import parse_summary


@pytest.fixture
def mnist_env(mnist_dir, monkeypatch):
    monkeypatch.setenv("MNIST_DIR", str(mnist_dir))
    return mnist_dir


def test_smoke_run_writes_well_formed_results(mnist_env, tmp_path):
    assert main(["--smoke", "--results-dir", str(tmp_path)]) == 0

    serving = json.loads((tmp_path / "serving.json").read_text())
    results = serving["results"]
    assert {(r["row"], r["endpoint"]) for r in results} == {
        ("ceiling", "pass"),
        ("ceiling", "digit"),
        ("asgi-ceiling", "pass"),
        ("asgi-ceiling", "digit"),
        ("digitpass", "pass"),
        ("digitpass", "digit"),
    }
    for entry in results:
        assert entry["concurrency"] == 16
        assert entry["requests"] > 0 and entry["rps"] > 0, entry
        assert entry["errors"] == 0, entry
        assert 0 < entry["p50_ms"] <= entry["p99_ms"] <= entry["max_ms"], entry
        assert entry["ratio"] > 0 and entry["ratio_asgi"] > 0, entry
        assert entry["server_cpu_ms_per_req"] >= 0, entry
    for entry in results:
        if entry["row"] == "digitpass":
            assert entry["mean_batch"] >= 1, entry
    assert serving["meta"]["machine"]["cores"] >= 1

    inference = json.loads((tmp_path / "inference.json").read_text())
    points = {(r["backend"], r["batch_size"]) for r in inference["results"] if r["threads"] == 1}
    assert {("onnx", 1), ("onnx", 2), ("torchscript", 1), ("torchscript", 2)} <= points
    assert all(r["samples_per_s"] > 0 for r in inference["results"])
    versions = inference["versions"]  # the newest two digit versions, per image
    assert [row["version"] for row in versions["versions"]] == sorted(
        row["version"] for row in versions["versions"]
    )
    assert len(versions["versions"]) == 2
    for row in versions["versions"]:
        assert 0 < row["model_ms_per_image_b64"] < row["model_ms_per_image_b1"]
        assert row["upload_ms_per_image_b1"] > row["model_ms_per_image_b1"]
    assert set(versions["ratios"]) >= {"model_ms_per_image_b1", "upload_ms_per_image_b64"}

    doc = render(tmp_path)
    assert "## Serving" in doc and "## Inference micro-benchmark" in doc
    assert "Serving cost per image, digit v" in doc
    assert "not measured" in doc  # the targets are judged at concurrency 64 only


def test_python_load_generator_against_the_ceiling(mnist_env, tmp_path):
    argv = [sys.executable, "-m", "bench.launch", "bench.ceiling_app:app", "--port", "{port}"]
    server = Server("ceiling", ServerSpec(argv, "/healthz", startup_timeout_s=60), tmp_path)
    server.start()
    try:
        server.wait_ready()
        upload = Target(
            server.url + DIGIT_PATH, "POST", multipart_body(mnist_png(0)), multipart_content_type()
        )
        for target in (Target(server.url + PASS_QUERY), upload):
            result = run_load(target, concurrency=4, duration_s=0.5, tool="python")
            assert result.requests > 0 and result.rps > 0
            assert result.errors == 0
        missing = run_load(
            Target(server.url + "/nope"), concurrency=2, duration_s=0.2, tool="python"
        )
        assert missing.non_2xx == missing.requests > 0
    finally:
        server.stop()


def test_parsers():
    text = (
        'digitpass_inference_batch_size_bucket{le="1.0",model="digit"} 3.0\n'
        'digitpass_inference_batch_size_sum{model="digit"} 40.0\n'
        'digitpass_inference_batch_size_count{model="digit"} 10.0\n'
        'digitpass_inference_batch_size_sum{model="pass"} 5.0\n'
    )
    totals = parse_batch_totals(text)
    assert totals["digit"] == BatchTotals(40.0, 10.0)
    assert mean_batch(BatchTotals(20.0, 5.0), totals["digit"]) == 4.0
    assert mean_batch(totals["digit"], totals["digit"]) is None

    line = (
        'BENCH_JSON {"duration_us":2000000,"requests":500,"p50_us":1500,"p90_us":2500,'
        '"p99_us":4000,"max_us":9000,"connect":0,"read":1,"write":0,"status":3,"timeout":2}'
    )
    result = parse_summary("Running 2s test\n" + line + "\n", concurrency=8)
    assert result.rps == 250.0 and result.p99_ms == 4.0
    assert (result.non_2xx, result.socket_errors, result.errors) == (3, 3, 6)


def test_multipart_body_is_one_png_field():
    png = mnist_png(0)
    body = multipart_body(png)
    assert png in body and body.count(png[:8]) == 1


@pytest.mark.slow
def test_the_protocol_rows_run_without_errors(mnist_env, tmp_path):
    """V2 REST binary (wrk or Python, with the extra header) and V2 gRPC, 1 s each."""
    rows = "v2-rest-binary,v2-grpc-64"
    argv = [
        "--only",
        "protocol",
        "--duration",
        "1",
        "--warmup",
        "0",
        "--rounds",
        "2",
        "--rows",
        rows,
    ]
    assert main([*argv, "--results-dir", str(tmp_path), "--no-doc"]) == 0
    results = json.loads((tmp_path / "protocol.json").read_text())["results"]
    assert [r["row"] for r in results] == rows.split(",")
    for result in results:
        assert result["errors"] == 0 and result["requests"] > 0
        assert result["samples_per_s"] == pytest.approx(
            result["rps"] * result["rows_per_request"], rel=1e-3
        )
        assert len(result["rounds_rps"]) == 2 and result["rps"] in result["rounds_rps"]
    # 64 tensors a request, one call each; the previous row's last one-row requests can
    # still be answered inside this row's window (63.94 seen), never a merged call (> 64).
    assert 63.0 <= results[1]["mean_batch"] <= 64.0
    assert "V2 gRPC, FP32 [64, 784]" in render(tmp_path)


def test_scaleup_summary_and_report_from_recorded_rounds(tmp_path):
    import json

    from bench.report import render
    from bench.scaleup import summary

    def entry(round_index: int, side: str, rps: float, p99: float) -> dict:
        return {
            "round": round_index,
            "side": side,
            "rps": rps,
            "p50_ms": 10.0,
            "p99_ms": p99,
            "errors": 0,
            "server_cores": 1.0,
        }

    data = {
        "benchmark": "scaleup",
        "config": {
            "rounds": 2,
            "duration_s": 10,
            "warmup_s": 2,
            "level": 64,
            "tool": "wrk",
            "cores": 2,
        },
        "results": [
            entry(0, "default", 900, 20),
            entry(0, "one-core", 500, 30),
            entry(1, "one-core", 500, 30),
            entry(1, "default", 1000, 20),
        ],
        "meta": {"command": "python -m bench --only scaleup"},
    }
    rows = {row[0]: row for row in summary(data)}
    assert rows["req/s"][3] == "1.90x" and rows["req/s"][4].endswith("met")
    assert rows["p99 (ms)"][4] == "no worse: met"
    data["results"][0]["rps"] = data["results"][3]["rps"] = 800
    assert summary(data)[0][4].endswith("**missed**")  # 1.60x
    (tmp_path / "scaleup.json").write_text(json.dumps(data))
    assert "## Scale-up: every core by default" in render(tmp_path)


def test_version_cost_judges_the_newest_against_the_newest_single_mlp(tmp_path):
    import json

    from bench.version_cost import digit_versions

    for version, members in ((1, None), (2, None), (3, 2), (4, 3)):
        folder = tmp_path / "digit" / str(version)
        folder.mkdir(parents=True)
        config = {} if members is None else {"members": members}
        (folder / "metadata.json").write_text(json.dumps({"training": {"config": config}}))
    assert [p.name for p in digit_versions(tmp_path)] == ["2", "4"]
    (tmp_path / "digit" / "1" / "metadata.json").write_text(
        json.dumps({"training": {"config": {"members": 2}}})
    )
    (tmp_path / "digit" / "2" / "metadata.json").write_text(
        json.dumps({"training": {"config": {"members": 2}}})
    )
    assert [p.name for p in digit_versions(tmp_path)] == ["3", "4"]  # no single one: the previous
