"""The "what it means" section: sentences computed from the results."""

from __future__ import annotations

from typing import Any

from bench.targets import TARGET_LEVEL


def _get(serving: dict[str, Any], row: str, endpoint: str, level: int) -> dict[str, Any] | None:
    for entry in serving["results"]:
        if (entry["row"], entry.get("endpoint"), entry["concurrency"]) == (row, endpoint, level):
            return entry if "rps" in entry else None
    return None


def _cores(entry: dict[str, Any]) -> float:
    """Cores' worth of CPU the server used: req/s x CPU seconds per request."""
    return entry["rps"] * (entry.get("server_cpu_ms_per_req") or 0.0) / 1000


def others_load(serving: dict[str, Any]) -> tuple[float, float, list[str]]:
    """Mean and max cores' worth of CPU used by other processes while measuring; top names."""
    shares, names = [], {}
    for entry in serving["results"]:
        if "rps" in entry and entry["duration_s"] > 0:
            shares.append(entry["other_cpu_s"] / entry["duration_s"])
            for name, seconds in entry.get("other_top", {}).items():
                names[name] = names.get(name, 0.0) + seconds
    if not shares:
        return 0.0, 0.0, []
    top = sorted(names, key=lambda n: -names[n])[:3]
    return sum(shares) / len(shares), max(shares), top


def serving_reading(serving: dict[str, Any]) -> list[str]:
    level = TARGET_LEVEL
    out = []
    ours = _get(serving, "digitpass", "digit", level)
    ceiling = _get(serving, "ceiling", "digit", level)
    asgi = _get(serving, "asgi-ceiling", "digit", level)
    if ours and ceiling:
        out.append(
            f"At concurrency {level}, `/predict/digit` serves {ours['rps']:.0f} req/s, "
            f"{ours['ratio']:.0%} of the {ceiling['rps']:.0f} req/s of the FastAPI app that "
            f"only parses the upload (p99 {ours['p99_ms']:.1f} ms vs "
            f"{ceiling['p99_ms']:.1f} ms)"
            + (
                f", and {ours['ratio_asgi']:.0%} of the {asgi['rps']:.0f} req/s of the "
                "plain-ASGI app that parses it with digitpass's own code"
                if asgi and ours.get("ratio_asgi")
                else ""
            )
            + f". It used {ours['server_cpu_ms_per_req']:.2f} ms of server CPU per upload "
            f"against {ceiling['server_cpu_ms_per_req']:.2f} ms for the FastAPI ceiling"
            + (f" and {asgi['server_cpu_ms_per_req']:.2f} ms for the ASGI one" if asgi else "")
            + f", {_cores(ours):.2f} cores in all. "
            + (
                "Other processes held much of the second core, so CPU per request bounds "
                "the ratio (where the CPU goes: Notes)."
                if others_load(serving)[0] >= 0.3
                else "The gap to the ASGI ceiling is the model's work: each image is "
                "decoded and preprocessed, and each batch runs, in the inference thread, "
                "which takes turns with the event loop on one GIL (Notes)."
            )
        )
    batch1 = _get(serving, "digitpass-batch1", "digit", level)
    if ours and batch1:
        out.append(
            f"Dynamic batching is worth {ours['rps'] / batch1['rps']:.1f}x on uploads at "
            f"concurrency {level} ({ours['rps']:.0f} vs {batch1['rps']:.0f} req/s, mean batch "
            f"{ours.get('mean_batch') or 0:.1f} vs 1): one inference call and one thread hop "
            "serve many requests."
        )
    naive = _get(serving, "naive", "digit", level)
    if ours and naive:
        out.append(
            f"The naive baseline manages {naive['rps']:.0f} req/s (p99 {naive['p99_ms']:.0f} ms): "
            "PIL, torchvision and the eager model run on the event loop, one request at a "
            "time, with eager PyTorch's default of one intra-op thread per core (see Notes)."
        )
    peer = _get(serving, "litserve", "digit", level)
    if ours and peer:
        out.append(
            f"LitServe, batching the same ONNX model (max 64 rows, 5 ms timeout), serves "
            f"{peer['rps']:.0f} req/s with p99 {peer['p99_ms']:.1f} ms "
            f"({peer['server_cpu_ms_per_req']:.2f} ms of server CPU per request, digitpass "
            f"{ours['server_cpu_ms_per_req']:.2f}); its HTTP process hands every decoded "
            "request to a separate inference process through a queue."
        )
    workers = _get(serving, "digitpass-workers2", "digit", level)
    if ours and workers:
        verb = "gain" if workers["rps"] > ours["rps"] * 1.1 else "do not clearly gain"
        busy = others_load(serving)[0]
        w_pass = _get(serving, "digitpass-workers2", "pass", level)
        extra = (
            f" With two workers, uploads reach {workers['ratio']:.0%} of the upload ceiling"
            + (f" and `/predict/pass` {w_pass['ratio']:.0%} of the GET ceiling" if w_pass else "")
            + f" (p99 {workers['p99_ms']:.1f} ms on uploads)."
        )
        out.append(
            f"Two workers {verb}: {workers['rps']:.0f} req/s against one worker's "
            f"{ours['rps']:.0f}. A second event loop only helps on a core that nobody else "
            f"uses; other processes took {busy:.1f} of the 2 cores on average." + extra
        )
    script = _get(serving, "digitpass-torchscript", "digit", level)
    if ours and script:
        out.append(
            f"The TorchScript backend serves {script['rps']:.0f} req/s against ONNX Runtime's "
            f"{ours['rps']:.0f} ({script['server_cpu_ms_per_req']:.2f} vs "
            f"{ours['server_cpu_ms_per_req']:.2f} ms of server CPU per request)."
        )
    passed = _get(serving, "digitpass", "pass", level)
    if passed and passed.get("ratio") is not None:
        asgi_pass = _get(serving, "asgi-ceiling", "pass", level)
        out.append(
            f"`/predict/pass` reaches {passed['ratio']:.0%} of the FastAPI GET ceiling at "
            f"concurrency {level} ({passed['rps']:.0f} req/s, "
            f"{passed['server_cpu_ms_per_req']:.2f} ms of server CPU per request)"
            + (
                f" and {passed['ratio_asgi']:.0%} of the plain-ASGI one "
                f"({asgi_pass['rps']:.0f} req/s, "
                f"{asgi_pass['server_cpu_ms_per_req']:.2f} ms per request)."
                if asgi_pass and passed.get("ratio_asgi")
                else "."
            )
        )
    mean, peak, top = others_load(serving)
    if peak > 0.1:
        out.append(
            f"Other processes were running: while measuring, they used {mean:.2f} cores on "
            f"average and up to {peak:.2f} of the machine's cores ({', '.join(top)}). Ratios "
            "to the ceiling hold better than absolute numbers, because each level's rows ran "
            "back to back; single runs still move by 10-20%."
        )
    return out


def inference_reading(inference: dict[str, Any]) -> list[str]:
    by = {
        (e["backend"], e["device"], e["threads"], e["batch_size"]): e for e in inference["results"]
    }
    threads = inference["service_threads"]
    counts = sorted({e["threads"] for e in inference["results"]}, reverse=True)
    out = []
    for backend in ("onnx", "torchscript"):
        parts = []
        for count in counts:
            one, many = by.get((backend, "cpu", count, 1)), by.get((backend, "cpu", count, 64))
            if one and many:
                parts.append(
                    f"{count} thread{'s' if count > 1 else ''}: "
                    f"{one['samples_per_s']:,.0f} samples/s at batch 1 "
                    f"({one['median_ms']:.2f} ms), {many['samples_per_s']:,.0f} at batch 64 "
                    f"({many['median_ms']:.2f} ms)"
                )
        if parts:
            out.append(f"{backend} on the CPU, " + "; ".join(parts) + ".")
    pre = inference.get("preprocess") or {}
    single = by.get(("onnx", "cpu", threads, 1))  # the service's default thread count
    if "median_us" in pre and single:
        times = pre["median_us"] / 1000 / single["median_ms"]
        out.append(
            f"The service's preprocessing of one 28x28 PNG takes {pre['median_us']:.0f} µs "
            f"(median), {times:.1f}x a single-image ONNX Runtime call"
            + (": per upload, preprocessing costs more than the model." if times > 1 else ".")
        )
    out += version_cost_reading(inference.get("versions") or {})
    return out


def version_cost_reading(versions: dict[str, Any]) -> list[str]:
    """The newest digit version's serving cost per image against the newest single-MLP one."""
    rows, ratios = versions.get("versions") or [], versions.get("ratios") or {}
    if len(rows) != 2 or not ratios:
        return []
    old, new = rows
    text = (
        f"Serving cost per image, digit v{new['version']} against v{old['version']} "
        f"(ONNX Runtime, {versions['threads']} thread(s)): the model call "
        f"{new['model_ms_per_image_b1']:.3f} against {old['model_ms_per_image_b1']:.3f} ms "
        f"at batch 1 ({ratios['model_ms_per_image_b1']:.2f}x), "
        f"{new['model_ms_per_image_b64']:.4f} against {old['model_ms_per_image_b64']:.4f} ms "
        f"at batch 64 ({ratios['model_ms_per_image_b64']:.2f}x)"
    )
    if "upload_ms_per_image_b64" in ratios:
        text += (
            f"; with the preprocessing of the upload, {ratios['upload_ms_per_image_b1']:.2f}x "
            f"at batch 1 and {ratios['upload_ms_per_image_b64']:.2f}x at batch 64"
        )
    return [text + "."]


def training_reading(training: dict[str, Any]) -> list[str]:
    out = []
    for entry in training["results"]:
        out.append(
            f"`{entry['arch']}` ({entry['architecture']}): {entry['seconds_per_epoch']} s per "
            f"epoch on the CPU, test accuracy {entry['test_accuracy']:.4f} after "
            f"{entry['epochs']} epochs."
        )
    return out
